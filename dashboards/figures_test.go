package dashboards

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

// TestPanelsShowTheAPIFigures runs the panels' SQL, macros expanded, over
// random scenarios (seeded; NINES_TEST_SEED replays one) and requires
// every figure to equal the API's (availability.Service on the same store,
// catalog and weights) for the same services and range: maintenance
// (one-off and recurring) left out, non-default impact weights, impact
// segments of mixed severities, older versions that must not weigh,
// cascades, and days split in the catalog's time zone.
func TestPanelsShowTheAPIFigures(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if s := os.Getenv("NINES_TEST_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("NINES_TEST_SEED: %v", err)
		}
		seeds = []uint64{seed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			sc := newScenario(t, seed)
			dsn := chtest.Database(t)
			st := chtest.Open(t, dsn)
			if err := st.Write(context.Background(), sc.changes); err != nil {
				t.Fatalf("write incidents: %v", err)
			}
			sc.check(t, &chEnv{conn: connect(t, dsn), now: sc.now}, st)
		})
	}
}

// scenario is one random world: a catalog with maintenance in a time
// zone, weights, incidents, and a past 24-hour window.
type scenario struct {
	seed     uint64
	cat      *catalog.Catalog
	weights  Weights
	services []string // catalogued first; the last one is not catalogued
	changes  []incidents.Change
	from, to time.Time
	now      time.Time
}

func newScenario(t *testing.T, seed uint64) *scenario {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	now := time.Now().UTC().Truncate(time.Second)
	sc := &scenario{seed: seed, now: now}
	sc.from = now.Truncate(time.Hour).Add(-time.Duration(72+rng.IntN(24)) * time.Hour).Add(time.Duration(rng.IntN(3600)) * time.Second)
	sc.to = sc.from.Add(24 * time.Hour)
	zones := []string{"UTC", "America/New_York", "Europe/Stockholm", "Asia/Kolkata", "Pacific/Auckland"}
	tz := zones[rng.IntN(len(zones))]
	sc.weights = Weights{Outage: []float64{1, 0.9}[rng.IntN(2)], Degraded: []float64{0, 0.3, 0.5}[rng.IntN(3)], None: []float64{0, 0.1}[rng.IntN(2)]}
	sc.services = []string{fmt.Sprintf("s%d-a", seed), fmt.Sprintf("s%d-b", seed), fmt.Sprintf("s%d-c", seed), fmt.Sprintf("s%d-legacy", seed)}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	var y strings.Builder
	fmt.Fprintf(&y, "defaults:\n  slo_target: 99.5\n  timezone: %s\nservices:\n", tz)
	for i, name := range sc.services[:3] {
		fmt.Fprintf(&y, "  - name: %s\n    owner: team\n    slo_target: %s\n", name, []string{"99.9", "99", "95"}[i])
		if i == 2 {
			fmt.Fprintf(&y, "    dependencies: [%s, %s]\n", sc.services[0], sc.services[1])
		}
		y.WriteString("    maintenance:\n")
		for range 1 + rng.IntN(2) {
			start := sc.from.Add(time.Duration(rng.IntN(30*3600)-3*3600) * time.Second)
			end := start.Add(time.Duration(60+rng.IntN(3*3600)) * time.Second)
			fmt.Fprintf(&y, "      - start: %q\n        end: %q\n", start.In(loc).Format(time.RFC3339), end.In(loc).Format(time.RFC3339))
		}
		if rng.IntN(2) == 0 {
			fmt.Fprintf(&y, "      - schedule: daily\n        at: \"%02d:%02d\"\n        duration: %dm\n", rng.IntN(24), rng.IntN(60), 10+rng.IntN(90))
		}
	}
	cat, err := catalog.Parse([]byte(y.String()), "catalog.yml")
	if err != nil {
		t.Fatalf("catalog: %v\n%s", err, y.String())
	}
	sc.cat = cat
	sc.changes = chtest.RandomIncidents(rng, fmt.Sprintf("inc-%d", seed), sc.services, 14, sc.from.Add(-4*time.Hour), sc.to.Add(2*time.Hour), sc.to.Add(5*time.Hour))
	return sc
}

