package dashboards

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

// These tests run every ClickHouse query of the generated dashboards, with
// variables and macros expanded as Grafana and the plugin expand them,
// against the test ClickHouse with nines' schema and a few incidents, and
// check the columns each panel expects. Then they check the availability
// figures themselves against hand-computed ones.

// chEnv is a migrated test database holding the fixture incidents.
type chEnv struct {
	conn chdriver.Conn
	now  time.Time
	// t0 and t1 bound the 24 hours, ending two hours ago, for which
	// fixture figures were computed by hand.
	t0, t1 time.Time
}

func newCHEnv(t *testing.T) *chEnv {
	t.Helper()
	dsn := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	store, err := chstore.Open(ctx, chstore.Options{DSN: dsn, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer store.Close()
	now := time.Now().UTC().Truncate(time.Second)
	env := &chEnv{now: now, t1: now.Truncate(time.Hour).Add(-2 * time.Hour)}
	env.t0 = env.t1.Add(-24 * time.Hour)
	for _, batch := range env.fixtures() {
		if err := store.Write(ctx, batch); err != nil {
			t.Fatalf("write fixture incidents: %v", err)
		}
	}
	for _, c := range env.changes() {
		if err := store.RecordChange(ctx, c); err != nil {
			t.Fatalf("record fixture change: %v", err)
		}
	}
	env.conn = connect(t, dsn)
	return env
}

// changes are the fixture changes, versions in the order recorded: db's
// first deploy is recorded started, then succeeded.
func (e *chEnv) changes() []changes.Change {
	at := func(h float64) time.Time { return e.t0.Add(time.Duration(h * float64(time.Hour))) }
	rec := e.t0
	c := func(id, service string, kind changes.Kind, version, commit string, status changes.Status, rollout float64, h float64) changes.Change {
		rec = rec.Add(time.Second)
		return changes.Change{ID: id, Service: service, Kind: kind, Version: version, Commit: commit, Status: status,
			Rollout: rollout, At: at(h), RecordedAt: rec}
	}
	first := c("c-deploy-1", "db", changes.KindDeploy, "v1.2.3", "", changes.StatusStarted, 1, 1)
	first.Environment, first.Actor = "prod", "alice"
	done := first
	done.Status, done.RecordedAt = changes.StatusSucceeded, rec.Add(time.Minute)
	rollback := c("c-rollback", "db", changes.KindRollback, "v1.2.2", "", changes.StatusSucceeded, 1, 3.5)
	rollback.Description = "back to v1.2.2"
	return []changes.Change{
		first, done,
		c("c-deploy-2", "db", changes.KindDeploy, "", "0123456789abcdef0123", changes.StatusFailed, 0.05, 3),
		rollback,
		c("c-flag", "db", changes.KindFeatureFlag, "new-cache", "", changes.StatusSucceeded, 1, 5),
		c("c-config", "db", changes.KindConfig, "v9", "", changes.StatusSucceeded, 1, 6),
		c("c-api", "api", changes.KindDeploy, "v7", "", changes.StatusSucceeded, 1, 2),
		c("c-old", "db", changes.KindDeploy, "v1.0.0", "", changes.StatusSucceeded, 1, -2),
	}
}

// connect opens a connection to the test database dsn names, closed at
// the end of the test.
func connect(t *testing.T, dsn string) chdriver.Conn {
	t.Helper()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("parse dsn: %v", err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// fixture describes one incident version.
type fixture struct {
	id, service string
	impact      incidents.Impact
	periods     [][2]time.Time // zero end: still firing
	causedBy    string
	acked       time.Time
	facts       uint32
}

func (f fixture) change() incidents.Change {
	inc := &incidents.Incident{
		ID: f.id, Service: f.service, GroupKey: "{}:" + f.id, Title: f.service + " " + f.id,
		Impact: f.impact, State: incidents.StateResolved, Source: incidents.SourceAlertmanager,
		StartedAt: f.periods[0][0], AcknowledgedAt: f.acked, CausedBy: f.causedBy, Facts: f.facts,
	}
	for _, p := range f.periods {
		inc.Periods = append(inc.Periods, incidents.Period{Start: p[0], End: p[1]})
		inc.UpdatedAt = p[0]
		if p[1].IsZero() {
			inc.State = incidents.StateFiring
		} else {
			inc.ResolvedAt, inc.UpdatedAt = p[1], p[1]
		}
	}
	if inc.State == incidents.StateFiring {
		inc.ResolvedAt = time.Time{}
		if !f.acked.IsZero() {
			inc.State = incidents.StateAcknowledged
		}
	}
	if len(inc.Periods) > 1 {
		inc.Flaps = len(inc.Periods) - 1
	}
	return incidents.Change{Incident: inc}
}

// fixtures are written in two batches so that incidents have an older
// version that the dashboards' SQL must ignore.
func (e *chEnv) fixtures() [][]incidents.Change {
	t0, t1, now := e.t0, e.t1, e.now
	at := func(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }
	var none time.Time
	first := []fixture{
		// d1's first version: degraded and still firing. Its second
		// version (below) is a resolved outage.
		{id: "d1", service: "db", impact: incidents.ImpactDegraded, periods: [][2]time.Time{{at(1), none}}, facts: 1},
	}
	second := []fixture{
		{id: "d1", service: "db", impact: incidents.ImpactOutage, periods: [][2]time.Time{{at(1), at(2)}}, facts: 2},
		{id: "d2", service: "db", impact: incidents.ImpactOutage, periods: [][2]time.Time{{at(1.5), at(3)}}, facts: 1},
		{id: "d3", service: "db", impact: incidents.ImpactDegraded, periods: [][2]time.Time{{at(5), at(6)}}, facts: 1},
		{id: "d4", service: "db", impact: incidents.ImpactOutage, periods: [][2]time.Time{{at(-1), at(0.5)}}, facts: 1},
		{id: "d5", service: "db", impact: incidents.ImpactOutage, periods: [][2]time.Time{{at(10), at(11)}}, causedBy: "a1", facts: 1},
		{id: "d6", service: "db", impact: incidents.ImpactOutage, periods: [][2]time.Time{{at(20), at(20 + 1.0/6)}, {at(20 + 2.0/6), at(20.5)}}, facts: 2},
		{id: "d7", service: "db", impact: incidents.ImpactOutage, periods: [][2]time.Time{{t1.Add(10 * time.Minute), t1.Add(20 * time.Minute)}}, facts: 1},
		{id: "d8", service: "db", impact: incidents.ImpactNone, periods: [][2]time.Time{{at(12), at(13)}}, facts: 1},
		{id: "a1", service: "auth", impact: incidents.ImpactOutage, periods: [][2]time.Time{{at(10), at(10.5)}}, facts: 1},
		{id: "p1", service: "api", impact: incidents.ImpactOutage, periods: [][2]time.Time{{at(10), at(11)}}, causedBy: "a1", facts: 1},
		{id: "p2", service: "api", impact: incidents.ImpactOutage, periods: [][2]time.Time{{now.Add(-20 * time.Minute), none}}, acked: now.Add(-10 * time.Minute), facts: 1},
		// The example catalog's services, and one the catalogs lack.
		{id: "c1", service: "checkout", impact: incidents.ImpactOutage, periods: [][2]time.Time{{at(2), at(4)}}, causedBy: "s1", facts: 1},
		{id: "s1", service: "search", impact: incidents.ImpactOutage, periods: [][2]time.Time{{at(2), at(3)}}, facts: 1},
		{id: "f1", service: "frontend", impact: incidents.ImpactDegraded, periods: [][2]time.Time{{now.Add(-time.Hour), none}}, facts: 1},
		{id: "l1", service: "legacy", impact: incidents.ImpactOutage, periods: [][2]time.Time{{at(3), at(4)}}, facts: 1},
	}
	var b1, b2 []incidents.Change
	for _, f := range first {
		b1 = append(b1, f.change())
	}
	for _, f := range second {
		b2 = append(b2, f.change())
	}
	return [][]incidents.Change{b1, b2}
}

// result is what a query returned.
type result struct {
	columns []string
	types   []string
	rows    [][]any
}

func (e *chEnv) query(sql string) (*result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := e.conn.Query(ctx, sql)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	res := &result{columns: rows.Columns()}
	cts := rows.ColumnTypes()
	for _, ct := range cts {
		res.types = append(res.types, ct.DatabaseTypeName())
	}
	for rows.Next() {
		ptrs := make([]any, len(cts))
		for i, ct := range cts {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]any, len(ptrs))
		for i, p := range ptrs {
			row[i] = reflect.ValueOf(p).Elem().Interface()
		}
		res.rows = append(res.rows, row)
	}
	return res, rows.Err()
}

// row returns the first row whose column col equals value, as a map.
func (r *result) row(col string, value any) map[string]any {
	i := slices.Index(r.columns, col)
	for _, row := range r.rows {
		if i >= 0 && row[i] == value {
			m := map[string]any{}
			for j, c := range r.columns {
				m[c] = row[j]
			}
			return m
		}
	}
	return nil
}

// TestQueriesRunOnClickHouse runs every ClickHouse query (panels and
// variables) of the dashboards of both catalogs, with All and with a
// single value selected, and checks the columns.
func TestQueriesRunOnClickHouse(t *testing.T) {
	env := newCHEnv(t)
	catalogs := map[string]func(t *testing.T, o Options) []*Dashboard{
		"test":    func(t *testing.T, o Options) []*Dashboard { return generateFor(t, testCatalog, o) },
		"example": func(t *testing.T, o Options) []*Dashboard { return generateFor(t, exampleCatalog, o) },
		"empty": func(t *testing.T, o Options) []*Dashboard {
			ds, err := Generate(catalog.Empty(0.999), withQueries(o))
			if err != nil {
				t.Fatal(err)
			}
			return ds
		},
	}
	for _, name := range []string{"test", "example", "empty"} {
		for _, opts := range []Options{{}, {Weights: &Weights{Outage: 0.9, Degraded: 0.3}}} {
			for _, d := range catalogs[name](t, opts) {
				for _, pick := range []string{"all", "one"} {
					t.Run(fmt.Sprintf("%s/%s/weight=%v/%s", name, d.UID, opts.Weights != nil, pick), func(t *testing.T) {
						t.Parallel()
						if n := env.checkDashboard(t, d, pick); n == 0 && !t.Failed() {
							t.Errorf("no ClickHouse query ran")
						}
					})
				}
			}
		}
	}
}

// checkDashboard resolves the dashboard's variables (running its query
// variables), then runs and checks every ClickHouse panel query.
func (e *chEnv) checkDashboard(t *testing.T, d *Dashboard, pick string) (ran int) {
	dashFrom, err := parseGrafanaDuration(strings.TrimPrefix(d.Time.From, "now-"))
	if err != nil {
		t.Fatal(err)
	}
	from, to := e.now.Add(-dashFrom), e.now
	vars := map[string][]string{}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			vars[v.Name] = []string{v.Current.Value.(string)}
		case "constant":
			vars[v.Name] = []string{v.Query.(string)}
		case "custom":
			values := strings.Split(v.Query.(string), ",")
			switch {
			case v.IncludeAll && pick == "all" && v.AllValue != "":
				vars[v.Name] = []string{v.AllValue}
			case v.IncludeAll && pick == "all":
				vars[v.Name] = values
			case v.IncludeAll:
				vars[v.Name] = values[:1]
			default:
				vars[v.Name] = []string{v.Current.Value.(string)}
			}
		case "query":
			q, ok := v.Query.(*ClickHouseVariableQuery)
			if !ok {
				t.Fatalf("variable %s: query %T, want a ClickHouse query", v.Name, v.Query)
			}
			res := e.run(t, "variable "+v.Name, q.RawSQL, vars, from, to, time.Minute)
			if res == nil {
				return ran
			}
			ran++
			if !slices.Equal(res.columns, q.columns) {
				t.Errorf("variable %s returns columns %v, want %v", v.Name, res.columns, q.columns)
			}
			var values []string
			for _, row := range res.rows {
				values = append(values, fmt.Sprint(row[0]))
			}
			if len(values) == 0 {
				t.Fatalf("variable %s has no values", v.Name)
			}
			if pick == "one" {
				values = values[:1]
			}
			vars[v.Name] = values
		default:
			t.Fatalf("variable %s of type %s: not handled by this test", v.Name, v.Type)
		}
	}
	for _, a := range d.Annotations.List {
		q, ok := a.Target.(*ClickHouseQuery)
		if !ok {
			continue
		}
		res := e.run(t, "annotation "+a.Name, q.RawSQL, vars, from, to, time.Minute)
		if res == nil {
			continue
		}
		ran++
		if !slices.Equal(res.columns, q.columns) {
			t.Errorf("annotation %s returns columns %v, want %v", a.Name, res.columns, q.columns)
		}
		if len(res.types) > 0 && !strings.HasPrefix(res.types[0], "DateTime") {
			t.Errorf("annotation %s: time is a %s, want a DateTime", a.Name, res.types[0])
		}
	}
	for _, e2 := range d.Panels {
		p, ok := e2.(*Panel)
		if !ok {
			continue
		}
		pFrom, pTo := from, to
		if p.TimeFrom != "" {
			tf, err := interpolate(p.TimeFrom, vars)
			if err != nil {
				t.Fatalf("%v: timeFrom: %v", p, err)
			}
			dur, err := parseGrafanaDuration(tf)
			if err != nil {
				t.Fatalf("%v: timeFrom: %v", p, err)
			}
			pFrom = e.now.Add(-dur)
		}
		// Grafana's interval: the range over the data points, at least the
		// panel's minimum interval.
		interval := pTo.Sub(pFrom) / 1000
		if p.Interval != "" {
			minInterval, err := parseGrafanaDuration(p.Interval)
			if err != nil {
				t.Fatalf("%v: interval: %v", p, err)
			}
			interval = max(interval, minInterval)
		}
		for _, tg := range p.Targets {
			q, ok := tg.(*ClickHouseQuery)
			if !ok {
				continue
			}
			res := e.run(t, p.String(), q.RawSQL, vars, pFrom, pTo, interval)
			if res == nil {
				continue
			}
			ran++
			checkColumns(t, p, q, res)
		}
	}
	return ran
}

// run expands and runs one query, reporting failures against what.
func (e *chEnv) run(t *testing.T, what, raw string, vars map[string][]string, from, to time.Time, interval time.Duration) *result {
	t.Helper()
	sql, err := interpolate(raw, vars)
	if err == nil {
		sql, err = expandMacros(sql, from, to, interval)
	}
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return nil
	}
	res, err := e.query(sql)
	if err != nil {
		t.Errorf("%s: query fails on ClickHouse: %v\n%s", what, err, sql)
		return nil
	}
	return res
}

