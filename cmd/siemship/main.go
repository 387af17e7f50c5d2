// Command siemship ships Tetragon's security events to Falcon LogScale.
package main

import (
	"os"

	"github.com/siemship/siemship/internal/cli"
)

func main() {
	os.Exit(cli.Execute())
}
