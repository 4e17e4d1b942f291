package chstore_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

// RecentByService answers, for many services in one query, what List
// answers for each: its latest incidents since a time, newest first.
func TestRecentByService(t *testing.T) {
	t.Parallel()
	s := openStore(t, chtest.Database(t))
	var changes []incidents.Change
	for i := range 30 {
		inc := newIncident(fmt.Sprintf("g%d", i), []string{"db", "queue", "web"}[i%3], t0.Add(time.Duration(i)*time.Minute))
		changes = append(changes, incidents.Change{Incident: inc})
	}
	s.write(t, changes...)
	since := t0.Add(5 * time.Minute)
	got, err := s.RecentByService(t.Context(), []string{"db", "queue", "nope"}, since, time.Time{}, 4)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"db", "queue"} {
		want, _, err := s.List(t.Context(), incidents.Filter{Service: svc, Since: since, Limit: 4})
		if err != nil {
			t.Fatal(err)
		}
		ids := func(incs []*incidents.Incident) []string {
			var out []string
			for _, inc := range incs {
				out = append(out, inc.ID)
			}
			return out
		}
		if !slices.Equal(ids(got[svc]), ids(want)) || len(want) != 4 {
			t.Errorf("%s: %v, List says %v", svc, ids(got[svc]), ids(want))
		}
	}
	if _, ok := got["web"]; ok {
		t.Error("answered for a service not asked for")
	}
	if _, ok := got["nope"]; ok {
		t.Error("answered for a service without incidents")
	}
	until := t0.Add(20 * time.Minute)
	bounded, err := s.RecentByService(t.Context(), []string{"web"}, since, until, 100)
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := s.List(t.Context(), incidents.Filter{Service: "web", Since: since, Until: until, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(bounded["web"]) != len(want) || len(want) != 5 {
		t.Errorf("web between %s and %s: %d incidents, List says %d (want 5)", since, until, len(bounded["web"]), len(want))
	}
}
