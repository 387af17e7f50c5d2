package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Spec is what goes into the image.
type Spec struct {
	// Name is recorded in the layout's index.json, as containerd and kind
	// read it (io.containerd.image.name) and as the OCI spec names a tag.
	Name     string
	Version  string
	Revision string
	Source   string
	Created  time.Time
	// User is numeric so that a kubelet can tell root from non-root
	// without a passwd lookup; a pod's runAsUser overrides it.
	User string
	// Binaries maps linux/<arch> to a static siemship binary.
	Binaries map[string]string
}

const binaryPath = "usr/local/bin/siemship"

// DefaultSpec is the image as `make image` builds it, apart from the
// binaries and the creation time.
func DefaultSpec() Spec {
	return Spec{
		Name:     "siemship:dev",
		Version:  "dev",
		Revision: "unknown",
		Source:   "https://github.com/siemship/siemship",
		// distroless' "nonroot": the DaemonSet reads Tetragon's root-owned
		// 0600 export and so runs as uid 0 (the chart sets runAsUser: 0);
		// the receiver and `siemship check` run fine as 65532.
		User: "65532:65532",
	}
}

// labels are the OCI annotations, set as image labels, manifest and index
// annotations alike.
func (s Spec) labels() map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":         "siemship",
		"org.opencontainers.image.description":   "Ships Tetragon security events to Falcon LogScale without losing any",
		"org.opencontainers.image.source":        s.Source,
		"org.opencontainers.image.url":           s.Source,
		"org.opencontainers.image.documentation": s.Source + "#readme",
		"org.opencontainers.image.version":       s.Version,
		"org.opencontainers.image.revision":      s.Revision,
		"org.opencontainers.image.created":       s.Created.Format(time.RFC3339),
		"org.opencontainers.image.vendor":        "siemship",
		"org.opencontainers.image.licenses":      "Apache-2.0",
	}
}

// Build writes the image index as an OCI layout directory (replacing it)
// and, when archive is set, the same layout as a tar file. It returns the
// index's digest. The output depends only on spec: the same binaries and
// creation time give the same digest.
func Build(spec Spec, layoutDir, archive string) (v1.Hash, error) {
	ref, err := name.NewTag(spec.Name)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image name: %w", err)
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, platform := range slices.Sorted(maps.Keys(spec.Binaries)) {
		p, err := v1.ParsePlatform(platform)
		if err != nil {
			return v1.Hash{}, err
		}
		if p.Architecture == "arm64" && p.Variant == "" {
			p.Variant = "v8"
		}
		img, err := platformImage(spec, *p, spec.Binaries[platform])
		if err != nil {
			return v1.Hash{}, fmt.Errorf("%s: %w", platform, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: p},
		})
	}
	idx = mutate.Annotations(idx, spec.labels()).(v1.ImageIndex)
	digest, err := idx.Digest()
	if err != nil {
		return v1.Hash{}, err
	}

	if err := os.RemoveAll(layoutDir); err != nil {
		return v1.Hash{}, err
	}
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("write layout: %w", err)
	}
	err = lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          containerdName(ref),
	}))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("write layout: %w", err)
	}
	if archive != "" {
		if err := writeArchive(layoutDir, archive, spec.Created); err != nil {
			return v1.Hash{}, fmt.Errorf("write %s: %w", archive, err)
		}
	}
	return digest, nil
}

// containerdName is the name as containerd stores it (docker.io/library/x:t
// for x:t), which is what kind and the kubelet look up for image: x:t.
func containerdName(ref name.Tag) string {
	reg := ref.RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + ref.RepositoryStr() + ":" + ref.TagStr()
}

func platformImage(spec Spec, p v1.Platform, binary string) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	layerTar, err := rootFS(bin, spec.User, spec.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: spec.Created},
			CreatedBy: "siemship tools/image: " + binaryPath + ", /etc/passwd, /etc/group",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: spec.Created}
	cf.Config = v1.Config{
		Entrypoint:   []string{"/" + binaryPath},
		Cmd:          []string{"run"},
		User:         spec.User,
		WorkingDir:   "/",
		Env:          []string{"PATH=/usr/local/bin"},
		ExposedPorts: map[string]struct{}{"9090/tcp": {}},
		Labels:       spec.labels(),
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, spec.labels()).(v1.Image), nil
}

// rootFS is the image's only layer: the binary and the files that let a
// numeric user be looked up. Every entry is owned by root, dated created.
func rootFS(binary []byte, user string, created time.Time) ([]byte, error) {
	uid, gid, err := userIDs(user)
	if err != nil {
		return nil, err
	}
	files := []struct {
		name string
		mode int64
		data string
	}{
		{"etc/", 0o755, ""},
		{"etc/group", 0o644, fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", gid)},
		{"etc/nsswitch.conf", 0o644, "hosts: files dns\n"},
		{"etc/passwd", 0o644, fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, gid)},
		{"home/", 0o755, ""},
		{"home/nonroot/", 0o700, ""},
		{"tmp/", 0o1777, ""},
		{"usr/", 0o755, ""},
		{"usr/local/", 0o755, ""},
		{"usr/local/bin/", 0o755, ""},
		{binaryPath, 0o755, string(binary)},
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, ModTime: created, Format: tar.FormatPAX, Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if f.name == "home/nonroot/" {
			h.Uid, h.Gid = uid, gid
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// userIDs parses a numeric uid:gid; the user must not be root (the image's
// default is the unprivileged one, a pod opts into root explicitly).
func userIDs(user string) (uid, gid int, err error) {
	u, g, ok := strings.Cut(user, ":")
	uid, err1 := strconv.Atoi(u)
	gid, err2 := strconv.Atoi(g)
	if !ok || err1 != nil || err2 != nil || uid <= 0 || gid <= 0 {
		return 0, 0, fmt.Errorf("user %q: want a numeric, non-root uid:gid", user)
	}
	return uid, gid, nil
}

// writeArchive tars the layout directory, files in name order with fixed
// owners and times, to a temporary file renamed into place.
func writeArchive(dir, archive string, created time.Time) error {
	if err := os.MkdirAll(filepath.Dir(archive), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(archive), ".image-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	tw := tar.NewWriter(tmp)
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: created, Format: tar.FormatPAX}
		if d.IsDir() {
			h.Name += "/"
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
			return tw.WriteHeader(h)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, info.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), archive)
}
