package spool

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/siemship/siemship/internal/event"
)

// lossSource is the Source of the spool's own loss reports.
const lossSource = "spool"

// Loss describes events the spool lost: dropped when full, or in a damaged
// span of a segment. It is logged, counted and shipped to the sink as a
// siemship_data_loss event, like the Tetragon source's reports, so the gap
// is visible where the data should have been.
type Loss struct {
	Reason  string `json:"reason"`
	Sink    string `json:"sink"`
	Segment int    `json:"segment"`
	// Events and Records lost; exact for drops, unknown (0) for damage.
	Events  int64 `json:"lost_events,omitempty"`
	Records int64 `json:"lost_records,omitempty"`
	// Bytes of spool data lost (the damaged span, or the dropped segment).
	Bytes int64 `json:"lost_bytes_at_least"`
	Exact bool  `json:"exact"`
	// SpooledFrom and SpooledTo bound when the lost events were spooled.
	SpooledFrom string `json:"spooled_from,omitempty"`
	SpooledTo   string `json:"spooled_to,omitempty"`
	// Offset is where damage starts in the segment file.
	Offset int64 `json:"offset,omitempty"`
}

func (l Loss) event() event.Event {
	now := time.Now().UTC()
	raw, err := json.Marshal(struct {
		Loss   Loss   `json:"siemship_data_loss"`
		Source string `json:"source"`
		Time   string `json:"time"`
	}{l, lossSource, now.Format(time.RFC3339Nano)})
	if err != nil {
		panic(fmt.Sprintf("encode loss report: %v", err)) // plain structs always encode
	}
	return event.Event{Raw: raw, Size: len(raw), Time: now.UnixMilli(), Type: "siemship_data_loss"}
}
