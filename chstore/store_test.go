package chstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

var t0 = time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)

type testStore struct {
	*chstore.Store
	reg *prometheus.Registry
	dsn string
}

// openStore opens a store on dsn with a short flush interval and its own
// metrics registry; it is closed when the test ends.
func openStore(t *testing.T, dsn string, configure ...func(*chstore.Options)) *testStore {
	t.Helper()
	reg := prometheus.NewRegistry()
	s := chtest.Open(t, dsn, append([]func(*chstore.Options){func(o *chstore.Options) { o.Registerer = reg }}, configure...)...)
	return &testStore{Store: s, reg: reg, dsn: dsn}
}

// ops returns nines_clickhouse_operations_total{op=op}.
func (s *testStore) ops(t *testing.T, op string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "nines_clickhouse_operations_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func (s *testStore) write(t *testing.T, changes ...incidents.Change) {
	t.Helper()
	if err := s.Write(t.Context(), changes); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func (s *testStore) get(t *testing.T, id string) *incidents.Incident {
	t.Helper()
	inc, err := s.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return inc
}

// newIncident returns an incident whose ID follows from its group, service
// and start, as the lifecycle makes them.
func newIncident(group, service string, started time.Time) *incidents.Incident {
	return &incidents.Incident{
		ID:        incidents.IncidentID(group, service, started),
		Service:   service,
		GroupKey:  group,
		Title:     "trouble in " + service,
		Impact:    incidents.ImpactDegraded,
		State:     incidents.StateFiring,
		Source:    incidents.SourceAlertmanager,
		StartedAt: started,
		Periods:   []incidents.Period{{Start: started}},
		UpdatedAt: started,
		Facts:     1,
	}
}

// version returns a copy of inc with more facts, a later update and the
// given state and title.
func version(inc *incidents.Incident, facts uint32, state incidents.State, title string) *incidents.Incident {
	v := inc.Clone()
	v.Facts = facts
	v.UpdatedAt = inc.StartedAt.Add(time.Duration(facts) * time.Minute)
	v.State = state
	v.Title = title
	return v
}

func secs(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.Truncate(time.Second)
}

// stored returns what reading inc back gives: every time to the
// millisecond (issue 15), and alerts as written.
func stored(inc *incidents.Incident, alerts ...incidents.Alert) *incidents.Incident {
	want := inc.Clone()
	want.StartedAt = want.StartedAt.Truncate(time.Millisecond)
	want.AcknowledgedAt = want.AcknowledgedAt.Truncate(time.Millisecond)
	want.ResolvedAt = want.ResolvedAt.Truncate(time.Millisecond)
	want.UpdatedAt = want.UpdatedAt.Truncate(time.Millisecond)
	for i, p := range want.Periods {
		want.Periods[i] = incidents.Period{Start: p.Start.Truncate(time.Millisecond), End: p.End.Truncate(time.Millisecond)}
	}
	want.Alerts = nil
	for _, a := range alerts {
		a.StartsAt = a.StartsAt.Truncate(time.Millisecond)
		a.EndsAt = a.EndsAt.Truncate(time.Millisecond)
		want.Alerts = append(want.Alerts, a)
	}
	sort.Slice(want.Alerts, func(i, j int) bool {
		a, b := want.Alerts[i], want.Alerts[j]
		if !a.StartsAt.Equal(b.StartsAt) {
			return a.StartsAt.Before(b.StartsAt)
		}
		return a.Fingerprint < b.Fingerprint
	})
	return want
}

func checkIncident(t *testing.T, got, want *incidents.Incident) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("incident differs\n got: %+v\nwant: %+v", got, want)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts chstore.Options
	}{
		{"no dsn", chstore.Options{}},
		{"unknown scheme", chstore.Options{DSN: "tcp://127.0.0.1:9000/nines"}},
		{"http with TLS", chstore.Options{DSN: "http://127.0.0.1:8123/nines?secure=true"}},
		{"bad database name", chstore.Options{DSN: "clickhouse://127.0.0.1:9000/nines-prod"}},
		{"bad cluster name", chstore.Options{DSN: "clickhouse://127.0.0.1:9000/nines", Cluster: "a b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := chstore.Open(t.Context(), tc.opts); !errors.Is(err, fault.ErrInvalid) {
				t.Errorf("Open = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestOpenAcceptsEveryProtocol: the three DSN forms of the README reach the
// server (here an address where none listens), none is refused as invalid.
func TestOpenAcceptsEveryProtocol(t *testing.T) {
	for _, dsn := range []string{
		"clickhouse://127.0.0.1:1/nines",
		"http://127.0.0.1:1/nines",
		"https://user:pass@127.0.0.1:1/nines",
	} {
		t.Run(dsn, func(t *testing.T) {
			t.Parallel()
			_, err := chstore.Open(t.Context(), chstore.Options{DSN: dsn, DialTimeout: time.Second})
			if !errors.Is(err, incidents.ErrUnavailable) {
				t.Errorf("Open = %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))

	inc := newIncident("{}:{alertname=\"HighLatency\"}", "checkout", t0)
	inc.Title = "HighLatency: p99 over 2s"
	inc.Impact = incidents.ImpactOutage
	inc.State = incidents.StateResolved
	inc.AcknowledgedAt = t0.Add(2*time.Minute + 500*time.Millisecond)
	inc.AcknowledgedBy = "alice"
	inc.ResolvedAt = t0.Add(time.Hour + 876*time.Millisecond) // …:09.999Z
	inc.ResolvedBy = incidents.ActorAlertmanager
	inc.Flaps = 2
	inc.TruncatedAlerts = 3
	inc.Labels = map[string]string{"alertname": "HighLatency", "team": "payments", "quote": `"x"`}
	inc.Annotations = map[string]string{"summary": "p99 is high", "unicode": "délai ≥ 2s"}
	inc.RunbookURL = "https://runbooks.example/latency"
	inc.GeneratorURL = "https://prometheus.example/graph?g0.expr=x"
	inc.ExternalURL = "https://alertmanager.example"
	inc.CausedBy = "inc-upstream"
	inc.Periods = []incidents.Period{
		{Start: t0, End: t0.Add(10*time.Minute + time.Millisecond)},
		// Still open when this version was written; finer than a
		// millisecond, which is what nines keeps.
		{Start: t0.Add(20*time.Minute + 5*time.Millisecond + 700*time.Microsecond)},
	}
	inc.UpdatedAt = t0.Add(time.Hour + 456*time.Millisecond)
	inc.Facts = 9
	alerts := []incidents.Alert{
		{
			Fingerprint: "bbb", Status: incidents.AlertResolved,
			Labels: map[string]string{"alertname": "HighLatency", "pod": "b"}, Annotations: map[string]string{"summary": "b"},
			StartsAt: t0.Add(789 * time.Millisecond), EndsAt: t0.Add(10*time.Minute + 1*time.Millisecond),
			GeneratorURL: "https://prometheus.example/b", Impact: incidents.ImpactOutage,
		},
		{
			Fingerprint: "aaa", Status: incidents.AlertFiring,
			Labels:   map[string]string{"alertname": "HighLatency", "pod": "a"},
			StartsAt: t0.Add(789 * time.Millisecond), Impact: incidents.ImpactDegraded,
		},
		{
			// The same fingerprint firing again is another occurrence.
			Fingerprint: "bbb", Status: incidents.AlertFiring,
			StartsAt: t0.Add(20*time.Minute + 5*time.Millisecond), Impact: incidents.ImpactOutage,
		},
	}
	inc.Alerts = alerts
	events := []incidents.Event{
		{ID: incidents.EventID("3"), IncidentID: inc.ID, At: t0.Add(time.Hour), Kind: incidents.EventResolved, Actor: incidents.ActorAlertmanager},
		{ID: incidents.EventID("1"), IncidentID: inc.ID, At: t0, Kind: incidents.EventOpened, Actor: incidents.ActorAlertmanager, Text: "opened by HighLatency"},
		{ID: incidents.EventID("2"), IncidentID: inc.ID, At: t0.Add(789 * time.Millisecond), Kind: incidents.EventAlertFired, Actor: incidents.ActorAlertmanager, Fingerprint: "aaa"},
		{ID: incidents.EventID("4"), IncidentID: inc.ID, At: t0.Add(2*time.Minute + 500*time.Millisecond), Kind: incidents.EventNote, Actor: "alice", Text: "looking; it's the DB"},
	}
	s.write(t, incidents.Change{Incident: inc, Alerts: alerts, Events: events})

	want := stored(inc, alerts...)
	checkIncident(t, s.get(t, inc.ID), want)
	if got := s.get(t, inc.ID).Version(); got != inc.Version() {
		t.Errorf("Version() of the read incident = %d, want the written %d", got, inc.Version())
	}

	ref := incidents.GroupRef{GroupKey: inc.GroupKey, Service: inc.Service}
	latest, err := s.Latest(t.Context(), []incidents.GroupRef{ref})
	if err != nil {
		t.Fatalf("latest: %v", err)
	}
	checkIncident(t, latest[ref], want)

	list, next, err := s.List(t.Context(), incidents.Filter{})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list) != 1 || next != "" {
		t.Fatalf("list = %d incidents, next %q; want 1, no next page", len(list), next)
	}
	checkIncident(t, list[0], want)

	timeline, err := s.Timeline(t.Context(), inc.ID)
	if err != nil {
		t.Fatalf("timeline: %v", err)
	}
	wantEvents := []incidents.Event{events[1], events[2], events[3], events[0]}
	if !reflect.DeepEqual(timeline, wantEvents) {
		t.Errorf("timeline\n got: %+v\nwant: %+v", timeline, wantEvents)
	}
}

func TestVersionsCollapse(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))

	tests := []struct {
		name  string
		order []int // indexes into the versions, in write order
	}{
		{"in order", []int{0, 1, 2}},
		{"newest in the middle", []int{1, 2, 0}},
		{"newest first", []int{2, 0, 1}},
		{"all in one write", nil},
	}
	// The group returns when its parallel subtests have finished.
	t.Run("group", func(t *testing.T) {
		for i, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				base := newIncident(tc.name, "collapse", t0.Add(time.Duration(i)*time.Hour))
				versions := []*incidents.Incident{
					version(base, 1, incidents.StateFiring, "one"),
					version(base, 2, incidents.StateAcknowledged, "two"),
					version(base, 3, incidents.StateResolved, "three"),
				}
				versions[2].ResolvedAt = versions[2].UpdatedAt
				if tc.order == nil {
					s.write(t, incidents.Change{Incident: versions[2]}, incidents.Change{Incident: versions[0]}, incidents.Change{Incident: versions[1]})
				}
				for _, k := range tc.order {
					s.write(t, incidents.Change{Incident: versions[k]})
				}
				checkIncident(t, s.get(t, base.ID), stored(versions[2]))
			})
		}
	})
	t.Run("filters apply to the newest version", func(t *testing.T) {
		for _, st := range []incidents.State{incidents.StateFiring, incidents.StateAcknowledged} {
			list, _, err := s.List(t.Context(), incidents.Filter{Service: "collapse", State: st})
			if err != nil {
				t.Fatalf("list: %v", err)
			}
			if len(list) != 0 {
				t.Errorf("state %s matched %d incidents whose newest version is resolved", st, len(list))
			}
		}
		list, _, err := s.List(t.Context(), incidents.Filter{Service: "collapse", State: incidents.StateResolved})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(list) != len(tests) {
			t.Errorf("state resolved matched %d incidents, want %d", len(list), len(tests))
		}
	})
}

// TestAlertRowOfTheLatestVersionWins: an occurrence's row written with
// the later incident version wins, whatever order the writes reach
// ClickHouse in and whatever the statuses (the one deriver's latest write
// holds what it knows: see alertMoved).
func TestAlertRowOfTheLatestVersionWins(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))
	inc := newIncident("g", "alerts", t0)
	firing := incidents.Alert{Fingerprint: "f1", Status: incidents.AlertFiring, StartsAt: t0, Impact: incidents.ImpactOutage,
		Annotations: map[string]string{"summary": "old"}}
	resolved := firing
	resolved.Status = incidents.AlertResolved
	resolved.EndsAt = t0.Add(5 * time.Minute)
	// The resolved version is written last but arrives first.
	s.write(t, incidents.Change{Incident: version(inc, 3, incidents.StateResolved, "resolved"), Alerts: []incidents.Alert{resolved}})
	s.write(t, incidents.Change{Incident: version(inc, 2, incidents.StateFiring, "firing"), Alerts: []incidents.Alert{firing}})

	other := incidents.Alert{Fingerprint: "f2", Status: incidents.AlertFiring, StartsAt: t0.Add(time.Second), Labels: map[string]string{"v": "1"}}
	newer := other
	newer.Labels = map[string]string{"v": "2"}
	s.write(t, incidents.Change{Incident: version(inc, 5, incidents.StateFiring, "x"), Alerts: []incidents.Alert{newer}})
	s.write(t, incidents.Change{Incident: version(inc, 4, incidents.StateFiring, "x"), Alerts: []incidents.Alert{other}})
	got := s.get(t, inc.ID)
	if len(got.Alerts) != 2 || !reflect.DeepEqual(got.Alerts[0], resolved) || !reflect.DeepEqual(got.Alerts[1], newer) {
		t.Errorf("alerts = %+v, want f1 resolved and f2 with labels v=2", got.Alerts)
	}
}

func TestLatest(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))

	older := newIncident("group-a", "api", t0)
	older.State = incidents.StateResolved
	newer := newIncident("group-a", "api", t0.Add(time.Hour))
	sameKeyOtherService := newIncident("group-a", "web", t0.Add(2*time.Hour))
	otherKey := newIncident("group-b", "api", t0.Add(3*time.Hour))
	// newer's later version moves its start back before older's: "most
	// recently opened" still means newer.
	moved := version(newer, 2, incidents.StateFiring, "moved")
	moved.StartedAt = t0.Add(-time.Hour)
	s.write(t,
		incidents.Change{Incident: newer, Alerts: []incidents.Alert{{Fingerprint: "x", Status: incidents.AlertFiring, StartsAt: t0.Add(time.Hour)}}},
		incidents.Change{Incident: older},
		incidents.Change{Incident: sameKeyOtherService},
		incidents.Change{Incident: otherKey},
	)
	s.write(t, incidents.Change{Incident: moved})

	tests := []struct {
		name string
		refs []incidents.GroupRef
		want map[incidents.GroupRef]*incidents.Incident
	}{
		{"none", nil, map[incidents.GroupRef]*incidents.Incident{}},
		{
			"most recently opened of a group",
			[]incidents.GroupRef{{GroupKey: "group-a", Service: "api"}},
			map[incidents.GroupRef]*incidents.Incident{
				{GroupKey: "group-a", Service: "api"}: stored(moved, incidents.Alert{Fingerprint: "x", Status: incidents.AlertFiring, StartsAt: t0.Add(time.Hour)}),
			},
		},
		{
			"several refs, one unknown, one pair not asked for",
			[]incidents.GroupRef{{GroupKey: "group-b", Service: "api"}, {GroupKey: "group-a", Service: "web"}, {GroupKey: "group-c", Service: "api"}},
			map[incidents.GroupRef]*incidents.Incident{
				{GroupKey: "group-b", Service: "api"}: stored(otherKey),
				{GroupKey: "group-a", Service: "web"}: stored(sameKeyOtherService),
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.Latest(t.Context(), tc.refs)
			if err != nil {
				t.Fatalf("latest: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("latest\n got: %v\nwant: %v", describe(got), describe(tc.want))
			}
		})
	}
}