// api is the availability service over the scenario's store.
func (sc *scenario) api(t *testing.T, src availability.Source) *availability.Service {
	t.Helper()
	w := sc.weights
	svc, err := availability.New(availability.Options{
		Source: src, Catalog: func() *catalog.Catalog { return sc.cat },
		Config: availability.Config{ImpactWeights: availability.ImpactWeights{Outage: &w.Outage, Degraded: &w.Degraded, None: &w.None}},
		Now:    func() time.Time { return sc.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func (sc *scenario) check(t *testing.T, env *chEnv, st *chstore.Store) {
	t.Helper()
	ctx := context.Background()
	api := sc.api(t, st)
	win, err := availability.WindowBetween(sc.from, sc.to)
	if err != nil {
		t.Fatal(err)
	}
	figs, err := api.All(ctx, win, false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]availability.Figure{}
	for _, f := range figs {
		want[f.Service] = f
	}
	b, err := newBuilder(sc.cat, withQueries(Options{Weights: &sc.weights, Now: sc.now}))
	if err != nil {
		t.Fatal(err)
	}
	near := func(what string, got any, want float64) {
		t.Helper()
		g := toFloat(got)
		if math.IsNaN(g) || math.Abs(g-want) > 1e-9*math.Max(1, math.Abs(want)) {
			t.Errorf("seed %d: %s = %v, the API says %v", sc.seed, what, got, want)
		}
	}
	run := func(what, sql string, services ...string) *result {
		t.Helper()
		res := env.run(t, what, sql, map[string][]string{"service": services, "squad": {allValue}}, sc.from, sc.to, time.Hour)
		if res == nil {
			t.FailNow()
		}
		return res
	}

	table := run("availability table", b.availabilityTableSQL(true), sc.services...)
	for _, name := range sc.services {
		f, ok := want[name]
		row := table.row("service", name)
		if !ok || row == nil {
			if ok != (row != nil) {
				t.Errorf("seed %d: %s: API figure %v, table row %v", sc.seed, name, ok, row)
			}
			continue
		}
		near(name+" availability", row["availability"], f.Availability)
		near(name+" own availability", row["own_availability"], f.OwnAvailability)
		near(name+" downtime", row["downtime_seconds"], f.DowntimeSeconds)
		near(name+" incidents", row["incident_count"], float64(f.Incidents))
		near(name+" error budget left", row["error_budget_remaining"], f.ErrorBudgetRemaining)
	}
	burn := run("burn rates", b.burnRateSQL(), sc.services...)
	for _, name := range sc.services {
		f := want[name]
		if row := burn.row("service", name); row != nil {
			near(name+" burn rate 1h", row["burn_rate_1h"], f.BurnRate1h)
			near(name+" burn rate 24h", row["burn_rate_window"], f.BurnRate24h)
		} else if f.BurnRate24h > 0 {
			t.Errorf("seed %d: %s burns at %v over 24h, but has no burn rate row", sc.seed, name, f.BurnRate24h)
		}
	}
	for _, s := range b.services {
		f := want[s.Name]
		stat := run(s.Name+" stat", b.availabilitySQL(true), s.Name)
		near(s.Name+" stat availability", stat.rows[0][0], f.Availability)
		near(s.Name+" stat own availability", stat.rows[0][1], f.OwnAvailability)
		budget := run(s.Name+" budget", b.errorBudgetSQL(s.SLOTarget), s.Name)
		near(s.Name+" budget left", budget.rows[0][0], f.ErrorBudgetRemaining)
		near(s.Name+" budget downtime", budget.rows[0][1], f.DowntimeSeconds)
		near(s.Name+" budget allowed", budget.rows[0][2], f.ErrorBudgetSeconds)
		down := run(s.Name+" burndown", b.burndownSQL(s), s.Name)
		if n := len(down.rows); n == 0 {
			t.Errorf("seed %d: %s burndown: no rows", sc.seed, s.Name)
		} else {
			near(s.Name+" burndown at the window's end", down.rows[n-1][1], f.ErrorBudgetRemaining)
		}
		// MTTA and MTTR, the whole window as one interval.
		mtt := env.run(t, s.Name+" mtta/mttr", b.mttaMTTRSQL(), map[string][]string{"service": {s.Name}}, sc.from, sc.to, 1<<30*time.Second)
		switch {
		case mtt == nil:
		case len(mtt.rows) == 0:
			if f.MTTRSeconds != nil {
				t.Errorf("seed %d: %s: no MTTR row, the API says %v", sc.seed, s.Name, *f.MTTRSeconds)
			}
		case f.MTTRSeconds == nil:
			t.Errorf("seed %d: %s: MTTR row %v, the API says none", sc.seed, s.Name, mtt.rows[0])
		default:
			near(s.Name+" mttr", mtt.rows[0][2], *f.MTTRSeconds)
			if f.MTTASeconds != nil {
				near(s.Name+" mtta", mtt.rows[0][1], *f.MTTASeconds)
			} else if mtt.rows[0][1] != (*float64)(nil) {
				t.Errorf("seed %d: %s: MTTA %v, the API says none", sc.seed, s.Name, mtt.rows[0][1])
			}
		}
		days, err := api.Daily(ctx, s.Name, sc.from.In(sc.cat.Location()), sc.to.In(sc.cat.Location()))
		if err != nil {
			t.Fatal(err)
		}
		perDay := run(s.Name+" per day", b.downtimePerDaySQL(s), s.Name)
		got := map[int64]float64{}
		for _, r := range perDay.rows {
			got[r[0].(time.Time).Unix()] = toFloat(r[1])
		}
		for _, d := range days {
			near(fmt.Sprintf("%s downtime on %s", s.Name, d.Date), got[d.From.Unix()], d.DowntimeSeconds)
			delete(got, d.From.Unix())
		}
		for day, v := range got {
			if v != 0 {
				t.Errorf("seed %d: %s: downtime %v on a day starting %v that the API does not list", sc.seed, s.Name, v, time.Unix(day, 0).UTC())
			}
		}
		if len(s.upstream) > 0 {
			up := run(s.Name+" upstream", b.upstreamSQL(s), s.Name)
			caused := map[string]float64{}
			for _, u := range f.Upstream {
				caused[u.Service] = u.DowntimeSeconds
			}
			for _, dep := range s.upstream {
				row := up.row("service", dep)
				if row == nil {
					t.Errorf("seed %d: %s: no upstream row for %s", sc.seed, s.Name, dep)
					continue
				}
				near(s.Name+" upstream "+dep+" availability", row["availability"], want[dep].Availability)
				near(s.Name+" downtime caused by "+dep, row["caused_downtime_seconds"], caused[dep])
			}
		}
	}
	if t.Failed() {
		t.Logf("replay with NINES_TEST_SEED=%d", sc.seed)
	}
}
