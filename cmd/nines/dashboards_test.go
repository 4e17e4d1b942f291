package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ninesops/nines/dashboards"
	"github.com/ninesops/nines/dashboards/grafanatest"
)

// The example catalog and its committed dashboards, from cmd/nines.
const (
	exampleCatalogFile  = "../../deploy/catalog/catalog.yml"
	committedDashboards = "../../deploy/grafana/dashboards"
	// committedAsOf is the date the committed dashboards were generated for
	// (the maintenance windows they hold).
	committedAsOf     = "2026-12-01"
	regenerateCommand = "go run ./cmd/nines dashboards generate --catalog.file deploy/catalog/catalog.yml --dashboards.as-of " + committedAsOf + " --out deploy/grafana/dashboards"
)

func runDashboards(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), append([]string{"dashboards"}, args...), &stdout, &stderr, nil)
	return stdout.String(), stderr.String(), err
}

// TestCommittedDashboardsAreCurrent regenerates the dashboards of the
// example catalog and fails if deploy/grafana/dashboards differs, so that
// a catalog or generator change cannot land without its dashboards.
func TestCommittedDashboardsAreCurrent(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	if _, stderr, err := runDashboards(t, "generate", "--catalog.file", exampleCatalogFile, "--dashboards.as-of", committedAsOf, "--out", out); err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr)
	}
	fresh, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(fresh) == 0 {
		t.Fatal("generate wrote nothing")
	}
	want := map[string]bool{}
	for _, e := range fresh {
		want[e.Name()] = true
		generated, err := os.ReadFile(filepath.Join(out, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(filepath.Join(committedDashboards, e.Name()))
		if err != nil {
			t.Errorf("deploy/grafana/dashboards/%s is missing; regenerate with:\n  %s", e.Name(), regenerateCommand)
			continue
		}
		if !bytes.Equal(generated, committed) {
			t.Errorf("deploy/grafana/dashboards/%s is stale; regenerate with:\n  %s", e.Name(), regenerateCommand)
		}
	}
	committed, err := os.ReadDir(committedDashboards)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range committed {
		if strings.HasSuffix(e.Name(), ".json") && !want[e.Name()] {
			t.Errorf("deploy/grafana/dashboards/%s is not generated any more; regenerate with:\n  %s", e.Name(), regenerateCommand)
		}
	}
}

// TestDashboardsGenerateAndPush: generate into a directory, push it to a
// fake Grafana, push again (nothing changes), then push straight from the
// catalog (still nothing changes).
func TestDashboardsGenerateAndPush(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "dashboards")
	stdout, stderr, err := runDashboards(t, "generate", "--out", dir, "--catalog.file", exampleCatalogFile)
	if err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "wrote 11 dashboards to "+dir+": 11 changed, 0 unchanged") {
		t.Errorf("generate said %q", stdout)
	}
	stdout, _, err = runDashboards(t, "generate", "--out", dir, "--catalog.file", exampleCatalogFile)
	if err != nil || !strings.Contains(stdout, "0 changed, 11 unchanged") {
		t.Errorf("second generate: %v, %q", err, stdout)
	}

	g := grafanatest.New(t, "s3cret")
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err = runDashboards(t, "push", "--grafana.url", g.URL, "--grafana.token-file", tokenFile, "--dir", dir, "--message", "first")
	if err != nil {
		t.Fatalf("push: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, "11 dashboards in folder nines of "+g.URL+": 11 created, 0 updated, 0 unchanged, 0 failed") ||
		!strings.Contains(stdout, "created  nines-overview") || !strings.Contains(stdout, g.URL+"/d/nines-svc-checkout/") {
		t.Errorf("push said:\n%s", stdout)
	}
	if _, ok := g.Folder("nines"); !ok {
		t.Error("folder nines not created")
	}
	if _, _, _, msgs, _ := g.Dashboard("nines-overview"); len(msgs) != 1 || msgs[0] != "first" {
		t.Errorf("version messages %q, want [first]", msgs)
	}

	stdout, _, err = runDashboards(t, "push", "--grafana.url", g.URL, "--grafana.token-file", tokenFile, "--dir", dir)
	if err != nil || !strings.Contains(stdout, "0 created, 0 updated, 11 unchanged, 0 failed") {
		t.Errorf("second push: %v\n%s", err, stdout)
	}
	stdout, _, err = runDashboards(t, "push", "--grafana.url", g.URL, "--grafana.token-file", tokenFile, "--catalog.file", exampleCatalogFile)
	if err != nil || !strings.Contains(stdout, "11 unchanged") {
		t.Errorf("push from the catalog: %v\n%s", err, stdout)
	}

	// A dashboard Grafana refuses is reported, and the push fails.
	g.Fail("POST", "nines-svc-search", 412, `{"message":"The dashboard has been changed by someone else","status":"version-mismatch"}`)
	g.Edit("nines-svc-search", func(m map[string]any) { m["title"] = "changed" })
	stdout, _, err = runDashboards(t, "push", "--grafana.url", g.URL, "--grafana.token-file", tokenFile, "--dir", dir)
	if err == nil || !strings.Contains(stdout, "failed     nines-svc-search") || !strings.Contains(stdout, "1 failed") ||
		!strings.Contains(err.Error(), "version-mismatch") {
		t.Errorf("push with a refused dashboard: %v\n%s", err, stdout)
	}
}

func TestDashboardsUsageErrors(t *testing.T) {
	t.Parallel()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("t"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", nil, "must select a subcommand of 'dashboards'"},
		{"unknown subcommand", []string{"draw"}, `expected command but got "draw"`},
		{"generate without --out", []string{"generate"}, "required flag(s) '--out' not provided"},
		{"bad window", []string{"generate", "--out", t.TempDir(), "--dashboards.window", "1y"}, `--dashboards.window="1y"`},
		{"push without url", []string{"push", "--dir", "x", "--grafana.token-file", token}, "required flag(s) '--grafana.url' not provided"},
		{"push without token", []string{"push", "--grafana.url", "http://g", "--dir", "x"}, "--grafana.token-file is required"},
		{"push without source", []string{"push", "--grafana.url", "http://g", "--grafana.token-file", token}, "give --dir DIR"},
		{"push with both sources", []string{"push", "--grafana.url", "http://g", "--grafana.token-file", token, "--dir", "x", "--catalog.file", "c.yml"}, "not both"},
		{"push with a missing token file", []string{"push", "--grafana.url", "http://g", "--grafana.token-file", "/nonexistent/token", "--dir", "x"}, "--grafana.token-file"},
		{"bad as-of date", []string{"generate", "--out", t.TempDir(), "--dashboards.as-of", "soon"}, "--dashboards.as-of"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runDashboards(t, tc.args...)
			var ue usageError
			if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want a usage error saying %q", err, tc.want)
			}
		})
	}
}

