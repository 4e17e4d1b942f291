package incidents

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestNotDowntimeLifecycle marks periods of an incident as not downtime
// and checks what a person would see: the mark on the incident with who
// and why, an entry on the timeline, the refusals that name the problem,
// and that the mark stays through later notifications and a restart.
func TestNotDowntimeLifecycle(t *testing.T) {
	ctx := context.Background()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	firing := alert("a", "TargetDown", "api", "critical", at(0), time.Time{})
	resolved := alert("a", "TargetDown", "api", "critical", at(0), at(20))
	tests := []struct {
		name string
		req  NotDowntimeRequest
		// after runs once the mark is made (more notifications, a restart).
		after   func(t *testing.T, svc **Service, store *memStore, now *time.Time)
		want    []Exclusion
		wantErr error
		errText string
	}{
		{
			name: "five minutes of a firing incident, kept when its alert resolves",
			req:  NotDowntimeRequest{From: at(5), To: at(10), Actor: "alice", Reason: "false positive: probe misconfigured"},
			after: func(t *testing.T, svc **Service, _ *memStore, now *time.Time) {
				*now = at(20)
				if err := (*svc).Ingest(ctx, note("g", resolved)); err != nil {
					t.Fatal(err)
				}
			},
			want: []Exclusion{{From: at(5), To: at(10), By: "alice", Reason: "false positive: probe misconfigured", At: at(12)}},
		},
		{
			name: "the whole incident by default, kept after a restart",
			req:  NotDowntimeRequest{Actor: "bob", Reason: "test alert"},
			after: func(t *testing.T, svc **Service, store *memStore, now *time.Time) {
				restarted, err := NewService(Options{Store: store, Now: func() time.Time { return *now }})
				if err != nil {
					t.Fatal(err)
				}
				*svc, *now = restarted, at(20)
				if err := restarted.Ingest(ctx, note("g", resolved)); err != nil {
					t.Fatal(err)
				}
			},
			want: []Exclusion{{From: at(0), By: "bob", Reason: "test alert", At: at(12)}},
		},
		{
			name: "two marks, the same one twice counts once",
			req:  NotDowntimeRequest{From: at(1), To: at(2), Actor: "alice", Reason: "deploy blip"},
			after: func(t *testing.T, svc **Service, store *memStore, now *time.Time) {
				id := store.all()[0].ID
				if _, err := (*svc).NotDowntime(ctx, id, NotDowntimeRequest{From: at(3), To: at(4), Actor: "carol", Reason: "synthetic check"}); err != nil {
					t.Fatal(err)
				}
				*now = at(20)
				if err := (*svc).Ingest(ctx, note("g", resolved)); err != nil {
					t.Fatal(err)
				}
			},
			want: []Exclusion{
				{From: at(1), To: at(2), By: "alice", Reason: "deploy blip", At: at(12)},
				{From: at(3), To: at(4), By: "carol", Reason: "synthetic check", At: at(12)},
			},
		},
		{name: "no reason", req: NotDowntimeRequest{From: at(5), To: at(10), Actor: "alice", Reason: "  "}, wantErr: ErrInvalid, errText: "reason: required"},
		{name: "from after to", req: NotDowntimeRequest{From: at(10), To: at(5), Actor: "alice", Reason: "x"}, wantErr: ErrInvalid, errText: "from must be before to"},
		{name: "from equal to", req: NotDowntimeRequest{From: at(5), To: at(5), Actor: "alice", Reason: "x"}, wantErr: ErrInvalid, errText: "from must be before to"},
		{name: "to before the incident's start", req: NotDowntimeRequest{To: at(-5), Actor: "alice", Reason: "x"}, wantErr: ErrInvalid, errText: "from must be before to"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := at(0)
			store := newMemStore()
			svc := serviceAt(t, store, &now)
			if err := svc.Ingest(ctx, note("g", firing)); err != nil {
				t.Fatal(err)
			}
			id := store.all()[0].ID
			now = at(12)
			inc, err := svc.NotDowntime(ctx, id, tc.req)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("got %v, want %v naming %q", err, tc.wantErr, tc.errText)
				}
				if got := store.all()[0].Excluded; len(got) != 0 {
					t.Errorf("a refused mark was kept: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if inc.State != StateFiring || len(inc.Excluded) == 0 {
				t.Errorf("answered %s with marks %+v: want still firing, marked", inc.State, inc.Excluded)
			}
			if tc.after != nil {
				tc.after(t, &svc, store, &now)
			}
			got := store.all()[0]
			if len(got.Excluded) != len(tc.want) {
				t.Fatalf("marks %+v, want %+v", got.Excluded, tc.want)
			}
			for i, x := range got.Excluded {
				// Periods are kept in whole seconds.
				w := tc.want[i]
				w.From, w.To = w.From.Truncate(time.Second), w.To.Truncate(time.Second)
				if !x.same(w) {
					t.Errorf("mark %d: %+v, want %+v", i, x, tc.want[i])
				}
			}
			var entries []Event
			for _, e := range store.timeline(id) {
				if e.Kind == EventNotDowntime {
					entries = append(entries, e)
				}
			}
			if len(entries) != len(tc.want) {
				t.Fatalf("timeline has %d not_downtime entries, want %d", len(entries), len(tc.want))
			}
			for _, e := range entries {
				ok := false
				for _, x := range tc.want {
					ok = ok || (e.Actor == x.By && strings.Contains(e.Text, x.Reason))
				}
				if !ok {
					t.Errorf("timeline entry %q by %s names no mark of %+v", e.Text, e.Actor, tc.want)
				}
			}
			if got.State != StateResolved || len(got.Periods) != 1 || !got.Periods[0].End.Equal(at(20)) {
				t.Errorf("state %s, periods %+v: the mark must not change the incident's own periods", got.State, got.Periods)
			}
		})
	}
}

