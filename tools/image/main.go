// Command image builds siemship's multi-platform OCI image without a Docker
// engine and without pulling a base image, and pushes it. `make image` and
// `make image-push` run it (through hack/image.sh); it lives in a module of
// its own so that go-containerregistry never becomes a dependency of the
// agent.
//
//	image build -layout DIR -tarball FILE -name siemship:dev -version V -revision R \
//	    -binary linux/amd64=PATH -binary linux/arm64=PATH
//	image push -layout DIR registry.example.com/siemship:1.2.3
//
// The image holds the static binaries hack/build-static.sh builds, a passwd
// and group file with root and an unprivileged user, and nothing else: the
// binary embeds its CA roots (golang.org/x/crypto/x509roots/fallback).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: image build|push [flags]")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "build":
		return runBuild(args[1:])
	case "push":
		return runPush(ctx, args[1:])
	default:
		return fmt.Errorf("unknown command %q: build or push", args[0])
	}
}

func runBuild(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	var (
		spec     = DefaultSpec()
		binaries = platformFlag{}
		layout   = fs.String("layout", "", "OCI layout directory to write (replaced)")
		archive  = fs.String("tarball", "", "OCI layout archive to write (for kind load image-archive, ctr import, skopeo)")
		created  = fs.String("created", "", "creation time, RFC 3339; default $SOURCE_DATE_EPOCH, else now")
	)
	fs.StringVar(&spec.Name, "name", spec.Name, "image name recorded in the layout (registry/repository:tag)")
	fs.StringVar(&spec.Version, "version", spec.Version, "org.opencontainers.image.version")
	fs.StringVar(&spec.Revision, "revision", spec.Revision, "org.opencontainers.image.revision (the commit)")
	fs.StringVar(&spec.Source, "source", spec.Source, "org.opencontainers.image.source")
	fs.StringVar(&spec.User, "user", spec.User, "the image's numeric user (uid:gid); a pod's runAsUser overrides it")
	fs.Var(binaries, "binary", "os/arch=path of a static binary, once per platform")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *layout == "" || len(binaries) == 0 || fs.NArg() != 0 {
		return errors.New("build needs -layout and at least one -binary, and no arguments")
	}
	t, err := createdTime(*created, os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}
	spec.Created = t
	spec.Binaries = binaries
	start := time.Now()
	digest, err := Build(spec, *layout, *archive)
	if err != nil {
		return err
	}
	fmt.Printf("built %s (%s) in %s: %s", spec.Name, digest, time.Since(start).Round(time.Millisecond), *layout)
	if *archive != "" {
		fmt.Printf(", %s", *archive)
	}
	fmt.Println()
	return nil
}

func runPush(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	layout := fs.String("layout", "", "OCI layout directory written by build")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *layout == "" || fs.NArg() != 1 {
		return errors.New("usage: push -layout DIR registry/repository:tag")
	}
	ref, err := Push(ctx, *layout, fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Println("pushed", ref)
	return nil
}

// createdTime is flagValue (RFC 3339) when set, else the reproducible-builds
// SOURCE_DATE_EPOCH (seconds), else now; always UTC, whole seconds.
func createdTime(flagValue, epoch string) (time.Time, error) {
	switch {
	case flagValue != "":
		t, err := time.Parse(time.RFC3339, flagValue)
		if err != nil {
			return time.Time{}, fmt.Errorf("-created: %w", err)
		}
		return t.UTC(), nil
	case epoch != "":
		s, err := strconv.ParseInt(epoch, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		return time.Unix(s, 0).UTC(), nil
	default:
		return time.Now().UTC().Truncate(time.Second), nil
	}
}

// platformFlag collects -binary os/arch=path.
type platformFlag map[string]string

func (p platformFlag) String() string { return fmt.Sprint(map[string]string(p)) }

func (p platformFlag) Set(v string) error {
	platform, path, ok := strings.Cut(v, "=")
	if !ok || path == "" || !strings.HasPrefix(platform, "linux/") {
		return fmt.Errorf("%q: want linux/<arch>=<path>", v)
	}
	if _, dup := p[platform]; dup {
		return fmt.Errorf("%s given twice", platform)
	}
	p[platform] = path
	return nil
}
