package tetragon

// fileRef identifies one file of the set across renames and compression.
type fileRef struct {
	Name string `json:"name"` // base name when last seen (diagnostic; backups keep it)
	fileID
	fingerprint
}

// Position is a point in the file set: everything before Offset in File has
// been delivered. It is what the source checkpoints.
type Position struct {
	File   fileRef `json:"file"`
	Offset int64   `json:"offset"`
	// TailSum is the checksum of the TailLen bytes before Offset.
	TailLen int    `json:"tail_len"`
	TailSum string `json:"tail"`
	// SizeSeen is the file's size when the position was read; Rotated says
	// the file was already a finished backup then, so SizeSeen is final.
	SizeSeen int64 `json:"size_seen"`
	Rotated  bool  `json:"rotated"`
}

// state is the checkpoint file's content.
type state struct {
	Version  int      `json:"version"`
	Path     string   `json:"path"`
	Position Position `json:"position"`
	// Fresh marks a start in an empty file, which has no content to be
	// recognised by: everything after the backup named After (every file
	// when After is empty) is new since that start. Position is unset.
	Fresh bool   `json:"fresh,omitempty"`
	After string `json:"after,omitempty"`
}

// tracked is what the ack tracker holds per batch: the position after it,
// and when its bytes were read (for the lag in seconds). A start marker
// (fresh) is committed without a batch, before anything is read.
type tracked struct {
	pos   Position
	read  int64 // unix nanos
	fresh bool
	after string
}

const stateVersion = 1

// Loss describes data Tetragon deleted before siemship read it: everything
// from From up to the start of ResumedAt (nil if no later file exists yet).
type Loss struct {
	From      Position `json:"lost_from"`
	ResumedAt *fileRef `json:"resumed_at,omitempty"`
	// Files names whole files known to have existed in between and gone.
	Files []string `json:"lost_files,omitempty"`
	// FilesOmitted counts the files gone besides those named (the names
	// are capped at maxLossNames).
	FilesOmitted int `json:"lost_files_omitted,omitempty"`
	// BytesAtLeast counts the bytes known to be lost; whole files rotated
	// and deleted while siemship was not watching cannot be counted.
	BytesAtLeast int64  `json:"lost_bytes_at_least"`
	Exact        bool   `json:"exact"`
	Reason       string `json:"reason"`
	// corrupt: the data was on disk but cannot be decoded (not deleted by Tetragon).
	corrupt bool
}

// maxLossNames caps the file names in one loss report.
const maxLossNames = 20
