package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/dashboards/grafanatest"
)

// ninesCLI runs nines with args and returns what it printed.
func ninesCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = run(t.Context(), args, &o, &e, nil)
	return o.String(), e.String(), err
}

// TestVersionAndHelp: --version and -h behave as in Prometheus' tools:
// exit status 0, on standard output.
func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--version"}, {"version"}} {
		out, _, err := ninesCLI(t, args...)
		if err != nil || !strings.HasPrefix(out, "nines, version ") || !strings.Contains(out, "go version:") {
			t.Errorf("nines %v = %v, %q: want the version, exit 0", args, err, out)
		}
	}
	for _, args := range [][]string{{"-h"}, {"--help"}, {"serve", "-h"}, {"serve", "--help"}, {"help", "serve"}, {"incidents", "list", "-h"}, {"check", "config", "-h"}} {
		out, _, err := ninesCLI(t, args...)
		if err != nil || !strings.HasPrefix(out, "usage: nines") {
			t.Errorf("nines %v = %v, %.80q: want the usage, exit 0", args, err, out)
		}
	}
	_, stderr, err := ninesCLI(t)
	if exitCode(err) != 2 || !strings.Contains(stderr, "usage: nines") {
		t.Errorf("nines without a command: %v, want the usage on stderr and exit 2", err)
	}
	_, _, err = ninesCLI(t, "serve", "--no-such-flag")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "nines serve --help") {
		t.Errorf("unknown flag: %v, want exit 2 pointing at nines serve --help", err)
	}
}

// TestHelpPlaceholders: a flag's placeholder is its default, or a word
// for what it takes; never a phrase of its help text (Go's flag package
// made backquoted text the placeholder: `-collector.windows nines rules
// generate`).
func TestHelpPlaceholders(t *testing.T) {
	t.Parallel()
	serve, _, err := ninesCLI(t, "serve", "-h")
	if err != nil {
		t.Fatal(err)
	}
	rules, _, err := ninesCLI(t, "rules", "generate", "-h")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ help, want string }{
		{serve, `--collector.windows="1h,24h,7d,30d"`},
		{serve, `--storage.path="data/"`},
		{serve, "--catalog.file=FILE"},
		{serve, "--clickhouse.dsn=DSN"},
		{serve, "--web.config.file="},
		{serve, "--web.listen-address=:9095"},
		{serve, "--log.level=info"},
		{serve, "--spool.dir=DIR"},
		{rules, `--collector.windows="1h,24h,7d,30d"`},
		{rules, "--catalog.file=FILE"},
	} {
		if !strings.Contains(tc.help, tc.want) {
			t.Errorf("help lacks %s", tc.want)
		}
	}
	for _, bad := range []string{"=nines rules generate", "=nines dashboards generate", "=services: []"} {
		if strings.Contains(serve+rules, bad) {
			t.Errorf("help has the placeholder %q", bad)
		}
	}
}

