package dashboards

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWriteAndReadDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "out")
	files := testFiles(t)

	res, err := WriteDir(dir, files)
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != len(files) || res.Unchanged != 0 || len(res.Removed) != 0 {
		t.Errorf("first write: %+v", res)
	}

	// A file of someone else's stays; a generated dashboard that is no
	// longer generated goes; unchanged files are not rewritten.
	mine := filepath.Join(dir, "handmade.json")
	if err := os.WriteFile(mine, []byte(`{"uid":"handmade","title":"Handmade"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err = WriteDir(dir, files[1:])
	if err != nil {
		t.Fatal(err)
	}
	if res.Written != 0 || res.Unchanged != len(files)-1 || !slices.Equal(res.Removed, []string{files[0].Name}) {
		t.Errorf("second write: %+v, want %s removed", res, files[0].Name)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a file nines did not generate was removed: %v", err)
	}

	got, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range got {
		names = append(names, f.Name)
	}
	want := []string{"handmade.json"}
	for _, f := range files[1:] {
		want = append(want, f.Name)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("ReadDir: %v, want %v", names, want)
	}
	for _, f := range got {
		if f.Name == files[1].Name && (f.UID != files[1].UID || f.Title != files[1].Title || string(f.Data) != string(files[1].Data)) {
			t.Errorf("ReadDir read %s as %+v", f.Name, f)
		}
	}
}

func TestReadDirErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"empty", map[string]string{"notes.txt": "x"}, "no *.json files"},
		{"not JSON", map[string]string{"a.json": "{"}, "not a dashboard"},
		{"no uid", map[string]string{"a.json": `{"title":"A"}`}, `uid ""`},
		{"bad uid", map[string]string{"a.json": `{"uid":"a b","title":"A"}`}, `uid "a b"`},
		{"no title", map[string]string{"a.json": `{"uid":"a"}`}, "without a title"},
		{"same uid twice", map[string]string{"a.json": `{"uid":"a","title":"A"}`, "b.json": `{"uid":"a","title":"B"}`}, "also the uid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, content := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ReadDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("ReadDir of a missing directory succeeded")
	}
}
