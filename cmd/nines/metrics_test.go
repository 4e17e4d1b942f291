package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/collector/promtest"
)

// TestMetricsAcceptance: with nines holding the fixture incidents, its
// whole /metrics passes `promtool check metrics`, a real Prometheus scrapes
// it, and the availability series equal what `nines report` says.
func TestMetricsAcceptance(t *testing.T) {
	dsn := chtest.Database(t)
	promtool := promtest.Promtool(t)
	dir := t.TempDir()
	catalogFile := writeFile(t, dir, "catalog.yml", `
services:
  - {name: checkout, owner: payments, slo_target: 99.9}
  - {name: search, owner: discovery}
  - {name: playlist, owner: music, slo_target: 99}
`)
	n := startNines(t, dsn, "--catalog.file="+catalogFile, "--collector.refresh-interval=1s")
	fixtures, _ := filepath.Glob("../../alerts/testdata/0*.json")
	for _, f := range fixtures {
		body, _ := os.ReadFile(f)
		req, _ := http.NewRequest("POST", n.base+"/api/v1/alerts", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cr3t-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("post %s: %v %v", f, err, resp)
		}
		resp.Body.Close()
	}
	// An outage opened and resolved by hand, well inside the last day.
	code, b := n.do("POST", "/api/v1/incidents", n.apiToken, map[string]any{
		"service": "playlist", "title": "Playlists fail", "impact": "outage",
		"started_at": time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)})
	if code != http.StatusCreated {
		t.Fatalf("open: %d %s", code, b)
	}
	var opened struct{ ID string }
	_ = json.Unmarshal(b, &opened)
	if code, b := n.do("POST", "/api/v1/incidents/"+opened.ID+"/resolve", n.apiToken, nil); code != 200 {
		t.Fatalf("resolve: %d %s", code, b)
	}

	// The collector picks the incidents up on its next refresh.
	var metrics string
	eventually(t, 30*time.Second, "playlist's figure on /metrics", func() bool {
		_, body := n.do("GET", "/metrics", "", nil)
		metrics = string(body)
		return strings.Contains(metrics, `nines_collector_up 1`) &&
			strings.Contains(metrics, `nines_service_availability_ratio{owner="music",service="playlist",window="24h"} 0.9`)
	})
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(metrics)
	if out, err := check.CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	for _, name := range []string{"nines_webhook_requests_total", "nines_clickhouse_operations_total", "nines_build_info",
		"nines_incidents_open", "nines_incidents_opened_total", "nines_service_error_budget_remaining_ratio", "nines_catalog_reloads_total"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}

	prom := promtest.Start(t, strings.TrimPrefix(n.base, "http://"))
	samples := promtest.Await(t, prom, `nines_service_availability_ratio{window="24h"}`, 3)
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"report", "--window=24h", "--format=json", "--clickhouse.dsn=" + dsn,
		"--catalog.file=" + catalogFile, "--log.level=error"}, &out, &errb, nil); err != nil {
		t.Fatalf("report: %v\n%s", err, errb.String())
	}
	var rep struct {
		Services []struct {
			Service      string  `json:"service"`
			Availability float64 `json:"availability"`
		} `json:"services"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{}
	for _, f := range rep.Services {
		want[f.Service] = f.Availability
	}
	for _, s := range samples {
		svc := s.Metric["service"]
		w, ok := want[svc]
		if !ok || math.Abs(s.Value-w) > 1e-9 {
			t.Errorf("Prometheus has %s = %v, nines report says %v", svc, s.Value, w)
		}
	}
	if math.Abs(want["playlist"]-(1-7200.0/86400)) > 1e-3 {
		t.Errorf("playlist over 24h = %v, want about %v", want["playlist"], 1-7200.0/86400)
	}
}