// checkColumns compares a query's result columns with what its panel
// expects: the declared columns in order, a DateTime "time" first for time
// series, and every column that field overrides and data links name.
func checkColumns(t *testing.T, p *Panel, q *ClickHouseQuery, res *result) {
	t.Helper()
	if !slices.Equal(res.columns, q.columns) {
		t.Errorf("%v returns columns %v, want %v", p, res.columns, q.columns)
	}
	if q.Format == formatTimeSeries {
		if len(res.columns) == 0 || res.columns[0] != "time" || !strings.HasPrefix(res.types[0], "DateTime") {
			t.Errorf("%v: a time series query must return a DateTime column named time first, got %v %v", p, res.columns, res.types)
		}
	}
	for _, o := range p.FieldConfig.Overrides {
		if name, ok := o.Matcher.Options.(string); ok && o.Matcher.ID == "byName" && !slices.Contains(res.columns, name) {
			t.Errorf("%v: field override for %q, which the query does not return (%v)", p, name, res.columns)
		}
		for _, pr := range o.Properties {
			if ls, ok := pr.Value.([]DataLink); ok {
				for _, l := range ls {
					for _, m := range regexp.MustCompile(`__data\.fields\.(\w+)`).FindAllStringSubmatch(l.URL, -1) {
						if !slices.Contains(res.columns, m[1]) {
							t.Errorf("%v: link %q uses field %s, which the query does not return", p, l.URL, m[1])
						}
					}
				}
			}
		}
	}
}

