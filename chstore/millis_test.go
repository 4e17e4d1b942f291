package chstore_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

// writeWithoutMillis stores a version of inc as nines did before
// migration 0042 (and as an older nines still does while a newer one
// migrates): DateTime columns only, so its *_millis columns hold their
// DEFAULT.
func writeWithoutMillis(t *testing.T, s *testStore, inc *incidents.Incident) {
	t.Helper()
	b, err := chstore.ConnOf(s.Store).PrepareBatch(t.Context(), `INSERT INTO incidents (id, service, group_key, title,
impact, state, source, opened_at, started_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by,
period_starts, period_ends, facts, updated_at, version)`)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dt := func(t time.Time) time.Time {
		if t.IsZero() {
			return time.Unix(0, 0).UTC()
		}
		return t
	}
	var starts, ends []time.Time
	for _, p := range inc.Periods {
		starts, ends = append(starts, dt(p.Start)), append(ends, dt(p.End))
	}
	err = b.Append(inc.ID, inc.Service, inc.GroupKey, inc.Title, int8(inc.Impact), string(inc.State), inc.Source,
		dt(inc.StartedAt), dt(inc.StartedAt), dt(inc.AcknowledgedAt), inc.AcknowledgedBy, dt(inc.ResolvedAt), inc.ResolvedBy,
		starts, ends, inc.Facts, dt(inc.UpdatedAt), inc.Version())
	if err == nil {
		err = b.Send()
	}
	if err != nil {
		t.Fatalf("insert without millis: %v", err)
	}
}

// toTheSecond is what reading back a version stored without milliseconds
// gives: its times to the second, UpdatedAt to the millisecond (from its
// version).
func toTheSecond(inc *incidents.Incident) *incidents.Incident {
	want := stored(inc)
	want.StartedAt, want.AcknowledgedAt, want.ResolvedAt = secs(inc.StartedAt), secs(inc.AcknowledgedAt), secs(inc.ResolvedAt)
	for i, p := range inc.Periods {
		want.Periods[i] = incidents.Period{Start: secs(p.Start), End: secs(p.End)}
	}
	return want
}

// TestMillisOfOlderVersions: incidents keep their times to the
// millisecond (issue 15) in *_millis columns beside the DateTime ones.
// A version stored before those columns existed, or by an older nines
// during an upgrade, reads its whole seconds, never another version's
// milliseconds; the latest version wins, with or without them.
func TestMillisOfOlderVersions(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))
	acked := func(inc *incidents.Incident, facts uint32) *incidents.Incident {
		v := version(inc, facts, incidents.StateResolved, "resolved")
		v.AcknowledgedAt, v.AcknowledgedBy = inc.StartedAt.Add(90*time.Second+250*time.Millisecond), "alice"
		v.ResolvedAt, v.ResolvedBy = inc.StartedAt.Add(5*time.Minute+750*time.Millisecond), "bob"
		v.Periods = []incidents.Period{{Start: inc.StartedAt, End: v.ResolvedAt}}
		return v
	}
	tests := []struct {
		name   string
		writes []bool // per version, in order: with millis (this nines) or without (before 0042)
		want   func(last *incidents.Incident) *incidents.Incident
	}{
		{"stored before the millis columns", []bool{false}, toTheSecond},
		{"before, then a version with millis", []bool{false, true}, func(v *incidents.Incident) *incidents.Incident { return stored(v) }},
		{"with millis, then a version from an older nines", []bool{true, false}, toTheSecond},
		{"with millis, twice", []bool{true, true}, func(v *incidents.Incident) *incidents.Incident { return stored(v) }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := t0.Add(time.Duration(i) * time.Hour)
			inc := newIncident("g-"+tc.name, "millis", start)
			var last *incidents.Incident
			for j, withMillis := range tc.writes {
				last = inc
				if j > 0 {
					last = acked(inc, uint32(j+1))
				}
				if withMillis {
					s.write(t, incidents.Change{Incident: last})
				} else {
					writeWithoutMillis(t, s, last)
				}
			}
			want := tc.want(last)
			checkIncident(t, s.get(t, inc.ID), want)
			list, _, err := s.List(t.Context(), incidents.Filter{Service: "millis", Since: secs(start), Until: start.Add(time.Second)})
			if err != nil || len(list) != 1 {
				t.Fatalf("list: %d incidents, %v; want 1", len(list), err)
			}
			checkIncident(t, list[0], want)
		})
	}
}

// TestNewestFirstToTheMillisecond: incidents that started in the same
// second are listed newest first by their milliseconds, not by ID, page
// after page, and so are a service's recent incidents.
func TestNewestFirstToTheMillisecond(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))
	second := t0.Truncate(time.Second)
	var want []string // newest first
	var changes []incidents.Change
	for i, ms := range []int{950, 800, 640, 310, 120, 5} {
		inc := newIncident(fmt.Sprintf("g%d", i), "same-second", second.Add(time.Duration(ms)*time.Millisecond))
		want = append(want, inc.ID)
		changes = append(changes, incidents.Change{Incident: inc})
	}
	s.write(t, changes...)
	if slices.IsSortedFunc(want, func(a, b string) int { return strings.Compare(b, a) }) {
		t.Fatal("the IDs are in start order already: the test would not see an order by ID")
	}

	var got []string
	f := incidents.Filter{Service: "same-second", Limit: 2}
	for page := 0; page < 10; page++ {
		incs, next, err := s.List(t.Context(), f)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		for _, inc := range incs {
			got = append(got, inc.ID)
		}
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if !slices.Equal(got, want) {
		t.Errorf("List pages give %v, want newest first %v", got, want)
	}

	recent, err := s.RecentByService(t.Context(), []string{"same-second"}, second, time.Time{}, 4)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:0]
	for _, inc := range recent["same-second"] {
		got = append(got, inc.ID)
	}
	if !slices.Equal(got, want[:4]) {
		t.Errorf("RecentByService gives %v, want the newest four %v", got, want[:4])
	}
}