func describe(m map[incidents.GroupRef]*incidents.Incident) string {
	var parts []string
	for ref, inc := range m {
		parts = append(parts, fmt.Sprintf("%v: %+v", ref, *inc))
	}
	sort.Strings(parts)
	return strings.Join(parts, "\n")
}

func TestListFiltersAndPages(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))

	// 40 incidents over 2 services, every 3 sharing a start second.
	var all []*incidents.Incident
	var changes []incidents.Change
	for i := range 40 {
		svc := []string{"db", "queue"}[i%2]
		inc := newIncident(fmt.Sprintf("g%d", i), svc, t0.Add(time.Duration(i/3)*time.Minute))
		inc.State = []incidents.State{incidents.StateFiring, incidents.StateAcknowledged, incidents.StateResolved}[i%3]
		inc.Impact = incidents.Impacts[i%len(incidents.Impacts)]
		all = append(all, inc)
		changes = append(changes, incidents.Change{Incident: inc})
	}
	s.write(t, changes...)
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if !a.StartedAt.Equal(b.StartedAt) {
			return a.StartedAt.After(b.StartedAt)
		}
		return a.ID > b.ID
	})
	outage := incidents.ImpactOutage
	matching := func(keep func(*incidents.Incident) bool) []string {
		var ids []string
		for _, inc := range all {
			if keep(inc) {
				ids = append(ids, inc.ID)
			}
		}
		return ids
	}

	tests := []struct {
		name   string
		filter incidents.Filter
		want   []string
	}{
		{"all", incidents.Filter{}, matching(func(*incidents.Incident) bool { return true })},
		{"service", incidents.Filter{Service: "db"}, matching(func(i *incidents.Incident) bool { return i.Service == "db" })},
		{"state", incidents.Filter{State: incidents.StateAcknowledged}, matching(func(i *incidents.Incident) bool { return i.State == incidents.StateAcknowledged })},
		{"impact", incidents.Filter{Impact: &outage}, matching(func(i *incidents.Incident) bool { return i.Impact == outage })},
		{
			"since and until",
			incidents.Filter{Since: t0.Add(2 * time.Minute), Until: t0.Add(5 * time.Minute)},
			// Compared to the second, the stored precision.
			matching(func(i *incidents.Incident) bool {
				started := i.StartedAt.Truncate(time.Second)
				return !started.Before(t0.Add(2*time.Minute).Truncate(time.Second)) && started.Before(t0.Add(5*time.Minute).Truncate(time.Second))
			}),
		},
		{
			"everything at once",
			incidents.Filter{Service: "queue", State: incidents.StateFiring, Since: t0.Add(time.Minute)},
			matching(func(i *incidents.Incident) bool {
				return i.Service == "queue" && i.State == incidents.StateFiring && !i.StartedAt.Before(t0.Add(time.Minute).Truncate(time.Second))
			}),
		},
		{"nothing", incidents.Filter{Service: "nope"}, nil},
	}
	for _, tc := range tests {
		for _, limit := range []int{1, 4, 7, 0, 1000} {
			t.Run(fmt.Sprintf("%s/limit %d", tc.name, limit), func(t *testing.T) {
				t.Parallel()
				f := tc.filter
				f.Limit = limit
				pageSize := limit
				if pageSize == 0 {
					pageSize = chstore.DefaultListLimit
				}
				var got []string
				for page := 0; ; page++ {
					if page > 50 {
						t.Fatal("too many pages")
					}
					incs, next, err := s.List(t.Context(), f)
					if err != nil {
						t.Fatalf("list: %v", err)
					}
					if len(incs) > pageSize {
						t.Fatalf("page of %d incidents, limit %d", len(incs), pageSize)
					}
					for _, inc := range incs {
						got = append(got, inc.ID)
					}
					if next == "" {
						break
					}
					f.Cursor = next
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("paged ids\n got: %v\nwant: %v", got, tc.want)
				}
			})
		}
	}

	t.Run("bad cursor", func(t *testing.T) {
		t.Parallel()
		if _, _, err := s.List(t.Context(), incidents.Filter{Cursor: "garbage"}); !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("list = %v, want ErrInvalid", err)
		}
	})
	t.Run("bad state", func(t *testing.T) {
		t.Parallel()
		if _, _, err := s.List(t.Context(), incidents.Filter{State: "sleeping"}); !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("list = %v, want ErrInvalid", err)
		}
	})
}

