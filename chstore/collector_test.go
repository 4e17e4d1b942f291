package chstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/collector"
	"github.com/ninesops/nines/collector/promtest"
	"github.com/ninesops/nines/incidents"
)

// collNow is "now" for the collector tests: every figure is computed as of
// this instant, whatever the wall clock says.
var collNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func collAgo(d time.Duration) time.Time { return collNow.Add(-d) }

// collOpened is the "opened" timeline event the lifecycle writes with an
// incident's first version, recording the impact it opened with.
func collOpened(inc *incidents.Incident, impact incidents.Impact, text string) incidents.Event {
	return incidents.Event{
		ID: incidents.EventID(inc.ID, string(incidents.EventOpened)), IncidentID: inc.ID, At: inc.StartedAt,
		Kind: incidents.EventOpened, Actor: incidents.ActorAlertmanager, Text: text, Impact: &impact,
	}
}

// collWrite writes each change in its own Write, in order, as successive
// lifecycle steps would.
func collWrite(t *testing.T, s *testStore, changes ...incidents.Change) {
	t.Helper()
	for _, c := range changes {
		s.write(t, c)
	}
}

func TestIncidentCounts(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))
	ctx := t.Context()

	// Through the real lifecycle: shop opens degraded (a warning), then
	// a critical alert of the same group makes it an outage. It counts as
	// opened degraded, open as an outage.
	svc, err := incidents.NewService(incidents.Options{
		Config: incidents.DefaultConfig(), Store: s, Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return collNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	alert := func(fp, name, severity string, at time.Time) incidents.Alert {
		return incidents.Alert{
			Fingerprint: fp, Status: incidents.AlertFiring, StartsAt: at,
			Labels: map[string]string{"alertname": name, "service": "shop", "severity": severity},
		}
	}
	n := incidents.Notification{
		Receiver: "nines", Status: incidents.AlertFiring, GroupKey: `{}:{alertname="ShopDown"}`,
		Alerts: []incidents.Alert{alert("f1", "ShopSlow", "warning", collAgo(20*time.Minute))}, ReceivedAt: collAgo(20 * time.Minute),
	}
	if err := svc.Ingest(ctx, n); err != nil {
		t.Fatal(err)
	}
	n.Alerts = append(n.Alerts, alert("f2", "ShopDown", "critical", collAgo(10*time.Minute)))
	n.ReceivedAt = collAgo(10 * time.Minute)
	if err := svc.Ingest(ctx, n); err != nil {
		t.Fatal(err)
	}
	// Opened by hand, by someone whose name ends the way the event text
	// does: the impact is a column, not read from the text. Then resolved.
	billing, err := svc.Open(ctx, incidents.OpenRequest{
		Service: "billing", Title: "Invoices late", Impact: incidents.ImpactOutage,
		StartedAt: collAgo(3 * time.Hour), Actor: "bob with impact none",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Resolve(ctx, billing.ID, "bob"); err != nil {
		t.Fatal(err)
	}

	// Written directly: an incident with three versions (the latest has
	// flapped twice and is acknowledged), and one without an "opened"
	// event, which counts with its current impact.
	v1 := &incidents.Incident{
		ID: "inc-flappy", Service: "shop", GroupKey: "g-flappy", Title: "flappy", Impact: incidents.ImpactNone,
		State: incidents.StateFiring, StartedAt: collAgo(time.Hour), UpdatedAt: collAgo(time.Hour), Facts: 1,
		Periods: []incidents.Period{{Start: collAgo(time.Hour)}},
	}
	v2 := v1.Clone()
	v2.Flaps, v2.Facts, v2.UpdatedAt = 1, 2, collAgo(50*time.Minute)
	v3 := v2.Clone()
	v3.Flaps, v3.Facts, v3.UpdatedAt = 2, 3, collAgo(40*time.Minute)
	v3.State, v3.AcknowledgedAt = incidents.StateAcknowledged, collAgo(40*time.Minute)
	noEvent := &incidents.Incident{
		ID: "inc-old", Service: "legacy", GroupKey: "g-old", Title: "old", Impact: incidents.ImpactDegraded,
		State: incidents.StateResolved, StartedAt: collAgo(48 * time.Hour), ResolvedAt: collAgo(47 * time.Hour),
		UpdatedAt: collAgo(47 * time.Hour), Facts: 2,
		Periods: []incidents.Period{{Start: collAgo(48 * time.Hour), End: collAgo(47 * time.Hour)}},
	}
	collWrite(t, s,
		incidents.Change{Incident: v1, Events: []incidents.Event{collOpened(v1, incidents.ImpactNone, "Opened with impact none")}},
		incidents.Change{Incident: v3}, // the latest, before an older one arrives
		incidents.Change{Incident: v2},
		incidents.Change{Incident: noEvent},
	)

	got, err := s.IncidentCounts(ctx)
	if err != nil {
		t.Fatalf("IncidentCounts: %v", err)
	}
	want := []collector.IncidentCount{
		{Service: "billing", Impact: incidents.ImpactOutage, State: incidents.StateResolved, OpenedImpact: incidents.ImpactOutage, Incidents: 1},
		{Service: "legacy", Impact: incidents.ImpactDegraded, State: incidents.StateResolved, OpenedImpact: incidents.ImpactDegraded, Incidents: 1},
		{Service: "shop", Impact: incidents.ImpactNone, State: incidents.StateAcknowledged, OpenedImpact: incidents.ImpactNone, Incidents: 1, Flaps: 2},
		{Service: "shop", Impact: incidents.ImpactOutage, State: incidents.StateFiring, OpenedImpact: incidents.ImpactDegraded, Incidents: 1},
	}
	if g, w := countsString(got), countsString(want); g != w {
		t.Errorf("IncidentCounts:\n got: %s\nwant: %s", g, w)
	}
}

// TestOpenedImpactSurvivesRewording: nines_incidents_opened_total{impact}
// counts by the impact stored with the opened event, not by its text, so
// rewording the timeline (or any text at all) changes no count.
func TestOpenedImpactSurvivesRewording(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))
	var changes []incidents.Change
	for i, text := range []string{
		"Opened with impact outage",
		"Incident began: checkout is down",
		"Opened with impact none", // a text that says otherwise
		"",
	} {
		inc := &incidents.Incident{
			ID: fmt.Sprintf("inc-reworded%d", i), Service: "checkout", GroupKey: fmt.Sprintf("g-%d", i), Title: "down",
			Impact: incidents.ImpactOutage, State: incidents.StateFiring, StartedAt: collAgo(time.Hour),
			UpdatedAt: collAgo(time.Hour), Facts: 1, Periods: []incidents.Period{{Start: collAgo(time.Hour)}},
		}
		later := inc.Clone()
		later.Impact, later.Facts, later.UpdatedAt = incidents.ImpactDegraded, 2, collAgo(30*time.Minute)
		changes = append(changes,
			incidents.Change{Incident: inc, Events: []incidents.Event{collOpened(inc, incidents.ImpactOutage, text)}},
			incidents.Change{Incident: later})
	}
	collWrite(t, s, changes...)
	got, err := s.IncidentCounts(t.Context())
	if err != nil {
		t.Fatalf("IncidentCounts: %v", err)
	}
	want := []collector.IncidentCount{
		{Service: "checkout", Impact: incidents.ImpactDegraded, State: incidents.StateFiring, OpenedImpact: incidents.ImpactOutage, Incidents: 4},
	}
	if g, w := countsString(got), countsString(want); g != w {
		t.Errorf("IncidentCounts:\n got: %s\nwant: %s", g, w)
	}
}

// countsString renders counts sorted, one per line, for comparison.
func countsString(cs []collector.IncidentCount) string {
	var lines []string
	for _, c := range cs {
		lines = append(lines, fmt.Sprintf("%s %s %s opened=%s n=%d flaps=%d", c.Service, c.Impact, c.State, c.OpenedImpact, c.Incidents, c.Flaps))
	}
	slices.Sort(lines)
	return "\n  " + strings.Join(lines, "\n  ")
}

const collCatalog = `
squads:
  - name: payments
  - name: discovery
  - name: web
services:
  - name: checkout
    owner: payments
    slo_target: 99.9
  - name: search
    owner: discovery
    slo_target: 99
  - name: frontend
    owner: web
    slo_target: 99.95
`

// collFill stores the incidents whose figures TestCollectorOnStore
// computes by hand (times before collNow):
//
//	checkout A  outage, opened degraded, periods [50m, 45m) and [30m, 20m)
//	            ago (one flap), acknowledged 48m ago, resolved 20m ago
//	checkout B  outage caused by C, since 10m ago, acknowledged 5m ago
//	search   C  outage opened by hand 15m ago, firing
//	legacy   D  uncatalogued, impact none, [50h, 49h) ago, resolved, no
//	            "opened" event
func collFill(t *testing.T, s *testStore) {
	t.Helper()
	c, err := incidents.Open(incidents.OpenRequest{
		Service: "search", Title: "Search down", Impact: incidents.ImpactOutage,
		StartedAt: collAgo(15 * time.Minute), Actor: "alice",
	}, collAgo(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	c.Incident.UpdatedAt, c.Incident.Facts = collAgo(15*time.Minute), 1

	a1 := &incidents.Incident{
		ID: "inc-a", Service: "checkout", GroupKey: "g-a", Title: "A", Impact: incidents.ImpactDegraded,
		State: incidents.StateFiring, Source: incidents.SourceAlertmanager, StartedAt: collAgo(50 * time.Minute),
		UpdatedAt: collAgo(50 * time.Minute), Facts: 1, Periods: []incidents.Period{{Start: collAgo(50 * time.Minute)}},
	}
	a2 := a1.Clone() // escalated and acknowledged
	a2.Impact, a2.State, a2.AcknowledgedAt = incidents.ImpactOutage, incidents.StateAcknowledged, collAgo(48*time.Minute)
	a2.Facts, a2.UpdatedAt = 2, collAgo(48*time.Minute)
	a3 := a2.Clone() // resolved
	a3.State, a3.ResolvedAt, a3.Facts, a3.UpdatedAt = incidents.StateResolved, collAgo(45*time.Minute), 3, collAgo(45*time.Minute)
	a3.Periods = []incidents.Period{{Start: collAgo(50 * time.Minute), End: collAgo(45 * time.Minute)}}
	a4 := a3.Clone() // reopened: a flap
	a4.State, a4.ResolvedAt, a4.Flaps, a4.Facts, a4.UpdatedAt = incidents.StateFiring, time.Time{}, 1, 4, collAgo(30*time.Minute)
	a4.Periods = append(a4.Periods, incidents.Period{Start: collAgo(30 * time.Minute)})
	a5 := a4.Clone() // resolved again
	a5.State, a5.ResolvedAt, a5.Facts, a5.UpdatedAt = incidents.StateResolved, collAgo(20*time.Minute), 5, collAgo(20*time.Minute)
	a5.Periods[1].End = collAgo(20 * time.Minute)

	b := &incidents.Incident{
		ID: "inc-b", Service: "checkout", GroupKey: "g-b", Title: "B", Impact: incidents.ImpactOutage,
		State: incidents.StateAcknowledged, Source: incidents.SourceAlertmanager, StartedAt: collAgo(10 * time.Minute),
		AcknowledgedAt: collAgo(5 * time.Minute), CausedBy: c.Incident.ID,
		UpdatedAt: collAgo(5 * time.Minute), Facts: 3, Periods: []incidents.Period{{Start: collAgo(10 * time.Minute)}},
	}
	d := &incidents.Incident{
		ID: "inc-d", Service: "legacy", GroupKey: "g-d", Title: "D", Impact: incidents.ImpactNone,
		State: incidents.StateResolved, Source: incidents.SourceAlertmanager, StartedAt: collAgo(50 * time.Hour),
		ResolvedAt: collAgo(49 * time.Hour), UpdatedAt: collAgo(49 * time.Hour), Facts: 2,
		Periods: []incidents.Period{{Start: collAgo(50 * time.Hour), End: collAgo(49 * time.Hour)}},
	}
	collWrite(t, s,
		c,
		incidents.Change{Incident: a1, Events: []incidents.Event{collOpened(a1, incidents.ImpactDegraded, "Opened with impact degraded")}},
		incidents.Change{Incident: a2}, incidents.Change{Incident: a3}, incidents.Change{Incident: a4}, incidents.Change{Incident: a5},
		incidents.Change{Incident: b, Events: []incidents.Event{collOpened(b, incidents.ImpactOutage, "Opened with impact outage")}},
		incidents.Change{Incident: d},
	)
}

// collExpected renders the exposition TestCollectorOnStore expects, from
// the definitions in package availability's documentation applied by hand
// to collFill's incidents.
func collExpected() string {
	avail := func(down, eligible float64) float64 { return 1 - down/eligible }
	budget := func(slo, down, eligible float64) float64 {
		b := (1 - slo) * eligible
		return (b - down) / b
	}
	const h, day = 3600.0, 86400.0
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	p("# HELP nines_incident_flaps_total Times the service's incidents reopened after resolving (flaps), summed over all of its incidents in the store.")
	p("# TYPE nines_incident_flaps_total counter")
	p(`nines_incident_flaps_total{service="checkout"} 1`)
	p(`nines_incident_flaps_total{service="frontend"} 0`)
	p(`nines_incident_flaps_total{service="legacy"} 0`)
	p(`nines_incident_flaps_total{service="search"} 0`)

	p("# HELP nines_incidents_open Incidents not resolved, by current impact and state, for services that have had incidents.")
	p("# TYPE nines_incidents_open gauge")
	open := map[string]int{"checkout/outage/acknowledged": 1, "search/outage/firing": 1} // B and C
	owners := map[string]string{"checkout": "payments", "legacy": "", "search": "discovery"}
	for _, svc := range []string{"checkout", "legacy", "search"} {
		for _, impact := range []string{"degraded", "none", "outage"} {
			for _, state := range []string{"acknowledged", "firing"} {
				p(`nines_incidents_open{impact="%s",owner="%s",service="%s",state="%s"} %d`,
					impact, owners[svc], svc, state, open[svc+"/"+impact+"/"+state])
			}
		}
	}

	p("# HELP nines_incidents_opened_total Incidents ever opened, by the impact they were opened with, counted in the store (so every replica agrees and restarts keep counting).")
	p("# TYPE nines_incidents_opened_total counter")
	opened := map[string]int{"checkout degraded": 1, "checkout outage": 1, "legacy none": 1, "search outage": 1} // A, B, D, C
	for _, svc := range []string{"checkout", "frontend", "legacy", "search"} {
		for _, impact := range []string{"degraded", "none", "outage"} {
			p(`nines_incidents_opened_total{impact="%s",service="%s"} %d`, impact, svc, opened[svc+" "+impact])
		}
	}

	// checkout is down 5m + 10m (A) + 10m (B) = 1500s in both windows,
	// 900s of it its own (A; B was caused by search). search is down 15m
	// (C). frontend and legacy are not down in either window.
	type fig struct {
		service, owner     string
		slo, down, ownDown float64
		mtta, mttr         string // "" when undefined
		outageS, degradedS int
		windowSeconds      float64
		windowName         string
	}
	var figs []fig
	for _, w := range []struct {
		name    string
		seconds float64
	}{{"1h", h}, {"24h", day}} {
		figs = append(figs,
			// MTTA: A in 120s, B in 300s; MTTR: A fired 900s (its two
			// periods, not the gap), B 600s so far (still firing).
			fig{"checkout", "payments", 0.999, 1500, 900, "210", "750", 1500, 0, w.seconds, w.name},
			fig{"frontend", "web", 0.9995, 0, 0, "", "", 0, 0, w.seconds, w.name},
			fig{"legacy", "", 0.999, 0, 0, "", "", 0, 0, w.seconds, w.name},
			// MTTR: C fired 900s so far.
			fig{"search", "discovery", 0.99, 900, 900, "", "900", 900, 0, w.seconds, w.name},
		)
	}
	labels := func(f fig) string {
		return fmt.Sprintf(`owner="%s",service="%s",window="%s"`, f.owner, f.service, f.windowName)
	}
	p("# HELP nines_service_availability_ratio Share of the window's eligible time (outside maintenance) the service was available, downtime weighted by impact; 1 is fully available.")
	p("# TYPE nines_service_availability_ratio gauge")
	for _, f := range figs {
		p("nines_service_availability_ratio{%s} %v", labels(f), avail(f.down, f.windowSeconds))
	}
	p("# HELP nines_service_downtime_seconds Time within the window, outside maintenance, during which the service had incidents of the impact open (union of their periods, unweighted).")
	p("# TYPE nines_service_downtime_seconds gauge")
	for _, f := range figs {
		for _, x := range []struct {
			impact string
			s      int
		}{{"degraded", f.degradedS}, {"none", 0}, {"outage", f.outageS}} {
			p(`nines_service_downtime_seconds{impact="%s",%s} %d`, x.impact, labels(f), x.s)
		}
	}
	p("# HELP nines_service_error_budget_remaining_ratio Share of the window's error budget, (1 - SLO target) times its eligible time, not spent on downtime; negative once overspent.")
	p("# TYPE nines_service_error_budget_remaining_ratio gauge")
	for _, f := range figs {
		p("nines_service_error_budget_remaining_ratio{%s} %v", labels(f), budget(f.slo, f.down, f.windowSeconds))
	}
	p("# HELP nines_service_mtta_seconds Mean time from start to acknowledgement of the incidents that started in the window and were acknowledged before its end; absent when there are none.")
	p("# TYPE nines_service_mtta_seconds gauge")
	for _, f := range figs {
		if f.mtta != "" {
			p("nines_service_mtta_seconds{%s} %s", labels(f), f.mtta)
		}
	}
	p("# HELP nines_service_mttr_seconds Mean firing time up to the window's end (periods only, gaps of reopened incidents excluded) of the incidents that started in the window, resolved or not; absent when there are none.")
	p("# TYPE nines_service_mttr_seconds gauge")
	for _, f := range figs {
		if f.mttr != "" {
			p("nines_service_mttr_seconds{%s} %s", labels(f), f.mttr)
		}
	}
	p("# HELP nines_service_own_availability_ratio Availability over the window not counting downtime caused by upstream services' incidents (caused_by links).")
	p("# TYPE nines_service_own_availability_ratio gauge")
	for _, f := range figs {
		p("nines_service_own_availability_ratio{%s} %v", labels(f), avail(f.ownDown, f.windowSeconds))
	}
	p("# HELP nines_service_slo_target_ratio The service's availability SLO target from the catalog (the default for uncatalogued services).")
	p("# TYPE nines_service_slo_target_ratio gauge")
	for _, f := range figs[:4] {
		p(`nines_service_slo_target_ratio{owner="%s",service="%s"} %v`, f.owner, f.service, f.slo)
	}
	p("# HELP nines_collector_up 1 if the collector's last refresh of the exported figures succeeded, else 0.")
	p("# TYPE nines_collector_up gauge")
	p("nines_collector_up 1")
	return b.String()
}

// collMetricNames are the series TestCollectorOnStore compares: all but the
// collector's timings.
var collMetricNames = []string{
	collector.MetricAvailability, collector.MetricOwnAvailability, collector.MetricSLOTarget,
	collector.MetricErrorBudgetRemaining, collector.MetricDowntime, collector.MetricMTTR, collector.MetricMTTA,
	collector.MetricIncidentsOpen, collector.MetricIncidentsOpened, collector.MetricIncidentFlaps, collector.MetricUp,
}

// newStoreCollector builds the collector over s as nines serve does:
// availability.Service over the store for the figures, the store itself
// for the counts.
func newStoreCollector(t *testing.T, s *chstore.Store, now func() time.Time) (*collector.Collector, *availability.Service, *prometheus.Registry) {
	t.Helper()
	cat, err := catalog.Parse([]byte(collCatalog), "catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	figures, err := availability.New(availability.Options{
		Source: s, Catalog: func() *catalog.Catalog { return cat }, Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c, err := collector.New(collector.Options{
		Figures: figures, Counts: s, Windows: []string{"1h", "24h"}, Now: now, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, figures, reg
}

func TestCollectorOnStore(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))
	collFill(t, s)
	c, _, _ := newStoreCollector(t, s.Store, func() time.Time { return collNow })
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(collExpected()), collMetricNames...); err != nil {
		t.Error(err)
	}
}

// TestCollectorPrometheusOnStore: with the incidents of collFill in
// ClickHouse, a real Prometheus scrapes the collector while it runs, and
// nines_service_availability_ratio as Prometheus answers it equals what
// availability.Service computes directly (what nines' report and API show).
func TestCollectorPrometheusOnStore(t *testing.T) {
	t.Parallel()
	promtest.Prometheus(t) // skip early without it
	s := openStore(t, chtest.Database(t))
	collFill(t, s)
	c, figures, reg := newStoreCollector(t, s.Store, func() time.Time { return collNow })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(srv.Close)
	base := promtest.Start(t, strings.TrimPrefix(srv.URL, "http://"))

	want := map[string]float64{} // service/window → availability
	for _, name := range c.Windows() {
		w, err := figures.ParseWindow(name)
		if err != nil {
			t.Fatal(err)
		}
		figs, err := figures.All(t.Context(), w, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range figs {
			want[f.Service+"/"+name] = f.Availability
		}
	}
	down, hour := 1500.0, 3600.0 // variables: constant arithmetic would round differently
	if len(want) != 4*2 || want["checkout/1h"] != 1-down/hour {
		t.Fatalf("figures computed directly: %v, want 4 services × 2 windows, checkout at 1 - 1500/3600 over 1h", want)
	}
	got := promtest.Await(t, base, collector.MetricAvailability, len(want))
	for _, smp := range got {
		key := smp.Metric["service"] + "/" + smp.Metric["window"]
		if w, ok := want[key]; !ok || smp.Value != w {
			t.Errorf("%s: Prometheus has %v, availability.Service computes %v", key, smp.Value, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Prometheus has %d availability series, want %d", len(got), len(want))
	}
}

// TestCollectorStoreDown cuts the connection to ClickHouse after a good
// refresh: the next refresh fails, nines_collector_up drops to 0, and the
// scrape still serves the last good values, whose age grows.
func TestCollectorStoreDown(t *testing.T) {
	t.Parallel()
	dsn := chtest.Database(t)
	collFill(t, openStore(t, dsn))

	addr := chtest.Addr(t)
	p := newProxy(t, addr)
	proxied := strings.Replace(dsn, addr, p.ln.Addr().String(), 1)
	s := openStore(t, proxied)
	now := collNow
	c, _, _ := newStoreCollector(t, s.Store, func() time.Time { return now })
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}

	p.close()
	now = now.Add(2 * time.Minute)
	if err := c.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh with ClickHouse gone succeeded")
	}
	// The figures are those of the good refresh: collNow's.
	stale := strings.Replace(collExpected(), "\nnines_collector_up 1\n", "\nnines_collector_up 0\n", 1)
	if err := testutil.CollectAndCompare(c, strings.NewReader(stale), collMetricNames...); err != nil {
		t.Error(err)
	}
	want := fmt.Sprintf(`# HELP nines_collector_data_age_seconds Age of the exported figures: time since the start of the refresh that computed them; absent before the first.
# TYPE nines_collector_data_age_seconds gauge
nines_collector_data_age_seconds 120
# HELP nines_collector_last_success_timestamp_seconds Start of the last successful refresh of the exported figures, in seconds since the Unix epoch; absent before the first.
# TYPE nines_collector_last_success_timestamp_seconds gauge
nines_collector_last_success_timestamp_seconds %v
# HELP nines_collector_refresh_failures_total Refreshes of the exported figures that failed; the last good values are served meanwhile.
# TYPE nines_collector_refresh_failures_total counter
nines_collector_refresh_failures_total 1
`, float64(collNow.Unix()))
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), collector.MetricDataAge, collector.MetricLastSuccess,
		"nines_collector_refresh_failures_total"); err != nil {
		t.Error(err)
	}
}
