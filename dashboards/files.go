package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// File is a dashboard as a JSON file: what generate writes and push sends.
type File struct {
	Name  string // base name: <uid>.json
	UID   string
	Title string
	Data  []byte
}

// Files encodes dashboards as files.
func Files(ds []*Dashboard) ([]File, error) {
	out := make([]File, 0, len(ds))
	for _, d := range ds {
		data, err := d.JSON()
		if err != nil {
			return nil, err
		}
		out = append(out, File{Name: d.UID + ".json", UID: d.UID, Title: d.Title, Data: data})
	}
	return out, nil
}

// WriteResult says what WriteDir did.
type WriteResult struct {
	Written   int      // files whose content changed or that are new
	Unchanged int      // files that already had the content
	Removed   []string // generated files of dashboards that no longer exist
}

// WriteDir writes files into dir (created if missing), each replaced
// atomically and only when its content changes, so that Grafana's file
// provisioning reloads only what changed. It removes the other generated
// dashboards in dir (JSON files whose description carries
// GeneratedMarker), e.g. of services that left the catalog; other files
// are left alone.
func WriteDir(dir string, files []File) (WriteResult, error) {
	var res WriteResult
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("create %s: %w", dir, err)
	}
	keep := map[string]bool{}
	for _, f := range files {
		keep[f.Name] = true
		path := filepath.Join(dir, f.Name)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, f.Data) {
			res.Unchanged++
			continue
		}
		if err := writeAtomic(path, f.Data); err != nil {
			return res, err
		}
		res.Written++
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return res, fmt.Errorf("read %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") || keep[e.Name()] {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return res, fmt.Errorf("read %s: %w", path, err)
		}
		if !isGenerated(data) {
			continue
		}
		if err := os.Remove(path); err != nil {
			return res, fmt.Errorf("remove stale dashboard: %w", err)
		}
		res.Removed = append(res.Removed, e.Name())
	}
	return res, nil
}

// writeAtomic writes data to a temporary file beside path and renames it
// into place, so that readers never see half a file.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// isGenerated reports whether a JSON file is a dashboard nines generated.
func isGenerated(data []byte) bool {
	var d struct {
		Description string `json:"description"`
	}
	return json.Unmarshal(data, &d) == nil && strings.Contains(d.Description, GeneratedMarker)
}

// ReadDir reads every *.json dashboard in dir, sorted by file name. Each
// must have a valid uid and a title, and no two the same uid.
func ReadDir(dir string) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read dashboards: %w", err)
	}
	var out []File
	byUID := map[string]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read dashboard: %w", err)
		}
		var d struct {
			UID   string `json:"uid"`
			Title string `json:"title"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return nil, fmt.Errorf("%s: not a dashboard: %w", path, err)
		}
		if !validUID(d.UID) {
			return nil, fmt.Errorf("%s: uid %q: want 1-40 letters, digits, '-' or '_'", path, d.UID)
		}
		if d.Title == "" {
			return nil, fmt.Errorf("%s: dashboard without a title", path)
		}
		if other, dup := byUID[d.UID]; dup {
			return nil, fmt.Errorf("%s: uid %s is also the uid of %s", path, d.UID, other)
		}
		byUID[d.UID] = path
		out = append(out, File{Name: e.Name(), UID: d.UID, Title: d.Title, Data: data})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read dashboards: no *.json files in %s", dir)
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
