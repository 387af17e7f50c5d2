// Package logscale holds siemship's LogScale assets for Tetragon events: a
// parser template (with test cases) and a dashboard template, in the formats
// LogScale exports and imports, and the package zip made of them. The files
// under package/ are the source; this package embeds them so that
// `siemship logscale setup` and `siemship logscale package` need no
// checkout.
package logscale

import (
	"archive/zip"
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed package
var files embed.FS

// Paths inside the package.
const (
	ManifestPath  = "manifest.yaml"
	ParserPath    = "parsers/tetragon.yaml"
	DashboardPath = "dashboards/tetragon-overview.yaml"
)

// pkgFS is the package directory as the root of the zip.
func pkgFS() fs.FS {
	sub, err := fs.Sub(files, "package")
	if err != nil {
		panic(fmt.Sprintf("embedded package directory: %v", err)) // a constant path: a bug
	}
	return sub
}

func read(name string) []byte {
	b, err := fs.ReadFile(pkgFS(), name)
	if err != nil {
		panic(fmt.Sprintf("embedded %s: %v", name, err)) // embedded at build time: a bug
	}
	return b
}

// ParserTemplate returns the parser's YAML template.
func ParserTemplate() []byte { return read(ParserPath) }

// DashboardTemplate returns the dashboard's YAML template.
func DashboardTemplate() []byte { return read(DashboardPath) }

// Manifest returns the package manifest.
func Manifest() []byte { return read(ManifestPath) }

// Parser is a parser template's content, as createParserV2 takes it.
type Parser struct {
	Name                           string     `yaml:"name"`
	Description                    string     `yaml:"description"`
	Script                         string     `yaml:"script"`
	TagFields                      []string   `yaml:"tagFields"`
	FieldsToBeRemovedBeforeParsing []string   `yaml:"fieldsToBeRemovedBeforeParsing"`
	TestCases                      []TestCase `yaml:"testCases"`
}

// TestCase is one parser test case of the template.
type TestCase struct {
	Event struct {
		RawString string `yaml:"rawString"`
	} `yaml:"event"`
	Assertions []Assertion `yaml:"assertions"`
}

// Assertion is what one output event of a test case must hold. Tags are
// named with '#', @timestamp is epoch milliseconds, values are strings.
type Assertion struct {
	OutputEventIndex int               `yaml:"outputEventIndex"`
	FieldsHaveValues map[string]string `yaml:"fieldsHaveValues"`
	FieldsNotPresent []string          `yaml:"fieldsNotPresent"`
}

// ParseParser decodes a parser template; unknown keys are errors.
func ParseParser(template []byte) (Parser, error) {
	var p Parser
	dec := yaml.NewDecoder(bytes.NewReader(template))
	dec.KnownFields(true)
	// $schema is the only key Parser has no field for.
	var withSchema struct {
		Schema string `yaml:"$schema"`
		Parser `yaml:",inline"`
	}
	if err := dec.Decode(&withSchema); err != nil {
		return p, fmt.Errorf("parser template: %w", err)
	}
	p = withSchema.Parser
	if p.Name == "" || p.Script == "" {
		return p, fmt.Errorf("parser template: name and script are required")
	}
	return p, nil
}

// DashboardName returns the name in the dashboard template.
func DashboardName() (string, error) {
	var d struct {
		Name string `yaml:"name"`
	}
	if err := yaml.Unmarshal(DashboardTemplate(), &d); err != nil || d.Name == "" {
		return "", fmt.Errorf("dashboard template has no name: %v", err)
	}
	return d.Name, nil
}

// zipTime is the modification time of every zip entry, fixed so that the
// same sources always give the same zip.
var zipTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// PackageZip returns the LogScale package: manifest.yaml, parsers/ and
// dashboards/ at the root of a zip, as /api/v1/packages/install takes it.
// The zip is byte-for-byte reproducible.
func PackageZip() ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := fs.WalkDir(pkgFS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := path.Ext(p); ext != ".yaml" {
			return nil // editor leftovers and notes are not part of the package
		}
		w, err := zw.CreateHeader(&zip.FileHeader{Name: p, Method: zip.Deflate, Modified: zipTime})
		if err != nil {
			return fmt.Errorf("zip %s: %w", p, err)
		}
		_, err = w.Write(read(p))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("build package zip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("build package zip: %w", err)
	}
	return buf.Bytes(), nil
}