func TestTimelineDedupesReplayedEvents(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))
	inc := newIncident("g", "timeline", t0)
	opened := incidents.Event{ID: incidents.EventID(inc.ID, "opened"), IncidentID: inc.ID, At: t0, Kind: incidents.EventOpened, Actor: incidents.ActorAlertmanager}
	fired := incidents.Event{ID: incidents.EventID(inc.ID, "fired"), IncidentID: inc.ID, At: t0.Add(time.Millisecond), Kind: incidents.EventAlertFired, Actor: incidents.ActorAlertmanager, Fingerprint: "f"}
	note := incidents.Event{ID: incidents.EventID(inc.ID, "note"), IncidentID: inc.ID, At: t0.Add(time.Minute), Kind: incidents.EventNote, Actor: "bob", Text: "hi"}

	s.write(t, incidents.Change{Incident: inc, Events: []incidents.Event{fired, opened}})
	// The same notification replayed, then a note; and the replay again in
	// the same write.
	s.write(t, incidents.Change{Incident: inc, Events: []incidents.Event{opened, fired}})
	s.write(t, incidents.Change{Incident: inc, Events: []incidents.Event{note, opened}}, incidents.Change{Events: []incidents.Event{note}})

	got, err := s.Timeline(t.Context(), inc.ID)
	if err != nil {
		t.Fatalf("timeline: %v", err)
	}
	if want := []incidents.Event{opened, fired, note}; !reflect.DeepEqual(got, want) {
		t.Errorf("timeline\n got: %+v\nwant: %+v", got, want)
	}
}

