package incidents_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ninesops/nines/incidents"
)

// TestOwnTimeline: a timeline keeps the entries of the incident's own
// alert occurrences and what is not about an alert; entries of an alert a
// split moved to another incident, or of an end that was corrected, are
// left out.
func TestOwnTimeline(t *testing.T) {
	at := func(m int) time.Time { return time.Date(2026, 12, 5, 6, m, 0, 0, time.UTC) }
	inc := &incidents.Incident{ID: "inc-1", Source: incidents.SourceAlertmanager, Alerts: []incidents.Alert{
		{Fingerprint: "a", StartsAt: at(0), EndsAt: at(10), Status: incidents.AlertResolved},
		{Fingerprint: "b", StartsAt: at(5)},
	}}
	events := []incidents.Event{
		{Kind: incidents.EventOpened, At: at(0)},
		{Kind: incidents.EventAlertFired, Fingerprint: "a", At: at(0)},
		{Kind: incidents.EventAlertFired, Fingerprint: "b", At: at(5)},
		{Kind: incidents.EventAlertResolved, Fingerprint: "a", At: at(8)}, // an end since corrected
		{Kind: incidents.EventAlertResolved, Fingerprint: "a", At: at(10)},
		{Kind: incidents.EventAlertFired, Fingerprint: "c", At: at(40)}, // moved to another incident
		{Kind: incidents.EventNote, At: at(41), Text: "looking"},
	}
	var got []string
	for _, e := range incidents.OwnTimeline(inc, events) {
		got = append(got, fmt.Sprintf("%s %s %d", e.Kind, e.Fingerprint, e.At.Minute()))
	}
	want := []string{"opened  0", "alert_fired a 0", "alert_fired b 5", "alert_resolved a 10", "note  41"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("own timeline:\n got %q\nwant %q", got, want)
	}
}
