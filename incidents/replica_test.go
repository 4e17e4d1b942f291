package incidents

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// version builds an incident version for merge tests: alerts a1 (and a2)
// of the group, in the given state.
func version(state State, facts uint32, at time.Time, alerts ...Alert) *Incident {
	inc := &Incident{
		ID: "inc-0123456789abcdef0123", Service: "api", GroupKey: "g", Source: SourceAlertmanager,
		Title: "Down summary", Impact: ImpactOutage, State: state, StartedAt: t0,
		Alerts: alerts, Facts: facts, UpdatedAt: at,
		Periods: []Period{{Start: t0}},
	}
	for i := range inc.Alerts {
		inc.Alerts[i].Impact = ImpactOutage
	}
	return inc
}

func acked(inc *Incident, by string, at time.Time) *Incident {
	inc.State, inc.AcknowledgedBy, inc.AcknowledgedAt = StateAcknowledged, by, at
	return inc
}

func resolvedBy(inc *Incident, by string, at time.Time) *Incident {
	inc.State, inc.ResolvedBy, inc.ResolvedAt = StateResolved, by, at
	inc.Periods = closePeriods(inc.Periods, at)
	return inc
}

func TestJoin(t *testing.T) {
	cfg := DefaultConfig()
	now := t0.Add(time.Hour)
	end := t0.Add(10 * time.Minute)
	a1 := alert("a1", "Down", "api", "critical", t0, time.Time{})
	a1r := alert("a1", "Down", "api", "critical", t0, end)
	a2 := alert("a2", "Down", "api", "critical", t0.Add(time.Minute), time.Time{})
	a2r := alert("a2", "Down", "api", "critical", t0.Add(time.Minute), end.Add(time.Minute))
	a3 := alert("a3", "Down", "api", "critical", t0.Add(20*time.Minute), time.Time{})
	type want struct {
		state      State
		ackBy      string
		resolvedAt time.Time
		resolvedBy string
		flaps      int
		alerts     int
		causedBy   string
	}
	tests := []struct {
		name         string
		ours, theirs *Incident
		want         want
	}{
		{"ack on one side, a new alert on the other",
			acked(version(StateFiring, 2, t0, a1), "alice", t0.Add(time.Minute)),
			version(StateFiring, 3, t0, a1, a2),
			want{state: StateAcknowledged, ackBy: "alice", alerts: 2}},
		{"ack against a stale version with more facts",
			acked(version(StateFiring, 5, t0, a1, a2), "alice", t0.Add(time.Minute)),
			version(StateFiring, 9, t0.Add(time.Hour), a1, a2),
			want{state: StateAcknowledged, ackBy: "alice", alerts: 2}},
		{"ack while the alerts resolve: resolved, the ack kept",
			acked(version(StateFiring, 2, t0, a1, a2), "alice", t0.Add(time.Minute)),
			resolvedBy(version(StateFiring, 4, t0, a1r, a2r), ActorAlertmanager, end.Add(time.Minute)),
			want{state: StateResolved, ackBy: "alice", resolvedAt: end.Add(time.Minute), resolvedBy: ActorAlertmanager, alerts: 2}},
		{"two acks: the earliest stands",
			acked(version(StateFiring, 2, t0, a1), "bob", t0.Add(2*time.Minute)),
			acked(version(StateFiring, 2, t0, a1), "alice", t0.Add(time.Minute)),
			want{state: StateAcknowledged, ackBy: "alice", alerts: 1}},
		{"a resolve by hand beats the opening it ends",
			resolvedBy(version(StateFiring, 3, t0, a1), "carol", t0.Add(5*time.Minute)),
			version(StateFiring, 3, t0.Add(time.Minute), a1, a2),
			want{state: StateResolved, resolvedAt: t0.Add(5 * time.Minute), resolvedBy: "carol", alerts: 2}},
		{"two resolves: the earliest stands",
			resolvedBy(version(StateFiring, 3, t0, a1r), ActorAlertmanager, end),
			resolvedBy(version(StateFiring, 3, t0, a1), "carol", end.Add(time.Minute)),
			want{state: StateResolved, resolvedAt: end, resolvedBy: ActorAlertmanager, alerts: 1}},
		{"a reopen (more flaps) is later than the resolve",
			func() *Incident {
				v := version(StateFiring, 5, t0, a1r, a3)
				v.Flaps = 1
				return v
			}(),
			resolvedBy(version(StateFiring, 3, t0, a1r), ActorAlertmanager, end),
			want{state: StateFiring, flaps: 1, alerts: 2}},
		{"an ack from before the reopen no longer holds",
			func() *Incident {
				v := version(StateFiring, 5, t0, a1r, a3)
				v.Flaps = 1
				return v
			}(),
			resolvedBy(acked(version(StateFiring, 4, t0, a1r), "alice", t0.Add(time.Minute)), ActorAlertmanager, end),
			want{state: StateFiring, ackBy: "alice", flaps: 1, alerts: 2}},
		{"resolved by alerts, but an alert it never saw fires: reopen",
			version(StateFiring, 2, t0, a1, a3),
			resolvedBy(version(StateFiring, 3, t0, a1r), ActorAlertmanager, end),
			want{state: StateFiring, flaps: 1, alerts: 2}},
		{"open, but every alert resolved on the other side: resolve",
			version(StateFiring, 2, t0, a1, a2),
			version(StateFiring, 2, t0, a1r, a2r),
			want{state: StateResolved, resolvedAt: end.Add(time.Minute), resolvedBy: ActorAlertmanager, alerts: 2}},
		{"a link on one side",
			func() *Incident { v := version(StateFiring, 3, t0, a1); v.CausedBy = "inc-up"; return v }(),
			version(StateFiring, 4, t0, a1, a2),
			want{state: StateFiring, causedBy: "inc-up", alerts: 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check := func(order string, ch Change) {
				t.Helper()
				m := ch.Incident
				got := want{m.State, m.AcknowledgedBy, m.ResolvedAt, m.ResolvedBy, m.Flaps, len(m.Alerts), m.CausedBy}
				if got != tc.want {
					t.Errorf("%s: got %+v\nwant %+v", order, got, tc.want)
				}
				if m.Version() <= tc.ours.Version() || m.Version() <= tc.theirs.Version() {
					t.Errorf("%s: merged version %d does not outrank %d and %d", order, m.Version(), tc.ours.Version(), tc.theirs.Version())
				}
				if m.State == StateResolved {
					for _, p := range m.Periods {
						if p.End.IsZero() {
							t.Errorf("%s: resolved with an open period %+v", order, m.Periods)
						}
					}
				}
			}
			ab := cfg.join(tc.ours.Clone(), tc.theirs.Clone(), now)
			ba := cfg.join(tc.theirs.Clone(), tc.ours.Clone(), now)
			check("ours into theirs", ab)
			check("theirs into ours", ba)
			if !sameState(ab.Incident, ba.Incident) {
				t.Errorf("join is not symmetric:\n%+v\n%+v", ab.Incident, ba.Incident)
			}
			// Idempotent: merging again changes nothing.
			if again := cfg.join(ab.Incident, ab.Incident, now); !sameState(again.Incident, ab.Incident) {
				t.Errorf("join is not idempotent")
			}
		})
	}
}

