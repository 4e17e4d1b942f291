package incidents

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"
)

// memStore is an in-memory Store for lifecycle tests. It counts writes so
// tests can see that repeats write nothing.
type memStore struct {
	mu     sync.Mutex
	incs   map[string]*Incident
	events map[string]Event
	writes int
	fail   error
}

func newMemStore() *memStore {
	return &memStore{incs: map[string]*Incident{}, events: map[string]Event{}}
}

func (m *memStore) Latest(_ context.Context, refs []GroupRef) (map[GroupRef]*Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[GroupRef]*Incident{}
	for _, r := range refs {
		for _, inc := range m.incs {
			if inc.GroupKey == r.GroupKey && inc.Service == r.Service {
				if cur := out[r]; cur == nil || inc.StartedAt.After(cur.StartedAt) {
					out[r] = inc.Clone()
				}
			}
		}
	}
	return out, nil
}

func (m *memStore) Get(_ context.Context, id string) (*Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inc, ok := m.incs[id]
	if !ok {
		return nil, ErrNotFound
	}
	return inc.Clone(), nil
}

func (m *memStore) Write(_ context.Context, chs []Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.writes++
	for _, ch := range chs {
		if cur, ok := m.incs[ch.Incident.ID]; ok && cur.Version() > ch.Incident.Version() {
			continue
		}
		m.incs[ch.Incident.ID] = ch.Incident.Clone()
		for _, e := range ch.Events {
			m.events[e.ID] = e
		}
	}
	return nil
}

