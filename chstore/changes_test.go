package chstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

func TestChangesAndDORA(t *testing.T) {
	s := openStore(t, chtest.Database(t))
	ctx := context.Background()
	T := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	rec := func(c changes.Change, recorded time.Time) {
		t.Helper()
		if err := c.Normalize(T.Add(30 * day)); err != nil {
			t.Fatal(err)
		}
		c.RecordedAt = recorded
		if err := s.RecordChange(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	dep := func(id, svc string, at time.Time, st changes.Status) changes.Change {
		return changes.Change{ID: id, Service: svc, Kind: changes.KindDeploy, Version: id, Status: st, At: at}
	}
	rec(dep("d1", "checkout", T.Add(1*day), changes.StatusSucceeded), T)
	rec(dep("d2", "checkout", T.Add(2*day), changes.StatusSucceeded), T)
	rec(changes.Change{ID: "r1", Service: "checkout", Kind: changes.KindRollback, At: T.Add(2*day + time.Hour)}, T)
	rec(dep("d3", "checkout", T.Add(3*day), changes.StatusFailed), T)
	rec(dep("d4", "checkout", T.Add(4*day), changes.StatusSucceeded), T)
	rec(dep("d5", "checkout", T.Add(5*day), changes.StatusStarted), T)
	rec(dep("d6", "checkout", T.Add(-1*day), changes.StatusSucceeded), T)
	// The same id recorded again later: the later status wins.
	rec(dep("d7", "search", T.Add(1*day), changes.StatusSucceeded), T)
	rec(dep("d7", "search", T.Add(1*day), changes.StatusRolledBack), T.Add(time.Hour))
	if err := s.SetCause(ctx, "inc-00000000000000000001", "d4", "alice", T.Add(5*day), true); err != nil {
		t.Fatal(err)
	}
	// d1 marked and then unmarked: not a cause.
	if err := s.SetCause(ctx, "inc-00000000000000000001", "d1", "alice", T.Add(5*day), true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCause(ctx, "inc-00000000000000000001", "d1", "alice", T.Add(5*day+time.Minute), false); err != nil {
		t.Fatal(err)
	}
	inc := func(id string, start, end time.Time) incidents.Change {
		st := incidents.StateResolved
		if end.IsZero() {
			st = incidents.StateFiring
		}
		return incidents.Change{Incident: &incidents.Incident{
			ID: id, Service: "checkout", GroupKey: id, Title: id, Impact: incidents.ImpactOutage, State: st,
			StartedAt: start, ResolvedAt: end, UpdatedAt: start, Facts: 1,
			Periods: []incidents.Period{{Start: start, End: end}},
		}}
	}
	if err := s.Write(ctx, []incidents.Change{
		inc("inc-00000000000000000001", T.Add(4*day+10*time.Minute), T.Add(4*day+40*time.Minute)),
		inc("inc-00000000000000000002", T.Add(6*day), time.Time{}),
		inc("inc-00000000000000000003", T.Add(-2*day), T.Add(-2*day+time.Hour)),
	}); err != nil {
		t.Fatal(err)
	}

	got, err := s.Changes(ctx, changes.Query{Services: []string{"search"}})
	if err != nil || len(got) != 1 || got[0].Status != changes.StatusRolledBack {
		t.Fatalf("search changes = %+v, %v; want d7 rolled back", got, err)
	}
	causes, err := s.Causes(ctx, "inc-00000000000000000001")
	if err != nil || len(causes) != 1 || !causes["d4"] {
		t.Errorf("causes = %v, %v; want only d4", causes, err)
	}
	raws, err := s.DORA(ctx, T, T.Add(10*day))
	if err != nil {
		t.Fatal(err)
	}
	// By hand: checkout completed d1–d4 (d5 is still started, d6 is
	// before the window); d2 was followed by a rollback within a day, d3
	// failed, d4 is marked as a cause: 3 failures. One rollback. One
	// incident started in the window and resolved after 30 minutes.
	want := []changes.DORARaw{
		{Service: "checkout", Deployments: 4, Failures: 3, Rollbacks: 1, Restored: 1, RestoreSecondsSum: 1800},
		{Service: "search", Deployments: 1, Failures: 1},
	}
	if fmt.Sprintf("%+v", raws) != fmt.Sprintf("%+v", want) {
		t.Errorf("dora =\n %+v\nwant\n %+v", raws, want)
	}
	open, err := s.OpenIncidentsOfServices(ctx, []string{"checkout"})
	if err != nil || len(open) != 1 || open[0].ID != "inc-00000000000000000002" {
		t.Errorf("open incidents = %v, %v", open, err)
	}
	// Each of the three "open incidents" reads counts under its own op.
	if _, err := s.Outages(ctx, []string{"checkout"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenIncidentsFromAlerts(ctx); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"query_open_incidents_of_services", "query_open_outages", "query_open_incidents_from_alerts"} {
		if n := s.ops(t, op); n != 1 {
			t.Errorf("nines_clickhouse_operations_total{op=%q} = %v, want 1", op, n)
		}
	}
}
