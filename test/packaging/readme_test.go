package packaging

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/siemship/siemship/internal/config"
)

// agentSource returns the text of the agent's Go code (tests excluded).
func agentSource(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(repoPath("internal"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		data, err := os.ReadFile(p)
		b.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Errors from the standard library that the agent's messages wrap.
	b.WriteString(os.ErrNotExist.Error() + "\n" + os.ErrPermission.Error())
	return b.String()
}

// The README's troubleshooting table quotes the agent's real messages: every
// quoted phrase of three words or more in its "log message" column is in
// the agent's code, so a reworded message fails here until the README
// follows.
func TestTroubleshootingQuotesRealMessages(t *testing.T) {
	readme, err := os.ReadFile(repoPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Troubleshooting\n")
	if !ok {
		t.Fatal("README has no Troubleshooting section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	src := agentSource(t)
	quoted := regexp.MustCompile("`([^`]+)`")
	split := regexp.MustCompile(`: |; |…`)
	rows, phrases := 0, 0
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| ") || len(cells) < 3 || strings.HasPrefix(line, "| symptom") {
			continue
		}
		rows++
		for _, q := range quoted.FindAllStringSubmatch(cells[1], -1) {
			for _, frag := range split.Split(q[1], -1) {
				frag = strings.TrimSpace(frag)
				if len(strings.Fields(frag)) < 3 {
					continue
				}
				phrases++
				if !strings.Contains(src, frag) {
					t.Errorf("README quotes %q (in %q), which the agent never logs", frag, q[1])
				}
			}
		}
	}
	for _, symptom := range []string{"401", "403", "file not found", "permission denied", "lagging", "data deleted by Tetragon before shipping"} {
		if !strings.Contains(section, "| "+symptom+" |") {
			t.Errorf("the table has no row for %q", symptom)
		}
	}
	if rows < 6 || phrases < 10 {
		t.Fatalf("%d rows, %d quoted phrases: the table was not read", rows, phrases)
	}
}

// The README's configuration reference documents exactly the keys the
// agent accepts: a key added to a component's Config without a row, or a
// row for a key that no longer exists, fails here.
func TestConfigurationReferenceIsComplete(t *testing.T) {
	readme, err := os.ReadFile(repoPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Configuration reference\n")
	if !ok {
		t.Fatal("README has no Configuration reference section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string]bool{}
	row := regexp.MustCompile("^\\| `([^`]+)`(?: … `([^`]+)`)? \\|")
	for line := range strings.SplitSeq(section, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		documented[m[1]] = true
		if m[2] != "" { // a range of rows: "groups.labels … groups.node" and every group between
			prefix := m[1][:strings.LastIndexByte(m[1], '.')+1]
			for _, k := range config.Keys() {
				if strings.HasPrefix(k, prefix) {
					documented[k] = true
				}
			}
		}
	}
	for _, k := range config.Keys() {
		if !documented[k] {
			t.Errorf("the configuration reference has no row for %s", k)
		}
		delete(documented, k)
	}
	for k := range documented {
		t.Errorf("the configuration reference documents %s, which the agent does not accept", k)
	}
}

// Every YAML example of the README that is an agent configuration loads
// unchanged.
func TestReadmeConfigExamplesLoad(t *testing.T) {
	readme, err := os.ReadFile(repoPath("README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	loaded := 0
	for _, b := range blocks {
		var tree map[string]any
		if yaml.Unmarshal([]byte(b[1]), &tree) != nil || tree["sinks"] == nil && tree["sources"] == nil {
			continue // not an agent configuration (Helm values, manifests)
		}
		if _, ok := tree["config"]; ok {
			continue
		}
		t.Setenv("SIEMSHIP_STATE_DIR", t.TempDir())
		if _, _, err := config.Load(writeTemp(t, "example.yaml", b[1]), nil); err != nil {
			t.Errorf("README example does not load: %v\n%s", err, b[1])
		}
		loaded++
	}
	if loaded == 0 {
		t.Fatal("no configuration example found in the README")
	}
}
