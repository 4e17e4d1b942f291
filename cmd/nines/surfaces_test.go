package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/collector"
	"github.com/ninesops/nines/dashboards"
	"github.com/ninesops/nines/incidents"
)

// surfaceSeeds is how many random scenarios TestSurfacesAgree checks.
const surfaceSeeds = 30

// TestSurfacesAgree: one store holding surfaceSeeds random scenarios
// (seeded and reproducible: NINES_TEST_SEED shifts the seeds), each a few
// services with maintenance, impact segments of mixed severities, flaps,
// older versions that must not weigh, cascades, periods marked as not
// downtime and non-default impact weights, written to the store twice in a shuffled order (duplicated and
// reordered writes must not count twice nor let an older version win).
// Every surface then shows the same figures for the last 24 hours: the API
// (availability.Service), /metrics (the collector), `nines report` as a
// client of the server (its JSON to the last bit, its table to the printed
// digit) and the overview dashboard's availability table (its SQL, macros
// expanded, run on ClickHouse).
//
// The same holds for a calendar day across a daylight saving change, in
// the catalog's time zone, with a daily maintenance window at a wall-clock
// time that the change repeats or skips: west of UTC (America/New_York,
// 2026-11-01, a 25-hour day whose 01:30 occurs twice) and east of it
// (Australia/Sydney, 2026-10-04, a 23-hour day without 02:30).
func TestSurfacesAgree(t *testing.T) {
	base := uint64(1)
	if s := os.Getenv("NINES_TEST_SEED"); s != "" {
		var err error
		if base, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("NINES_TEST_SEED: %v", err)
		}
	}
	t.Run("last 24h, Europe/Stockholm", func(t *testing.T) {
		surfacesAgree(t, surfaceCase{
			base: base, seeds: surfaceSeeds, window: "24h", timezone: "Europe/Stockholm",
			now: time.Now().UTC().Truncate(time.Second),
		})
	})
	for _, c := range []struct {
		name, timezone, at string
		day                time.Time
		hours              float64
	}{
		{"previous-day across DST, America/New_York", "America/New_York", "01:30", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 25},
		{"previous-day across DST, Australia/Sydney", "Australia/Sydney", "02:30", time.Date(2026, 10, 4, 0, 0, 0, 0, time.UTC), 23},
	} {
		t.Run(c.name, func(t *testing.T) {
			loc, err := time.LoadLocation(c.timezone)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Date(c.day.Year(), c.day.Month(), c.day.Day()+1, 5, 0, 0, 0, loc)
			w, err := availability.ParseWindow("previous-day", now, loc)
			if err != nil {
				t.Fatal(err)
			}
			if got := w.Duration().Hours(); got != c.hours {
				t.Fatalf("previous-day of %s is %v hours, want %v: not a DST day", now, got, c.hours)
			}
			surfacesAgree(t, surfaceCase{
				base: base + 1000, seeds: surfaceSeeds / 3, window: "previous-day", timezone: c.timezone,
				now: now.UTC(), dailyMaintenanceAt: c.at,
			})
		})
	}
}

// surfaceCase is one run of TestSurfacesAgree: seeds from base, the
// figures over window as of now, in the catalog's time zone.
type surfaceCase struct {
	base               uint64
	seeds              uint64
	window             string
	timezone           string
	now                time.Time
	dailyMaintenanceAt string // "HH:MM": every service also has a daily 1h maintenance window then
}

