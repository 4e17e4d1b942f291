package catalog

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// mapFS is an in-memory fileSystem: slash-separated path → content.
type mapFS map[string]string

func (m mapFS) ReadFile(name string) ([]byte, error) {
	if s, ok := m[filepath.ToSlash(name)]; ok {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("open %s: %w", name, fs.ErrNotExist)
}

func (m mapFS) Glob(pattern string) ([]string, error) {
	pattern = filepath.ToSlash(pattern)
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, err
	}
	var out []string
	for name := range m {
		if ok, _ := path.Match(pattern, name); ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// FuzzParse feeds arbitrary catalogs to the parser, with the example's
// Backstage file available in memory (the fuzzer must not read the real
// file system). It checks that parsing never panics, that every error
// names a file, and that a catalog that parses answers every query sanely.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../deploy/catalog/catalog.yml")
	if err != nil {
		f.Fatal(err)
	}
	backstage, err := os.ReadFile("../deploy/catalog/backstage/catalog-info.yaml")
	if err != nil {
		f.Fatal(err)
	}
	fsys := mapFS{"backstage/catalog-info.yaml": string(backstage)}
	f.Add(example)
	f.Add([]byte(""))
	f.Add([]byte("services: [{name: a, dependencies: [b]}, {name: b, dependencies: [a]}]\n"))
	f.Add([]byte("services:\n  - name: a\n    match: [{job: \"x(\"}]\n    maintenance:\n      - {schedule: daily, at: \"02:30\", duration: 25h}\n"))
	f.Add([]byte("defaults: {timezone: Europe/Stockholm}\nservices:\n  - name: a\n    maintenance:\n      - {start: \"2026-03-29 02:30\", end: 2026-03-29T04:00}\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a]\nservices: *b\n"))

	from := time.Date(2026, 3, 23, 0, 0, 0, 0, time.UTC)
	to := from.Add(14 * 24 * time.Hour)
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parse(data, "catalog.yml", fsys)
		if err != nil {
			if c != nil {
				t.Fatal("catalog returned with an error")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "catalog.yml") && !strings.HasPrefix(line, "backstage/") {
					t.Fatalf("error line does not name a file: %q", line)
				}
			}
			return
		}
		services := c.Services()
		if !slices.IsSortedFunc(services, func(a, b Service) int { return strings.Compare(a.Name, b.Name) }) {
			t.Fatal("services not sorted")
		}
		for _, s := range services {
			if !(s.SLOTarget > 0 && s.SLOTarget < 1) {
				t.Fatalf("%s: SLO target %v", s.Name, s.SLOTarget)
			}
			if slices.Contains(c.Upstream(s.Name), s.Name) {
				t.Fatalf("%s is its own upstream", s.Name)
			}
			var last time.Time
			for _, iv := range c.Maintenance(s.Name, from, to) {
				if iv.Start.Before(from) || iv.End.After(to) || !iv.Start.Before(iv.End) || !last.Before(iv.Start) && !last.IsZero() {
					t.Fatalf("%s: bad maintenance interval %v", s.Name, iv)
				}
				last = iv.End
			}
		}
		c.ServiceFor(map[string]string{"job": "checkout", "service": "x"})
		c.Uncatalogued([]string{"checkout", "nope"})
	})
}
