package logscale

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
)

// maxPackageFile bounds one decompressed file of a package (zip bombs).
const maxPackageFile = 8 << 20

// packageContents is a validated package.
type packageContents struct {
	manifest   manifest
	parsers    []Parser
	dashboards []Dashboard
}

// servePackage answers POST /api/v1/packages/analyze?view= (install=false)
// and /api/v1/packages/install?view=&overwrite= (install=true) with a zip
// body. Analyze validates only; install also creates the parsers and
// dashboards (replacing same-named ones when overwrite=true).
func (s *Server) servePackage(install bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authAPI(r) {
			http.Error(w, "missing or unknown API token", http.StatusUnauthorized)
			return
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/zip" {
			http.Error(w, "Content-Type must be application/zip", http.StatusUnsupportedMediaType)
			return
		}
		view := r.URL.Query().Get("view")
		if !s.repoExists(view) {
			http.Error(w, fmt.Sprintf("view %q not found", view), http.StatusBadRequest)
			return
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, s.cfg.MaxBodyBytes+1))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		if int64(len(data)) > s.cfg.MaxBodyBytes {
			http.Error(w, "package too large", http.StatusRequestEntityTooLarge)
			return
		}
		pkg, err := readPackage(data)
		if err != nil {
			http.Error(w, "invalid package: "+err.Error(), http.StatusBadRequest)
			return
		}
		if install {
			if err := s.installPackage(view, pkg, r.URL.Query().Get("overwrite") == "true"); err != nil {
				http.Error(w, "install package: "+err.Error(), http.StatusConflict)
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"package": pkg.manifest.Name, "version": pkg.manifest.Version,
			"parsers": len(pkg.parsers), "dashboards": len(pkg.dashboards), "installed": install,
		})
	}
}

// readPackage validates a package zip: manifest.yaml at the root, every
// parsers/*.yaml and dashboards/*.yaml a valid template, every other YAML
// file at least valid YAML.
func readPackage(data []byte) (packageContents, error) {
	var pkg packageContents
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return pkg, fmt.Errorf("not a zip file: %w", err)
	}
	haveManifest := false
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		text, err := readZipFile(f)
		if err != nil {
			return pkg, err
		}
		if err := pkg.add(f.Name, text); err != nil {
			return pkg, fmt.Errorf("%s: %w", f.Name, err)
		}
		haveManifest = haveManifest || f.Name == "manifest.yaml"
	}
	if !haveManifest {
		return pkg, fmt.Errorf("manifest.yaml missing at the root")
	}
	return pkg, nil
}

func (pkg *packageContents) add(name, text string) error {
	dir, ext := path.Dir(name), path.Ext(name)
	isYAML := ext == ".yaml" || ext == ".yml"
	var err error
	switch {
	case name == "manifest.yaml":
		pkg.manifest, err = parseManifest(text)
	case dir == "parsers" && isYAML:
		var p Parser
		if p, err = parseParserTemplate(text); err == nil {
			pkg.parsers = append(pkg.parsers, p)
		}
	case dir == "dashboards" && isYAML:
		var d Dashboard
		if d, err = parseDashboardTemplate(text); err == nil {
			pkg.dashboards = append(pkg.dashboards, d)
		}
	case isYAML:
		_, err = yamlMap(text)
	}
	return err
}

func readZipFile(f *zip.File) (string, error) {
	if strings.Contains(f.Name, "..") || strings.HasPrefix(f.Name, "/") {
		return "", fmt.Errorf("unsafe path %q", f.Name)
	}
	rc, err := f.Open()
	if err != nil {
		return "", fmt.Errorf("open %s: %w", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxPackageFile+1))
	if err != nil {
		return "", fmt.Errorf("read %s: %w", f.Name, err)
	}
	if len(b) > maxPackageFile {
		return "", fmt.Errorf("%s larger than %d bytes", f.Name, maxPackageFile)
	}
	return string(b), nil
}

// installPackage creates the package's assets in view, named as LogScale
// names packaged assets ("scope/package:name" is accepted for parsers too).
func (s *Server) installPackage(view string, pkg packageContents, overwrite bool) error {
	if !overwrite { // check first, so that a refused install changes nothing
		existing, err := s.assets.parsers(view)
		if err != nil {
			return err
		}
		for _, p := range pkg.parsers {
			if slices.ContainsFunc(existing, func(e Parser) bool { return e.Name == p.Name }) {
				return fmt.Errorf("a parser named %q already exists in %q (use overwrite=true)", p.Name, view)
			}
		}
	}
	for _, p := range pkg.parsers {
		p.Package = pkg.manifest.Name
		if _, err := s.assets.putParser(view, p, overwrite); err != nil {
			return err
		}
	}
	for _, d := range pkg.dashboards {
		d.Package = pkg.manifest.Name
		if _, err := s.assets.putDashboard(view, d, overwrite); err != nil {
			return err
		}
	}
	return nil
}