func surfacesAgree(t *testing.T, sc surfaceCase) {
	ctx := context.Background()
	dsn := chtest.Database(t)
	store := chtest.Open(t, dsn)
	now := sc.now
	loc, err := time.LoadLocation(sc.timezone)
	if err != nil {
		t.Fatal(err)
	}
	w, err := availability.ParseWindow(sc.window, now, loc)
	if err != nil {
		t.Fatal(err)
	}
	from, to := w.From, w.To
	var (
		catYAML  strings.Builder
		changes  []incidents.Change
		services = map[string]uint64{} // service → seed
	)
	fmt.Fprintf(&catYAML, "defaults:\n  slo_target: 99.5\n  timezone: %s\nservices:\n", sc.timezone)
	for seed := sc.base; seed < sc.base+sc.seeds; seed++ {
		changes = append(changes, surfaceScenario(seed, from, to, now, sc.dailyMaintenanceAt, &catYAML, services)...)
	}
	// Every change twice, in a shuffled order.
	rng := rand.New(rand.NewPCG(sc.base, sc.seeds))
	twice := append(slices.Clone(changes), changes...)
	rng.Shuffle(len(twice), func(i, j int) { twice[i], twice[j] = twice[j], twice[i] })
	for half := range 2 {
		part := twice[half*len(changes) : (half+1)*len(changes)]
		if err := store.Write(ctx, part); err != nil {
			t.Fatal(err)
		}
	}
	cat, err := catalog.Parse([]byte(catYAML.String()), "catalog.yml")
	if err != nil {
		t.Fatalf("catalog: %v\n%s", err, catYAML.String())
	}
	weights := availability.ImpactWeights{Outage: ptrTo(0.9), Degraded: ptrTo(0.3), None: ptrTo(0.05)}
	svc, err := availability.New(availability.Options{
		Source: store, Catalog: func() *catalog.Catalog { return cat },
		Config: availability.Config{ImpactWeights: weights}, Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}

	// The API.
	if w, err = svc.ParseWindow(sc.window); err != nil || !w.From.Equal(from) || !w.To.Equal(to) {
		t.Fatalf("the API's %s is %v (%v), want %s–%s", sc.window, w, err, from, to)
	}
	figs, err := svc.All(ctx, w, false)
	if err != nil {
		t.Fatal(err)
	}
	api := map[string]availability.Figure{}
	for _, f := range figs {
		api[f.Service] = f
	}
	for name, seed := range services {
		if _, ok := api[name]; !ok {
			t.Errorf("seed %d: the API has no figure for %s", seed, name)
		}
	}
	check := func(surface, service, what string, got, want float64) {
		t.Helper()
		if math.IsNaN(got) || math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("seed %d, %s: %s %s = %v, the API says %v (replay: NINES_TEST_SEED=%d)",
				services[service], surface, service, what, got, want, services[service])
		}
	}

	// /metrics.
	reg := prometheus.NewRegistry()
	coll, err := collector.New(collector.Options{Figures: svc, Counts: store, Windows: []string{sc.window}, Now: func() time.Time { return now }, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := coll.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	metrics := map[string]map[string]float64{} // metric → service → value
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var service, impact string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "service":
					service = l.GetValue()
				case "impact":
					impact = l.GetValue()
				}
			}
			name := mf.GetName()
			if impact != "" {
				name += "/" + impact
			}
			if metrics[name] == nil {
				metrics[name] = map[string]float64{}
			}
			metrics[name][service] = m.GetGauge().GetValue()
		}
	}
	for name, f := range api {
		check("/metrics", name, "availability", metrics[collector.MetricAvailability][name], f.Availability)
		check("/metrics", name, "own availability", metrics[collector.MetricOwnAvailability][name], f.OwnAvailability)
		check("/metrics", name, "budget left", metrics[collector.MetricErrorBudgetRemaining][name], f.ErrorBudgetRemaining)
		check("/metrics", name, "outage seconds", metrics[collector.MetricDowntime+"/outage"][name], float64(f.DowntimeByImpactSeconds.Outage))
		if f.MTTRSeconds != nil {
			check("/metrics", name, "mttr", metrics[collector.MetricMTTR][name], *f.MTTRSeconds)
		}
	}

	// nines report, as a client of the server.
	apiHandlers := availability.NewAPI(svc, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/availability", apiHandlers.Availability)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	var out, stderr bytes.Buffer
	report := func(args ...string) error {
		return run(ctx, append([]string{"report", "--server.url", srv.URL}, args...), &out, &stderr, nil)
	}
	if err := report("--window", sc.window, "--format", "json"); err != nil {
		t.Fatalf("report: %v (%s)", err, stderr.String())
	}
	var rep availability.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Services {
		want := api[f.Service]
		check("report", f.Service, "availability", f.Availability, want.Availability)
		check("report", f.Service, "own availability", f.OwnAvailability, want.OwnAvailability)
		check("report", f.Service, "downtime", f.DowntimeSeconds, want.DowntimeSeconds)
		check("report", f.Service, "budget left", f.ErrorBudgetRemaining, want.ErrorBudgetRemaining)
		check("report", f.Service, "burn rate 1h", f.BurnRate1h, want.BurnRate1h)
	}
	if len(rep.Services) != len(api) {
		t.Errorf("report lists %d services, the API %d", len(rep.Services), len(api))
	}
	out.Reset()
	if err := report("--window", sc.window); err != nil {
		t.Fatalf("report: %v", err)
	}
	var printed bytes.Buffer
	if err := availability.WriteReport(&printed, availability.NewReport(w, figs), "table", cat.Location()); err != nil {
		t.Fatal(err)
	}
	if out.String() != printed.String() {
		t.Errorf("the report's table differs from the API's figures printed:\n%s\nwant:\n%s", out.String(), printed.String())
	}

	// The overview dashboard's availability table, its SQL run on
	// ClickHouse over the same window.
	ds, err := dashboards.Generate(cat, dashboards.Options{
		Queries: chstore.DashboardQueries{}, Now: now,
		Weights: &dashboards.Weights{Outage: 0.9, Degraded: 0.3, None: 0.05},
	})
	if err != nil {
		t.Fatal(err)
	}
	sql := overviewTableSQL(t, ds[0])
	var names []string
	for name := range api {
		names = append(names, "'"+name+"'")
	}
	sql = strings.NewReplacer(
		"${service:singlequote}", strings.Join(names, ","),
		"$__fromTime", fmt.Sprintf("toDateTime(%d)", from.Unix()),
		"$__toTime", fmt.Sprintf("toDateTime(%d)", to.Unix()),
	).Replace(sql)
	if i := strings.Index(sql, "$"); i >= 0 {
		t.Fatalf("unexpanded %q", sql[i:min(i+30, len(sql))])
	}
	seen := 0
	for _, r := range overviewRows(t, dsn, sql) {
		f, ok := api[r.service]
		if !ok {
			t.Errorf("the dashboard lists %s, the API does not", r.service)
			continue
		}
		seen++
		check("dashboard", r.service, "availability", r.avail, f.Availability)
		check("dashboard", r.service, "own availability", r.own, f.OwnAvailability)
		check("dashboard", r.service, "downtime", r.down, f.DowntimeSeconds)
		check("dashboard", r.service, "incidents", float64(r.n), float64(f.Incidents))
		check("dashboard", r.service, "budget left", r.budget, f.ErrorBudgetRemaining)
	}
	if seen != len(api) {
		t.Errorf("the dashboard shows %d services, the API %d", seen, len(api))
	}
}

