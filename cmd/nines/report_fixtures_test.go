package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ninesops/nines/chstore/chtest"
)

// TestReportFromFixtures fills the store through the webhook with the
// captured Alertmanager notifications plus an incident opened by hand,
// then checks `nines report` against figures computed by hand.
func TestReportFromFixtures(t *testing.T) {
	dsn := chtest.Database(t)
	n, catalogFile, configFile := fixtureNines(t, dsn)
	dir := t.TempDir()

	var out, errb bytes.Buffer
	args := []string{"--from=2026-11-22T17:00:00Z", "--to=2026-11-22T18:00:00Z", "--format=json",
		"--clickhouse.dsn=" + dsn, "--catalog.file=" + catalogFile, "--config.file=" + configFile, "--log.level=error"}
	if err := run(context.Background(), append([]string{"report"}, args...), &out, &errb, nil); err != nil {
		t.Fatalf("report: %v\n%s", err, errb.String())
	}
	var rep struct {
		Services []struct {
			Service          string  `json:"service"`
			Availability     float64 `json:"availability"`
			DowntimeSeconds  float64 `json:"downtime_seconds"`
			Incidents        int     `json:"incidents"`
			ErrorBudgetSecs  float64 `json:"error_budget_seconds"`
			DowntimeByImpact struct {
				Outage, Degraded float64
			} `json:"downtime_by_impact_seconds"`
		} `json:"services"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	// By hand, over 17:00–18:00 (3,600 s):
	//   checkout: outage 17:33:38–17:35:26 (fixtures 02–05) = 108 s → 1 − 108/3600 = 0.97;
	//             budget (1 − 0.999) × 3600 = 3.6 s.
	//   search: degraded from 17:33:38, one alert still firing (fixture 06):
	//           1,582 s to 18:00, weighted 0.3 = 474.6 s → 0.868166…
	//   playlist: outage opened by hand at 17:10, still open: 3,000 s → 0.1666…
	want := map[string]struct{ avail, down, outage, degraded, budget float64 }{
		"checkout": {0.97, 108, 108, 0, 3.6},
		"search":   {1 - 474.6/3600, 474.6, 0, 1582, 18},
		"playlist": {1 - 3000.0/3600, 3000, 3000, 0, 36},
	}
	if len(rep.Services) != 3 {
		t.Fatalf("services = %s", out.String())
	}
	order := []string{}
	for _, f := range rep.Services {
		order = append(order, f.Service)
		w := want[f.Service]
		near := func(a, b float64) bool { return math.Abs(a-b) < 1e-6 }
		if !near(f.Availability, w.avail) || !near(f.DowntimeSeconds, w.down) || !near(f.DowntimeByImpact.Outage, w.outage) ||
			!near(f.DowntimeByImpact.Degraded, w.degraded) || !near(f.ErrorBudgetSecs, w.budget) || f.Incidents != 1 {
			t.Errorf("%s = %+v, want %+v", f.Service, f, w)
		}
	}
	if got := strings.Join(order, ","); got != "playlist,search,checkout" {
		t.Errorf("order = %s, want worst first: playlist,search,checkout", got)
	}

	// The table a person reads says the same.
	out.Reset()
	if err := run(context.Background(), append([]string{"report"}, append(args[:2:2], args[3:]...)...), &out, &errb, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "97.00% (1.5 nines)") || !strings.Contains(out.String(), "16.67% (0.1 nines)") {
		t.Errorf("table:\n%s", out.String())
	}

	// Delivery figures: a checkout deploy rolled back within the hour, a
	// failed search deploy; checkout's incident was restored in 108 s.
	tokenFile := writeFile(t, dir, "token", n.apiToken)
	for _, a := range [][]string{
		{"--service=checkout", "--version=v2", "--at=2026-11-22T17:20:00Z"},
		{"--service=checkout", "--kind=rollback", "--version=v1", "--at=2026-11-22T17:40:00Z"},
		{"--service=search", "--version=v9", "--status=failed", "--at=2026-11-22T17:25:00Z"},
	} {
		if err := run(context.Background(), append([]string{"change", "record", "--server.url=" + n.base, "--api.token-file=" + tokenFile}, a...), &bytes.Buffer{}, &errb, nil); err != nil {
			t.Fatal(err)
		}
	}
	out.Reset()
	if err := run(context.Background(), append([]string{"report"}, append(args, "--dora")...), &out, &errb, nil); err != nil {
		t.Fatalf("report --dora: %v\n%s", err, errb.String())
	}
	var dora struct {
		Services []struct {
			Service              string
			Deployments          int      `json:"deployments"`
			ChangeFailureRate    *float64 `json:"change_failure_rate"`
			Rollbacks            int      `json:"rollbacks"`
			TimeToRestoreSeconds *float64 `json:"time_to_restore_seconds"`
		} `json:"services"`
	}
	if err := json.Unmarshal(out.Bytes(), &dora); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := map[string]string{}
	for _, d := range dora.Services {
		cfr, ttr := -1.0, -1.0
		if d.ChangeFailureRate != nil {
			cfr = *d.ChangeFailureRate
		}
		if d.TimeToRestoreSeconds != nil {
			ttr = *d.TimeToRestoreSeconds
		}
		got[d.Service] = strings.TrimSpace(strings.Join([]string{
			strconv.Itoa(d.Deployments), ftoa(cfr), strconv.Itoa(d.Rollbacks), ftoa(ttr)}, " "))
	}
	// deploys, change failure rate, rollbacks, time to restore (s)
	wantDORA := map[string]string{"checkout": "1 1 1 108", "search": "1 1 0 -1"}
	for s, w := range wantDORA {
		if got[s] != w {
			t.Errorf("dora %s = %q, want %q (all %v)", s, got[s], w, got)
		}
	}
}

func ftoa(f float64) string {
	b, _ := json.Marshal(f)
	return string(b)
}

// fixtureNines starts nines on dsn with three catalogued services and
// impact weights, and fills it through the webhook with the captured
// Alertmanager notifications (alerts/testdata) plus an outage of playlist
// opened by hand at 17:10 on their day. It returns nines with its catalog
// and config files.
func fixtureNines(t *testing.T, dsn string, extra ...string) (n *nines, catalogFile, configFile string) {
	t.Helper()
	dir := t.TempDir()
	catalogFile = writeFile(t, dir, "catalog.yml", `
services:
  - {name: checkout, owner: payments, slo_target: 99.9}
  - {name: search, owner: discovery, slo_target: 99.5}
  - {name: playlist, owner: music, slo_target: 99}
`)
	configFile = writeFile(t, dir, "config.yml", "availability:\n  impact_weights: {outage: 1, degraded: 0.3, none: 0}\n")
	n = startNines(t, dsn, append([]string{"--catalog.file=" + catalogFile, "--config.file=" + configFile}, extra...)...)

	fixtures, err := filepath.Glob("../../alerts/testdata/0*.json")
	if err != nil || len(fixtures) != 6 {
		t.Fatalf("fixtures: %v %v", fixtures, err)
	}
	for _, f := range fixtures {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("POST", n.base+"/api/v1/alerts", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cr3t-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("post %s: %v %v", f, err, resp)
		}
		resp.Body.Close()
	}
	if code, b := n.do("POST", "/api/v1/incidents", n.apiToken, map[string]any{
		"service": "playlist", "title": "Playlists fail to load", "impact": "outage",
		"started_at": "2026-11-22T17:10:00Z", "actor": "alice",
	}); code != http.StatusCreated {
		t.Fatalf("open by hand: %d %s", code, b)
	}
	return n, catalogFile, configFile
}