// TestDashboardsPushIgnoresUnlistedEnvironment: environment variables
// are opt-in per flag; NINES_CATALOG_FILE, which nines once read for
// every --catalog.file, no longer clashes with an explicit --dir. (Not
// parallel: it sets the process' environment.)
func TestDashboardsPushIgnoresUnlistedEnvironment(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := runDashboards(t, "generate", "--out", dir, "--catalog.file", exampleCatalogFile); err != nil {
		t.Fatal(err)
	}
	g := grafanatest.New(t, "tok")
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("tok"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NINES_CATALOG_FILE", "/nonexistent/catalog.yml")
	stdout, _, err := runDashboards(t, "push", "--grafana.url", g.URL, "--grafana.token-file", token, "--dir", dir)
	if err != nil || !strings.Contains(stdout, "11 created") {
		t.Errorf("push --dir with NINES_CATALOG_FILE set: %v\n%s", err, stdout)
	}
}

// TestGrafanaProvisioningMatchesDashboards: the provisioned datasources
// have the UIDs the generated dashboards default to, and connect as their
// SQL expects; the provider puts the dashboards into push's default
// folder.
func TestGrafanaProvisioningMatchesDashboards(t *testing.T) {
	t.Parallel()
	read := func(path string, v any) {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(false)
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	var ds struct {
		Datasources []struct {
			UID      string         `yaml:"uid"`
			Type     string         `yaml:"type"`
			JSONData map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	read("../../deploy/grafana/provisioning/datasources/nines.yml", &ds)
	uids := map[string]string{}
	for _, d := range ds.Datasources {
		uids[d.Type] = d.UID
		if d.Type == dashboards.ClickHousePluginID {
			if d.JSONData["protocol"] != "native" || d.JSONData["port"] != 9000 || d.JSONData["defaultDatabase"] != "nines" {
				t.Errorf("ClickHouse datasource: jsonData %v, want the native protocol on port 9000 and default database nines", d.JSONData)
			}
		}
	}
	if uids[dashboards.ClickHousePluginID] != dashboards.DefaultClickHouseUID || uids["prometheus"] != dashboards.DefaultPrometheusUID {
		t.Errorf("provisioned datasource UIDs %v, dashboards default to %s and %s", uids, dashboards.DefaultClickHouseUID, dashboards.DefaultPrometheusUID)
	}
	var prov struct {
		Providers []struct {
			FolderUID string `yaml:"folderUid"`
		} `yaml:"providers"`
	}
	read("../../deploy/grafana/provisioning/dashboards/nines.yml", &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].FolderUID != dashboards.DefaultFolderUID {
		t.Errorf("dashboards provider: %+v, want one into folder %s", prov.Providers, dashboards.DefaultFolderUID)
	}
}

// TestDashboardsTakeTheConfigWeights: the impact weights of --config.file
// (the server's) reach the dashboards' SQL, all three of them.
func TestDashboardsTakeTheConfigWeights(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "nines.yml")
	if err := os.WriteFile(cfg, []byte("availability:\n  impact_weights: {outage: 0.9, degraded: 0.25, none: 0.05}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if _, stderr, err := runDashboards(t, "generate", "--catalog.file", exampleCatalogFile, "--config.file", cfg, "--out", out); err != nil {
		t.Fatalf("generate: %v\n%s", err, stderr)
	}
	b, err := os.ReadFile(filepath.Join(out, "nines-overview.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"toFloat64(0.9)", "toFloat64(0.25)", "toFloat64(0.05)"} {
		if !bytes.Contains(b, []byte(w)) {
			t.Errorf("the overview's SQL lacks the weight %s", w)
		}
	}
}
