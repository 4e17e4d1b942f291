package incidents

import (
	"context"
	"testing"
	"time"
)

// TestManualResolveKeepsDowntime is the case of issue 15: the alert fired
// from 17:08 to 18:32, someone resolved the incident by hand at 17:13, and
// Alertmanager kept sending firing notifications until the resolve. The
// incident stays resolved (by the person, at 17:13: a firing notification
// of the same alert does not reopen it), but its impact segment, which
// availability weighs, runs from 17:08 to 18:32: 84 minutes of outage, not
// 5.
func TestManualResolveKeepsDowntime(t *testing.T) {
	ctx := context.Background()
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	now := at(17, 8)
	store := newMemStore()
	svc := serviceAt(t, store, &now)
	firing := alert("a", "TargetDown", "api", "critical", at(17, 8), time.Time{})
	for _, step := range []struct {
		now time.Time
		do  func() error
	}{
		{at(17, 8), func() error { return svc.Ingest(ctx, note("g", firing)) }},
		{at(17, 13), func() error {
			_, err := svc.Resolve(ctx, store.all()[0].ID, "alice")
			return err
		}},
		{at(17, 20), func() error { return svc.Ingest(ctx, note("g", firing)) }}, // repeat_interval
		{at(18, 32), func() error {
			return svc.Ingest(ctx, note("g", alert("a", "TargetDown", "api", "critical", at(17, 8), at(18, 32))))
		}},
	} {
		now = step.now
		if err := step.do(); err != nil {
			t.Fatalf("at %v: %v", now, err)
		}
	}
	all := store.all()
	if len(all) != 1 {
		t.Fatalf("%d incidents, want 1", len(all))
	}
	inc := all[0]
	if inc.State != StateResolved || inc.ResolvedBy != "alice" || !inc.ResolvedAt.Equal(at(17, 13)) {
		t.Errorf("state %s, resolved by %q at %v: want resolved by alice at 17:13", inc.State, inc.ResolvedBy, inc.ResolvedAt)
	}
	if len(inc.Periods) != 1 || !inc.Periods[0].End.Equal(at(17, 13)) {
		t.Errorf("periods %+v, want 17:08-17:13", inc.Periods)
	}
	want := []Segment{{Start: at(17, 8), End: at(18, 32), Impact: ImpactOutage}}
	if len(inc.Segments) != 1 || inc.Segments[0] != want[0] {
		t.Errorf("segments %+v, want %+v: the alert's firing time", inc.Segments, want)
	}
}