// TestNotDowntimeUnknownIncident: marking an incident that does not exist
// is a not-found.
func TestNotDowntimeUnknownIncident(t *testing.T) {
	svc, err := NewService(Options{Store: newMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.NotDowntime(context.Background(), "inc-00000000000000000000", NotDowntimeRequest{Actor: "a", Reason: "x"})
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("got %v, want not found", err)
	}
}

// TestWithdrawNotDowntime withdraws a mark: the period counts again, the
// mark and its withdrawal stay on the timeline, and neither a later
// notification nor a restart brings the mark back.
func TestWithdrawNotDowntime(t *testing.T) {
	ctx := context.Background()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name     string
		markedAt func(marked time.Time) time.Time
		reason   string
		restart  bool
		wantErr  error
		errText  string
	}{
		{name: "withdrawn, then the alert resolves", markedAt: func(m time.Time) time.Time { return m }, reason: "it was a real outage"},
		{name: "withdrawn, then a restart", markedAt: func(m time.Time) time.Time { return m }, reason: "real after all", restart: true},
		{name: "no such mark", markedAt: func(m time.Time) time.Time { return m.Add(time.Second) }, reason: "x", wantErr: ErrConflict, errText: "no not-downtime mark"},
		{name: "no reason", markedAt: func(m time.Time) time.Time { return m }, reason: " ", wantErr: ErrInvalid, errText: "reason: required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now := at(0)
			store := newMemStore()
			svc := serviceAt(t, store, &now)
			if err := svc.Ingest(ctx, note("g", alert("a", "TargetDown", "api", "critical", at(0), time.Time{}))); err != nil {
				t.Fatal(err)
			}
			id := store.all()[0].ID
			now = at(12)
			marked, err := svc.NotDowntime(ctx, id, NotDowntimeRequest{From: at(5), To: at(10), Actor: "alice", Reason: "false positive"})
			if err != nil {
				t.Fatal(err)
			}
			now = at(14)
			inc, err := svc.WithdrawNotDowntime(ctx, id, tc.markedAt(marked.Excluded[0].At), "bob", tc.reason)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("got %v, want %v naming %q", err, tc.wantErr, tc.errText)
				}
				if len(store.all()[0].Excluded) != 1 {
					t.Errorf("a refused withdrawal removed the mark")
				}
				return
			}
			if err != nil || len(inc.Excluded) != 0 {
				t.Fatalf("withdraw: %+v, %v", inc, err)
			}
			if tc.restart {
				svc = serviceAt(t, store, &now)
			}
			now = at(20)
			if err := svc.Ingest(ctx, note("g", alert("a", "TargetDown", "api", "critical", at(0), at(20)))); err != nil {
				t.Fatal(err)
			}
			got := store.all()[0]
			if got.State != StateResolved || len(got.Excluded) != 0 {
				t.Errorf("%s with marks %+v: want resolved, the mark withdrawn", got.State, got.Excluded)
			}
			kinds := map[EventKind]string{}
			for _, e := range store.timeline(id) {
				kinds[e.Kind] = e.Actor + ": " + e.Text
			}
			if !strings.HasPrefix(kinds[EventNotDowntime], "alice: ") || !strings.HasPrefix(kinds[EventNotDowntimeWithdrawn], "bob: ") ||
				!strings.Contains(kinds[EventNotDowntimeWithdrawn], tc.reason) {
				t.Errorf("timeline %v: want the mark by alice and its withdrawal by bob with the reason", kinds)
			}
		})
	}
}
