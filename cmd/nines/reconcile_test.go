package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ninesops/nines/alerts"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

// TestReconcileWithAlertmanager: an alert fires and resolves in a real
// Alertmanager while nines' webhook answers 500. Alertmanager never
// delivers it, but the reconciler opens the incident while the alert is
// active and resolves it, as the reconciler, once it is gone. When the
// webhook works again and Alertmanager finally delivers the resolve, it
// lands on the same incident: the reconciler used Alertmanager's group key.
func TestReconcileWithAlertmanager(t *testing.T) {
	dsn := chtest.Database(t)
	alertmanagerBinary(t)
	ctx := t.Context()
	store, err := chstore.Open(ctx, chstore.Options{DSN: dsn, FlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	svc, err := incidents.NewService(incidents.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := alerts.NewAuthFromValues("s3cr3t-token", "", "")
	if err != nil {
		t.Fatal(err)
	}
	hook, err := alerts.NewHandler(alerts.Options{Ingester: svc, Auth: auth, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var failing atomic.Bool
	var refused, served atomic.Int64
	webhook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			refused.Add(1)
			http.Error(w, "nines is failing", http.StatusInternalServerError)
			return
		}
		served.Add(1)
		hook.ServeHTTP(w, r)
	}))
	defer webhook.Close()
	failing.Store(true)
	am := startAlertmanager(t, webhook.URL)

	rec, err := alerts.NewReconciler(alerts.ReconcilerOptions{
		URL: am, Interval: 300 * time.Millisecond, Grace: 2 * time.Second,
		Ingester: svc, Incidents: store, Resolver: svc,
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = rec.Run(rctx) }()

	start := time.Now().Add(-time.Minute).UTC().Truncate(time.Second)
	alert := map[string]any{
		"labels":      map[string]string{"alertname": "QueueStuck", "service": "billing", "severity": "critical"},
		"annotations": map[string]string{"summary": "Billing queue stuck"},
		"startsAt":    start.Format(time.RFC3339),
	}
	postAlerts(t, am, []map[string]any{alert})

	list := func() []*incidents.Incident {
		incs, _, err := store.List(ctx, incidents.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		return incs
	}
	var id string
	eventually(t, 30*time.Second, "the reconciler to open the incident", func() bool {
		incs := list()
		if len(incs) == 1 && incs[0].State == incidents.StateFiring {
			id = incs[0].ID
			return true
		}
		return false
	})
	if refused.Load() == 0 {
		t.Fatal("Alertmanager did not try the failing webhook")
	}
	inc, _ := store.Get(ctx, id)
	if want := `{}:{alertname="QueueStuck", service="billing"}`; inc.GroupKey != want || !inc.StartedAt.Equal(start) {
		t.Errorf("opened %s starting %v, want group key %s starting %v", inc.GroupKey, inc.StartedAt, want, start)
	}

	// The alert resolves; Alertmanager's resolve fails too.
	lastActive := time.Now()
	alert["endsAt"] = time.Now().UTC().Format(time.RFC3339)
	postAlerts(t, am, []map[string]any{alert})
	eventually(t, 30*time.Second, "the reconciler to resolve the incident", func() bool {
		inc, err = store.Get(ctx, id)
		return err == nil && inc.State == incidents.StateResolved
	})
	if inc.ResolvedBy != incidents.ActorReconciler {
		t.Errorf("resolved by %q, want the reconciler", inc.ResolvedBy)
	}
	// The best end known: the last time Alertmanager reported it active,
	// at most one interval before it resolved.
	if inc.ResolvedAt.Before(lastActive.Add(-2*time.Second).Truncate(time.Second)) || inc.ResolvedAt.After(lastActive.Add(time.Second)) {
		t.Errorf("resolved at %v, want about %v", inc.ResolvedAt, lastActive)
	}
	// A flush stores the incident row before its events (readers tailing
	// events find their incident), so the timeline may lag a moment.
	eventually(t, 10*time.Second, "the timeline to say the reconciler resolved it", func() bool {
		for _, e := range mustTimeline(t, store, id) {
			if e.Kind == incidents.EventResolved && e.Actor == incidents.ActorReconciler && strings.Contains(e.Text, "reconciler") {
				return true
			}
		}
		return false
	})

	// The webhook works again. A new alert of the same group reaches nines
	// through Alertmanager and reopens the reconciler's incident: the
	// reconciler used Alertmanager's group key (a different key would
	// make a second incident).
	failing.Store(false)
	second := map[string]any{
		"labels":   map[string]string{"alertname": "QueueStuck", "service": "billing", "severity": "critical", "queue": "retries"},
		"startsAt": time.Now().UTC().Format(time.RFC3339),
	}
	postAlerts(t, am, []map[string]any{second})
	// (The reconciler may feed it first; Alertmanager's delivery must land
	// on the same incident too. A flush stores alerts before the incident
	// row, so wait for both.)
	eventually(t, 30*time.Second, "Alertmanager to deliver the group's new alert", func() bool {
		inc, err = store.Get(ctx, id)
		return err == nil && len(inc.Alerts) == 2 && inc.State == incidents.StateFiring && served.Load() > 0
	})
	time.Sleep(time.Second)
	if incs := list(); len(incs) != 1 || inc.Flaps != 1 {
		t.Errorf("after Alertmanager delivered: %d incidents, %s with %d flaps; want the one, reopened", len(incs), inc.State, inc.Flaps)
	}
}

func mustTimeline(t *testing.T, store *chstore.Store, id string) []incidents.Event {
	t.Helper()
	tl, err := store.Timeline(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}