func TestSettle(t *testing.T) {
	cfg := DefaultConfig()
	end := t0.Add(10*time.Minute + 500*time.Millisecond)
	a1 := alert("a1", "Down", "api", "critical", t0, time.Time{})
	a1r := alert("a1", "Down", "api", "critical", t0, end)
	a2 := alert("a2", "Down", "api", "critical", t0.Add(time.Minute), time.Time{})
	tests := []struct {
		name       string
		inc        *Incident
		changed    bool
		state      State
		flaps      int
		resolvedAt time.Time
		events     []EventKind
	}{
		{"consistent open", version(StateFiring, 1, t0, a1), false, StateFiring, 0, time.Time{}, nil},
		{"open with every alert resolved", version(StateAcknowledged, 2, t0, a1r), true, StateResolved, 0, end, []EventKind{EventResolved}},
		{"resolved by alerts with one firing", resolvedBy(version(StateFiring, 2, t0, a1r, a2), ActorAlertmanager, end), true, StateFiring, 1, time.Time{}, []EventKind{EventReopened}},
		{"resolved by hand with one firing stays", resolvedBy(version(StateFiring, 2, t0, a1), "alice", end), false, StateResolved, 0, end, nil},
		{"resolved as stored, to the second", resolvedBy(version(StateFiring, 2, t0, a1r), ActorAlertmanager, end.Truncate(time.Second)), false, StateResolved, 0, end.Truncate(time.Second), nil},
		{"manual incident without alerts", func() *Incident { v := version(StateFiring, 1, t0); v.Source = SourceManual; return v }(), false, StateFiring, 0, time.Time{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inc := tc.inc.Clone()
			events, changed := cfg.settle(inc)
			if changed != tc.changed || inc.State != tc.state || inc.Flaps != tc.flaps || !inc.ResolvedAt.Equal(tc.resolvedAt) {
				t.Errorf("changed %v state %s flaps %d resolved %v; want %v %s %d %v", changed, inc.State, inc.Flaps, inc.ResolvedAt, tc.changed, tc.state, tc.flaps, tc.resolvedAt)
			}
			var kinds []EventKind
			for _, e := range events {
				kinds = append(kinds, e.Kind)
			}
			if len(kinds) != len(tc.events) || (len(kinds) > 0 && kinds[0] != tc.events[0]) {
				t.Errorf("events %v, want %v", kinds, tc.events)
			}
		})
	}
}

