package main

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The packaging tests (test/packaging) check the image `make image` builds
// with the real binaries; these check what needs no binary: push, and the
// refusal of bad input.

func buildFake(t *testing.T) (string, v1.Hash) {
	t.Helper()
	dir := t.TempDir()
	spec := DefaultSpec()
	spec.Created = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	spec.Binaries = map[string]string{}
	for _, arch := range []string{"amd64", "arm64"} {
		p := filepath.Join(dir, arch)
		if err := os.WriteFile(p, []byte("binary for "+arch), 0o755); err != nil {
			t.Fatal(err)
		}
		spec.Binaries["linux/"+arch] = p
	}
	layout := filepath.Join(dir, "oci")
	digest, err := Build(spec, layout, filepath.Join(dir, "image.tar"))
	if err != nil {
		t.Fatal(err)
	}
	return layout, digest
}

// make image-push: the index and both platforms' images arrive in the
// registry under the tag, with the digest the layout has.
func TestPush(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	layout, digest := buildFake(t)
	host := strings.TrimPrefix(srv.URL, "http://")

	pushed, err := Push(context.Background(), layout, host+"/team/siemship:1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/team/siemship@" + digest.String(); pushed != want {
		t.Errorf("pushed %s, want %s", pushed, want)
	}
	ref, err := name.ParseReference(host + "/team/siemship:1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := idx.Digest(); got != digest {
		t.Errorf("the registry's index %s, the layout's %s", got, digest)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := remote.Image(ref, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
		cf, err := img.ConfigFile()
		if err != nil || cf.Architecture != arch || cf.Config.User != "65532:65532" {
			t.Errorf("%s: config %+v (%v)", arch, cf, err)
		}
	}
}

func TestPushNeedsALayout(t *testing.T) {
	_, err := Push(context.Background(), t.TempDir(), "localhost:1/x:y")
	if err == nil || !strings.Contains(err.Error(), "make image") {
		t.Errorf("push without a layout: %v", err)
	}
}

func TestBuildRefusesBadInput(t *testing.T) {
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no binary":      {[]string{"-layout", t.TempDir()}, "-binary"},
		"not linux":      {[]string{"-layout", t.TempDir(), "-binary", "darwin/arm64=x"}, "linux/<arch>"},
		"root user":      {[]string{"-layout", t.TempDir(), "-user", "0:0", "-binary", "linux/amd64=" + os.Args[0]}, "non-root"},
		"missing binary": {[]string{"-layout", t.TempDir(), "-binary", "linux/amd64=/nonexistent"}, "nonexistent"},
		"bad name":       {[]string{"-layout", t.TempDir(), "-name", "UPPER:x", "-binary", "linux/amd64=" + os.Args[0]}, "image name"},
	} {
		t.Run(name, func(t *testing.T) {
			err := runBuild(tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
			}
		})
	}
}

func TestCreatedTime(t *testing.T) {
	for _, tc := range []struct{ flag, epoch, want string }{
		{"2026-01-02T03:04:05+02:00", "1", "2026-01-02T01:04:05Z"},
		{"", "1767322800", "2026-01-02T03:00:00Z"},
	} {
		got, err := createdTime(tc.flag, tc.epoch)
		if err != nil || got.Format(time.RFC3339) != tc.want {
			t.Errorf("createdTime(%q, %q) = %s, %v; want %s", tc.flag, tc.epoch, got, err, tc.want)
		}
	}
	if _, err := createdTime("", "soon"); err == nil {
		t.Error("a non-numeric SOURCE_DATE_EPOCH was accepted")
	}
}
