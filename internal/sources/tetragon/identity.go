package tetragon

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"syscall"
)

// fingerprintSize is how many leading bytes identify a file's content. A
// Tetragon line is 1.5–4 KB and starts with a cluster-unique exec_id, so the
// first KiB of a file is unique to it.
const fingerprintSize = 1024

// tailSize is how many bytes before a saved offset are checksummed, so that a
// resume never seeks into a file whose content changed under the same name.
const tailSize = 64

// fileID is the kernel's identity of a file. Inodes are reused after a delete
// (immediately on tmpfs), so it is never trusted without a fingerprint.
type fileID struct {
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"inode"`
}

func idOf(fi os.FileInfo) fileID {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileID{}
	}
	return fileID{Dev: uint64(st.Dev), Ino: st.Ino} //nolint:unconvert // Dev is int32 on some platforms
}

// fingerprint identifies a file by a hash of its first Len bytes (fewer than
// fingerprintSize while the file is shorter).
type fingerprint struct {
	Len int    `json:"fp_len"`
	Sum string `json:"fp"`
}

func fingerprintOf(head []byte) fingerprint {
	if len(head) > fingerprintSize {
		head = head[:fingerprintSize]
	}
	return fingerprint{Len: len(head), Sum: checksum(head)}
}

// Matches reports whether a file starting with head has this fingerprint.
func (f fingerprint) Matches(head []byte) bool {
	return len(head) >= f.Len && checksum(head[:f.Len]) == f.Sum
}

// complete reports whether the fingerprint covers as many bytes as it ever will.
func (f fingerprint) complete() bool { return f.Len >= fingerprintSize }

// checksum is a short content hash: collisions only matter between files of
// one export directory, so 128 bits are plenty.
func checksum(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Fingerprint returns the hash siemship uses to identify a file starting with
// head (at most its first KiB counts). Exported for tests that map loss
// reports back to the files they generated.
func Fingerprint(head []byte) (length int, sum string) {
	f := fingerprintOf(head)
	return f.Len, f.Sum
}
