package logscale

import (
	"archive/zip"
	"bytes"
	"strings"
	"testing"
)

const manifestYAML = `$schema: https://schemas.humio.com/manifest/v2.0.0
name: siemship/tetragon
version: 0.1.0
type: application
description: Tetragon events
author:
  name: siemship
minHumioVersion: 1.150.0
`

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, text := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(text)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func goodPackage() map[string]string {
	return map[string]string{
		"manifest.yaml":            manifestYAML,
		"parsers/tetragon.yaml":    parserYAML,
		"dashboards/overview.yaml": dashboardYAML,
		"queries/top.yaml":         "name: top\nqueryString: '*'\n",
		"README.md":                "# not YAML: [",
	}
}

func TestPackages(t *testing.T) {
	s, ts := startServer(t, testConfig())
	post := func(path string, files map[string]string) response {
		return do(t, ts, request{path: path, auth: "Bearer " + apiToken, body: zipOf(t, files),
			header: map[string]string{"Content-Type": "application/zip"}})
	}
	if r := post("/api/v1/packages/analyze?view=main", goodPackage()); r.status != 200 {
		t.Fatalf("analyze: %d %s", r.status, r.body)
	}
	if len(s.Parsers("main")) != 0 {
		t.Fatal("analyze installed something")
	}
	if r := post("/api/v1/packages/install?view=main&overwrite=true&queryOwnershipType=organization", goodPackage()); r.status != 200 {
		t.Fatalf("install: %d %s", r.status, r.body)
	}
	ps, ds := s.Parsers("main"), s.Dashboards("main")
	if len(ps) != 1 || ps[0].Name != "tetragon" || ps[0].Package != "siemship/tetragon" || len(ds) != 1 {
		t.Fatalf("installed parsers %+v dashboards %+v", ps, ds)
	}
	// Reinstall with overwrite keeps ids; without it is refused and changes nothing.
	if r := post("/api/v1/packages/install?view=main&overwrite=true", goodPackage()); r.status != 200 ||
		s.Parsers("main")[0].ID != ps[0].ID || s.Dashboards("main")[0].ID != ds[0].ID {
		t.Fatalf("reinstall: %d %s", r.status, r.body)
	}
	if r := post("/api/v1/packages/install?view=main", goodPackage()); r.status != 409 || len(s.Dashboards("main")) != 1 {
		t.Fatalf("install without overwrite: %d", r.status)
	}
	// A token can name the packaged parser by its scoped name.
	ok(t, ts, `mutation { addIngestTokenV3(input:{repositoryName:"main",name:"pkg",parser:"siemship/tetragon:tetragon"}){ name } }`, nil)
}

func TestPackageValidation(t *testing.T) {
	_, ts := startServer(t, testConfig())
	with := func(name, text string) map[string]string {
		files := goodPackage()
		if text == "" {
			delete(files, name)
		} else {
			files[name] = text
		}
		return files
	}
	cases := []struct {
		name   string
		files  map[string]string
		status int
		want   string
	}{
		{"no manifest", with("manifest.yaml", ""), 400, "manifest.yaml"},
		{"manifest bad schema", with("manifest.yaml", strings.Replace(manifestYAML, "manifest/v2", "package/v2", 1)), 400, "$schema"},
		{"manifest name without scope", with("manifest.yaml", strings.Replace(manifestYAML, "siemship/tetragon", "tetragon", 1)), 400, "scope/name"},
		{"manifest bad version", with("manifest.yaml", strings.Replace(manifestYAML, "0.1.0", "latest", 1)), 400, "version"},
		{"manifest bad type", with("manifest.yaml", strings.Replace(manifestYAML, "application", "app", 1)), 400, "type"},
		{"bad parser", with("parsers/bad.yaml", "$schema: https://schemas.humio.com/parser/v0.3.0\nname: bad\n"), 400, "parsers/bad.yaml"},
		{"bad dashboard", with("dashboards/bad.yaml", strings.Replace(dashboardYAML, "type: note", "type: x", 1)), 400, "dashboards/bad.yaml"},
		{"bad other YAML", with("queries/bad.yaml", "a: ["), 400, "queries/bad.yaml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, ts, request{path: "/api/v1/packages/analyze?view=main", auth: "Bearer " + apiToken,
				body: zipOf(t, c.files), header: map[string]string{"Content-Type": "application/zip"}})
			if r.status != c.status || !strings.Contains(r.body, c.want) {
				t.Fatalf("status %d body %q, want %d with %q", r.status, r.body, c.status, c.want)
			}
		})
	}
	for _, c := range []struct {
		name, path, auth, ctype string
		body                    []byte
		status                  int
	}{
		{"no auth", "/api/v1/packages/analyze?view=main", "", "application/zip", zipOf(t, goodPackage()), 401},
		{"ingest token", "/api/v1/packages/analyze?view=main", "Bearer " + tokMain, "application/zip", zipOf(t, goodPackage()), 401},
		{"wrong content type", "/api/v1/packages/analyze?view=main", "Bearer " + apiToken, "application/json", zipOf(t, goodPackage()), 415},
		{"unknown view", "/api/v1/packages/install?view=nope", "Bearer " + apiToken, "application/zip", zipOf(t, goodPackage()), 400},
		{"not a zip", "/api/v1/packages/analyze?view=main", "Bearer " + apiToken, "application/zip", []byte("PK?"), 400},
	} {
		r := do(t, ts, request{path: c.path, auth: c.auth, body: c.body, header: map[string]string{"Content-Type": c.ctype}})
		if r.status != c.status {
			t.Errorf("%s: %d %s", c.name, r.status, r.body)
		}
	}
}
