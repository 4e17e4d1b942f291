package alerts

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// TestHandlerDropsSelfAlerts: alerts of nines' own rules (label nines_rule)
// never reach the ingester, so they never open incidents; the others of the
// same notification do.
func TestHandlerDropsSelfAlerts(t *testing.T) {
	t.Parallel()
	selfLabel := func(idx ...int) func(m map[string]any) {
		return func(m map[string]any) {
			for _, i := range idx {
				alertAt(m, i)["labels"].(map[string]any)[SelfAlertLabel] = "NinesErrorBudgetFastBurn"
			}
		}
	}
	tests := []struct {
		name         string
		body         []byte
		wantBody     string
		wantIngested []string // fingerprints given to the ingester; nil: not called
		wantSelf     float64
	}{
		{
			name:     "only self alerts: answered, nothing ingested",
			body:     mutate(t, "01-search-latency-firing.json", selfLabel(0, 1)),
			wantBody: `{"status":"ok","alerts":0,"self_alerts":2}` + "\n",
			wantSelf: 2,
		},
		{
			name:         "one of two: the other is ingested",
			body:         mutate(t, "01-search-latency-firing.json", selfLabel(0)),
			wantBody:     `{"status":"ok","alerts":1,"self_alerts":1}` + "\n",
			wantIngested: []string{"fcea8ccb35c82b36"},
			wantSelf:     1,
		},
		{
			name:         "an empty nines_rule is no mark",
			body:         mutate(t, "01-search-latency-firing.json", func(m map[string]any) { alertAt(m, 0)["labels"].(map[string]any)[SelfAlertLabel] = "" }),
			wantBody:     `{"status":"ok","alerts":2}` + "\n",
			wantIngested: []string{"14d34edfcfdb5b57", "fcea8ccb35c82b36"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestHandler(t, nil, 0, nil)
			rec := httptest.NewRecorder()
			s.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/v1/alerts", bytes.NewReader(tc.body)))
			if rec.Code != http.StatusOK || rec.Body.String() != tc.wantBody {
				t.Errorf("answer %d %s, want 200 %s", rec.Code, rec.Body, tc.wantBody)
			}
			got := s.ingester.notifications()
			switch {
			case tc.wantIngested == nil && len(got) != 0:
				t.Errorf("ingester got %d notifications, want none", len(got))
			case tc.wantIngested != nil:
				if len(got) != 1 {
					t.Fatalf("ingester got %d notifications, want 1", len(got))
				}
				var fps []string
				for _, a := range got[0].Alerts {
					fps = append(fps, a.Fingerprint)
				}
				if !slices.Equal(fps, tc.wantIngested) {
					t.Errorf("ingested alerts %v, want %v", fps, tc.wantIngested)
				}
			}
			if v := counterValue(t, s.reg, "nines_notifications_self_alerts_total", "", ""); v != tc.wantSelf {
				t.Errorf("nines_notifications_self_alerts_total = %v, want %v", v, tc.wantSelf)
			}
		})
	}
}

// TestReconcileNeverFeedsSelfAlerts: an active alert of nines' own rules
// routed to nines is not "missing an incident": the reconciler feeds the
// group without it, or not at all.
func TestReconcileNeverFeedsSelfAlerts(t *testing.T) {
	start := r0.Add(-10 * time.Minute)
	self := amActive("s1", start, r0.Add(time.Hour), "active")
	self.Labels[SelfAlertLabel] = "NinesDown"
	other := amActive("a1", start, r0.Add(time.Hour), "active")

	g := newRig(t)
	g.am.set(self, other)
	g.am.groups = []amGroup{{Labels: map[string]string{"alertname": "Down", "service": "api"}, Alerts: []amAlert{self, other}}}
	g.am.groups[0].Receiver.Name = "nines"
	g.at(0)
	res := g.at(6 * time.Minute)
	if res.Active != 1 || res.Opened != 1 || len(g.inc.ingested) != 1 {
		t.Fatalf("active %d, opened %d, ingested %d; want 1, 1, 1 (a1 only)", res.Active, res.Opened, len(g.inc.ingested))
	}
	if n := g.inc.ingested[0]; len(n.Alerts) != 1 || n.Alerts[0].Fingerprint != "a1" {
		t.Errorf("fed %+v, want a1 alone", n.Alerts)
	}

	g = newRig(t)
	g.am.set(self)
	g.am.groups = []amGroup{{Labels: map[string]string{"alertname": "Down", "service": "api"}, Alerts: []amAlert{self}}}
	g.am.groups[0].Receiver.Name = "nines"
	g.at(0)
	if res := g.at(6 * time.Minute); res.Opened != 0 || len(g.inc.ingested) != 0 {
		t.Errorf("opened %d, ingested %d from a self alert alone; want none", res.Opened, len(g.inc.ingested))
	}
}