func TestNotFound(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))
	if _, err := s.Get(t.Context(), "inc-missing"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("Get = %v, want ErrNotFound", err)
	}
	if _, err := s.Timeline(t.Context(), "inc-missing"); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("Timeline = %v, want ErrNotFound", err)
	}
}

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	t.Parallel()
	dsn := chtest.Unmigrated(t)

	// Four processes start at once on a database that does not exist yet.
	var wg sync.WaitGroup
	stores := make([]*testStore, 4)
	for i := range stores {
		stores[i] = openStore(t, dsn)
	}
	for _, s := range stores {
		wg.Go(func() {
			if err := s.Migrate(t.Context()); err != nil {
				t.Errorf("concurrent migrate: %v", err)
			}
		})
	}
	wg.Wait()
	if err := stores[0].Migrate(t.Context()); err != nil {
		t.Errorf("migrate again: %v", err)
	}

	rows, err := chstore.ConnOf(stores[0].Store).Query(t.Context(), "SELECT DISTINCT version FROM schema_migrations ORDER BY version")
	if err != nil {
		t.Fatalf("query schema_migrations: %v", err)
	}
	defer rows.Close()
	var versions []uint32
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("scan: %v", err)
		}
		versions = append(versions, v)
	}
	want, err := chstore.MigrationVersions()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(versions, want) {
		t.Errorf("applied migrations = %v, want %v", versions, want)
	}
	inc := newIncident("g", "migrated", t0)
	stores[1].write(t, incidents.Change{Incident: inc})
	checkIncident(t, stores[2].get(t, inc.ID), stored(inc))
}

