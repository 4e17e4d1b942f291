package chstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

// orderSetup opens a store and a Service on it, and gives a day and its
// clock times.
func orderSetup(t *testing.T) (*testStore, *incidents.Service, time.Time, func(h, m int) time.Time) {
	t.Helper()
	store := openStore(t, chtest.Database(t))
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	return store, newService(t, store.Store), day, at
}

// TestOutOfOrderDeliveryEndToEnd: a critical alert fires at 12:00 and
// resolves at 12:10 (N1, N2), fires again at 16:00 and resolves at 16:10
// (N3, N4), delivered N1, N3, N2, N4 through the real Service and
// ClickHouse. That is two incidents of 600 s each (it was one of 15,000 s),
// the same read by a fresh replica, and availability counts 1,200 s.
func TestOutOfOrderDeliveryEndToEnd(t *testing.T) {
	ctx := context.Background()
	store, svc, day, at := orderSetup(t)
	const gk = `{}:{alertname="Down"}`
	n1 := snapshot(gk, ralert("a", at(12, 0), time.Time{}))
	n2 := snapshot(gk, ralert("a", at(12, 0), at(12, 10)))
	n3 := snapshot(gk, ralert("a", at(16, 0), time.Time{}))
	n4 := snapshot(gk, ralert("a", at(16, 0), at(16, 10)))
	for _, n := range []incidents.Notification{n1, n3, n2, n4} {
		mustIngest(t, svc, n)
	}
	incs, _, err := store.List(ctx, incidents.Filter{Service: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if len(incs) != 2 {
		t.Fatalf("%d incidents, want 2: %+v", len(incs), incs)
	}
	for _, inc := range incs {
		full, err := store.Get(ctx, inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if full.State != incidents.StateResolved || len(full.Periods) != 1 ||
			full.Periods[0].End.Sub(full.Periods[0].Start) != 10*time.Minute || len(full.Alerts) != 1 ||
			!full.Alerts[0].EndsAt.Equal(full.Periods[0].End) {
			t.Errorf("incident %s: %s, periods %+v, %d alerts", full.ID, full.State, full.Periods, len(full.Alerts))
		}
	}
	raw, err := store.Downtime(ctx, availability.Query{From: day, To: day.Add(24 * time.Hour), Now: day.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1 || raw[0].Downtime != 1200 || raw[0].Incidents != 2 {
		t.Errorf("availability: %+v, want 1200 s of downtime over 2 incidents", raw)
	}

	// A replica that starts now and gets a late copy of N3 changes nothing.
	fresh := newService(t, store.Store)
	mustIngest(t, fresh, n3)
	if again, _, err := store.List(ctx, incidents.Filter{Service: "api"}); err != nil || len(again) != 2 {
		t.Errorf("after a late copy on a fresh replica: %d incidents (%v)", len(again), err)
	}
}

// TestImpactOverTimeEndToEnd: a warning alert 12:00–13:00 and a critical
// one 12:10–12:20 in one group are one incident with 600 s of outage in
// availability (it was 0 s, the incident recorded as degraded).
func TestImpactOverTimeEndToEnd(t *testing.T) {
	ctx := context.Background()
	store, svc, day, at := orderSetup(t)
	warn := func(end time.Time) incidents.Alert {
		a := ralert("w", at(12, 0), end)
		a.Labels = map[string]string{"alertname": "Slow", "service": "api", "severity": "warning"}
		return a
	}
	const gk = `{}:{service="api"}`
	for _, n := range []incidents.Notification{
		snapshot(gk, warn(time.Time{})),
		snapshot(gk, warn(time.Time{}), ralert("c", at(12, 10), time.Time{})),
		snapshot(gk, warn(time.Time{}), ralert("c", at(12, 10), at(12, 20))),
		snapshot(gk, warn(at(13, 0))),
	} {
		mustIngest(t, svc, n)
	}
	raw, err := store.Downtime(ctx, availability.Query{From: day, To: day.Add(24 * time.Hour), Now: day.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	want := availability.Seconds{incidents.ImpactDegraded: 3600, incidents.ImpactOutage: 600}
	if len(raw) != 1 || raw[0].Downtime != 600 || raw[0].Union != want || raw[0].Incidents != 1 {
		t.Errorf("availability: %+v, want 600 s of outage and 3600 s degraded in one incident", raw)
	}

	// A note through another replica (which reads the incident from the
	// store) writes a version that keeps the impact over time.
	incs, _, err := store.List(ctx, incidents.Filter{Service: "api"})
	if err != nil || len(incs) != 1 {
		t.Fatalf("list: %v, %d incidents", err, len(incs))
	}
	if _, err := newService(t, store.Store).AddNote(ctx, incs[0].ID, "bob", "rolled back"); err != nil {
		t.Fatal(err)
	}
	raw, err = store.Downtime(ctx, availability.Query{From: day, To: day.Add(24 * time.Hour), Now: day.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != 1 || raw[0].Downtime != 600 || raw[0].Union != want {
		t.Errorf("availability after a note on another replica: %+v", raw)
	}
	if after, err := store.Get(ctx, incs[0].ID); err != nil || after.Impact != incidents.ImpactOutage {
		t.Errorf("impact after a note on another replica: %v (%v), want outage, the worst it had", after.Impact, err)
	}
}

// newService returns a fresh incident service on store: a restarted
// process, or a new deriver.
func newService(t *testing.T, store incidents.Store) *incidents.Service {
	t.Helper()
	svc, err := incidents.NewService(incidents.Options{Store: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

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

var r0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// TestLateCopyAfterRestart: a restarted deriver (a fresh service on the
// same store) gets a late firing copy of an alert of the group's earlier,
// resolved incident, then alerts of the later one: the copy changes
// nothing, and the later incident holds only its own alerts.
func TestLateCopyAfterRestart(t *testing.T) {
	dsn := chtest.Database(t)
	s := openStore(t, dsn)
	first := newService(t, s.Store)
	const gk = `{}:{alertname="Down"}`
	end := r0.Add(10 * time.Minute)
	a1 := ralert("a1", r0, time.Time{})
	mustIngest(t, first, snapshot(gk, a1, ralert("a2", r0.Add(time.Minute), time.Time{})))
	mustIngest(t, first, snapshot(gk, ralert("a1", r0, end), ralert("a2", r0.Add(time.Minute), end)))
	later := r0.Add(3 * time.Hour)
	a3 := ralert("a3", later, time.Time{})
	mustIngest(t, first, snapshot(gk, a3))

	restarted := newService(t, openStore(t, dsn).Store)
	mustIngest(t, restarted, snapshot(gk, ralert("a2", r0.Add(time.Minute), time.Time{}))) // late, from episode 1
	a4 := ralert("a4", later.Add(-time.Minute), time.Time{})
	mustIngest(t, restarted, snapshot(gk, a4, a3))
	i1 := s.get(t, incidents.EpisodeID(gk, "api", a1))
	i2 := s.get(t, incidents.EpisodeID(gk, "api", a4)) // a4 now starts episode 2
	var got []string
	for _, a := range i2.Alerts {
		got = append(got, a.Fingerprint)
	}
	if fmt.Sprint(got) != "[a4 a3]" || i1.State != incidents.StateResolved || len(i1.Alerts) != 2 {
		t.Errorf("new incident holds %v (want [a4 a3]); earlier one %s with %d alerts", got, i1.State, len(i1.Alerts))
	}
}

// TestTimelineSurvivesARefusedEventsInsert: the store takes a new
// incident's alerts but refuses its timeline's INSERT (a schema that lost
// a column), and the deriver stops there. Once the schema is mended, a new
// deriver applies the notification again: the incident and its timeline
// are both there. Were the incident version stored before its events, the
// new deriver would find nothing to change and the timeline would stay
// empty.
func TestTimelineSurvivesARefusedEventsInsert(t *testing.T) {
	dsn := chtest.Database(t)
	s := openStore(t, dsn)
	conn := chstore.ConnOf(s.Store)
	exec := func(q string) {
		t.Helper()
		if err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	const gk = `{}:{alertname="Down"}`
	a := ralert("a1", r0, time.Time{})
	n := snapshot(gk, a)
	exec("ALTER TABLE incident_events DROP COLUMN fingerprint")
	if err := newService(t, s.Store).Ingest(t.Context(), n); err == nil {
		t.Fatal("ingest with the events table broken: no error")
	}
	exec("ALTER TABLE incident_events ADD COLUMN fingerprint String AFTER text")
	mustIngest(t, newService(t, openStore(t, dsn).Store), n)
	id := incidents.EpisodeID(gk, "api", a)
	evs, err := s.Timeline(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range evs {
		kinds = append(kinds, string(e.Kind))
	}
	if !slices.Contains(kinds, string(incidents.EventOpened)) {
		t.Errorf("timeline of %s: %v, want it opened", id, kinds)
	}
}
