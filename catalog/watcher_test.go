package catalog

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	catalogV1  = "services: [{name: checkout}]\n"
	catalogV2  = "services: [{name: checkout}, {name: search}]\n"
	catalogBad = "services: [{name: checkout, slo_target: 100.5}]\n"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startWatcher creates a watcher on path with its own registry and runs it
// until the test ends. Call it inside a synctest bubble.
func startWatcher(t *testing.T, path string) (*Watcher, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	w, err := NewWatcher(WatcherOptions{
		Path:       path,
		Logger:     slog.New(slog.DiscardHandler),
		Registerer: reg,
		Interval:   10 * time.Second,
		Now:        func() time.Time { return time.Unix(1_700_000_000, 0) },
	})
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return w, reg
}

// tick lets the watcher poll once.
func tick() {
	time.Sleep(10 * time.Second)
	synctest.Wait()
}

func serviceNames(c *Catalog) []string { return names(c.Services()) }

// gathered returns every sample a registry exposes, keyed like the
// exposition format: name{label="value",...}.
//
// prometheus/testutil would do this, but it needs
// github.com/kylelemons/godebug, which is not in go.mod and go.mod is not
// this package's to change.
func gathered(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if pairs := m.GetLabel(); len(pairs) > 0 {
				labels := make([]string, len(pairs))
				for i, lp := range pairs {
					labels[i] = lp.GetName() + "=" + strconv.Quote(lp.GetValue())
				}
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.GetCounter() != nil:
				out[key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[key] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func reloads(t *testing.T, reg prometheus.Gatherer) (success, failure float64) {
	t.Helper()
	m := gathered(t, reg)
	return m[`nines_catalog_reloads_total{result="success"}`], m[`nines_catalog_reloads_total{result="failure"}`]
}

func TestWatcherReloadsOnChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "catalog.yml")
		writeFile(t, path, catalogV1)
		w, reg := startWatcher(t, path)

		tick()
		if s, f := reloads(t, reg); s != 1 || f != 0 {
			t.Errorf("unchanged file reloaded: success %v, failure %v", s, f)
		}

		writeFile(t, path, catalogV2)
		tick()
		if got := serviceNames(w.Current()); !slices.Equal(got, []string{"checkout", "search"}) {
			t.Errorf("after change: services %v", got)
		}
		if s, _ := reloads(t, reg); s != 2 {
			t.Errorf("success reloads = %v, want 2", s)
		}

		// Same content, new modification time: nothing to reload.
		later := time.Now().Add(time.Hour)
		if err := os.Chtimes(path, later, later); err != nil {
			t.Fatal(err)
		}
		tick()
		if s, _ := reloads(t, reg); s != 2 {
			t.Errorf("touched file reloaded: success reloads = %v, want 2", s)
		}
	})
}

func TestWatcherBadReloadKeepsLastGood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "catalog.yml")
		writeFile(t, path, catalogV1)
		w, reg := startWatcher(t, path)
		good := w.Current()

		writeFile(t, path, catalogBad)
		tick()
		if w.Current() != good {
			t.Error("a bad reload replaced the catalog")
		}
		want := map[string]float64{
			"nines_catalog_last_reload_success_timestamp_seconds": 1.7e9, // the load before, from Now
			"nines_catalog_last_reload_successful":                0,
			`nines_catalog_reloads_total{result="failure"}`:       1,
			`nines_catalog_reloads_total{result="success"}`:       1,
			"nines_catalog_services":                              1,
		}
		if got := gathered(t, reg); !maps.Equal(got, want) {
			t.Errorf("metrics after a failed reload:\n got %v\nwant %v", got, want)
		}

		// A broken file is reported once, not on every poll.
		tick()
		if _, f := reloads(t, reg); f != 1 {
			t.Errorf("failure reloads = %v, want 1", f)
		}

		writeFile(t, path, catalogV2)
		tick()
		if got := serviceNames(w.Current()); !slices.Equal(got, []string{"checkout", "search"}) {
			t.Errorf("after fix: services %v", got)
		}
		m := gathered(t, reg)
		if m["nines_catalog_last_reload_successful"] != 1 || m["nines_catalog_services"] != 2 {
			t.Errorf("metrics after the fix: %v", m)
		}
	})
}

func TestWatcherWatchesBackstage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "catalog.yml")
		writeFile(t, path, "services: [{name: checkout}]\nbackstage: [bs/*.yaml]\n")
		writeFile(t, filepath.Join(dir, "bs", "a.yaml"), "kind: Component\nmetadata: {name: search}\n")
		w, reg := startWatcher(t, path)

		tick()
		if s, _ := reloads(t, reg); s != 1 {
			t.Errorf("success reloads = %v before any change, want 1", s)
		}

		writeFile(t, filepath.Join(dir, "bs", "a.yaml"), "kind: Component\nmetadata: {name: search-v2}\n")
		tick()
		if got := serviceNames(w.Current()); !slices.Equal(got, []string{"checkout", "search-v2"}) {
			t.Errorf("after Backstage change: services %v", got)
		}

		// A new file matching the glob counts too.
		writeFile(t, filepath.Join(dir, "bs", "b.yaml"), "kind: Component\nmetadata: {name: playlist}\n")
		tick()
		if got := serviceNames(w.Current()); !slices.Equal(got, []string{"checkout", "playlist", "search-v2"}) {
			t.Errorf("after new Backstage file: services %v", got)
		}
	})
}

