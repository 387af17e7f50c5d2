package packaging

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The image is read here with the OCI image-layout and image-spec formats
// alone (encoding/json, archive/tar), not with go-containerregistry, the
// library that wrote it: what is checked is what any runtime would read.

// imageBuild runs hack/image.sh (what `make image` runs) once per test
// binary, with version "test", into a temporary directory.
var imageBuild = sync.OnceValues(func() (string, error) {
	dir, err := sharedTempDir()
	if err != nil {
		return "", err
	}
	start := time.Now()
	if _, errOut, err := tryRun("bash", repoPath("hack", "image.sh"), dir, "test", "siemship:dev"); err != nil {
		return "", &buildError{err, errOut}
	}
	imageBuildTime = time.Since(start)
	return dir, nil
})

var imageBuildTime time.Duration

type buildError struct {
	err    error
	stderr string
}

func (e *buildError) Error() string { return "hack/image.sh: " + e.err.Error() + "\n" + e.stderr }

func imageDir(t *testing.T) string {
	t.Helper()
	dir, err := imageBuild()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
	Platform    *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant"`
	} `json:"platform"`
}

type index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	Manifests     []descriptor      `json:"manifests"`
	Annotations   map[string]string `json:"annotations"`
}

type manifest struct {
	MediaType   string            `json:"mediaType"`
	Config      descriptor        `json:"config"`
	Layers      []descriptor      `json:"layers"`
	Annotations map[string]string `json:"annotations"`
}

