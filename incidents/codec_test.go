package incidents_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ninesops/nines/incidents"
)

// TestStoredFormsKeepMilliseconds: the log keeps a notification's and a
// command's times as they came (issue 15: from intake to every answer),
// so that the deriver applies them, and a replay derives them, to the
// millisecond.
func TestStoredFormsKeepMilliseconds(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 17, 33, 38, 310_000_000, time.UTC)
	tests := []struct {
		name             string
		starts, ends, rx time.Time
	}{
		{"milliseconds", at, at.Add(2*time.Minute + 368*time.Millisecond), at.Add(1500 * time.Millisecond)},
		{"whole seconds", at.Truncate(time.Second), at.Add(time.Minute).Truncate(time.Second), at.Truncate(time.Second)},
		{"still firing", at, time.Time{}, at.Add(time.Millisecond)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := incidents.Alert{Fingerprint: "fp", Status: incidents.AlertFiring, StartsAt: tc.starts,
				Labels: map[string]string{"alertname": "Down"}}
			if !tc.ends.IsZero() {
				a.Status, a.EndsAt = incidents.AlertResolved, tc.ends
			}
			n := incidents.Notification{Receiver: "nines", Status: a.Status, GroupKey: "g", Alerts: []incidents.Alert{a}, ReceivedAt: tc.rx}
			b, err := incidents.MarshalNotification(n)
			if err != nil {
				t.Fatal(err)
			}
			got, err := incidents.UnmarshalNotification(b)
			if err != nil {
				t.Fatal(err)
			}
			if g := got.Alerts[0]; !g.StartsAt.Equal(tc.starts) || !g.EndsAt.Equal(tc.ends) || !got.ReceivedAt.Equal(tc.rx) {
				t.Errorf("stored form %s gives starts %s, ends %s, received %s; want %s, %s, %s", b,
					g.StartsAt.Format(time.RFC3339Nano), g.EndsAt.Format(time.RFC3339Nano), got.ReceivedAt.Format(time.RFC3339Nano),
					tc.starts.Format(time.RFC3339Nano), tc.ends.Format(time.RFC3339Nano), tc.rx.Format(time.RFC3339Nano))
			}

			c := incidents.Command{ID: "cmd-1", Kind: incidents.CommandAcknowledge, At: tc.rx, Incident: "inc-1", Actor: "alice"}
			cb, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			var back incidents.Command
			if err := json.Unmarshal(cb, &back); err != nil {
				t.Fatal(err)
			}
			if !back.At.Equal(tc.rx) {
				t.Errorf("command %s gives at %s, want %s", cb, back.At.Format(time.RFC3339Nano), tc.rx.Format(time.RFC3339Nano))
			}
		})
	}
}
