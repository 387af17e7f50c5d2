// Command siemship ships Tetragon's security events to Falcon LogScale.
package main

import (
	"os"

	// CA roots for images without /etc/ssl (the OCI image `make image`
	// builds has nothing but the binary): used only when the system has no
	// roots of its own, so a host's or a mounted bundle still wins.
	_ "golang.org/x/crypto/x509roots/fallback"

	"github.com/siemship/siemship/internal/cli"
)

func main() {
	os.Exit(cli.Execute())
}
