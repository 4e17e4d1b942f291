package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

// TestMetricsCarryDORA: /metrics carries, per service and collector
// window, the DORA figures GET /api/v1/dora answers for that window.
func TestMetricsCarryDORA(t *testing.T) {
	catalog := writeFile(t, t.TempDir(), "catalog.yml", `
services:
  - {name: checkout, owner: payments, slo_target: 99.9}
  - {name: search, owner: discovery, slo_target: 99.5}
`)
	n := startNines(t, chtest.Database(t), "--catalog.file="+catalog,
		"--collector.windows=1h,24h", "--collector.refresh-interval=200ms")
	doraScenario(t, n)

	// What the API says, as the series /metrics should carry.
	want := map[string]float64{}
	for _, window := range []string{"1h", "24h"} {
		code, b := n.do("GET", "/api/v1/dora?window="+window, "", nil)
		if code != http.StatusOK {
			t.Fatalf("dora: %d %s", code, b)
		}
		var page struct {
			Services []struct {
				Service              string   `json:"service"`
				Squad                string   `json:"squad"`
				DeploymentsPerDay    float64  `json:"deployment_frequency_per_day"`
				ChangeFailureRate    *float64 `json:"change_failure_rate"`
				RollbackRate         *float64 `json:"rollback_rate"`
				TimeToRestoreSeconds *float64 `json:"time_to_restore_seconds"`
			} `json:"services"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Services {
			l := fmt.Sprintf(`{owner=%q,service=%q,window=%q}`, s.Squad, s.Service, window)
			want["nines_service_deployment_frequency_per_day"+l] = s.DeploymentsPerDay
			if s.ChangeFailureRate != nil {
				want["nines_service_change_failure_ratio"+l] = *s.ChangeFailureRate
			}
			if s.RollbackRate != nil {
				want["nines_service_rollback_ratio"+l] = *s.RollbackRate
			}
			if s.TimeToRestoreSeconds != nil {
				want["nines_service_time_to_restore_seconds"+l] = *s.TimeToRestoreSeconds
			}
		}
	}
	// The scenario is not empty: checkout's 24h figures are all there.
	for name, v := range map[string]float64{
		`nines_service_deployment_frequency_per_day{owner="payments",service="checkout",window="24h"}`: 3,
		`nines_service_change_failure_ratio{owner="payments",service="checkout",window="24h"}`:         1.0 / 3,
		`nines_service_deployment_frequency_per_day{owner="payments",service="checkout",window="1h"}`:  48,
		`nines_service_change_failure_ratio{owner="payments",service="checkout",window="1h"}`:          0.5,
		`nines_service_rollback_ratio{owner="discovery",service="search",window="24h"}`:                1,
	} {
		if got, ok := want[name]; !ok || got != v {
			t.Fatalf("the API says %s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	if ttr := want[`nines_service_time_to_restore_seconds{owner="payments",service="checkout",window="1h"}`]; ttr < 30*60 || ttr > 31*60 {
		t.Fatalf("the API's time to restore is %v s, want about 1800", ttr)
	}

	// The collector refreshes every 200ms: poll until it has seen them.
	var diff []string
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, body := n.do("GET", "/metrics", "", nil)
		got := doraSeries(t, string(body))
		diff = diff[:0]
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				diff = append(diff, fmt.Sprintf("%s: /metrics %v (present %v), API %v", k, g, ok, v))
			}
		}
		for k, g := range got {
			if _, ok := want[k]; !ok {
				diff = append(diff, fmt.Sprintf("%s: /metrics %v, not in the API", k, g))
			}
		}
		if len(diff) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(diff) > 0 {
		t.Errorf("/metrics and GET /api/v1/dora differ:\n%s", strings.Join(diff, "\n"))
	}
}

// doraScenario records deploys of checkout and search and a rollback of
// search, and opens and resolves an incident of checkout half an hour
// long.
func doraScenario(t *testing.T, n *nines) {
	t.Helper()
	now := time.Now().UTC()
	for _, c := range []map[string]any{
		{"service": "checkout", "kind": "deploy", "version": "v1", "status": "succeeded", "at": now.Add(-3 * time.Hour)},
		{"service": "checkout", "kind": "deploy", "version": "v2", "status": "succeeded", "at": now.Add(-50 * time.Minute)},
		{"service": "checkout", "kind": "deploy", "version": "v3", "status": "failed", "at": now.Add(-40 * time.Minute)},
		{"service": "search", "kind": "deploy", "version": "v9", "status": "succeeded", "at": now.Add(-2 * time.Hour)},
		{"service": "search", "kind": "rollback", "version": "v8", "status": "succeeded", "at": now.Add(-90 * time.Minute)},
	} {
		if code, b := n.do("POST", "/api/v1/changes", n.apiToken, c); code/100 != 2 {
			t.Fatalf("record %v: %d %s", c, code, b)
		}
	}
	// An incident restored in both windows: a time to restore.
	code, b := n.do("POST", "/api/v1/incidents", n.apiToken, map[string]any{
		"service": "checkout", "title": "Checkout errors", "impact": "outage",
		"started_at": now.Add(-30 * time.Minute).Format(time.RFC3339Nano), "actor": "alice",
	})
	if code != http.StatusCreated {
		t.Fatalf("open: %d %s", code, b)
	}
	var inc struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &inc); err != nil {
		t.Fatal(err)
	}
	if code, b := n.do("POST", "/api/v1/incidents/"+inc.ID+"/resolve", n.apiToken, map[string]string{"actor": "alice"}); code != http.StatusOK {
		t.Fatalf("resolve: %d %s", code, b)
	}
	n.sync()
}

// doraSeries reads the DORA series of a /metrics exposition.
func doraSeries(t *testing.T, metrics string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, "nines_service_deployment_frequency_per_day{") &&
			!strings.HasPrefix(line, "nines_service_change_failure_ratio{") &&
			!strings.HasPrefix(line, "nines_service_rollback_ratio{") &&
			!strings.HasPrefix(line, "nines_service_time_to_restore_seconds{") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestDigestCarriesDORA: the Slack digest (here `nines report --post`;
// the scheduled one is built the same way) lists each service's delivery
// figures of the last 7 days as GET /api/v1/dora?window=7d answers them
// for the same data.
func TestDigestCarriesDORA(t *testing.T) {
	dir := t.TempDir()
	catalog := writeFile(t, dir, "catalog.yml", `
services:
  - {name: checkout, owner: payments, slo_target: 99.9}
  - {name: search, owner: discovery, slo_target: 99.5}
`)
	dsn := chtest.Database(t)
	n := startNines(t, dsn, "--catalog.file="+catalog)
	doraScenario(t, n)

	code, b := n.do("GET", "/api/v1/dora?window=7d", "", nil)
	if code != http.StatusOK {
		t.Fatalf("dora: %d %s", code, b)
	}
	var page struct {
		Services []struct {
			Service              string   `json:"service"`
			Deployments          int      `json:"deployments"`
			DeploymentsPerDay    float64  `json:"deployment_frequency_per_day"`
			ChangeFailureRate    *float64 `json:"change_failure_rate"`
			RollbackRate         *float64 `json:"rollback_rate"`
			Restored             int      `json:"incidents_restored"`
			TimeToRestoreSeconds *float64 `json:"time_to_restore_seconds"`
		} `json:"services"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Services) != 2 {
		t.Fatalf("the API has DORA figures of %d services, want 2: %s", len(page.Services), b)
	}

	hook := &webhookSink{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	args := []string{"report", "--post", "--clickhouse.dsn=" + dsn, "--catalog.file=" + catalog,
		"--slack.webhook-url-file=" + writeFile(t, dir, "hook", srv.URL+"/hook\n"), "--log.level=error"}
	if err := run(context.Background(), args, &stdout, &stderr, nil); err != nil {
		t.Fatalf("report --post: %v\n%s", err, stderr.String())
	}
	digest := hook.String()
	for _, s := range page.Services {
		line := fmt.Sprintf("*%s* — %d deploy", s.Service, s.Deployments)
		if s.Deployments != 1 {
			line += "s"
		}
		line += fmt.Sprintf(" (%.2f a day)", s.DeploymentsPerDay)
		if s.ChangeFailureRate != nil {
			line += fmt.Sprintf(" · change failure rate %.1f%%", *s.ChangeFailureRate*100)
		}
		if s.RollbackRate != nil {
			line += fmt.Sprintf(" · rollback rate %.1f%%", *s.RollbackRate*100)
		}
		if s.TimeToRestoreSeconds != nil {
			line += fmt.Sprintf(" · time to restore %s (%d incident",
				incidents.FormatDuration(time.Duration(math.Round(*s.TimeToRestoreSeconds))*time.Second), s.Restored)
		}
		if !strings.Contains(digest, line) {
			t.Errorf("the digest lacks the API's figures of %s:\n%s\nin\n%s", s.Service, line, digest)
		}
	}
	if !strings.Contains(digest, "*search* — 1 deploy (0.14 a day) · change failure rate 100.0% · rollback rate 100.0%") {
		t.Errorf("the digest lacks search's figures: %s", digest)
	}
}
