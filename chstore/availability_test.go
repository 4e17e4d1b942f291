package chstore_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

// TestAvailabilitySource checks the Source on the real ClickHouse: service
// names that are SQL in disguise, versions that must collapse, maintenance
// and the daily series.
func TestAvailabilitySource(t *testing.T) {
	ctx := context.Background()
	s, err := chstore.Open(ctx, chstore.Options{DSN: chtest.Database(t), FlushInterval: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	weird := []string{
		`x'); DROP TABLE incidents; --`,
		`back\slash\' and "double" quotes`,
		"tab\tnew\nline, null \x00 and ünïcödé @now ? $1 %s",
	}
	var changes []incidents.Change
	for i, name := range weird {
		changes = append(changes, incidents.Change{Incident: &incidents.Incident{
			ID: "inc-weird-" + string(rune('a'+i)), Service: name, Impact: incidents.ImpactOutage, State: incidents.StateResolved,
			StartedAt: at(1), ResolvedAt: at(2), Periods: []incidents.Period{{Start: at(1), End: at(2)}}, UpdatedAt: at(2), Facts: 1,
		}})
	}
	// An incident whose older version is open but whose newer version
	// resolved before the window: it must not count.
	older := &incidents.Incident{
		ID: "inc-versions", Service: "versions", Impact: incidents.ImpactOutage, State: incidents.StateFiring,
		StartedAt: at(-10), Periods: []incidents.Period{{Start: at(-10)}}, UpdatedAt: at(-10), Facts: 1,
	}
	newer := older.Clone()
	newer.Facts, newer.State, newer.ResolvedAt = 2, incidents.StateResolved, at(-9)
	newer.Periods = []incidents.Period{{Start: at(-10), End: at(-9)}}
	changes = append(changes, incidents.Change{Incident: older})
	if err := s.Write(ctx, changes); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, []incidents.Change{{Incident: newer}}); err != nil {
		t.Fatal(err)
	}

	seen, err := s.SeenServices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(weird, "versions") {
		if !slices.Contains(seen, name) {
			t.Errorf("SeenServices lacks %q", name)
		}
	}

	q := availability.Query{
		From: at(0), To: at(24), Now: at(24), Recent: []time.Duration{time.Hour, 24 * time.Hour},
		Weights:  availability.DefaultConfig().ImpactWeights,
		Services: append(slices.Clone(weird), "versions"),
		// 15 minutes of maintenance for the first weird name.
		Maintenance: map[string][]catalog.Interval{weird[0]: {{Start: at(1), End: at(1).Add(15 * time.Minute)}}},
		Explain:     true,
	}
	raws, err := s.Downtime(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]availability.Raw{}
	for _, r := range raws {
		got[r.Service] = r
	}
	if v := got["versions"]; v.Downtime != 0 || v.Incidents != 0 || len(v.IncidentIDs) != 0 {
		t.Errorf("the stale open version of inc-versions counted: %+v", v)
	}
	for i, name := range weird {
		r, ok := got[name]
		want := 3600.0
		if i == 0 {
			want = 2700
		}
		if !ok || r.Downtime != want || r.Incidents != 1 || r.Recent[1] != want || len(r.IncidentIDs) != 1 {
			t.Errorf("%q: %+v, want %v s down", name, r, want)
		}
	}

	only, err := s.Downtime(ctx, availability.Query{From: at(0), To: at(24), Now: at(24), Services: weird[1:2]})
	if err != nil || len(only) != 1 || only[0].Service != weird[1] {
		t.Errorf("one service: %+v, %v", only, err)
	}
	if none, err := s.Downtime(ctx, availability.Query{From: at(0), To: at(24), Now: at(24), Services: []string{}}); err != nil || none != nil {
		t.Errorf("no services: %v, %v", none, err)
	}

	days, err := s.Daily(ctx, availability.DailyQuery{
		Service: weird[2], Now: at(30), Weights: q.Weights,
		Days: []catalog.Interval{{Start: at(-24), End: at(0)}, {Start: at(0), End: at(24)}, {Start: at(24), End: at(30)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(days) != 1 || days[0].Index != 1 || days[0].Downtime != 3600 || days[0].Incidents != 1 {
		t.Errorf("daily %+v", days)
	}
}
