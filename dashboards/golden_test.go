package dashboards

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// TestGolden compares every dashboard generated for the test catalog with
// its golden file; with -update it rewrites them:
//
//	go test ./dashboards -run TestGolden -update
func TestGolden(t *testing.T) {
	tests := []struct {
		dir  string
		opts Options
		only []string // UIDs to compare; all when empty
	}{
		{dir: "testdata/golden", opts: Options{}},
		// Impact weights from a config file: the overview and one service
		// suffice.
		{dir: "testdata/golden/weighted", opts: Options{Weights: &Weights{Outage: 0.9, Degraded: 0.3, None: 0.05}, NinesURL: "https://nines.example.com/", Window: "7d"},
			only: []string{overviewUID, serviceUID("db")}},
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			files, err := Files(generateFor(t, testCatalog, tc.opts))
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.only) > 0 {
				files = slices.DeleteFunc(files, func(f File) bool { return !slices.Contains(tc.only, f.UID) })
			}
			if *update {
				if _, err := WriteDir(tc.dir, files); err != nil {
					t.Fatal(err)
				}
			}
			compareDir(t, tc.dir, files, "go test ./dashboards -run TestGolden -update")
		})
	}
}

// compareDir fails unless dir holds exactly files (among *.json).
func compareDir(t *testing.T, dir string, files []File, fix string) {
	t.Helper()
	want := map[string]bool{}
	for _, f := range files {
		want[f.Name] = true
		got, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			t.Errorf("%s: %v; regenerate with: %s", f.Name, err, fix)
			continue
		}
		if !bytes.Equal(got, f.Data) {
			t.Errorf("%s differs from the generated dashboard (first difference: %s); regenerate with: %s",
				filepath.Join(dir, f.Name), firstDiff(got, f.Data), fix)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") && !want[e.Name()] {
			t.Errorf("%s is not generated any more; regenerate with: %s", filepath.Join(dir, e.Name()), fix)
		}
	}
}

// firstDiff describes where two files start to differ.
func firstDiff(a, b []byte) string {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := 0; i < min(len(la), len(lb)); i++ {
		if la[i] != lb[i] {
			return "line " + strconv.Itoa(i+1) + ": have " + quoteShort(la[i]) + ", generated " + quoteShort(lb[i])
		}
	}
	return "length: have " + strconv.Itoa(len(la)) + " lines, generated " + strconv.Itoa(len(lb))
}

func quoteShort(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return "«" + s + "»"
}
