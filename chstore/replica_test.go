package chstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// hookStore is a Store whose Write runs a hook first, to make another
// replica's write land between this one's check and its write.
type hookStore struct {
	*chstore.Store
	mu     sync.Mutex
	before func()
}

func (h *hookStore) Write(ctx context.Context, chs []incidents.Change) error {
	h.mu.Lock()
	f := h.before
	h.before = nil
	h.mu.Unlock()
	if f != nil {
		f()
	}
	return h.Store.Write(ctx, chs)
}

func newReplica(t *testing.T, store incidents.Store, log ...*slog.Logger) *incidents.Service {
	t.Helper()
	l := slog.New(slog.DiscardHandler)
	if len(log) > 0 {
		l = log[0]
	}
	svc, err := incidents.NewService(incidents.Options{Store: store, Logger: l})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

var r0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func ralert(fp string, start, end time.Time) incidents.Alert {
	a := incidents.Alert{
		Fingerprint: fp, Status: incidents.AlertFiring, StartsAt: start,
		Labels:      map[string]string{"alertname": "Down", "service": "api", "severity": "critical", "fp": fp},
		Annotations: map[string]string{"summary": "API down"},
	}
	if !end.IsZero() {
		a.Status, a.EndsAt = incidents.AlertResolved, end
	}
	return a
}

func snapshot(gk string, alerts ...incidents.Alert) incidents.Notification {
	st := incidents.AlertResolved
	for _, a := range alerts {
		if a.Status == incidents.AlertFiring {
			st = incidents.AlertFiring
		}
	}
	return incidents.Notification{Receiver: "nines", Status: st, GroupKey: gk, Alerts: alerts}
}

func mustIngest(t *testing.T, svc *incidents.Service, n incidents.Notification) {
	t.Helper()
	if err := svc.Ingest(context.Background(), n); err != nil {
		t.Fatal(err)
	}
}

// TestReplicaAckSurvivesStaleReplica: replica B holds an incident in memory
// from before A's acknowledgement, then applies alerts that add facts.
// Without the checks B's version would win and drop the acknowledgement.
func TestReplicaAckSurvivesStaleReplica(t *testing.T) {
	tests := []struct {
		name string
		// race makes A's ack land after B's pre-write check, so that only
		// the read-back after the write can catch it.
		race bool
	}{
		{"stale cache, caught before writing", false},
		{"concurrent write, merged after writing", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dsn := chtest.Database(t)
			sa, sb := openStore(t, dsn), openStore(t, dsn)
			hb := &hookStore{Store: sb.Store}
			a, b := newReplica(t, sa.Store), newReplica(t, hb)
			const gk = "{}:{alertname=\"Down\"}"
			a1 := ralert("a1", r0, time.Time{})
			n1 := snapshot(gk, a1)
			mustIngest(t, a, n1)
			mustIngest(t, b, n1) // B now holds the incident in memory
			id := incidents.SuccessorID(gk, "api", "")
			ack := func() {
				if _, err := a.Acknowledge(context.Background(), id, "alice"); err != nil {
					t.Errorf("ack: %v", err)
				}
			}
			n2 := snapshot(gk, a1, ralert("a2", r0.Add(time.Minute), time.Time{}), ralert("a3", r0.Add(2*time.Minute), time.Time{}))
			if tc.race {
				hb.mu.Lock()
				hb.before = ack
				hb.mu.Unlock()
			} else {
				ack()
			}
			mustIngest(t, b, n2)
			got := sa.get(t, id)
			if got.State != incidents.StateAcknowledged || got.AcknowledgedBy != "alice" || len(got.Alerts) != 3 {
				t.Fatalf("stored %s by %q with %d alerts, want acknowledged by alice with 3", got.State, got.AcknowledgedBy, len(got.Alerts))
			}
			// And both replicas go on from the merged state: resolving
			// every alert on A resolves the acknowledged incident.
			end := r0.Add(10 * time.Minute)
			mustIngest(t, a, snapshot(gk, ralert("a1", r0, end), ralert("a2", r0.Add(time.Minute), end), ralert("a3", r0.Add(2*time.Minute), end)))
			got = sa.get(t, id)
			if got.State != incidents.StateResolved || !got.ResolvedAt.Equal(end) || got.AcknowledgedBy != "alice" {
				t.Errorf("after resolve: %s at %v ack %q", got.State, got.ResolvedAt, got.AcknowledgedBy)
			}
		})
	}
}