// countingListener stands in for ClickHouse and counts connections.
func countingListener(t *testing.T) (addr string, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	conns = &atomic.Int64{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().String(), conns
}

// TestInputCheckedBeforeConnecting: what the command line says wrongly is
// a usage error (exit 2), and a bad file an error (exit 1, as promtool's),
// both reported without a connection to ClickHouse, whether or not it
// answers.
func TestInputCheckedBeforeConnecting(t *testing.T) {
	// make test runs everything with NINES_CLICKHOUSE_DSN set (its
	// ClickHouse): the cases without a DSN need it unset.
	t.Setenv("NINES_CLICKHOUSE_DSN", "")
	chAddr, conns := countingListener(t)
	dsn := "--clickhouse.dsn=clickhouse://" + chAddr + "/nines?dial_timeout=1s"
	dir := t.TempDir()
	typo := writeFile(t, dir, "typo.yml", "incidents:\n  reopen_windw: 10m\n")
	token := writeFile(t, dir, "token", "t\n")
	const file = 1 // exit status of a bad file; 2 otherwise
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"report", dsn, "--window", "5x"}, `unknown window "5x"`, 2},
		{[]string{"report", dsn, "--from", "2026-11-01T00:00:00Z"}, "--from needs --to", 2},
		{[]string{"report", dsn, "--to", "2026-11-01T00:00:00Z"}, "--to needs --from", 2},
		{[]string{"report", dsn, "--from", "yesterday", "--to", "2026-11-01T00:00:00Z"}, `--from: want an RFC 3339 time, got "yesterday"`, 2},
		{[]string{"report", dsn, "--format", "xml"}, `--format="xml"`, 2},
		{[]string{"report", dsn, "--config.file", typo}, "typo.yml:2: incidents.reopen_windw: unknown field; did you mean reopen_window?", file},
		{[]string{"report", "--window", "5x"}, "--clickhouse.dsn (or NINES_CLICKHOUSE_DSN) is required", 2},
		{[]string{"serve", dsn, "--storage.path", dir, "--webhook.bearer-token-file", token, "--config.file", typo}, "did you mean reopen_window?", file},
		{[]string{"serve", dsn, "--storage.path", dir, "--webhook.bearer-token-file", token, "--collector.windows", "1h,fortnight"}, "--collector.windows", 2},
		{[]string{"serve", dsn, "--storage.path", dir}, "the webhook needs credentials", 2},
		{[]string{"serve", dsn, "--storage.path", dir, "--webhook.bearer-token-file", token, "--web.config.file", typo}, "--web.config.file", file},
		{[]string{"serve", dsn, "--webhook.bearer-token-file", token, "--clickhouse.dial-timeout", "soon"}, `--clickhouse.dial-timeout="soon"`, 2},
		{[]string{"replay", dsn, "--from", "2026-11-01T00:00:00Z", "--to", "2026-11-02T00:00:00Z", "--config.file", typo}, "did you mean reopen_window?", file},
		{[]string{"migrate"}, "--clickhouse.dsn (or NINES_CLICKHOUSE_DSN) is required", 2},
	} {
		start := time.Now()
		_, _, err := ninesCLI(t, tc.args...)
		if err == nil || exitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("nines %v = %v (exit %d), want exit %d saying %q", tc.args, err, exitCode(err), tc.code, tc.want)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("nines %v took %s to refuse its input", tc.args, took)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Errorf("%d connections to ClickHouse for input refused before connecting", n)
	}
}

// TestIncidentsCLI drives `nines incidents list|show|ack|note|resolve`
// against a running nines, with the server's URL and the token file from
// flags, as a terminal user would.
func TestIncidentsCLI(t *testing.T) {
	n := startNines(t, chtest.Database(t))
	tokenFile := writeFile(t, t.TempDir(), "token", n.apiToken+"\n")
	start := time.Now().Add(-10 * time.Minute).UTC().Format(time.RFC3339)
	if code, body := n.postAlerts(webhookNote(`{}:{alertname="CheckoutDown"}`,
		inputAlert("cli-1", map[string]string{"alertname": "CheckoutDown", "service": "checkout", "severity": "critical"}, start, "0001-01-01T00:00:00Z", "firing"))); code != 200 {
		t.Fatalf("webhook: %d %s", code, body)
	}
	var incs []apiIncident
	eventually(t, 20*time.Second, "the incident", func() bool {
		incs = listService(t, n, "checkout")
		return len(incs) == 1
	})
	id := incs[0].ID
	server := "--server.url=" + n.base

	out, stderr, err := ninesCLI(t, "incidents", "list", server)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "firing") || !strings.Contains(out, "checkout") {
		t.Errorf("incidents list: %v\n%s%s", err, out, stderr)
	}
	out, _, err = ninesCLI(t, "incidents", "list", server, "--state", "resolved", "--json")
	var page incidentList
	if err != nil || json.Unmarshal([]byte(out), &page) != nil || len(page.Incidents) != 0 {
		t.Errorf("incidents list --state resolved --json: %v, %s: want none", err, out)
	}

	// Acting needs the token.
	if _, _, err := ninesCLI(t, "incidents", "ack", server, id); exitCode(err) != 2 || !strings.Contains(err.Error(), "API token") {
		t.Errorf("ack without a token: %v, want a usage error asking for it", err)
	}
	for _, args := range [][]string{
		{"incidents", "ack", server, "--api.token-file", tokenFile, "--actor", "alice", id},
		{"incidents", "note", server, "--api.token-file", tokenFile, id, "rolled back the deploy"},
	} {
		if out, _, err := ninesCLI(t, args...); err != nil || !strings.Contains(out, id) {
			t.Errorf("nines %v: %v, %q", args, err, out)
		}
	}
	out, _, err = ninesCLI(t, "incidents", "show", server, id)
	for _, want := range []string{"State:         acknowledged", "by alice", "rolled back the deploy", "cli-1"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("incidents show lacks %q (%v):\n%s", want, err, out)
		}
	}
	// The token file from the environment, as NINES_API_TOKEN_FILE
	// documents; NINES_URL likewise.
	t.Setenv("NINES_URL", n.base)
	t.Setenv("NINES_API_TOKEN_FILE", tokenFile)
	if out, _, err := ninesCLI(t, "incidents", "resolve", id); err != nil || !strings.Contains(out, "resolved") {
		t.Errorf("incidents resolve with NINES_URL and NINES_API_TOKEN_FILE: %v, %q", err, out)
	}
	if code, b := n.do("GET", "/api/v1/incidents/"+id, "", nil); code != 200 || !strings.Contains(string(b), `"state":"resolved"`) {
		t.Errorf("after resolve: %d %s, want it resolved", code, b)
	}
	// nines' own error, quoted.
	if _, _, err := ninesCLI(t, "incidents", "show", "inc-00000000000000000000"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("show of a missing incident: %v, want nines' 404", err)
	}
	if _, _, err := ninesCLI(t, "incidents", "list", "--server.url", "not a url"); exitCode(err) != 2 {
		t.Errorf("bad --server.url: %v, want a usage error", err)
	}
}

