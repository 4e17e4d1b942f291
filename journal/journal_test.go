package journal_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/journal"
)

// replica is one nines process: its own journal (the front), incident
// service and deriver, on a shared store.
type replica struct {
	name    string
	store   *chstore.Store
	journal *journal.Journal
	deriver *journal.Deriver
	stop    context.CancelFunc
	done    chan struct{}
}

func startReplica(t *testing.T, name, dsn string) *replica {
	t.Helper()
	return startReplicaReading(t, name, dsn, 5*time.Second, nil)
}

// startReplicaReading starts a replica whose deriver looks back over
// overlap, and reads the log through view if it is set.
func startReplicaReading(t *testing.T, name, dsn string, overlap time.Duration, view func(journal.Log) journal.Log) *replica {
	t.Helper()
	store := chtest.Open(t, dsn)
	var log journal.Log = store
	if view != nil {
		log = view(store)
	}
	svc, err := incidents.NewService(incidents.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	j, err := journal.New(journal.Options{Log: store, Results: store, Incidents: store, Wait: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d, err := journal.NewDeriver(journal.DeriverOptions{
		Log: log, Results: store, Cursors: store, Leases: store, Applier: svc, Journal: j,
		Holder: fmt.Sprintf("%013d-%s", time.Now().UnixMilli(), name),
		// A short lease, so that a takeover takes about a second.
		LeaseTTL: 1500 * time.Millisecond, LeaseBeat: 250 * time.Millisecond,
		Overlap: overlap, Poll: 50 * time.Millisecond, PageRows: 50,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, store: store, journal: j, deriver: d, stop: cancel, done: make(chan struct{})}
	go func() { defer close(r.done); _ = d.Run(ctx) }()
	t.Cleanup(r.kill)
	return r
}

// kill stops the replica without draining: as kill -9 would, as far as
// the log and the store can tell.
func (r *replica) kill() {
	r.stop()
	<-r.done
}

var t0 = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

func alert(fp string, severity string, start, end time.Time) incidents.Alert {
	a := incidents.Alert{Fingerprint: fp, Status: incidents.AlertFiring, StartsAt: start,
		Labels: map[string]string{"alertname": "Down", "service": "api", "severity": severity, "fp": fp}}
	if !end.IsZero() {
		a.Status, a.EndsAt = incidents.AlertResolved, end
	}
	return a
}

func note(gk string, alerts ...incidents.Alert) incidents.Notification {
	st := incidents.AlertResolved
	for _, a := range alerts {
		if a.Status == incidents.AlertFiring {
			st = incidents.AlertFiring
		}
	}
	return incidents.Notification{Receiver: "nines", Status: st, GroupKey: gk, Alerts: alerts}
}

// summary is what a person sees of a database's incidents: each one's
// periods, state, alerts and notes, in a stable text. Incidents a late
// notification merged into another (left without periods, pointing to it
// on their timelines) depend on the order things were seen in, and are
// left out.
func summary(t *testing.T, store *chstore.Store) string {
	t.Helper()
	incs, _, err := store.List(t.Context(), incidents.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, inc := range incs {
		full, err := store.Get(t.Context(), inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(full.Periods) == 0 {
			continue
		}
		var alerts []string
		for _, a := range full.Alerts {
			alerts = append(alerts, fmt.Sprintf("%s@%s-%s", a.Fingerprint, a.StartsAt.Format("15:04"), a.EndsAt.Format("15:04")))
		}
		sort.Strings(alerts)
		var periods []string
		for _, p := range full.Periods {
			periods = append(periods, p.Start.Format("15:04")+"-"+p.End.Format("15:04"))
		}
		evs, err := store.Timeline(t.Context(), inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		var notes []string
		for _, e := range evs {
			if e.Kind == incidents.EventNote {
				notes = append(notes, e.Actor+": "+e.Text)
			}
		}
		lines = append(lines, fmt.Sprintf("%s %s %s ack=%s periods=%v alerts=%v notes=%q", full.ID, full.State, full.Impact,
			full.AcknowledgedBy, periods, alerts, notes))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// eventsUnique fails when a timeline event is stored twice.
func eventsUnique(t *testing.T, store *chstore.Store) {
	t.Helper()
	incs, _, err := store.List(t.Context(), incidents.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, inc := range incs {
		evs, err := store.Timeline(t.Context(), inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range evs {
			if seen[e.ID] {
				t.Errorf("%s: event %s (%s %q) stored twice", inc.ID, e.ID, e.Kind, e.Text)
			}
			seen[e.ID] = true
		}
	}
}

func ingest(t *testing.T, r *replica, ns ...incidents.Notification) {
	t.Helper()
	for _, n := range ns {
		if err := r.journal.Ingest(t.Context(), n); err != nil {
			t.Fatalf("%s: ingest: %v", r.name, err)
		}
	}
}

func barrier(t *testing.T, r *replica) {
	t.Helper()
	if err := r.journal.Sync(t.Context()); err != nil {
		t.Fatalf("%s: sync: %v", r.name, err)
	}
}

// TestOrderOfDeliveryDoesNotMatter is the case: a critical alert
// fires 12:00–12:10 (N1, N2), the group fires again 16:00–16:10 (N3, N4).
// Delivered as N1, N3, N2, N4 (one swap, as an HA pair or a retry
// delivers), nines must make the same two incidents as in order, not one
// incident from 12:00 to 16:10.
func TestOrderOfDeliveryDoesNotMatter(t *testing.T) {
	const gk = `{}:{alertname="Down"}`
	n1 := note(gk, alert("a", "critical", t0, time.Time{}))
	n2 := note(gk, alert("a", "critical", t0, t0.Add(10*time.Minute)))
	n3 := note(gk, alert("a", "critical", t0.Add(4*time.Hour), time.Time{}))
	n4 := note(gk, alert("a", "critical", t0.Add(4*time.Hour), t0.Add(4*time.Hour+10*time.Minute)))
	var want string
	for i, order := range [][]incidents.Notification{{n1, n2, n3, n4}, {n1, n3, n2, n4}, {n3, n4, n1, n2}, {n4, n3, n2, n1}} {
		r := startReplica(t, "a", chtest.Database(t))
		ingest(t, r, order...)
		barrier(t, r)
		got := summary(t, r.store)
		if i == 0 {
			want = got
			if n := strings.Count(got, "\n") + 1; n != 2 {
				t.Fatalf("in order: %d incidents, want 2:\n%s", n, got)
			}
			continue
		}
		if got != want {
			t.Errorf("order %d gives\n%s\nwant (in order)\n%s", i, got, want)
		}
	}
}

// TestTwoReplicasActAsOne: two nines on one store, each receiving every
// notification (an HA pair of Alertmanagers), in different orders, with
// people acting on both, and the deriver killed halfway: the incidents
// equal those of one nines receiving each notification once, no event is
// stored twice, and every action answered is kept.
func TestTwoReplicasActAsOne(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	var ns []incidents.Notification
	for g := range 6 {
		gk := fmt.Sprintf(`{}:{alertname="Down%d"}`, g)
		at := t0.Add(time.Duration(g) * time.Minute)
		for e := range 3 { // three episodes, some within the reopen window
			start := at.Add(time.Duration(e) * time.Duration(rng.IntN(3)+1) * time.Hour)
			sev := []string{"critical", "warning"}[rng.IntN(2)]
			fp := fmt.Sprintf("g%de%d", g, e)
			ns = append(ns,
				note(gk, alert(fp, sev, start, time.Time{})),
				note(gk, alert(fp, sev, start, start.Add(time.Duration(rng.IntN(50)+5)*time.Minute))))
		}
	}

	ref := startReplica(t, "ref", chtest.Database(t))
	ingest(t, ref, ns...)
	barrier(t, ref)

	dsn := chtest.Database(t)
	a := startReplica(t, "a", dsn)
	time.Sleep(20 * time.Millisecond) // a's holder ID sorts first: a leads
	b := startReplica(t, "b", dsn)
	half := len(ns) / 2
	shuffled := func() []incidents.Notification {
		s := slices.Clone(ns)
		rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		return s
	}
	sa, sb := shuffled(), shuffled()
	var wg sync.WaitGroup
	wg.Go(func() { ingest(t, a, sa[:half]...) })
	wg.Go(func() { ingest(t, b, sb[:half]...) })
	wg.Wait()
	barrier(t, b) // answered through the results table: b does not lead
	if !a.deriver.Leader() || b.deriver.Leader() {
		t.Fatalf("leaders: a %v, b %v; want a only", a.deriver.Leader(), b.deriver.Leader())
	}
	// A person writes a note through b while a derives, on group 0's
	// first incident (named by its first alert whatever the order).
	id := incidents.EpisodeID(ns[0].GroupKey, "api", ns[0].Alerts[0])
	if _, err := b.journal.AddNote(t.Context(), id, "alice", "rolling back"); err != nil && !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("note through b: %v", err)
	} else if err != nil {
		t.Fatalf("note through b: %v (not derived yet, or not named by its first alert)", err)
	}
	if _, err := ref.journal.AddNote(t.Context(), id, "alice", "rolling back"); err != nil {
		t.Fatalf("note on the reference: %v", err)
	}
	// The deriver dies; b takes over and the rest arrives.
	a.kill()
	wg.Go(func() { ingest(t, b, sa[half:]...) })
	wg.Go(func() { ingest(t, b, sb[half:]...) })
	wg.Wait()
	barrier(t, b)
	if !b.deriver.Leader() {
		t.Fatal("b does not lead after a died")
	}
	got, want := summary(t, b.store), summary(t, ref.store)
	if got != want {
		t.Errorf("two replicas:\n%s\nwant (one replica, each notification once):\n%s", got, want)
	}
	eventsUnique(t, b.store)
}

// TestActionsThroughTheLog: an action answers with the incident it left,
// an invalid transition with a conflict, on the replica that derives and
// on one that does not.
func TestActionsThroughTheLog(t *testing.T) {
	dsn := chtest.Database(t)
	a := startReplica(t, "a", dsn)
	time.Sleep(20 * time.Millisecond)
	b := startReplica(t, "b", dsn)
	ingest(t, b, note(`{}:{alertname="Down"}`, alert("a", "critical", t0, time.Time{})))
	barrier(t, b)
	incs, _, err := b.store.List(t.Context(), incidents.Filter{})
	if err != nil || len(incs) != 1 {
		t.Fatalf("list: %v %v", incs, err)
	}
	id := incs[0].ID
	for _, r := range []*replica{a, b} {
		t.Run(r.name, func(t *testing.T) {
			inc, err := r.journal.AddNote(t.Context(), id, "bob", "looking from "+r.name)
			if err != nil || inc == nil || inc.ID != id {
				t.Fatalf("note: %v %v", inc, err)
			}
		})
	}
	if inc, err := b.journal.Resolve(t.Context(), id, "carol"); err != nil || inc.State != incidents.StateResolved {
		t.Fatalf("resolve: %v %v", inc, err)
	}
	_, err = b.journal.Resolve(t.Context(), id, "carol")
	if !errors.Is(err, fault.ErrConflict) {
		t.Errorf("second resolve: %v, want a conflict", err)
	}
	if _, err := a.journal.Acknowledge(t.Context(), "inc-00000000000000000000", "dave"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("ack of no incident: %v, want not found", err)
	}
	evs, err := b.store.Timeline(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	notes := 0
	for _, e := range evs {
		if e.Kind == incidents.EventNote {
			notes++
		}
	}
	if notes != 2 {
		t.Errorf("%d notes on the timeline, want 2", notes)
	}
}

// TestNotDowntimeThroughTheLog: a mark as not downtime goes through the
// log like any action, answers with the incident marked, and stays when
// the deriver applies the alert's resolve after it; one without a reason
// is refused before it is logged.
func TestNotDowntimeThroughTheLog(t *testing.T) {
	dsn := chtest.Database(t)
	a := startReplica(t, "a", dsn)
	ingest(t, a, note(`{}:{alertname="Down"}`, alert("a", "critical", t0, time.Time{})))
	barrier(t, a)
	incs, _, err := a.store.List(t.Context(), incidents.Filter{})
	if err != nil || len(incs) != 1 {
		t.Fatalf("list: %v %v", incs, err)
	}
	id := incs[0].ID
	if _, err := a.journal.NotDowntime(t.Context(), id, incidents.NotDowntimeRequest{Actor: "alice"}); !errors.Is(err, fault.ErrInvalid) {
		t.Errorf("mark without a reason: %v, want invalid", err)
	}
	req := incidents.NotDowntimeRequest{From: t0.Add(5 * time.Minute), To: t0.Add(10 * time.Minute), Actor: "alice", Reason: "false positive"}
	inc, err := a.journal.NotDowntime(t.Context(), id, req)
	if err != nil || inc == nil || len(inc.Excluded) != 1 || inc.Excluded[0].By != "alice" {
		t.Fatalf("mark: %+v %v", inc, err)
	}
	ingest(t, a, note(`{}:{alertname="Down"}`, alert("a", "critical", t0, t0.Add(20*time.Minute))))
	barrier(t, a)
	got, err := a.store.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != incidents.StateResolved || len(got.Excluded) != 1 || got.Excluded[0].Reason != "false positive" ||
		!got.Excluded[0].From.Equal(req.From.Truncate(time.Second)) || !got.Excluded[0].To.Equal(req.To.Truncate(time.Second)) {
		t.Errorf("after the resolve: %s with marks %+v, want resolved with the mark", got.State, got.Excluded)
	}
}

// TestCascadeWithinOneBatch: the database's outage and the API's that it
// causes arrive together, the API's first, and the deriver applies them at
// once: the API's incident is still linked to the database's (caused_by),
// as it would be had they arrived one after the other.
func TestCascadeWithinOneBatch(t *testing.T) {
	for range 3 {
		store := chtest.Open(t, chtest.Database(t))
		svc, err := incidents.NewService(incidents.Options{Store: store, Upstream: func(s string) []string {
			if s == "api" {
				return []string{"db"}
			}
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		j, err := journal.New(journal.Options{Log: store, Results: store, Incidents: store})
		if err != nil {
			t.Fatal(err)
		}
		d, err := journal.NewDeriver(journal.DeriverOptions{Log: store, Results: store, Cursors: store, Leases: store, Applier: svc, Journal: j, Poll: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		api := alert("api1", "critical", t0.Add(time.Minute), time.Time{})
		db := alert("db1", "critical", t0, time.Time{})
		db.Labels["service"] = "db"
		// Logged before the deriver runs: one page.
		if err := j.Ingest(t.Context(), note(`{}:{alertname="Down",service="api"}`, api)); err != nil {
			t.Fatal(err)
		}
		if err := j.Ingest(t.Context(), note(`{}:{alertname="Down",service="db"}`, db)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); _ = d.Run(ctx) }()
		if err := j.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
		cancel()
		<-done
		got, err := store.Get(t.Context(), incidents.EpisodeID(`{}:{alertname="Down",service="api"}`, "api", api))
		if err != nil {
			t.Fatal(err)
		}
		if want := incidents.EpisodeID(`{}:{alertname="Down",service="db"}`, "db", db); got.CausedBy != want {
			t.Fatalf("the API's incident is caused by %q, want the database's %s", got.CausedBy, want)
		}
	}
}

// lateLog shows the deriver the log without the records whose bodies hold
// a marker, until reveal: a record that becomes visible after records
// logged later, as another replica's slow INSERT does.
type lateLog struct {
	journal.Log
	mu       sync.Mutex
	marker   string
	revealed bool
}

func (l *lateLog) ReadLog(ctx context.Context, after journal.Position, maxRows int, maxBytes int64, want func(journal.Record) bool) ([]journal.Record, error) {
	recs, err := l.Log.ReadLog(ctx, after, maxRows, maxBytes, want)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.revealed || err != nil {
		return recs, err
	}
	return slices.DeleteFunc(recs, func(r journal.Record) bool {
		if r.Body == nil {
			// Only the keys: fetch the body to tell.
			all, err := l.Log.ReadLog(ctx, journal.Position{At: r.At.Add(-time.Millisecond)}, maxRows, maxBytes, nil)
			if err != nil {
				return false
			}
			for _, a := range all {
				if a.Hash == r.Hash {
					return strings.Contains(string(a.Body), l.marker)
				}
			}
			return false
		}
		return strings.Contains(string(r.Body), l.marker)
	}), nil
}

func (l *lateLog) reveal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revealed = true
}

// TestSyncAppliesWhatBecameVisibleLate: a notification the deriver's tail
// passed before it became visible (another replica's INSERT that started
// first and finished last) is applied before a sync logged after it
// returns, not at the next look back, which is Overlap/4 later.
func TestSyncAppliesWhatBecameVisibleLate(t *testing.T) {
	late := &lateLog{marker: "late-group"}
	r := startReplicaReading(t, "a", chtest.Database(t), time.Minute, func(l journal.Log) journal.Log {
		late.Log = l
		return late
	})
	ingest(t, r, note("late-group", alert("late", "critical", t0, time.Time{})))
	ingest(t, r, note("on-time-group", alert("on-time", "critical", t0, time.Time{})))
	barrier(t, r)
	if got := strings.Count(summary(t, r.store), "\n") + 1; got != 1 {
		t.Fatalf("before the late record is visible: %d incidents, want 1:\n%s", got, summary(t, r.store))
	}
	late.reveal()
	barrier(t, r)
	if got := summary(t, r.store); strings.Count(got, "\n")+1 != 2 || !strings.Contains(got, "late@") {
		t.Fatalf("a sync after the late record became visible returned before it was applied:\n%s", got)
	}
}

// TestLookBackAppliesWhatBecameVisibleLate: without any sync, a
// notification the tail passed before it became visible is applied by the
// deriver's periodic look back (every Overlap/4) once it is visible.
func TestLookBackAppliesWhatBecameVisibleLate(t *testing.T) {
	late := &lateLog{marker: "late-group"}
	r := startReplicaReading(t, "a", chtest.Database(t), 2*time.Second, func(l journal.Log) journal.Log {
		late.Log = l
		return late
	})
	ingest(t, r, note("late-group", alert("late", "critical", t0, time.Time{})))
	ingest(t, r, note("on-time-group", alert("on-time", "critical", t0, time.Time{})))
	barrier(t, r)
	late.reveal()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := summary(t, r.store)
		if strings.Count(got, "\n")+1 == 2 && strings.Contains(got, "late@") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the late record became visible, it is not applied:\n%s", got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