func TestOpenCreatesDatabaseConcurrently(t *testing.T) {
	t.Parallel()
	dsn := chtest.Unmigrated(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s, err := chstore.Open(t.Context(), chstore.Options{DSN: dsn})
			if err != nil {
				t.Errorf("open: %v", err)
				return
			}
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	wg.Wait()
}

func TestOpenedAtStaysThatOfTheFirstVersion(t *testing.T) {
	t.Parallel()
	dsn := chtest.Database(t)
	inc := newIncident("g", "opened", t0)
	openStore(t, dsn).write(t, incidents.Change{Incident: inc})

	// A later version, written by another process (no cache), moves the
	// start back by an hour, into another month's partition.
	later := version(inc, 2, incidents.StateFiring, "moved")
	later.StartedAt = time.Date(2024, 4, 30, 23, 0, 0, 0, time.UTC)
	s := openStore(t, dsn)
	s.write(t, incidents.Change{Incident: later})

	rows, err := chstore.ConnOf(s.Store).Query(t.Context(), "SELECT DISTINCT opened_at FROM incidents WHERE id = ?", inc.ID)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	defer rows.Close()
	var opened []time.Time
	for rows.Next() {
		var at time.Time
		if err := rows.Scan(&at); err != nil {
			t.Fatalf("scan: %v", err)
		}
		opened = append(opened, at.UTC())
	}
	if len(opened) != 1 || !opened[0].Equal(secs(t0)) {
		t.Errorf("opened_at values = %v, want only %v", opened, secs(t0))
	}
	checkIncident(t, s.get(t, inc.ID), stored(later))
}

func TestConcurrentWritesAreBatched(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t), func(o *chstore.Options) { o.FlushInterval = 100 * time.Millisecond })

	const writers = 200
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			inc := newIncident(fmt.Sprintf("g%d", i), "busy", t0.Add(time.Duration(i)*time.Second))
			change := incidents.Change{
				Incident: inc,
				Alerts:   []incidents.Alert{{Fingerprint: "f", Status: incidents.AlertFiring, StartsAt: inc.StartedAt}},
				Events:   []incidents.Event{{ID: incidents.EventID(inc.ID), IncidentID: inc.ID, At: inc.StartedAt, Kind: incidents.EventOpened}},
			}
			if err := s.Write(t.Context(), []incidents.Change{change}); err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()

	for _, table := range []string{"incidents", "incident_alerts", "incident_events"} {
		if n := s.ops(t, "insert_"+table); n < 1 || n > writers/10 {
			t.Errorf("%d writes made %v INSERTs into %s, want a few", writers, n, table)
		} else {
			t.Logf("%d writes made %v INSERTs into %s", writers, n, table)
		}
	}
	list, _, err := s.List(t.Context(), incidents.Filter{Service: "busy", Limit: chstore.MaxListLimit})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(list) != writers {
		t.Errorf("listed %d incidents, want %d", len(list), writers)
	}
	for _, inc := range list {
		if len(inc.Alerts) != 1 {
			t.Errorf("incident %s has %d alerts, want 1", inc.ID, len(inc.Alerts))
		}
	}
}