func TestResolveStale(t *testing.T) {
	cfg := DefaultConfig()
	now := t0.Add(time.Hour)
	a1 := alert("a1", "Down", "api", "critical", t0, time.Time{})
	a2 := alert("a2", "Down", "api", "critical", t0.Add(time.Minute), time.Time{})
	end1, end2 := t0.Add(5*time.Minute), t0.Add(7*time.Minute)
	tests := []struct {
		name       string
		inc        *Incident
		ends       map[string]time.Time
		err        error
		state      State
		resolvedBy string
		resolvedAt time.Time
	}{
		{"one of two", version(StateFiring, 2, t0, a1, a2), map[string]time.Time{a1.Key(): end1}, nil, StateFiring, "", time.Time{}},
		{"all of them", version(StateAcknowledged, 2, t0, a1, a2), map[string]time.Time{a1.Key(): end1, a2.Key(): end2}, nil, StateResolved, ActorReconciler, end2},
		{"end before start is the start", version(StateFiring, 1, t0, a1), map[string]time.Time{a1.Key(): t0.Add(-time.Hour)}, nil, StateResolved, ActorReconciler, t0},
		{"resolved by hand stays so", resolvedBy(version(StateFiring, 1, t0, a1), "alice", end1), map[string]time.Time{a1.Key(): end2}, nil, StateResolved, "alice", end1},
		{"nothing stale", version(StateFiring, 1, t0, a1), map[string]time.Time{"other@1": end1}, ErrConflict, StateFiring, "", time.Time{}},
		{"open but its alerts resolved (a lost merge)", version(StateFiring, 1, t0, alert("a1", "Down", "api", "critical", t0, end1)), nil, nil, StateResolved, ActorAlertmanager, end1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := cfg.ResolveStale(tc.inc.Clone(), tc.ends, ActorReconciler, now)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			inc := ch.Incident
			if inc.State != tc.state || inc.ResolvedBy != tc.resolvedBy || !inc.ResolvedAt.Equal(tc.resolvedAt) {
				t.Errorf("%s by %q at %v, want %s by %q at %v", inc.State, inc.ResolvedBy, inc.ResolvedAt, tc.state, tc.resolvedBy, tc.resolvedAt)
			}
			if inc.Version() <= tc.inc.Version() {
				t.Error("version did not grow")
			}
			for _, e := range ch.Events {
				if e.Kind == EventResolved && tc.resolvedBy == ActorReconciler && (e.Actor != ActorReconciler || !strings.Contains(e.Text, "reconciler")) {
					t.Errorf("resolve event %+v does not say the reconciler did it", e)
				}
				if e.Kind == EventAlertResolved && e.Actor != ActorReconciler {
					t.Errorf("alert event %+v", e)
				}
			}
		})
	}
}

func TestSuccessorID(t *testing.T) {
	re := regexp.MustCompile(`^inc-[0-9a-f]{20}$`)
	first := SuccessorID("g", "api", "")
	second := SuccessorID("g", "api", first)
	for _, id := range []string{first, second} {
		if !re.MatchString(id) {
			t.Errorf("%q is not an incident ID", id)
		}
	}
	if first == second || first != SuccessorID("g", "api", "") || first == SuccessorID("g", "web", "") {
		t.Error("successor IDs are not deterministic and distinct")
	}
	// A group's next episode gets the successor of the previous one,
	// whatever alerts open it.
	end := t0.Add(10 * time.Minute)
	_, store := run(t,
		step{n: note("g", alert("a1", "Down", "api", "critical", t0, end))},
		step{n: note("g", alert("a2", "Down", "api", "critical", t0.Add(3*time.Hour), time.Time{}))})
	all := store.all()
	if len(all) != 2 || all[0].ID != SuccessorID("g", "api", "") || all[1].ID != SuccessorID("g", "api", all[0].ID) {
		t.Errorf("ids %s, %s", all[0].ID, all[1].ID)
	}
}

func TestCoalescerMergesConcurrentLookups(t *testing.T) {
	var (
		mu      sync.Mutex
		queries [][]int
		release = make(chan struct{})
	)
	c := newCoalescer(time.Second, func(_ context.Context, keys []int) (map[int]string, error) {
		mu.Lock()
		queries = append(queries, keys)
		first := len(queries) == 1
		mu.Unlock()
		if first {
			<-release // hold the first query while others gather
		}
		out := map[int]string{}
		for _, k := range keys {
			if k != 99 {
				out[k] = "v" + string(rune('0'+k))
			}
		}
		return out, nil
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		if got, err := c.get(context.Background(), []int{1}); err != nil || got[1] != "v1" {
			t.Errorf("first: %v %v", got, err)
		}
	})
	for mu.Lock(); len(queries) == 0; mu.Lock() {
		mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	mu.Unlock()
	for k := 2; k <= 9; k++ {
		wg.Go(func() {
			got, err := c.get(context.Background(), []int{k, 99})
			if _, absent := got[99]; err != nil || got[k] == "" || absent || len(got) != 1 {
				t.Errorf("key %d: %v %v", k, got, err)
			}
		})
	}
	time.Sleep(20 * time.Millisecond) // let them queue behind the first query
	close(release)
	wg.Wait()
	if len(queries) != 2 {
		t.Errorf("%d queries (%v), want 2: the first, then one for the eight that waited", len(queries), queries)
	}
	// A canceled caller gives up without waiting.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.get(ctx, []int{1}); err == nil {
		// The lookup may have raced to completion; that is fine too.
		t.Log("canceled lookup completed")
	}
}