type imageConfig struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
	Created      string `json:"created"`
	Config       struct {
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		User         string              `json:"User"`
		Env          []string            `json:"Env"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Labels       map[string]string   `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

// ociLayout reads blobs of an OCI layout from a directory or from the tar
// file of one, checking every blob against its digest and size.
type ociLayout struct {
	t     *testing.T
	files map[string][]byte
}

func readLayoutDir(t *testing.T, dir string) *ociLayout {
	t.Helper()
	l := &ociLayout{t: t, files: map[string][]byte{}}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		l.files[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func readLayoutTar(t *testing.T, file string) *ociLayout {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l := &ociLayout{t: t, files: map[string][]byte{}}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return l
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if l.files[h.Name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func (l *ociLayout) blob(d descriptor) []byte {
	l.t.Helper()
	algo, hexDigest, _ := strings.Cut(d.Digest, ":")
	data, ok := l.files["blobs/"+algo+"/"+hexDigest]
	if !ok || algo != "sha256" {
		l.t.Fatalf("blob %s (%s) missing", d.Digest, d.MediaType)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != hexDigest || int64(len(data)) != d.Size {
		l.t.Fatalf("blob %s: content does not match its digest or size %d", d.Digest, d.Size)
	}
	return data
}

func (l *ociLayout) json(d descriptor, v any) {
	l.t.Helper()
	if err := json.Unmarshal(l.blob(d), v); err != nil {
		l.t.Fatalf("%s: %v", d.Digest, err)
	}
}

// root returns the layout's index.json and the image index it names.
func (l *ociLayout) root() (descriptor, index) {
	l.t.Helper()
	if string(l.files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` && !strings.Contains(string(l.files["oci-layout"]), `"imageLayoutVersion": "1.0.0"`) {
		l.t.Fatalf("oci-layout: %q", l.files["oci-layout"])
	}
	var top index
	if err := json.Unmarshal(l.files["index.json"], &top); err != nil {
		l.t.Fatal(err)
	}
	if top.SchemaVersion != 2 || len(top.Manifests) != 1 || top.Manifests[0].MediaType != "application/vnd.oci.image.index.v1+json" {
		l.t.Fatalf("index.json: want one image index, have %+v", top)
	}
	var idx index
	l.json(top.Manifests[0], &idx)
	return top.Manifests[0], idx
}

// layerFiles reads a gzip-compressed tar layer: file names to contents
// (directories with a trailing slash and no content) and headers.
func layerFiles(t *testing.T, compressed []byte) (map[string][]byte, map[string]*tar.Header, string) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(compressed))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	files, headers := map[string][]byte{}, map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name], headers[h.Name] = data, h
	}
	return files, headers, "sha256:" + hex.EncodeToString(sum[:])
}

// `make image`: an OCI index with linux/amd64 and linux/arm64, each an OCI
// manifest with one layer holding the static binary, the entrypoint, a
// numeric non-root user that the chart overrides, and the OCI labels; the
// binary taken out of the layer runs.
func TestImage(t *testing.T) {
	dir := imageDir(t)
	t.Logf("hack/image.sh took %s", imageBuildTime.Round(time.Millisecond))
	l := readLayoutDir(t, filepath.Join(dir, "oci"))
	top, idx := l.root()

	if got := top.Annotations["io.containerd.image.name"]; got != "docker.io/library/siemship:dev" {
		t.Errorf("the name kind and containerd import: %q", got)
	}
	if got := top.Annotations["org.opencontainers.image.ref.name"]; got != "dev" {
		t.Errorf("ref.name: %q", got)
	}

	revision := strings.TrimSpace(run(t, "git", "rev-parse", "HEAD"))
	epoch, err := strconv.ParseInt(strings.TrimSpace(run(t, "git", "log", "-1", "--format=%ct")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Unix(epoch, 0).UTC().Format(time.RFC3339)
	wantLabels := map[string]string{
		"org.opencontainers.image.version":  "test",
		"org.opencontainers.image.revision": revision,
		"org.opencontainers.image.created":  created,
		"org.opencontainers.image.source":   "https://github.com/siemship/siemship",
		"org.opencontainers.image.title":    "siemship",
	}
	checkLabels := func(what string, got map[string]string) {
		t.Helper()
		for k, v := range wantLabels {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", what, k, got[k], v)
			}
		}
	}
	checkLabels("index annotations", idx.Annotations)

	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	var platforms []string
	for _, d := range idx.Manifests {
		if d.MediaType != "application/vnd.oci.image.manifest.v1+json" || d.Platform == nil {
			t.Fatalf("index entry %+v: want an OCI manifest with a platform", d)
		}
		p := d.Platform.OS + "/" + d.Platform.Architecture
		platforms = append(platforms, p)
		t.Run(p, func(t *testing.T) {
			var m manifest
			l.json(d, &m)
			if m.Config.MediaType != "application/vnd.oci.image.config.v1+json" || len(m.Layers) != 1 ||
				m.Layers[0].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
				t.Fatalf("manifest: config %s, layers %+v", m.Config.MediaType, m.Layers)
			}
			checkLabels("manifest annotations", m.Annotations)
			var c imageConfig
			l.json(m.Config, &c)
			if c.OS != d.Platform.OS || c.Architecture != d.Platform.Architecture || c.Variant != d.Platform.Variant {
				t.Errorf("config platform %s/%s/%s, index %+v", c.OS, c.Architecture, c.Variant, *d.Platform)
			}
			if d.Platform.Architecture == "arm64" && d.Platform.Variant != "v8" {
				t.Errorf("arm64 variant %q, want v8", d.Platform.Variant)
			}
			if c.Created != created {
				t.Errorf("created %s, want the commit's time %s", c.Created, created)
			}
			if !slices.Equal(c.Config.Entrypoint, []string{"/usr/local/bin/siemship"}) || !slices.Equal(c.Config.Cmd, []string{"run"}) {
				t.Errorf("entrypoint %q, cmd %q", c.Config.Entrypoint, c.Config.Cmd)
			}
			if _, ok := c.Config.ExposedPorts["9090/tcp"]; !ok {
				t.Errorf("exposed ports %v", c.Config.ExposedPorts)
			}
			// Numeric, so the kubelet can check runAsNonRoot without a passwd
			// lookup; not root, so a pod gets root only by asking for it.
			uid, gid, ok := strings.Cut(c.Config.User, ":")
			if n, err := strconv.Atoi(uid); err != nil || n == 0 || !ok {
				t.Errorf("user %q: want a numeric non-root uid:gid", c.Config.User)
			}
			checkLabels("config labels", c.Config.Labels)

			layer := l.blob(m.Layers[0])
			files, headers, diffID := layerFiles(t, layer)
			if !slices.Equal(c.RootFS.DiffIDs, []string{diffID}) || c.RootFS.Type != "layers" {
				t.Errorf("rootfs %+v, the layer's diff id %s", c.RootFS, diffID)
			}
			bin, ok := files["usr/local/bin/siemship"]
			if h := headers["usr/local/bin/siemship"]; !ok || h.Mode&0o111 == 0 || h.Uid != 0 {
				t.Fatalf("usr/local/bin/siemship missing or not executable by root: %+v", h)
			}
			if !strings.Contains(string(files["etc/passwd"]), ":"+uid+":"+gid+":") {
				t.Errorf("etc/passwd lacks the image's user %s:\n%s", c.Config.User, files["etc/passwd"])
			}
			exe := filepath.Join(t.TempDir(), "siemship")
			if err := os.WriteFile(exe, bin, 0o755); err != nil {
				t.Fatal(err)
			}
			f, err := elf.Open(exe)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != machines[d.Platform.Architecture] {
				t.Errorf("binary for %v in the %s image", f.Machine, p)
			}
			if d.Platform.Architecture == runtime.GOARCH {
				if out := run(t, exe, "version"); strings.TrimSpace(out) != "siemship test" {
					t.Errorf("siemship version from the image's layer: %q", out)
				}
			}
			t.Logf("%s: layer %.1f MiB compressed, binary %.1f MiB", p, float64(len(layer))/(1<<20), float64(len(bin))/(1<<20))
		})
	}
	slices.Sort(platforms)
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("platforms %v", platforms)
	}

	// The tarball (what kind loads) is the same layout.
	tl := readLayoutTar(t, filepath.Join(dir, "siemship.tar"))
	if !bytes.Equal(tl.files["index.json"], l.files["index.json"]) || len(tl.files) != len(l.files) {
		t.Errorf("siemship.tar holds %d files, the layout %d; index.json equal: %v",
			len(tl.files), len(l.files), bytes.Equal(tl.files["index.json"], l.files["index.json"]))
	}
	for name, data := range l.files {
		if !bytes.Equal(tl.files[name], data) {
			t.Errorf("siemship.tar: %s differs from the layout", name)
		}
	}
}

// The same binaries and commit build the same image, byte for byte: a
// rebuild of a release can be checked against the published digest.
func TestImageIsReproducible(t *testing.T) {
	dir := imageDir(t)
	again := t.TempDir()
	epoch := strings.TrimSpace(run(t, "git", "log", "-1", "--format=%ct"))
	revision := strings.TrimSpace(run(t, "git", "rev-parse", "HEAD"))
	cmd := []string{"-C", "tools/image", "run", ".", "build", "-layout", filepath.Join(again, "oci"),
		"-name", "siemship:dev", "-version", "test", "-revision", revision, "-created", time.Unix(mustAtoi(t, epoch), 0).UTC().Format(time.RFC3339)}
	for _, arch := range []string{"amd64", "arm64"} {
		cmd = append(cmd, "-binary", "linux/"+arch+"="+filepath.Join(dir, "linux-"+arch, "siemship"))
	}
	run(t, "go", cmd...)
	first, _ := readLayoutDir(t, filepath.Join(dir, "oci")).root()
	second, _ := readLayoutDir(t, filepath.Join(again, "oci")).root()
	if first.Digest != second.Digest {
		t.Errorf("a rebuild has the index digest %s, the first build %s", second.Digest, first.Digest)
	}
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