func TestWriteCanceledBeforeFlushWritesNothing(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t), func(o *chstore.Options) { o.FlushInterval = time.Hour })
	inc := newIncident("g", "canceled", t0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Write(ctx, []incidents.Change{{Incident: inc}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("write = %v, want context.Canceled", err)
	}
	if err := s.Close(); err != nil { // flushes whatever is pending
		t.Fatalf("close: %v", err)
	}
	s2 := openStore(t, s.dsn)
	if _, err := s2.Get(t.Context(), inc.ID); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("Get = %v, want ErrNotFound: the canceled write was stored", err)
	}
	if err := s.Write(t.Context(), []incidents.Change{{Incident: inc}}); !errors.Is(err, fault.ErrUnavailable) {
		t.Errorf("write after close = %v, want ErrUnavailable", err)
	}
}

// proxy forwards TCP connections to ClickHouse until it is closed, to take
// the server away from a store that is already open.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	p := &proxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func TestUnavailable(t *testing.T) {
	t.Parallel()
	dsn := chtest.Database(t)

	t.Run("closed port", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		addr := ln.Addr().String()
		ln.Close()
		start := time.Now()
		_, err = chstore.Open(t.Context(), chstore.Options{DSN: "clickhouse://" + addr + "/nines", DialTimeout: 500 * time.Millisecond})
		if !errors.Is(err, fault.ErrUnavailable) {
			t.Errorf("Open = %v, want ErrUnavailable", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Open took %v", d)
		}
	})

	t.Run("server gone", func(t *testing.T) {
		t.Parallel()
		scheme, rest, _ := strings.Cut(dsn, "://")
		upstream, db, _ := strings.Cut(rest, "/")
		p := newProxy(t, upstream)
		s := openStore(t, scheme+"://"+p.ln.Addr().String()+"/"+db)
		inc := newIncident("g", "gone", t0)
		s.write(t, incidents.Change{Incident: inc})
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("ping: %v", err)
		}

		p.close()
		checks := []struct {
			name string
			call func() error
		}{
			{"ping", func() error { return s.Ping(t.Context()) }},
			{"get", func() error { _, err := s.Get(t.Context(), inc.ID); return err }},
			{"list", func() error { _, _, err := s.List(t.Context(), incidents.Filter{}); return err }},
			{"latest", func() error {
				_, err := s.Latest(t.Context(), []incidents.GroupRef{{GroupKey: "g", Service: "gone"}})
				return err
			}},
			{"timeline", func() error { _, err := s.Timeline(t.Context(), inc.ID); return err }},
			{"write", func() error { return s.Write(t.Context(), []incidents.Change{{Incident: inc}}) }},
		}
		for _, c := range checks {
			start := time.Now()
			if err := c.call(); !errors.Is(err, fault.ErrUnavailable) {
				t.Errorf("%s = %v, want ErrUnavailable", c.name, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s took %v", c.name, d)
			}
		}
	})
}