// episode is one group's generated history: the Alertmanager snapshots
// in order, and the state it must end in.
type episode struct {
	gk, service string
	notes       []incidents.Notification
	firing      bool      // an alert is still firing at the end
	resolvedAt  time.Time // when not firing
	ends        map[string]time.Time
}

func genEpisode(rng *rand.Rand, i int) episode {
	e := episode{gk: fmt.Sprintf("{}:{alertname=\"E%d\"}", i), service: fmt.Sprintf("svc-%d", i%3), ends: map[string]time.Time{}}
	base := r0.Add(time.Duration(i) * time.Hour)
	n := 2 + rng.IntN(4)
	alerts := make([]incidents.Alert, n)
	for j := range alerts {
		alerts[j] = ralert(fmt.Sprintf("e%d-%d", i, j), base.Add(time.Duration(rng.IntN(120))*time.Second), time.Time{})
		alerts[j].Labels["service"] = e.service
	}
	var cur []incidents.Alert
	add := func() { e.notes = append(e.notes, snapshot(e.gk, append([]incidents.Alert(nil), cur...)...)) }
	for _, a := range alerts {
		cur = append(cur, a)
		add()
		if rng.IntN(2) == 0 {
			add() // a repeat
		}
	}
	e.firing = i%2 == 1
	for j := range cur {
		if e.firing && j == len(cur)-1 {
			break
		}
		end := cur[j].StartsAt.Add(time.Duration(5+rng.IntN(20)) * time.Minute)
		cur[j].Status, cur[j].EndsAt = incidents.AlertResolved, end
		e.ends[cur[j].Fingerprint] = end
		if end.After(e.resolvedAt) {
			e.resolvedAt = end
		}
		add()
	}
	return e
}

// shuffleNear swaps neighbours at random: the other Alertmanager of a pair
// delivers the same snapshots, a little out of order.
func shuffleNear(rng *rand.Rand, ns []incidents.Notification) []incidents.Notification {
	out := append([]incidents.Notification(nil), ns...)
	for i := 0; i+1 < len(out); i++ {
		if rng.IntN(3) == 0 {
			out[i], out[i+1] = out[i+1], out[i]
		}
	}
	return out
}

// deliver ingests n, retrying on 503 as Alertmanager does.
func deliver(t *testing.T, svc *incidents.Service, n incidents.Notification) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		err := svc.Ingest(context.Background(), n)
		if err == nil {
			return
		}
		if !errors.Is(err, fault.ErrUnavailable) || attempt == 5 {
			t.Errorf("ingest %s: %v", n.GroupKey, err)
			return
		}
		t.Logf("ingest %s: %v (retrying)", n.GroupKey, err)
	}
}