func TestWatcherReload(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "catalog.yml")
	writeFile(t, path, catalogV1)
	reg := prometheus.NewRegistry()
	w, err := NewWatcher(WatcherOptions{Path: path, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}

	// Reload reloads even when nothing changed (SIGHUP).
	if err := w.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if s, _ := reloads(t, reg); s != 2 {
		t.Errorf("success reloads = %v, want 2", s)
	}

	writeFile(t, path, catalogV2)
	if err := w.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := serviceNames(w.Current()); !slices.Equal(got, []string{"checkout", "search"}) {
		t.Errorf("services %v", got)
	}

	writeFile(t, path, catalogBad)
	err = w.Reload()
	wantErr := "reload catalog: " + path + ":1: services[0].slo_target: must be between 0 and 100 (exclusive), got 100.5"
	if err == nil || err.Error() != wantErr {
		t.Errorf("Reload = %v, want %s", err, wantErr)
	}
	if got := serviceNames(w.Current()); !slices.Equal(got, []string{"checkout", "search"}) {
		t.Errorf("bad reload changed services to %v", got)
	}
	if _, f := reloads(t, reg); f != 1 {
		t.Errorf("failure reloads = %v, want 1", f)
	}
}

func TestWatcherWithoutCatalog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w, err := NewWatcher(WatcherOptions{DefaultSLO: 0.99})
		if err != nil {
			t.Fatal(err)
		}
		if c := w.Current(); c == nil || c.Len() != 0 || c.SLOTarget("anything") != 0.99 {
			t.Errorf("Current() = %+v", c)
		}
		if err := w.Reload(); err != nil {
			t.Errorf("Reload: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- w.Run(ctx) }()
		time.Sleep(time.Minute)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

func TestNewWatcherErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yml")
	bad := filepath.Join(dir, "bad.yml")
	writeFile(t, good, catalogV1)
	writeFile(t, bad, catalogBad)
	shared := prometheus.NewRegistry()
	if _, err := NewWatcher(WatcherOptions{Path: good, Registerer: shared}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		opts WatcherOptions
		want string
	}{
		{"bad catalog", WatcherOptions{Path: bad}, "load catalog: " + bad + ":1: services[0].slo_target: must be between 0 and 100 (exclusive), got 100.5"},
		{"missing catalog", WatcherOptions{Path: filepath.Join(dir, "nope.yml")}, "load catalog: read catalog: open " + filepath.Join(dir, "nope.yml") + ": no such file or directory"},
		{"negative interval", WatcherOptions{Path: good, Interval: -time.Second}, "catalog watcher: interval must not be negative, got -1s"},
		{"default SLO as percent", WatcherOptions{DefaultSLO: 99.9}, "catalog watcher: default SLO must be a ratio between 0 and 1 (exclusive), got 99.9"},
		{"metrics registered twice", WatcherOptions{Path: good, Registerer: shared}, "register catalog metrics: duplicate metrics collector registration attempted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewWatcher(tc.opts)
			if got := errString(err); got != tc.want {
				t.Errorf("err = %q\nwant  %q", got, tc.want)
			}
		})
	}
}

// TestEmptyCatalogIsNotACatalog: a file that is empty or holds only
// comments, as one being rewritten mid-deploy may, is refused at start
// and on reload (the last good catalog stays); one that says
// `services: []` is an empty catalog, taken at start, and on reload only
// when allowed.
func TestEmptyCatalogIsNotACatalog(t *testing.T) {
	for _, content := range []string{"", "\n\n", "# services are coming\n# soon\n", "---\n"} {
		path := filepath.Join(t.TempDir(), "catalog.yml")
		writeFile(t, path, content)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "empty") {
			t.Errorf("Load(%q) = %v, want an error saying it is empty", content, err)
		}
	}
	path := filepath.Join(t.TempDir(), "catalog.yml")
	writeFile(t, path, "services: []\n")
	if c, err := Load(path); err != nil || c.Len() != 0 {
		t.Errorf("services: [] loads as %v, %v; want an empty catalog", c, err)
	}

	tests := []struct {
		name       string
		content    string
		allowEmpty bool
		want       int // services after the reload
	}{
		{"empty file", "", false, 1},
		{"comments only", "# being rewritten\n", false, 1},
		{"no services", "services: []\n", false, 1},
		{"no services, allowed", "services: []\n", true, 0},
		{"comments only, allowed", "# being rewritten\n", true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "catalog.yml")
			writeFile(t, path, catalogV1)
			w, err := NewWatcher(WatcherOptions{Path: path, AllowEmpty: tc.allowEmpty})
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, tc.content)
			err = w.Reload()
			if got := w.Current().Len(); got != tc.want {
				t.Errorf("after the reload: %d services, want %d (reload error: %v)", got, tc.want, err)
			}
			if (err == nil) != (tc.want == 0) {
				t.Errorf("reload error = %v", err)
			}
		})
	}
}