// TestAvailabilityFigures checks the dashboards' figures against ones
// computed by hand for the fixture incidents of service db over [t0, t1]:
//
//	d4 outage  t0−1h…t0+0:30  → 0:30 inside the window
//	d1 outage  t0+1h…t0+2h  ┐ overlapping: 2h once
//	d2 outage  t0+1:30…t0+3h┘ (d1's older, degraded version is ignored)
//	d3 degraded t0+5h…t0+6h  → 1h degraded
//	d5 outage  t0+10h…t0+11h, caused by auth's a1 → 1h, not own
//	d6 outage  two periods of 10 minutes (a flap) → 0:20
//	d8 no impact t0+12h…t0+13h
//	d7 outage after t1 → outside
//
// Outage 3:50 (13,800 s), own outage 2:50 (10,200 s), degraded only 1h,
// 7 incidents.
func TestAvailabilityFigures(t *testing.T) {
	env := newCHEnv(t)
	const day = 86400.0
	tests := []struct {
		weight                  float64
		downtime, ownDowntime   float64
		authCaused, dbAvailDown float64
	}{
		{weight: 0, downtime: 13800, ownDowntime: 10200, authCaused: 3600, dbAvailDown: 13800},
		{weight: 0.5, downtime: 13800 + 1800, ownDowntime: 10200 + 1800, authCaused: 3600, dbAvailDown: 13800 + 1800},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("weight=%v", tc.weight), func(t *testing.T) {
			bb := builderFor(t, testCatalog, Options{Weights: &Weights{Outage: 1, Degraded: tc.weight}})
			var api, db serviceInfo
			for _, s := range bb.services {
				switch s.Name {
				case "api":
					api = s
				case "db":
					db = s
				}
			}
			window := func(sql, service string) *result {
				t.Helper()
				vars := map[string][]string{"service": {service}, "squad": {allValue}}
				return env.run(t, service, sql, vars, env.t0, env.t1, time.Hour)
			}

			res := window(bb.availabilityTableSQL(true), "db")
			if res == nil {
				return
			}
			row := res.row("service", "db")
			if row == nil {
				t.Fatalf("no row for db in %v", res.rows)
			}
			near(t, "availability", row["availability"], 1-tc.downtime/day)
			near(t, "own_availability", row["own_availability"], 1-tc.ownDowntime/day)
			near(t, "downtime_seconds", row["downtime_seconds"], tc.downtime)
			near(t, "error_budget_remaining", row["error_budget_remaining"], 1-tc.downtime/((1-0.99999)*day))
			if got := row["incident_count"]; fmt.Sprint(got) != "7" {
				t.Errorf("incident_count = %v, want 7", got)
			}

			// Every service of the catalog gets a row, with or without
			// incidents, and so does the uncatalogued one with incidents.
			vars := map[string][]string{"service": {"api", "auth", "db", "batch.reports", "legacy"}}
			all := env.run(t, "all", bb.availabilityTableSQL(true), vars, env.t0, env.t1, time.Hour)
			if all != nil {
				if r := all.row("service", "batch.reports"); r == nil {
					t.Errorf("a service without incidents has no row")
				} else {
					near(t, "availability without incidents", r["availability"], 1)
				}
				if r := all.row("service", "legacy"); r == nil {
					t.Errorf("the uncatalogued service has no row")
				} else {
					near(t, "uncatalogued availability", r["availability"], 1-3600/day)
				}
			}

			stat := window(bb.availabilitySQL(true), "db")
			if stat != nil && len(stat.rows) == 1 {
				near(t, "stat availability", stat.rows[0][0], 1-tc.downtime/day)
				near(t, "stat own availability", stat.rows[0][1], 1-tc.ownDowntime/day)
			} else {
				t.Errorf("availability stat: %+v", stat)
			}

			budget := window(bb.errorBudgetSQL(0.99999), "db")
			if budget != nil && len(budget.rows) == 1 {
				near(t, "budget downtime", budget.rows[0][1], tc.downtime)
				near(t, "budget allowed", budget.rows[0][2], (1-0.99999)*day)
			}

			burn := window(bb.burndownSQL(db), "db")
			if burn != nil && len(burn.rows) > 0 {
				last := burn.rows[len(burn.rows)-1]
				near(t, "burndown at the window's end", last[1], 1-tc.downtime/((1-0.99999)*day))
				near(t, "even burn at the window's end", last[2], 0)
				if got := last[0].(time.Time); !got.Equal(env.t1) {
					t.Errorf("burndown ends at %v, want %v", got, env.t1)
				}
			} else {
				t.Errorf("burndown: no rows")
			}

			up := window(bb.upstreamSQL(api), "api")
			if up != nil {
				if r := up.row("service", "auth"); r == nil {
					t.Errorf("no upstream row for auth: %v", up.rows)
				} else {
					near(t, "auth availability", r["availability"], 1-1800/day)
					near(t, "downtime auth caused api", r["caused_downtime_seconds"], tc.authCaused)
				}
				if r := up.row("service", "db"); r == nil {
					t.Errorf("no upstream row for db: %v", up.rows)
				} else {
					near(t, "db availability", r["availability"], 1-tc.dbAvailDown/day)
					near(t, "downtime db caused api", r["caused_downtime_seconds"], 0)
				}
			}
		})
	}
}

