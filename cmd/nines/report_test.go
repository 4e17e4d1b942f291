package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

const reportCatalog = `
defaults:
  slo_target: 99.9
services:
  - name: checkout
    owner: payments
    slo_target: 99.95
  - name: search
    owner: discovery
`

// fillReportStore writes hand-made incidents relative to now (whole
// minutes back, so that a 24-hour window holds all of them):
//   - checkout: an outage 5h–4h ago acknowledged after 5 minutes, and a
//     degraded incident 3h–2h ago (weight 0 by default): 3600 s down;
//   - legacy-batch (uncatalogued): an outage open since 30 minutes ago;
//   - search: nothing.
func fillReportStore(t *testing.T, dsn string, now time.Time) {
	t.Helper()
	ctx := context.Background()
	s, err := chstore.Open(ctx, chstore.Options{DSN: dsn, FlushInterval: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ago := func(m int) time.Time { return now.Add(-time.Duration(m) * time.Minute) }
	incs := []*incidents.Incident{
		{ID: "inc-checkout-1", Service: "checkout", Impact: incidents.ImpactOutage, State: incidents.StateResolved,
			StartedAt: ago(300), AcknowledgedAt: ago(295), ResolvedAt: ago(240),
			Periods: []incidents.Period{{Start: ago(300), End: ago(240)}}, UpdatedAt: ago(240), Facts: 1},
		{ID: "inc-checkout-2", Service: "checkout", Impact: incidents.ImpactDegraded, State: incidents.StateResolved,
			StartedAt: ago(180), ResolvedAt: ago(120),
			Periods: []incidents.Period{{Start: ago(180), End: ago(120)}}, UpdatedAt: ago(120), Facts: 1},
		{ID: "inc-legacy-1", Service: "legacy-batch", Impact: incidents.ImpactOutage, State: incidents.StateFiring,
			StartedAt: ago(30), Periods: []incidents.Period{{Start: ago(30)}}, UpdatedAt: ago(30), Facts: 1},
	}
	var changes []incidents.Change
	for _, inc := range incs {
		changes = append(changes, incidents.Change{Incident: inc})
	}
	if err := s.Write(ctx, changes); err != nil {
		t.Fatal(err)
	}
}

func TestReportAgainstClickHouse(t *testing.T) {
	dsn := chtest.Database(t)
	now := time.Now().Truncate(time.Minute)
	fillReportStore(t, dsn, now)
	dir := t.TempDir()
	catalogFile := filepath.Join(dir, "catalog.yml")
	if err := os.WriteFile(catalogFile, []byte(reportCatalog), 0o600); err != nil {
		t.Fatal(err)
	}
	runReport := func(t *testing.T, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args = append([]string{"report", "--clickhouse.dsn", dsn, "--catalog.file", catalogFile, "--window", "24h", "--log.level", "error"}, args...)
		if err := run(context.Background(), args, &stdout, &stderr, nil); err != nil {
			t.Fatalf("report %v: %v (stderr: %s)", args, err, stderr.String())
		}
		return stdout.String()
	}

	t.Run("json matches the hand computation", func(t *testing.T) {
		var rep availability.Report
		if err := json.Unmarshal([]byte(runReport(t, "--format", "json", "--explain")), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Window != "24h" || len(rep.Services) != 3 {
			t.Fatalf("report %+v", rep)
		}
		byName := map[string]availability.Figure{}
		var order []string
		for _, f := range rep.Services {
			byName[f.Service] = f
			order = append(order, f.Service)
		}
		if strings.Join(order, ",") != "checkout,legacy-batch,search" {
			t.Errorf("order %v, want worst first", order)
		}
		c := byName["checkout"]
		near(t, "checkout availability", c.Availability, 1-3600.0/86400)
		near(t, "checkout budget", c.ErrorBudgetSeconds, 0.0005*86400)
		near(t, "checkout budget left", c.ErrorBudgetRemaining, (0.0005*86400-3600)/(0.0005*86400))
		near(t, "checkout mttr", *c.MTTRSeconds, 3600)
		near(t, "checkout mtta", *c.MTTASeconds, 300)
		if c.Incidents != 2 || c.DowntimeByImpactSeconds.Degraded != 3600 || c.Owner != "payments" ||
			strings.Join(c.IncidentIDs, ",") != "inc-checkout-1,inc-checkout-2" {
			t.Errorf("checkout %+v", c)
		}
		l := byName["legacy-batch"]
		// Still firing: its MTTR is its firing time so far.
		if l.Catalogued || l.SLOTarget != 0.999 || l.DowntimeSeconds < 1800 || l.DowntimeSeconds > 1800+120 ||
			l.MTTRSeconds == nil || *l.MTTRSeconds != l.DowntimeSeconds {
			t.Errorf("legacy-batch %+v", l)
		}
		if s := byName["search"]; s.Availability != 1 || s.Incidents != 0 || !s.Catalogued {
			t.Errorf("search %+v", s)
		}
	})

	t.Run("table", func(t *testing.T) {
		out := runReport(t)
		for _, want := range []string{
			"Availability over 24h",
			"SERVICE", "BUDGET LEFT",
			"checkout", "payments", "95.83% (1.4 nines)", "99.95%", "-8233.3%", "1h",
			"legacy-batch", "(uncatalogued)",
			"search", "100% (∞ nines)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("table lacks %q:\n%s", want, out)
			}
		}
		if strings.Index(out, "checkout") > strings.Index(out, "search") {
			t.Errorf("not worst first:\n%s", out)
		}
	})

	t.Run("csv", func(t *testing.T) {
		recs, err := csv.NewReader(strings.NewReader(runReport(t, "--format", "csv"))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 4 || recs[0][0] != "service" || recs[1][0] != "checkout" || recs[1][10] != "3600" {
			t.Errorf("csv %v", recs)
		}
	})

	t.Run("markdown, one service", func(t *testing.T) {
		out := runReport(t, "--format", "markdown", "--service", "checkout")
		if !strings.Contains(out, "| SERVICE | OWNER |") || !strings.Contains(out, "| checkout | payments | 95.83% (1.4 nines) |") ||
			strings.Contains(out, "search") {
			t.Errorf("markdown:\n%s", out)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--window", "5x"}, `window: unknown window "5x"`},
			{[]string{"--format", "xml"}, `--format="xml": enum value must be one of table,json,csv,markdown`},
			{[]string{"--service", "nope"}, `--service: not found: service "nope"`},
		} {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"report", "--clickhouse.dsn", dsn, "--catalog.file", catalogFile}, tc.args...), &stdout, &stderr, nil)
			var ue usageError
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &ue) {
				t.Errorf("report %v = %v, want a usage error containing %q", tc.args, err, tc.want)
			}
		}
	})
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestReportFromServer: with NINES_URL (or --server.url), nines report is a
// client of the running server and prints exactly what its API computes,
// with the server's catalog (SLOs, owners, time zone) and
// config (weights), without --catalog.file or a ClickHouse DSN. Without
// either, the direct mode says what it lacks.
func TestReportFromServer(t *testing.T) {
	dsn := chtest.Database(t)
	now := time.Now().Truncate(time.Minute)
	fillReportStore(t, dsn, now)
	store := chtest.Open(t, dsn)
	cat, err := catalog.Parse([]byte(strings.Replace(reportCatalog, "defaults:\n", "defaults:\n  timezone: America/New_York\n", 1)), "catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	half := 0.5
	svc, err := availability.New(availability.Options{
		Source: store, Catalog: func() *catalog.Catalog { return cat },
		Config: availability.Config{ImpactWeights: availability.ImpactWeights{Degraded: &half}},
		Now:    func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	api := availability.NewAPI(svc, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/availability", api.Availability)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	w, err := svc.ParseWindow("24h")
	if err != nil {
		t.Fatal(err)
	}
	figs, err := svc.All(context.Background(), w, false)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	rep := availability.NewReport(w, figs)
	if err := availability.WriteReport(&want, rep, "table", cat.Location()); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	report := func(env map[string]string, args ...string) error {
		for _, k := range []string{"NINES_URL", "NINES_CLICKHOUSE_DSN"} {
			t.Setenv(k, env[k])
		}
		return run(context.Background(), append([]string{"report"}, args...), &stdout, &stderr, nil)
	}
	fromServer := map[string]string{"NINES_URL": srv.URL}
	if err := report(fromServer, "--window", "24h", "--log.level", "error"); err != nil {
		t.Fatalf("report: %v (stderr: %s)", err, stderr.String())
	}
	if stdout.String() != want.String() {
		t.Errorf("report from the server:\n%s\nthe API's figures:\n%s", stdout.String(), want.String())
	}
	// checkout's degraded hour weighs 0.5 on the server: 5,400 s down of
	// 86,400; days in the server's time zone.
	if !strings.Contains(stdout.String(), "legacy-batch") || !strings.Contains(stdout.String(), "93.75%") || !strings.Contains(stdout.String(), now.In(cat.Location()).Format(" MST")) {
		t.Errorf("report lacks the server's weights or uncatalogued services:\n%s", stdout.String())
	}

	stdout.Reset()
	if err := report(fromServer, "--server.url", srv.URL, "--service", "nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown service: %v", err)
	}
	if err := report(fromServer, "--server.url", srv.URL, "--catalog.file", "x.yml"); err == nil {
		t.Error("--catalog.file with --server.url: no error")
	}

	stderr.Reset()
	if err := report(map[string]string{"NINES_CLICKHOUSE_DSN": dsn}, "--window", "24h"); err != nil {
		t.Fatalf("direct report: %v", err)
	}
	if !strings.Contains(stderr.String(), "without --catalog.file") {
		t.Errorf("the direct mode without a catalog does not say so: %q", stderr.String())
	}
}