func (m *memStore) timeline(id string) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Event
	for _, e := range m.events {
		if e.IncidentID == id {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

func (m *memStore) all() []*Incident {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Incident
	for _, inc := range m.incs {
		out = append(out, inc.Clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartedAt.Before(out[j].StartedAt) })
	return out
}

var t0 = time.Date(2026, 11, 22, 17, 33, 38, 310e6, time.UTC)

func alert(fp, name, service, severity string, start, end time.Time) Alert {
	a := Alert{
		Fingerprint: fp, Status: AlertFiring, StartsAt: start,
		Labels:      map[string]string{"alertname": name, "severity": severity},
		Annotations: map[string]string{"summary": name + " summary"},
	}
	if service != "" {
		a.Labels["service"] = service
	}
	if !end.IsZero() {
		a.Status, a.EndsAt = AlertResolved, end
	}
	return a
}

func note(groupKey string, alerts ...Alert) Notification {
	st := AlertResolved
	for _, a := range alerts {
		if a.Status == AlertFiring {
			st = AlertFiring
		}
	}
	return Notification{Receiver: "nines", Status: st, GroupKey: groupKey, Alerts: alerts, ExternalURL: "http://am:9093"}
}

type step struct {
	n   Notification
	now time.Time
}

// serviceAt is a Service on store whose clock reads *now.
func serviceAt(t *testing.T, store *memStore, now *time.Time) *Service {
	t.Helper()
	svc, err := NewService(Options{Store: store, Now: func() time.Time { return *now }})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func run(t *testing.T, steps ...step) (*Service, *memStore) {
	t.Helper()
	store := newMemStore()
	now := t0
	svc := serviceAt(t, store, &now)
	for i, s := range steps {
		now = s.now
		if now.IsZero() {
			now = t0.Add(time.Duration(i) * time.Minute)
		}
		if err := svc.Ingest(context.Background(), s.n); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	return svc, store
}

func TestLifecycle(t *testing.T) {
	const gk = `{}:{alertname="CheckoutDown", service="checkout"}`
	end := t0.Add(108 * time.Second)
	fire := alert("a1", "CheckoutDown", "checkout", "critical", t0, time.Time{})
	resolved := alert("a1", "CheckoutDown", "checkout", "critical", t0, end)
	later := func(d time.Duration) Alert {
		return alert("a1", "CheckoutDown", "checkout", "critical", t0.Add(d), time.Time{})
	}
	laterResolved := func(d, dur time.Duration) Alert {
		return alert("a1", "CheckoutDown", "checkout", "critical", t0.Add(d), t0.Add(d+dur))
	}

	type want struct {
		incidents int
		state     State
		impact    Impact
		flaps     int
		resolved  time.Time
		periods   int
		alerts    int
		writes    int
	}
	tests := []struct {
		name  string
		steps []step
		want  want
	}{
		{"firing opens", []step{{n: note(gk, fire)}},
			want{incidents: 1, state: StateFiring, impact: ImpactOutage, periods: 1, alerts: 1, writes: 1}},
		{"repeat changes nothing", []step{{n: note(gk, fire)}, {n: note(gk, fire)}, {n: note(gk, fire)}},
			want{incidents: 1, state: StateFiring, impact: ImpactOutage, periods: 1, alerts: 1, writes: 1}},
		{"resolve ends at endsAt, not arrival", []step{{n: note(gk, fire)}, {n: note(gk, resolved), now: end.Add(time.Hour)}},
			want{incidents: 1, state: StateResolved, impact: ImpactOutage, resolved: end, periods: 1, alerts: 1, writes: 2}},
		{"stale firing after resolve does not reopen", []step{{n: note(gk, fire)}, {n: note(gk, resolved)}, {n: note(gk, fire)}},
			want{incidents: 1, state: StateResolved, impact: ImpactOutage, resolved: end, periods: 1, alerts: 1, writes: 2}},
		{"resolve before firing (out of order)", []step{{n: note(gk, resolved)}, {n: note(gk, fire)}},
			want{incidents: 1, state: StateResolved, impact: ImpactOutage, resolved: end, periods: 1, alerts: 1, writes: 1}},
		{"resolve never seen firing records a short incident", []step{{n: note(gk, resolved)}},
			want{incidents: 1, state: StateResolved, impact: ImpactOutage, resolved: end, periods: 1, alerts: 1, writes: 1}},
		{"fires again within the reopen window: reopen", []step{{n: note(gk, fire)}, {n: note(gk, resolved)}, {n: note(gk, later(10*time.Minute))}},
			want{incidents: 1, state: StateFiring, impact: ImpactOutage, flaps: 1, periods: 2, alerts: 2, writes: 3}},
		{"flap then resolve again", []step{{n: note(gk, fire)}, {n: note(gk, resolved)}, {n: note(gk, later(10*time.Minute))}, {n: note(gk, laterResolved(10*time.Minute, 5*time.Minute))}},
			want{incidents: 1, state: StateResolved, impact: ImpactOutage, flaps: 1, resolved: t0.Add(15 * time.Minute), periods: 2, alerts: 2, writes: 4}},
		{"fires again after the window: new incident", []step{{n: note(gk, fire)}, {n: note(gk, resolved)}, {n: note(gk, later(2*time.Hour))}},
			want{incidents: 2, state: StateFiring, impact: ImpactOutage, periods: 1, alerts: 1, writes: 3}},
		{"late copy of an old incident's alert stays out of the new one", []step{{n: note(gk, fire)}, {n: note(gk, resolved)}, {n: note(gk, later(2*time.Hour))}, {n: note(gk, fire)}},
			want{incidents: 2, state: StateFiring, impact: ImpactOutage, periods: 1, alerts: 1, writes: 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, store := run(t, tc.steps...)
			all := store.all()
			if len(all) != tc.want.incidents {
				t.Fatalf("incidents = %d, want %d", len(all), tc.want.incidents)
			}
			inc := all[len(all)-1]
			if inc.State != tc.want.state || inc.Impact != tc.want.impact || inc.Flaps != tc.want.flaps {
				t.Errorf("state/impact/flaps = %s/%s/%d, want %s/%s/%d", inc.State, inc.Impact, inc.Flaps, tc.want.state, tc.want.impact, tc.want.flaps)
			}
			if !inc.ResolvedAt.Equal(tc.want.resolved) {
				t.Errorf("resolved at %v, want %v", inc.ResolvedAt, tc.want.resolved)
			}
			if len(inc.Periods) != tc.want.periods || len(inc.Alerts) != tc.want.alerts {
				t.Errorf("periods/alerts = %d/%d, want %d/%d (%+v)", len(inc.Periods), len(inc.Alerts), tc.want.periods, tc.want.alerts, inc.Periods)
			}
			if store.writes != tc.want.writes {
				t.Errorf("writes = %d, want %d", store.writes, tc.want.writes)
			}
			if inc.Service != "checkout" || inc.Title != "CheckoutDown summary" {
				t.Errorf("service/title = %q/%q", inc.Service, inc.Title)
			}
		})
	}
}

func TestFixtureSequence(t *testing.T) {
	// The shared Alertmanager 0.25 fixtures, in the order they were sent.
	const sk = `{}:{alertname="HighLatency", service="search"}`
	const ck = `{}:{alertname="CheckoutDown", service="checkout"}`
	end := time.Date(2026, 11, 22, 17, 35, 26, 310e6, time.UTC)
	s1 := alert("14d34edfcfdb5b57", "HighLatency", "search", "warning", t0, time.Time{})
	s2 := alert("fcea8ccb35c82b36", "HighLatency", "search", "warning", t0, time.Time{})
	s2r := alert("fcea8ccb35c82b36", "HighLatency", "search", "warning", t0, end)
	c := alert("a4968fcd8858e3e5", "CheckoutDown", "checkout", "critical", t0, time.Time{})
	cr := alert("a4968fcd8858e3e5", "CheckoutDown", "checkout", "critical", t0, end)

	_, store := run(t,
		step{n: note(sk, s1, s2)}, step{n: note(ck, c)}, step{n: note(ck, c)},
		step{n: note(sk, s1, s2r)}, step{n: note(ck, cr)}, step{n: note(sk, s1)})
	all := store.all()
	if len(all) != 2 {
		t.Fatalf("incidents = %d, want 2", len(all))
	}
	byService := map[string]*Incident{}
	for _, inc := range all {
		byService[inc.Service] = inc
	}
	search, checkout := byService["search"], byService["checkout"]
	if search == nil || checkout == nil {
		t.Fatalf("services: %v", byService)
	}
	if search.State != StateFiring || search.Impact != ImpactDegraded || len(search.Alerts) != 2 {
		t.Errorf("search = %s/%s/%d alerts", search.State, search.Impact, len(search.Alerts))
	}
	if checkout.State != StateResolved || checkout.Impact != ImpactOutage || !checkout.ResolvedAt.Equal(end) {
		t.Errorf("checkout = %s/%s resolved %v", checkout.State, checkout.Impact, checkout.ResolvedAt)
	}
	if got := checkout.Periods; len(got) != 1 || !got[0].Start.Equal(t0) || !got[0].End.Equal(end) {
		t.Errorf("checkout periods = %+v", got)
	}
	// 01, 02, 04 and 05 change something; the repeats 03 and 06 do not.
	if store.writes != 4 {
		t.Errorf("writes = %d, want 4", store.writes)
	}
	kinds := map[EventKind]int{}
	for _, e := range store.timeline(checkout.ID) {
		kinds[e.Kind]++
	}
	if kinds[EventOpened] != 1 || kinds[EventAlertFired] != 1 || kinds[EventAlertResolved] != 1 || kinds[EventResolved] != 1 {
		t.Errorf("checkout timeline kinds = %v", kinds)
	}
}

func TestImpactAndService(t *testing.T) {
	const gk = "g"
	tests := []struct {
		name        string
		alerts      []Alert
		wantService string
		wantImpact  Impact
	}{
		{"worst firing alert wins", []Alert{
			alert("1", "A", "api", "warning", t0, time.Time{}),
			alert("2", "B", "api", "critical", t0, time.Time{})}, "api", ImpactOutage},
		{"unknown severity is none", []Alert{alert("1", "A", "api", "info", t0, time.Time{})}, "api", ImpactNone},
		{"severity is case-insensitive", []Alert{alert("1", "A", "api", "CRITICAL", t0, time.Time{})}, "api", ImpactOutage},
		{"job when no service label", []Alert{func() Alert {
			a := alert("1", "A", "", "warning", t0, time.Time{})
			a.Labels["job"] = "node"
			return a
		}()}, "node", ImpactDegraded},
		{"default service when none", []Alert{alert("1", "A", "", "warning", t0, time.Time{})}, "unknown", ImpactDegraded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, store := run(t, step{n: note(gk, tc.alerts...)})
			all := store.all()
			if len(all) != 1 {
				t.Fatalf("incidents = %d", len(all))
			}
			if all[0].Service != tc.wantService || all[0].Impact != tc.wantImpact {
				t.Errorf("service/impact = %s/%s, want %s/%s", all[0].Service, all[0].Impact, tc.wantService, tc.wantImpact)
			}
		})
	}
}

func TestImpactEscalates(t *testing.T) {
	w := alert("1", "Slow", "api", "warning", t0, time.Time{})
	c := alert("2", "Down", "api", "critical", t0.Add(time.Minute), time.Time{})
	_, store := run(t, step{n: note("g", w)}, step{n: note("g", w, c)})
	inc := store.all()[0]
	if inc.Impact != ImpactOutage {
		t.Fatalf("impact = %s, want outage", inc.Impact)
	}
	var changed bool
	for _, e := range store.timeline(inc.ID) {
		changed = changed || e.Kind == EventImpactChanged
	}
	if !changed {
		t.Error("no impact_changed event on the timeline")
	}
}

func TestManualActions(t *testing.T) {
	ctx := context.Background()
	fire := alert("a1", "Down", "api", "critical", t0, time.Time{})
	svc, store := run(t, step{n: note("g", fire)})
	id := store.all()[0].ID

	inc, err := svc.Acknowledge(ctx, id, "alice")
	if err != nil || inc.State != StateAcknowledged || inc.AcknowledgedBy != "alice" || inc.AcknowledgedAt.IsZero() {
		t.Fatalf("ack: %v %+v", err, inc)
	}
	if _, err := svc.Acknowledge(ctx, id, "bob"); !errors.Is(err, ErrConflict) {
		t.Errorf("second ack: err = %v, want ErrConflict", err)
	}
	if _, err := svc.AddNote(ctx, id, "bob", "  "); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty note: err = %v, want ErrInvalid", err)
	}
	if _, err := svc.AddNote(ctx, id, "bob", "rolling back v1.4.2"); err != nil {
		t.Errorf("note: %v", err)
	}
	inc, err = svc.Resolve(ctx, id, "alice")
	if err != nil || inc.State != StateResolved || inc.ResolvedBy != "alice" {
		t.Fatalf("resolve: %v %+v", err, inc)
	}
	if _, err := svc.Resolve(ctx, id, "alice"); !errors.Is(err, ErrConflict) {
		t.Errorf("second resolve: err = %v, want ErrConflict", err)
	}
	if _, err := svc.Acknowledge(ctx, "inc-nope", "alice"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown: err = %v, want ErrNotFound", err)
	}
	// The alert keeps firing: repeats leave the incident resolved by hand.
	if err := svc.Ingest(ctx, note("g", fire)); err != nil {
		t.Fatal(err)
	}
	if got := store.all()[0]; got.State != StateResolved || got.ResolvedBy != "alice" {
		t.Errorf("after repeat: %s by %s", got.State, got.ResolvedBy)
	}
	// A new alert of the group within the window reopens it.
	if err := svc.Ingest(ctx, note("g", fire, alert("a2", "Down2", "api", "critical", t0.Add(5*time.Minute), time.Time{}))); err != nil {
		t.Fatal(err)
	}
	if got := store.all(); len(got) != 1 || got[0].State != StateFiring || got[0].Flaps != 1 {
		t.Errorf("after new alert: %d incidents, %s, flaps %d", len(got), got[0].State, got[0].Flaps)
	}
	kinds := map[EventKind]int{}
	for _, e := range store.timeline(id) {
		kinds[e.Kind]++
	}
	if kinds[EventAcknowledged] != 1 || kinds[EventNote] != 1 || kinds[EventResolved] != 1 || kinds[EventReopened] != 1 {
		t.Errorf("timeline kinds = %v", kinds)
	}
}

func TestDeterministicIDs(t *testing.T) {
	// Two services (as two replicas) fed the same notifications in
	// different orders choose the same incident IDs.
	a1 := alert("1", "Down", "api", "critical", t0, time.Time{})
	a2 := alert("2", "Down", "api", "critical", t0.Add(time.Second), time.Time{})
	_, s1 := run(t, step{n: note("g", a1)}, step{n: note("g", a1, a2)})
	_, s2 := run(t, step{n: note("g", a1, a2)}, step{n: note("g", a1)})
	i1, i2 := s1.all(), s2.all()
	if len(i1) != 1 || len(i2) != 1 || i1[0].ID != i2[0].ID {
		t.Fatalf("ids differ: %v vs %v", i1, i2)
	}
}

func TestTruncatedRecorded(t *testing.T) {
	n := note("g", alert("1", "Down", "api", "critical", t0, time.Time{}))
	n.TruncatedAlerts = 12
	_, store := run(t, step{n: n})
	if got := store.all()[0].TruncatedAlerts; got != 12 {
		t.Errorf("truncated = %d, want 12", got)
	}
}

func TestStoreDownIsNotAcknowledged(t *testing.T) {
	store := newMemStore()
	store.fail = ErrUnavailable
	svc, err := NewService(Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	n := note("g", alert("1", "Down", "api", "critical", t0, time.Time{}))
	if err := svc.Ingest(context.Background(), n); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	// Once the store is back, the same notification is applied: the failed
	// attempt left nothing behind in memory.
	store.fail = nil
	if err := svc.Ingest(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	if len(store.all()) != 1 {
		t.Fatal("incident not stored after retry")
	}
}

func TestAddPeriod(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name string
		in   []Period
		add  Period
		want []Period
	}{
		{"into empty", nil, Period{at(0), at(5)}, []Period{{at(0), at(5)}}},
		{"disjoint after", []Period{{at(0), at(5)}}, Period{at(10), at(12)}, []Period{{at(0), at(5)}, {at(10), at(12)}}},
		{"overlap merges", []Period{{at(0), at(5)}}, Period{at(3), at(8)}, []Period{{at(0), at(8)}}},
		{"bridges two", []Period{{at(0), at(5)}, {at(10), at(12)}}, Period{at(4), at(11)}, []Period{{at(0), at(12)}}},
		{"open swallows later", []Period{{at(10), at(12)}}, Period{Start: at(5)}, []Period{{Start: at(5)}}},
		{"nested", []Period{{at(0), at(10)}}, Period{at(2), at(3)}, []Period{{at(0), at(10)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := addPeriod(tc.in, tc.add)
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if !got[i].Start.Equal(tc.want[i].Start) || !got[i].End.Equal(tc.want[i].End) {
					t.Fatalf("got %+v, want %+v", got, tc.want)
				}
			}
		})
	}
}

func (m *memStore) Outages(_ context.Context, services []string, since time.Time) ([]*Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[string]bool{}
	for _, s := range services {
		want[s] = true
	}
	var out []*Incident
	for _, inc := range m.incs {
		if want[inc.Service] && (inc.State.Open() || !inc.ResolvedAt.Before(since)) && inc.Impact == ImpactOutage {
			out = append(out, inc.Clone())
		}
	}
	return out, nil
}

func TestCascadeLinking(t *testing.T) {
	ctx := context.Background()
	deps := map[string][]string{"frontend": {"checkout", "payments"}, "checkout": {"payments"}}
	tests := []struct {
		name      string
		upstream  []Alert // fired first, each its own group
		alert     Alert   // then this one, on frontend
		wantCause string  // service of the upstream incident, "" for none
	}{
		{"open upstream outage links", []Alert{alert("p", "Down", "payments", "critical", t0, time.Time{})},
			alert("f", "Down", "frontend", "critical", t0.Add(time.Minute), time.Time{}), "payments"},
		{"nearest upstream wins", []Alert{
			alert("p", "Down", "payments", "critical", t0, time.Time{}),
			alert("c", "Down", "checkout", "critical", t0.Add(time.Second), time.Time{})},
			alert("f", "Down", "frontend", "warning", t0.Add(time.Minute), time.Time{}), "checkout"},
		{"degraded upstream does not link", []Alert{alert("p", "Slow", "payments", "warning", t0, time.Time{})},
			alert("f", "Down", "frontend", "critical", t0.Add(time.Minute), time.Time{}), ""},
		{"resolved upstream does not link", []Alert{alert("p", "Down", "payments", "critical", t0, t0.Add(time.Second))},
			alert("f", "Down", "frontend", "critical", t0.Add(time.Minute), time.Time{}), ""},
		{"unrelated service does not link", []Alert{alert("s", "Down", "search", "critical", t0, time.Time{})},
			alert("f", "Down", "frontend", "critical", t0.Add(time.Minute), time.Time{}), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			svc, err := NewService(Options{Store: store, Upstream: func(s string) []string { return deps[s] }})
			if err != nil {
				t.Fatal(err)
			}
			for i, a := range tc.upstream {
				if err := svc.Ingest(ctx, note(fmt.Sprint("up", i), a)); err != nil {
					t.Fatal(err)
				}
			}
			if err := svc.Ingest(ctx, note("front", tc.alert)); err != nil {
				t.Fatal(err)
			}
			var front *Incident
			for _, inc := range store.all() {
				if inc.Service == "frontend" {
					front = inc
				}
			}
			cause := ""
			if front.CausedBy != "" {
				up, err := store.Get(ctx, front.CausedBy)
				if err != nil {
					t.Fatal(err)
				}
				cause = up.Service
			}
			if cause != tc.wantCause {
				t.Errorf("caused by %q, want %q", cause, tc.wantCause)
			}
		})
	}
}

// apiOnDB is a Service on store whose catalog has api depend on db.
func apiOnDB(t *testing.T, store *memStore) *Service {
	t.Helper()
	svc, err := NewService(Options{Store: store, Upstream: func(s string) []string {
		if s == "api" {
			return []string{"db"}
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// apiAndDB returns the incidents of api and db in store (of each, the one
// that started last).
func apiAndDB(store *memStore) (api, db *Incident) {
	for _, inc := range store.all() {
		switch inc.Service {
		case "api":
			api = inc
		case "db":
			db = inc
		}
	}
	return api, db
}

// TestCascadeLinkSurvivesLaterNotifications: the automatic link to an
// upstream outage is a fact about the incident; the notifications that
// follow (more alerts, the resolve) must not drop it.
func TestCascadeLinkSurvivesLaterNotifications(t *testing.T) {
	ctx := context.Background()
	store := newMemStore()
	svc := apiOnDB(t, store)
	steps := []Notification{
		note("db", alert("d", "DBDown", "db", "critical", t0, time.Time{})),
		note("api", alert("a", "APIErrors", "api", "critical", t0.Add(5*time.Minute), time.Time{})),
		note("api", alert("a", "APIErrors", "api", "critical", t0.Add(5*time.Minute), time.Time{}),
			alert("b", "APISlow", "api", "warning", t0.Add(6*time.Minute), time.Time{})),
		note("api", alert("a", "APIErrors", "api", "critical", t0.Add(5*time.Minute), t0.Add(20*time.Minute)),
			alert("b", "APISlow", "api", "warning", t0.Add(6*time.Minute), t0.Add(21*time.Minute))),
	}
	for i, n := range steps {
		if err := svc.Ingest(ctx, n); err != nil {
			t.Fatal(err)
		}
		if i < 1 {
			continue
		}
		api, db := apiAndDB(store)
		if api == nil || db == nil || api.CausedBy != db.ID {
			t.Fatalf("after notification %d: api caused by %q, want db's incident", i+1, api.CausedBy)
		}
	}
}

// TestCascadeLinkIndependentOfOrder: an incident that starts while an
// outage upstream is open is caused by it, whether the deriver applies the
// upstream's resolve before or after the incident downstream opens (a page
// of notifications is applied at once, in any order, and Alertmanager may
// deliver late), and whether the link is made at open or by LinkPending.
func TestCascadeLinkIndependentOfOrder(t *testing.T) {
	ctx := context.Background()
	dbFiring := note("db", alert("d", "DBDown", "db", "critical", t0, time.Time{}))
	dbResolved := note("db", alert("d", "DBDown", "db", "critical", t0, t0.Add(30*time.Minute)))
	apiFiring := note("api", alert("a", "APIErrors", "api", "critical", t0.Add(5*time.Minute), time.Time{}))
	apiAfter := note("api", alert("a", "APIErrors", "api", "critical", t0.Add(40*time.Minute), time.Time{}))
	for _, tc := range []struct {
		name  string
		steps []Notification
		want  bool // api's incident caused by db's
	}{
		{"upstream resolve applied last", []Notification{dbFiring, apiFiring, dbResolved}, true},
		{"upstream resolve applied before the incident opens", []Notification{dbFiring, dbResolved, apiFiring}, true},
		{"upstream only known resolved", []Notification{dbResolved, apiFiring}, true},
		{"incident downstream applied first", []Notification{apiFiring, dbResolved}, true},
		{"incident starting after the upstream resolved", []Notification{dbFiring, dbResolved, apiAfter}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newMemStore()
			svc := apiOnDB(t, store)
			for _, n := range tc.steps {
				if err := svc.Ingest(ctx, n); err != nil {
					t.Fatal(err)
				}
			}
			svc.LinkPending(ctx)
			api, db := apiAndDB(store)
			if api == nil || db == nil {
				t.Fatalf("incidents: api %v, db %v", api, db)
			}
			if got := api.CausedBy == db.ID; got != tc.want {
				t.Errorf("api caused by %q (db is %s), want linked = %v", api.CausedBy, db.ID, tc.want)
			}
		})
	}
}

func TestManualLink(t *testing.T) {
	ctx := context.Background()
	svc, store := run(t,
		step{n: note("a", alert("1", "Down", "payments", "critical", t0, time.Time{}))},
		step{n: note("b", alert("2", "Down", "checkout", "critical", t0, time.Time{}))})
	var pay, chk string
	for _, inc := range store.all() {
		if inc.Service == "payments" {
			pay = inc.ID
		} else {
			chk = inc.ID
		}
	}
	if _, err := svc.Link(ctx, chk, chk, "bob"); !errors.Is(err, ErrInvalid) {
		t.Errorf("self link: %v, want ErrInvalid", err)
	}
	if _, err := svc.Link(ctx, chk, "inc-00000000000000000000", "bob"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown upstream: %v, want ErrInvalid", err)
	}
	inc, err := svc.Link(ctx, chk, pay, "bob")
	if err != nil || inc.CausedBy != pay {
		t.Fatalf("link: %v, caused_by %q", err, inc.CausedBy)
	}
	if _, err := svc.Link(ctx, chk, pay, "bob"); !errors.Is(err, ErrConflict) {
		t.Errorf("second link: %v, want ErrConflict", err)
	}
	inc, err = svc.Unlink(ctx, chk, "bob")
	if err != nil || inc.CausedBy != "" {
		t.Fatalf("unlink: %v, caused_by %q", err, inc.CausedBy)
	}
	if _, err := svc.Unlink(ctx, chk, "bob"); !errors.Is(err, ErrConflict) {
		t.Errorf("second unlink: %v, want ErrConflict", err)
	}
}