// TestOpenIncidentsCountUpToNow checks that a firing period counts up to
// now: api's open outage started 20 minutes ago.
func TestOpenIncidentsCountUpToNow(t *testing.T) {
	env := newCHEnv(t)
	bb := builderFor(t, testCatalog, Options{})
	vars := map[string][]string{"service": {"api"}}
	res := env.run(t, "api", bb.errorBudgetSQL(0.9995), vars, env.now.Add(-time.Hour), env.now.Add(time.Hour), time.Minute)
	if res == nil || len(res.rows) != 1 {
		t.Fatalf("error budget: %+v", res)
	}
	// Up to now, not to the end of the range in the future; the test's
	// clock and ClickHouse's may differ by a few seconds.
	if got := toFloat(res.rows[0][1]); math.Abs(got-1200) > 30 {
		t.Errorf("downtime of the open incident = %v s, want about 1200", got)
	}
	open := env.run(t, "open", bb.openIncidentsSQL(), vars, env.now.Add(-time.Hour), env.now, time.Minute)
	if open == nil || open.row("id", "p2") == nil {
		t.Errorf("open incidents lack p2: %+v", open)
	}
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case *float64:
		if x == nil {
			return math.NaN()
		}
		return *x
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case uint32:
		return float64(x)
	case int32:
		return float64(x)
	}
	return math.NaN()
}