// TestOutages: the outages of the services asked for that are open, or
// were resolved at or after the time given; not degraded incidents, not
// other services, not an outage resolved before.
func TestOutages(t *testing.T) {
	s := openStore(t, chtest.Database(t))
	ctx := context.Background()
	mk := func(id, service string, impact incidents.Impact, state incidents.State) incidents.Change {
		return incidents.Change{Incident: &incidents.Incident{
			ID: id, Service: service, GroupKey: "g-" + id, Title: id, Impact: impact, State: state,
			StartedAt: t0, UpdatedAt: t0, Facts: 1, Periods: []incidents.Period{{Start: t0}},
		}}
	}
	resolved := mk("inc-00000000000000000004", "payments", incidents.ImpactOutage, incidents.StateFiring)
	if err := s.Write(ctx, []incidents.Change{
		mk("inc-00000000000000000001", "payments", incidents.ImpactOutage, incidents.StateFiring),
		mk("inc-00000000000000000002", "payments", incidents.ImpactDegraded, incidents.StateFiring),
		mk("inc-00000000000000000003", "search", incidents.ImpactOutage, incidents.StateAcknowledged),
		mk("inc-00000000000000000005", "checkout", incidents.ImpactOutage, incidents.StateFiring),
		resolved,
	}); err != nil {
		t.Fatal(err)
	}
	// A later version resolves the fourth at t0+1m.
	later := resolved.Incident.Clone()
	later.State, later.ResolvedAt, later.Facts, later.UpdatedAt = incidents.StateResolved, t0.Add(time.Minute), 2, t0.Add(time.Minute)
	later.Periods = []incidents.Period{{Start: t0, End: t0.Add(time.Minute)}}
	if err := s.Write(ctx, []incidents.Change{{Incident: later}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		since time.Time
		want  []string
	}{
		{"since before the resolve", t0.Add(30 * time.Second), []string{"inc-00000000000000000001", "inc-00000000000000000003", "inc-00000000000000000004"}},
		{"since the resolve", t0.Add(time.Minute), []string{"inc-00000000000000000001", "inc-00000000000000000003", "inc-00000000000000000004"}},
		{"since after the resolve", t0.Add(2 * time.Minute), []string{"inc-00000000000000000001", "inc-00000000000000000003"}},
	} {
		got, err := s.Outages(ctx, []string{"payments", "search"}, tc.since)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, inc := range got {
			ids = append(ids, inc.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
			t.Errorf("%s: outages = %v, want %v", tc.name, ids, tc.want)
		}
	}
}

// TestOpenSaysTheServerVersionOnce: the driver warns on every connection
// that the server is older than it supports (18.16 is); nines says once,
// in its own words, which release the server is and whether nines is
// tested on it.
func TestOpenSaysTheServerVersionOnce(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := openStore(t, chtest.Database(t), func(o *chstore.Options) { o.Logger = log })
	for range 4 { // more connections of the pool
		if err := s.Ping(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	if strings.Contains(out, "unsupported clickhouse version") {
		t.Errorf("the driver's version warning reached the log:\n%s", out)
	}
	if n := strings.Count(out, `msg="clickhouse server`); n != 1 {
		t.Errorf("%d lines about the server's version, want 1:\n%s", n, out)
	}
	if !strings.Contains(out, "tested=true") {
		t.Errorf("the test servers (18.16, 26.7) are tested releases; log:\n%s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestAlertComesBackAfterMove: a late notification merges an incident into
// another (its alerts are stored as moved), then a later one splits it off
// again with the same alerts. The incident must hold them again: the
// latest version written of an occurrence's row wins, a moved one too.
func TestAlertComesBackAfterMove(t *testing.T) {
	s := openStore(t, chtest.Database(t))
	start := time.Date(2026, 11, 20, 8, 12, 36, 0, time.UTC)
	inc := newIncident("{}:{alertname=\"Flap\"}", "api", start)
	a := incidents.Alert{Fingerprint: "4408768131dfee90", Status: incidents.AlertFiring, StartsAt: start,
		Labels: map[string]string{"alertname": "Flap"}}
	inc.Alerts = []incidents.Alert{a}
	s.write(t, incidents.Change{Incident: inc, Alerts: inc.Alerts})

	merged := version(inc, 2, incidents.StateResolved, inc.Title)
	merged.Alerts, merged.Periods = nil, nil
	s.write(t, incidents.Change{Incident: merged, Moved: []incidents.Alert{a}})
	if got := s.get(t, inc.ID); len(got.Alerts) != 0 {
		t.Fatalf("merged away: %d alerts, want 0", len(got.Alerts))
	}

	back := version(inc, 3, incidents.StateFiring, inc.Title)
	back.Alerts = []incidents.Alert{a}
	s.write(t, incidents.Change{Incident: back, Alerts: back.Alerts})
	if got := s.get(t, inc.ID); len(got.Alerts) != 1 || got.State != incidents.StateFiring {
		t.Errorf("split off again: %d alerts, state %s; want its alert back, firing", len(got.Alerts), got.State)
	}
}

// TestMigrateAddsBackALostColumn: a migration recorded as applied whose
// column is missing (ClickHouse 18.16 lost one of two concurrent ALTERs
// of a replicated table, as TestClusterShort once saw) gets the column
// back on the next Migrate, and the incidents can be written again.
func TestMigrateAddsBackALostColumn(t *testing.T) {
	s := openStore(t, chtest.Database(t))
	ctx := t.Context()
	if err := chstore.ConnOf(s.Store).Exec(ctx, "ALTER TABLE incidents DROP COLUMN excluded_by"); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	var n uint64
	if err := chstore.ConnOf(s.Store).QueryRow(ctx, "SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'incidents' AND name = 'excluded_by'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatal("incidents.excluded_by is still missing after Migrate")
	}
}

// TestListBoundsAlertsPerPage: a page of incidents holds at most
// MaxListAlerts alerts in all (at least one incident), so that one GET of
// ?limit=1000 over incidents of thousands of alerts cannot take gigabytes;
// following next_cursor still gives every incident once, each with all its
// alerts, in order.
func TestListBoundsAlertsPerPage(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))
	sizes := []int{4000, 4000, 4000, 1, chstore.MaxListAlerts + 500, 10, 3000, 3000, 3000, 3000, 2}
	var want []string
	var changes []incidents.Change
	for i, n := range sizes {
		inc := newIncident(fmt.Sprintf("big%d", i), "db", t0.Add(-time.Duration(i)*time.Minute))
		var alerts []incidents.Alert
		for j := range n {
			alerts = append(alerts, incidents.Alert{
				Fingerprint: fmt.Sprintf("%04x%08x", i, j), Status: incidents.AlertFiring, StartsAt: inc.StartedAt,
				Labels: map[string]string{"alertname": "Big", "instance": fmt.Sprintf("host-%d", j)}, Impact: incidents.ImpactDegraded,
			})
		}
		inc.Alerts = alerts
		want = append(want, inc.ID)
		changes = append(changes, incidents.Change{Incident: inc, Alerts: alerts})
	}
	s.write(t, changes...)

	var (
		got   []string
		pages int
		f     = incidents.Filter{Limit: chstore.MaxListLimit}
	)
	for {
		if pages++; pages > len(sizes) {
			t.Fatal("more pages than incidents")
		}
		incs, next, err := s.List(t.Context(), f)
		if err != nil {
			t.Fatal(err)
		}
		if len(incs) == 0 {
			t.Fatalf("page %d is empty, next %q", pages, next)
		}
		total := 0
		for _, inc := range incs {
			i := slices.Index(want, inc.ID)
			if i < 0 || len(inc.Alerts) != sizes[i] {
				t.Errorf("incident %s with %d alerts, want %d", inc.ID, len(inc.Alerts), sizes[max(i, 0)])
			}
			total += len(inc.Alerts)
			got = append(got, inc.ID)
		}
		if len(incs) > 1 && total > chstore.MaxListAlerts {
			t.Errorf("page %d: %d incidents with %d alerts in all, over %d", pages, len(incs), total, chstore.MaxListAlerts)
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if !slices.Equal(got, want) {
		t.Errorf("paged ids\n got: %v\nwant: %v", got, want)
	}
	if pages < 5 {
		t.Errorf("%d pages for %d alerts, want at least 5 of at most %d", pages, 35013+chstore.MaxListAlerts, chstore.MaxListAlerts)
	}
}