// TestTwoReplicasActAsOne feeds two Services on one database the same
// notifications in different orders, at the same time, with
// acknowledgements on one of them, and checks that each episode is one
// incident with the right final state.
func TestTwoReplicasActAsOne(t *testing.T) {
	dsn := chtest.Database(t)
	sa, sb := openStore(t, dsn), openStore(t, dsn)
	var logs syncBuf
	a := newReplica(t, sa.Store, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", "A"))
	b := newReplica(t, sb.Store, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})).With("replica", "B"))
	defer func() {
		if t.Failed() {
			t.Logf("replica logs:\n%s", logs.String())
		}
	}()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	const episodes = 24
	eps := make([]episode, episodes)
	orderB := make([][]incidents.Notification, episodes)
	for i := range eps {
		eps[i] = genEpisode(rng, i)
		orderB[i] = shuffleNear(rng, eps[i].notes)
	}
	var (
		wg    sync.WaitGroup
		ackMu sync.Mutex
		acked = map[string]bool{}
	)
	for i := range eps {
		e := eps[i]
		id := incidents.SuccessorID(e.gk, e.service, "")
		wg.Go(func() {
			for j, n := range e.notes {
				deliver(t, a, n)
				if j == 1 && i%3 != 0 {
					// An acknowledgement on A while B works on the same
					// incident; refused (409) if it already resolved. A
					// 503 is retried, as a person would.
					for attempt := 0; ; attempt++ {
						_, err := a.Acknowledge(context.Background(), id, "alice")
						if errors.Is(err, fault.ErrUnavailable) && attempt < 5 {
							t.Logf("ack %s: %v (retrying)", id, err)
							continue
						}
						switch {
						case err == nil, attempt > 0 && errors.Is(err, fault.ErrConflict) && strings.Contains(err.Error(), "already acknowledged"):
							ackMu.Lock()
							acked[id] = true
							ackMu.Unlock()
						case !errors.Is(err, fault.ErrConflict):
							t.Errorf("ack %s: %v", id, err)
						}
						break
					}
				}
			}
		})
		wg.Go(func() {
			for _, n := range orderB[i] {
				deliver(t, b, n)
			}
		})
	}
	wg.Wait()

	incs, _, err := sa.List(context.Background(), incidents.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(incs) != episodes {
		t.Errorf("%d incidents, want %d (one per episode)", len(incs), episodes)
	}
	byID := map[string]*incidents.Incident{}
	for _, inc := range incs {
		byID[inc.ID] = inc
	}
	for _, e := range eps {
		id := incidents.SuccessorID(e.gk, e.service, "")
		inc := byID[id]
		if inc == nil {
			t.Errorf("%s: no incident %s", e.gk, id)
			continue
		}
		inc = sa.get(t, id) // with alerts
		wantState := incidents.StateResolved
		switch {
		case e.firing && acked[id]:
			wantState = incidents.StateAcknowledged
		case e.firing:
			wantState = incidents.StateFiring
		}
		if inc.State != wantState {
			t.Errorf("%s: state %s, want %s", e.gk, inc.State, wantState)
		}
		if !e.firing && !inc.ResolvedAt.Equal(e.resolvedAt.Truncate(time.Second)) {
			t.Errorf("%s: resolved at %v, want %v", e.gk, inc.ResolvedAt, e.resolvedAt)
		}
		if acked[id] && (inc.AcknowledgedBy != "alice" || inc.AcknowledgedAt.IsZero()) {
			t.Errorf("%s: acknowledged by %q at %v, want alice", e.gk, inc.AcknowledgedBy, inc.AcknowledgedAt)
		}
		want := len(e.notes[len(e.notes)-1].Alerts)
		if len(inc.Alerts) != want {
			t.Errorf("%s: %d alerts, want %d", e.gk, len(inc.Alerts), want)
		}
		for _, al := range inc.Alerts {
			end, resolved := e.ends[al.Fingerprint]
			if resolved != (al.Status == incidents.AlertResolved) || (resolved && !al.EndsAt.Equal(end)) {
				t.Errorf("%s: alert %s %s ending %v, want resolved=%v at %v", e.gk, al.Fingerprint, al.Status, al.EndsAt, resolved, end)
			}
		}
	}
}

// syncBuf collects logs from several goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  []byte
}

func (w *syncBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	return len(p), nil
}

func (w *syncBuf) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}

// TestLateCopyAfterRestart: a replica that never saw a group's earlier
// incident (it restarted, or the other replica handled it) gets a late
// copy of that incident's alert after the group's next incident opened.
// The store tells it where the alert belongs, so it stays out of the new
// incident; an alert of the new episode that started earlier but arrived
// later still joins it.
func TestLateCopyAfterRestart(t *testing.T) {
	dsn := chtest.Database(t)
	s := openStore(t, dsn)
	first := newReplica(t, s.Store)
	const gk = `{}:{alertname="Down"}`
	end := r0.Add(10 * time.Minute)
	mustIngest(t, first, snapshot(gk, ralert("a1", r0, time.Time{}), ralert("a2", r0.Add(time.Minute), time.Time{})))
	mustIngest(t, first, snapshot(gk, ralert("a1", r0, end), ralert("a2", r0.Add(time.Minute), end)))
	later := r0.Add(3 * time.Hour)
	mustIngest(t, first, snapshot(gk, ralert("a3", later, time.Time{})))

	restarted := newReplica(t, openStore(t, dsn).Store)
	mustIngest(t, restarted, snapshot(gk, ralert("a2", r0.Add(time.Minute), time.Time{}))) // late, from episode 1
	mustIngest(t, restarted, snapshot(gk, ralert("a4", later.Add(-time.Minute), time.Time{}), ralert("a3", later, time.Time{})))
	i1 := s.get(t, incidents.SuccessorID(gk, "api", ""))
	i2 := s.get(t, incidents.SuccessorID(gk, "api", i1.ID))
	var got []string
	for _, a := range i2.Alerts {
		got = append(got, a.Fingerprint)
	}
	if fmt.Sprint(got) != "[a4 a3]" || i1.State != incidents.StateResolved || len(i1.Alerts) != 2 {
		t.Errorf("new incident holds %v (want [a4 a3]); earlier one %s with %d alerts", got, i1.State, len(i1.Alerts))
	}
}
