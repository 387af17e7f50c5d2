// Package bytesize is the type of every size option: a number of bytes,
// written in configuration as a number or with a unit ("5MiB", "256 KiB").
package bytesize

import (
	"fmt"

	"github.com/dustin/go-humanize"
)

// Size is a size in bytes.
type Size int64

func (s Size) String() string { return humanize.IBytes(uint64(s)) }

// Parse reads "5MiB", "256 KiB", "1MB" or a plain number of bytes.
func Parse(text string) (Size, error) {
	n, err := humanize.ParseBytes(text)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size (use e.g. 5MiB or 1048576)", text)
	}
	return Size(n), nil
}