// TestDryRuns: --dry-run says what dashboards push, migrate and change
// record would do, and does none of it.
func TestDryRuns(t *testing.T) {
	t.Run("dashboards push", func(t *testing.T) {
		g := grafanatest.New(t, "tok")
		out, _, err := ninesCLI(t, "dashboards", "push", "--grafana.url", g.URL, "--catalog.file", exampleCatalogFile, "--dry-run")
		if err != nil || !strings.Contains(out, "would push") || !strings.Contains(out, "nines-overview") || !strings.Contains(out, "dry run: nothing sent") {
			t.Errorf("push --dry-run: %v\n%s", err, out)
		}
		if reqs := g.Requests(); len(reqs) != 0 {
			t.Errorf("push --dry-run sent %v", reqs)
		}
	})
	t.Run("change record", func(t *testing.T) {
		chAddr, conns := countingListener(t)
		out, _, err := ninesCLI(t, "change", "record", "--server.url", "http://"+chAddr, "--service", "checkout", "--version", "v1.2.3", "--dry-run")
		if err != nil || !strings.Contains(out, "would record") || !strings.Contains(out, "checkout v1.2.3") {
			t.Errorf("change record --dry-run: %v, %q", err, out)
		}
		if conns.Load() != 0 {
			t.Error("change record --dry-run connected to nines")
		}
	})
	t.Run("migrate", func(t *testing.T) {
		dsn := chtest.Unmigrated(t)
		out, _, err := ninesCLI(t, "migrate", "--clickhouse.dsn", dsn, "--dry-run", "--log.level=error")
		if err != nil || !strings.Contains(out, "would apply 0001_") {
			t.Fatalf("migrate --dry-run on an empty database: %v\n%s", err, out)
		}
		files, _ := filepath.Glob(filepath.Join("..", "..", "chstore", "migrations", "*.sql"))
		if got := strings.Count(out, "would apply "); got != len(files) || !strings.Contains(out, fmt.Sprintf("\n%d migrations to apply", len(files))) {
			t.Errorf("migrate --dry-run lists %d migrations, want %d:\n%s", got, len(files), out)
		}
		// Nothing was applied: a second dry run says the same, a real
		// migrate applies them, and a dry run after it has none left.
		again, _, _ := ninesCLI(t, "migrate", "--clickhouse.dsn", dsn, "--dry-run", "--log.level=error")
		if again != out {
			t.Errorf("a dry run changed the schema:\n%s\nthen\n%s", out, again)
		}
		if _, _, err := ninesCLI(t, "migrate", "--clickhouse.dsn", dsn, "--log.level=error"); err != nil {
			t.Fatal(err)
		}
		after, _, err := ninesCLI(t, "migrate", "--clickhouse.dsn", dsn, "--dry-run", "--log.level=error")
		if err != nil || strings.TrimSpace(after) != "0 migrations to apply (dry run: none applied)" {
			t.Errorf("migrate --dry-run after migrate: %v, %q", err, after)
		}
	})
}