func ptrTo[T any](v T) *T { return &v }

// surfaceScenario writes one seed's services into the catalog and returns
// its incidents: all resolved by now, from 6 hours before from to 2 hours
// before to. With dailyAt ("HH:MM") each of the seed's services also has a
// daily maintenance window of an hour then, in the catalog's time zone.
func surfaceScenario(seed uint64, from, to, now time.Time, dailyAt string, catYAML *strings.Builder, services map[string]uint64) []incidents.Change {
	rng := rand.New(rand.NewPCG(seed, seed*0x9e3779b97f4a7c15))
	names := []string{fmt.Sprintf("r%d-a", seed), fmt.Sprintf("r%d-b", seed), fmt.Sprintf("r%d-c", seed)}
	span := int(to.Sub(from) / time.Second)
	for i, name := range names {
		services[name] = seed
		fmt.Fprintf(catYAML, "  - name: %s\n    owner: team-%d\n    slo_target: %s\n", name, seed, []string{"99.9", "99", "95"}[i])
		oneOff := rng.IntN(2) == 0
		daily := dailyAt != ""
		if !oneOff && !daily {
			continue
		}
		catYAML.WriteString("    maintenance:\n")
		if oneOff {
			start := from.Add(time.Duration(rng.IntN(span+2*3600)-2*3600) * time.Second)
			fmt.Fprintf(catYAML, "      - start: %q\n        end: %q\n",
				start.Format(time.RFC3339), start.Add(time.Duration(60+rng.IntN(2*3600))*time.Second).Format(time.RFC3339))
		}
		if daily {
			fmt.Fprintf(catYAML, "      - {schedule: daily, at: %q, duration: 1h}\n", dailyAt)
		}
	}
	changes := chtest.RandomIncidents(rng, fmt.Sprintf("inc-r%d", seed), names, 2+rng.IntN(6), from.Add(-6*time.Hour), to.Add(-2*time.Hour), now)
	// Some versions have periods marked as not downtime (issue 15): only
	// the latest version's count, on every surface alike.
	for i := range changes {
		if inc := changes[i].Incident; inc != nil && len(inc.Periods) > 0 && rng.IntN(3) == 0 {
			inc = inc.Clone()
			start := inc.Periods[0].Start.Add(time.Duration(rng.IntN(3600)) * time.Second)
			x := incidents.Exclusion{From: start, To: start.Add(time.Duration(60+rng.IntN(3600)) * time.Second), By: "alice", Reason: "false positive"}
			if rng.IntN(4) == 0 {
				x.To = time.Time{} // until the incident ends
			}
			inc.Excluded = []incidents.Exclusion{x}
			changes[i].Incident = inc
		}
	}
	return changes
}

// overviewRow is a row of the overview dashboard's availability table.
type overviewRow struct {
	service, owner, dashUID, squadUID string
	tier                              uint32
	slo, avail, own, down, budget     float64
	n                                 int64
}

// overviewRows runs the overview dashboard's availability table (its SQL
// with Grafana's macros expanded) on the ClickHouse of dsn.
func overviewRows(t *testing.T, dsn, sql string) []overviewRow {
	t.Helper()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query(t.Context(), sql)
	if err != nil {
		t.Fatalf("the dashboard's SQL: %v", err)
	}
	defer rows.Close()
	var out []overviewRow
	for rows.Next() {
		var r overviewRow
		if err := rows.Scan(&r.service, &r.owner, &r.tier, &r.slo, &r.avail, &r.own, &r.down, &r.n, &r.budget, &r.dashUID, &r.squadUID); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// overviewTableSQL is the SQL of the overview dashboard's availability
// table (Grafana's macros not yet expanded).
func overviewTableSQL(t *testing.T, overview *dashboards.Dashboard) string {
	t.Helper()
	for _, e := range overview.Panels {
		if p, ok := e.(*dashboards.Panel); ok && strings.HasPrefix(p.Title, "Availability vs SLO") {
			return p.Targets[0].(*dashboards.ClickHouseQuery).RawSQL
		}
	}
	t.Fatal("the overview has no availability table")
	return ""
}
