package chstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

// TestBatchesStayWithinServerLimits writes and reads back batches that are
// big in number or in key size. Bound into the query text, their keys
// exceeded ClickHouse's max_query_size (256 KiB on 18.16), so that the
// webhook answered 500 and a spooled notification was dropped.
func TestBatchesStayWithinServerLimits(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("k", 300<<10)
	tests := []struct {
		name string
		n    int
		ref  func(i int) incidents.GroupRef
	}{
		{"9,000 new incidents of 9,000 services in one write", 9000, func(i int) incidents.GroupRef {
			return incidents.GroupRef{GroupKey: fmt.Sprintf("{}:{alertname=\"Down\",instance=\"host-%05d\"}", i), Service: fmt.Sprintf("service-%05d", i)}
		}},
		{"a 300 KiB group key", 1, func(int) incidents.GroupRef { return incidents.GroupRef{GroupKey: huge, Service: "api"} }},
		{"a 300 KiB service", 1, func(int) incidents.GroupRef { return incidents.GroupRef{GroupKey: "{}:{}", Service: huge} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dsn := chtest.Database(t)
			s := openStore(t, dsn)
			var (
				changes []incidents.Change
				refs    []incidents.GroupRef
				owners  = map[incidents.GroupRef][]incidents.Alert{}
			)
			for i := range tc.n {
				ref := tc.ref(i)
				inc := newIncident(ref.GroupKey, ref.Service, t0.Add(time.Duration(i)*time.Second))
				a := incidents.Alert{Fingerprint: fmt.Sprintf("%016x", i), Status: incidents.AlertFiring,
					StartsAt: inc.StartedAt, Labels: map[string]string{"alertname": "Down"}}
				inc.Alerts = []incidents.Alert{a}
				changes = append(changes, incidents.Change{Incident: inc, Alerts: inc.Alerts})
				refs = append(refs, ref)
				owners[ref] = inc.Alerts
			}
			s.write(t, changes...)

			// A store that has not seen them (a restarted replica) looks
			// every one up, in one flush.
			s2 := openStore(t, dsn)
			next := make([]incidents.Change, len(changes))
			for i, c := range changes {
				v := version(c.Incident, 2, incidents.StateAcknowledged, "acknowledged")
				next[i] = incidents.Change{Incident: v}
			}
			s2.write(t, next...)

			latest, err := s2.Latest(t.Context(), refs)
			if err != nil {
				t.Fatalf("latest: %v", err)
			}
			if len(latest) != tc.n {
				t.Errorf("latest found %d incidents, want %d", len(latest), tc.n)
			}
			for _, ref := range refs[:1] {
				if inc := latest[ref]; inc == nil || inc.State != incidents.StateAcknowledged || len(inc.Alerts) != 1 {
					t.Errorf("latest[%.40s…] = %v, want the acknowledged version with its alert", ref.GroupKey, inc)
				}
			}
			own, err := s2.AlertOwners(t.Context(), owners)
			if err != nil {
				t.Fatalf("alert owners: %v", err)
			}
			if len(own) != tc.n {
				t.Errorf("found owners in %d groups, want %d", len(own), tc.n)
			}
		})
	}
}

// TestStoreHoldsWhatTheEdgeAccepts writes an incident whose every time is
// the latest the webhook accepts (incidents.MaxTime): the store must take
// it, or a notification answered 2xx from the spool would be refused
// later.
func TestStoreHoldsWhatTheEdgeAccepts(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))
	last := incidents.MaxTime()
	inc := newIncident("{}:{alertname=\"Late\"}", "late", last)
	inc.State = incidents.StateResolved
	inc.ResolvedAt, inc.AcknowledgedAt, inc.UpdatedAt = last, last, last
	inc.Periods = []incidents.Period{{Start: last, End: last}}
	a := incidents.Alert{Fingerprint: "late", Status: incidents.AlertResolved, StartsAt: last, EndsAt: last,
		Labels: map[string]string{"alertname": "Late"}}
	inc.Alerts = []incidents.Alert{a}
	s.write(t, incidents.Change{Incident: inc, Alerts: inc.Alerts})
	got := s.get(t, inc.ID)
	if !got.StartedAt.Equal(last) || !got.ResolvedAt.Equal(last) || len(got.Alerts) != 1 || !got.Alerts[0].EndsAt.Equal(last) {
		t.Errorf("read back %+v, want every time %v", got, last)
	}
	if err := s.Write(t.Context(), []incidents.Change{{Incident: newIncident("g", "late", last.Add(time.Second))}}); err == nil {
		t.Error("a time after incidents.MaxTime was stored, want it refused")
	}
}