func near(t *testing.T, what string, got any, want float64) {
	t.Helper()
	g := toFloat(got)
	if math.IsNaN(g) || math.Abs(g-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestFutureRange: a time range that has not begun yet (from after now)
// gives empty or zero figures, not an error or a runaway array.
func TestFutureRange(t *testing.T) {
	env := newCHEnv(t)
	bb := builderFor(t, testCatalog, Options{})
	vars := map[string][]string{"service": {"db"}}
	from, to := env.now.Add(time.Hour), env.now.Add(2*time.Hour)
	for name, sql := range map[string]string{
		"burndown":     bb.burndownSQL(bb.services[0]),
		"timeline":     bb.timelineSQL(),
		"availability": bb.availabilitySQL(true),
		"per day":      bb.downtimePerDaySQL(bb.services[0]),
	} {
		res := env.run(t, name, sql, vars, from, to, time.Minute)
		if res != nil && len(res.rows) > 1 {
			t.Errorf("%s over a future range: %d rows", name, len(res.rows))
		}
	}
}

// TestChangeAnnotations: db's dashboard marks its deploys, rollbacks and
// flag changes of the time range (not its config change, nor api's
// deploy, nor one before the range), each at its time, the latest recorded
// version (the first deploy succeeded after it started), titled with the
// label nines' API gives the change.
func TestChangeAnnotations(t *testing.T) {
	env := newCHEnv(t)
	bb := builderFor(t, testCatalog, Options{})
	byID := map[string]changes.Change{}
	for _, c := range env.changes() {
		byID[c.ID] = c // the last recorded version
	}
	type mark struct {
		at                time.Time
		title, text, tags string
	}
	want := map[string][]mark{
		"deploy": {
			{byID["c-deploy-1"].At, byID["c-deploy-1"].Label(), "succeeded in prod by alice", "nines,change,deploy,succeeded"},
			{byID["c-deploy-2"].At, byID["c-deploy-2"].Label(), "failed", "nines,change,deploy,failed"},
		},
		"rollback":     {{byID["c-rollback"].At, byID["c-rollback"].Label(), "succeeded\nback to v1.2.2", "nines,change,rollback,succeeded"}},
		"feature_flag": {{byID["c-flag"].At, byID["c-flag"].Label(), "succeeded", "nines,change,feature_flag,succeeded"}},
	}
	if got := byID["c-deploy-2"].Label(); got != "db 0123456789ab at 5%" {
		t.Fatalf("fixture label %q", got)
	}
	for _, c := range changeAnnotations() {
		t.Run(c.kind, func(t *testing.T) {
			vars := map[string][]string{"service": {"db"}}
			res := env.run(t, c.name, bb.changesAnnotationSQL(c.kind), vars, env.t0, env.t1, time.Minute)
			if res == nil {
				return
			}
			var got []mark
			for _, r := range res.rows {
				got = append(got, mark{r[0].(time.Time), r[1].(string), r[2].(string), r[3].(string)})
			}
			if len(got) != len(want[c.kind]) {
				t.Fatalf("%d annotations %v, want %v", len(got), got, want[c.kind])
			}
			for i, w := range want[c.kind] {
				g := got[i]
				if !g.at.Equal(w.at) || g.title != w.title || g.text != w.text || g.tags != w.tags {
					t.Errorf("annotation %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}
