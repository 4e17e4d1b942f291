package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ninesops/nines/alerts"
	"github.com/ninesops/nines/cmd/internal/harness"
)

var testNow = time.Date(2026, 11, 22, 17, 0, 0, 0, time.UTC)

func smallWorkload(t *testing.T, n int) *workload {
	t.Helper()
	w, err := buildWorkload(workloadOptions{Notifications: n, Services: 7, Active: 40, Seed: 3, Now: testNow, Alertmanager: true})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWorkloadIsDeterministic(t *testing.T) {
	t.Parallel()
	a, b := smallWorkload(t, 300), smallWorkload(t, 300)
	for i := range a.steps {
		if !bytes.Equal(a.steps[i].nines, b.steps[i].nines) || !bytes.Equal(a.steps[i].am, b.steps[i].am) {
			t.Fatalf("step %d differs between two builds with one seed", i)
		}
	}
}

func TestWorkloadShape(t *testing.T) {
	t.Parallel()
	w := smallWorkload(t, 2000)
	if len(w.steps) != 2000 {
		t.Fatalf("%d steps, want 2000", len(w.steps))
	}
	for k := range numStepKinds {
		if w.kinds[k] == 0 {
			t.Errorf("no %s notifications", k)
		}
	}
	sizes := map[int]bool{}
	for i, s := range w.steps {
		sizes[s.alerts] = true
		if s.alerts < 1 || s.alerts > 64 {
			t.Errorf("step %d has %d alerts", i, s.alerts)
		}
		if s.prev >= i || (s.prev >= 0 && w.steps[s.prev].group != s.group) {
			t.Fatalf("step %d: previous step %d is not an earlier step of its group", i, s.prev)
		}
		if (s.prev < 0) != (s.kind == stepNew) {
			t.Fatalf("step %d (%s) has previous step %d", i, s.kind, s.prev)
		}
		// Every body is one Alertmanager would send: nines and the API
		// both take it.
		n, err := alerts.Decode(bytes.NewReader(s.nines), 0)
		if err != nil || len(n.Alerts) != s.alerts {
			t.Fatalf("step %d: Decode: %d alerts, %v", i, len(n.Alerts), err)
		}
		var api []map[string]any
		if err := json.Unmarshal(s.am, &api); err != nil || len(api) != s.alerts {
			t.Fatalf("step %d: API body: %d alerts, %v", i, len(api), err)
		}
		for _, a := range n.Alerts {
			if !a.EndsAt.IsZero() && !a.EndsAt.Before(testNow) {
				t.Fatalf("step %d: alert resolved in the future (%v)", i, a.EndsAt)
			}
		}
	}
	if !sizes[1] || !sizes[64] {
		t.Errorf("notification sizes %v: want 1 to 64", sizes)
	}
}

// The generator's expected incidents are what nines' lifecycle makes of
// the script.
func TestWorkloadExpectationsMatchTheLifecycle(t *testing.T) {
	t.Parallel()
	w := smallWorkload(t, 1500)
	rec, err := replay(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	var got []apiIncident
	for _, inc := range rec.latest {
		a := apiIncident{ID: inc.ID, Service: inc.Service, State: string(inc.State), GroupKey: inc.GroupKey}
		for _, al := range inc.Alerts {
			a.Alerts = append(a.Alerts, struct {
				Status string `json:"status"`
			}{string(al.Status)})
		}
		got = append(got, a)
	}
	if c := check(w, got); !c.ok() {
		t.Errorf("check: %s", c)
	}
	// The 2xx-to-visible samples find each group's incident by the ID
	// the script expects: the lifecycle's.
	ids := map[string]string{}
	for i := range w.groups {
		ids[w.groups[i].groupKey] = w.groups[i].id
	}
	for _, inc := range rec.latest {
		if ids[inc.GroupKey] != inc.ID {
			t.Fatalf("group %s: incident %s, the script expects %s", inc.GroupKey, inc.ID, ids[inc.GroupKey])
		}
	}
}

// The storm of new groups: every notification opens a group of its own
// with 64 firing alerts, and the lifecycle makes one incident of each.
func TestStormWorkload(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig([]string{"-storm.notifications", "300", "-services", "7", "-seed", "5"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := buildStorm(cfg, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.steps) != 300 || len(w.groups) != 300 || w.kinds[stepNew] != 300 || w.alerts != 300*64 {
		t.Fatalf("%d steps, %d groups, %d new, %d alerts: want 300 new groups of 64 alerts", len(w.steps), len(w.groups), w.kinds[stepNew], w.alerts)
	}
	keys := map[string]bool{}
	for i, s := range w.steps {
		if s.group != i || s.prev != -1 || s.alerts != 64 || s.firing != 64 {
			t.Fatalf("step %d: group %d, previous %d, %d alerts (%d firing): want a new group of 64 firing alerts", i, s.group, s.prev, s.alerts, s.firing)
		}
		n, err := alerts.Decode(bytes.NewReader(s.nines), 0)
		if err != nil || len(n.Alerts) != 64 || n.Status != "firing" {
			t.Fatalf("step %d: Decode: %d alerts, %s, %v", i, len(n.Alerts), n.Status, err)
		}
		if keys[n.GroupKey] {
			t.Fatalf("step %d: group %s again", i, n.GroupKey)
		}
		keys[n.GroupKey] = true
		var api []map[string]any
		if err := json.Unmarshal(s.am, &api); err != nil || len(api) != 64 {
			t.Fatalf("step %d: API body: %d alerts, %v", i, len(api), err)
		}
	}
	// Apart from the mixed script's groups (and the latency run's).
	mixed := smallWorkload(t, 500)
	for i := range mixed.groups {
		if keys[mixed.groups[i].groupKey] {
			t.Fatalf("group %s in both scripts", mixed.groups[i].groupKey)
		}
	}
	rec, err := replay(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.latest) != 300 {
		t.Errorf("%d incidents, want 300", len(rec.latest))
	}
	// The raw-log bound writes what the webhook logs: one record per
	// notification, each its own.
	recs, err := logRecords(w, testNow)
	if err != nil || len(recs) != 300 {
		t.Fatalf("logRecords: %d, %v", len(recs), err)
	}
	hashes := map[string]bool{}
	for _, r := range recs {
		hashes[r.Hash] = true
	}
	if len(hashes) != 300 {
		t.Errorf("%d distinct records of 300", len(hashes))
	}
}

// A sample counts as visible once GET /api/v1/incidents/{id} shows its
// alerts, no sooner; one never shown counts as a timeout.
func TestVisibilityWaitsForTheIncident(t *testing.T) {
	t.Parallel()
	w := &workload{groups: []expected{{id: "inc-a"}, {id: "inc-b"}}, steps: []step{
		{group: 0, kind: stepNew, alerts: 2, firing: 2},
		{group: 1, kind: stepPartial, alerts: 2, firing: 1},
	}}
	var (
		mu   sync.Mutex
		gets = map[string]int{}
	)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		id := strings.TrimPrefix(r.URL.Path, "/api/v1/incidents/")
		mu.Lock()
		gets[id]++
		n := gets[id]
		mu.Unlock()
		switch {
		case id == "inc-a" && n > 3:
			fmt.Fprint(rw, `{"id":"inc-a","alerts":[{"status":"firing"},{"status":"firing"}]}`)
		case id == "inc-b": // still both firing: the partial resolve is not applied
			fmt.Fprint(rw, `{"id":"inc-b","alerts":[{"status":"firing"},{"status":"firing"}]}`)
		default:
			http.Error(rw, `{"error":"not found"}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	v := newVisibility(srv.Client(), srv.URL, 1)
	v.poll, v.timeout = 10*time.Millisecond, 300*time.Millisecond
	start := time.Now()
	for i := range w.steps {
		v.sample(t.Context(), w, &w.steps[i], start)
	}
	r := v.result()
	if len(r.lat) != 1 || r.lat[0] < 30*time.Millisecond || r.timeouts != 1 || r.errs != 0 {
		t.Fatalf("result %+v: want inc-a visible after its fourth GET, inc-b a timeout", r)
	}
	if r.p99() != v.timeout || r.quantile(0.5) != r.lat[0] {
		t.Errorf("p50 %v, p99 %v: a timeout counts as taking the timeout", r.quantile(0.5), r.p99())
	}
}

func TestCheckFindsMismatches(t *testing.T) {
	t.Parallel()
	w := &workload{groups: []expected{
		{groupKey: "a", service: "s", state: "firing", alerts: 2, firing: 1},
		{groupKey: "b", service: "s", state: "resolved", alerts: 1},
		{groupKey: "c", service: "s", state: "resolved", alerts: 1},
	}}
	firing := struct {
		Status string `json:"status"`
	}{"firing"}
	resolved := struct {
		Status string `json:"status"`
	}{"resolved"}
	incs := []apiIncident{
		{ID: "1", Service: "s", GroupKey: "a", State: "firing", Alerts: []struct {
			Status string `json:"status"`
		}{firing, resolved}},
		{ID: "2", Service: "s", GroupKey: "b", State: "firing", Alerts: []struct {
			Status string `json:"status"`
		}{firing}},
		{ID: "3", Service: "s", GroupKey: "x", State: "firing"},
	}
	c := check(w, incs)
	if c.ok() || c.missing != 1 || c.extra != 1 || c.wrong != 1 || !strings.Contains(c.String(), "MISMATCH") {
		t.Errorf("check = %+v", c)
	}
	if c := check(w, incs[:1]); c.ok() {
		t.Errorf("check passed with incidents missing")
	}
}

// drive sends each group's steps one after the other, in both modes.
func TestDriveKeepsGroupOrder(t *testing.T) {
	t.Parallel()
	w := smallWorkload(t, 400)
	for _, lo := range []loadOptions{{Concurrency: 16}, {Rate: 2000, Duration: 10 * time.Second}} {
		var (
			mu   sync.Mutex
			seen = map[string][]string{} // groupKey → statuses in arrival order
			done = map[string]int{}
		)
		srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			n, err := alerts.Decode(r.Body, 0)
			if err != nil {
				http.Error(rw, err.Error(), http.StatusBadRequest)
				return
			}
			mu.Lock()
			seen[n.GroupKey] = append(seen[n.GroupKey], string(n.Status))
			done[n.GroupKey]++
			mu.Unlock()
			if r.Header.Get("Authorization") != "Bearer t" {
				http.Error(rw, "no", http.StatusUnauthorized)
			}
		}))
		res := drive(context.Background(), newClient(16), target{
			url: srv.URL, body: func(s *step) []byte { return s.nines }, header: http.Header{"Authorization": {"Bearer t"}},
		}, w, lo)
		srv.Close()
		if res.ok != len(w.steps) || res.non2xx != 0 || res.transport != 0 || len(res.lat) != res.ok {
			t.Fatalf("%+v: %d ok, %d non-2xx, %d failed (%s)", lo, res.ok, res.non2xx, res.transport, res.firstErr)
		}
		// Steps of a group arrive in script order: compare with the
		// script's own order of statuses.
		want := map[string][]string{}
		for i := range w.steps {
			n, _ := alerts.Decode(bytes.NewReader(w.steps[i].nines), 0)
			want[n.GroupKey] = append(want[n.GroupKey], string(n.Status))
		}
		for k, v := range want {
			if strings.Join(seen[k], ",") != strings.Join(v, ",") {
				t.Fatalf("%+v: group %s arrived as %v, want %v", lo, k, seen[k], v)
			}
		}
	}
}

func TestScrapeAndDiff(t *testing.T) {
	t.Parallel()
	page := func(n int) string {
		return fmt.Sprintf(`# HELP nines_clickhouse_insert_rows Rows per INSERT, by table.
nines_clickhouse_insert_rows_count{table="incidents"} %d
nines_clickhouse_insert_rows_sum{table="incidents"} %d
nines_clickhouse_flush_duration_seconds_count %d
nines_clickhouse_flush_duration_seconds_sum 0.5
nines_clickhouse_operations_total{op="query_latest"} %d
`, n, 10000*n, n, n)
	}
	var (
		mu  sync.Mutex
		cur string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		rw.Write([]byte(cur))
	}))
	defer srv.Close()
	get := func(n int) samples {
		mu.Lock()
		cur = page(n)
		mu.Unlock()
		s, err := scrape(t.Context(), srv.Client(), srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := diffStore(get(1), get(3), 2*time.Second)
	if s.inserts["incidents"] != 2 || s.rows["incidents"] != 20000 || s.flushes != 2 || s.ops["query_latest"] != 2 {
		t.Errorf("diff = %+v", s)
	}
}

func TestProcStats(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	cpu, rss, err := harness.ProcStats(os.Getpid())
	if err != nil || rss <= 0 || cpu < 0 {
		t.Errorf("ProcStats = %v, %d, %v", cpu, rss, err)
	}
}

func TestThousands(t *testing.T) {
	t.Parallel()
	for in, want := range map[float64]string{0: "0", 7.25: "7.2", 999: "999", 1000: "1,000", 1234567: "1,234,567", 56999.6: "57,000"} {
		if got := thousands(in); got != want {
			t.Errorf("thousands(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestParseConfig(t *testing.T) {
	t.Parallel()
	if _, err := parseConfig([]string{"-phases", "nines,bogus"}, &bytes.Buffer{}); err == nil {
		t.Error("unknown phase accepted")
	}
	if _, err := parseConfig([]string{"-clickhouse.addr", "h:9000"}, &bytes.Buffer{}); err == nil {
		t.Error("-clickhouse.addr without -clickhouse.http-addr accepted")
	}
	c, err := parseConfig(nil, &bytes.Buffer{})
	if err != nil || !c.phase("nines") || !c.phase("latency") || c.concurrency < 1 {
		t.Errorf("defaults: %+v, %v", c, err)
	}
}

// The storm's rows, ratios and targets reach the report: rates over the
// answers, and over answering plus the deriver's catch-up.
func TestReportShowsTheStorm(t *testing.T) {
	t.Parallel()
	cfg, err := parseConfig([]string{"-phases", "storm"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	res := func(ok int, elapsed, derived time.Duration, peak int64) *phaseResult {
		return &phaseResult{
			load:   &loadResult{ok: ok, okAlerts: 64 * ok, elapsed: elapsed, codes: map[int]int{200: ok}},
			server: &usage{pid: 1, PeakRSS: peak}, derived: derived, peakDerived: peak,
		}
	}
	n := res(1000, time.Second, time.Second, 150<<20)
	n.check = &checkResult{expected: 1, found: 1}
	r := &report{cfg: cfg, w: &workload{}, storm: &stormResults{
		am: res(400, time.Second, 0, 0), nines: n, logBound: res(3000, time.Second, 0, 0), decode: res(4000, time.Second, 0, 0),
	}}
	var out bytes.Buffer
	r.print(&out)
	for _, want := range []string{
		"storm: nines → notification log",
		"storm: HTTP + decode bound (in process)",
		"storm of new groups: nines/alertmanager = 2.50, nines/log-insert-bound = 0.33, nines/decode = 0.25; answered and applied: nines/alertmanager = 1.25",
		"met     storm of new groups ≥ 2× Alertmanager",
		"NOT met storm of new groups ≥ 0.5× the raw-log insert bound",
		"met     peak RSS ≤ 200 MB through the storm",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
