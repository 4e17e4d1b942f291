package main

import (
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
)

// TestAcceptanceManualResolveKeepsDowntime is issue 15's manual-resolve
// case against a real Alertmanager (availability/doc.go, Downtime): an
// alert fires through Alertmanager, someone resolves the incident by hand,
// Alertmanager keeps re-sending the firing alert, then the alert resolves.
// The incident stays resolved at the person's resolve, and the service's
// downtime counts the alert's whole firing time, not the time up to the
// resolve by hand.
func TestAcceptanceManualResolveKeepsDowntime(t *testing.T) {
	dsn := chtest.Database(t)
	alertmanagerBinary(t)
	catalog := writeFile(t, t.TempDir(), "catalog.yml", "services:\n  - {name: ledger, owner: payments, slo_target: 99.9}\n")
	n := startNines(t, dsn, "--catalog.file="+catalog)
	// repeat_interval is short so that firing notifications of the same
	// alert keep arriving after the resolve by hand.
	am := startAlertmanagerConfig(t, alertmanagerConfig(n.base, "1s", "2s"))

	start := time.Now().Add(-3 * time.Minute).UTC().Truncate(time.Second)
	alert := map[string]any{
		"labels":      map[string]string{"alertname": "LedgerDown", "service": "ledger", "severity": "critical"},
		"annotations": map[string]string{"summary": "Ledger is down"},
		"startsAt":    start.Format(time.RFC3339),
	}
	postAlerts(t, am, []map[string]any{alert})

	var id string
	eventually(t, 30*time.Second, "the ledger incident to open", func() bool {
		for _, inc := range n.incidents().Incidents {
			if inc.Service == "ledger" && inc.State == "firing" {
				id = inc.ID
				return true
			}
		}
		return false
	})

	// Someone resolves it by hand while the alert still fires.
	code, b := n.do("POST", "/api/v1/incidents/"+id+"/resolve", n.apiToken, map[string]string{"actor": "alice"})
	if code != http.StatusOK {
		t.Fatalf("resolve by hand: %d %s", code, b)
	}
	var resolved struct {
		ResolvedAt *time.Time `json:"resolved_at"`
	}
	if err := json.Unmarshal(b, &resolved); err != nil || resolved.ResolvedAt == nil {
		t.Fatalf("resolve by hand answered %s (%v): no resolved_at", b, err)
	}
	byHand := *resolved.ResolvedAt

	// Alertmanager re-sends the firing alert (repeat_interval): at least
	// two more firing notifications reach nines after the resolve.
	firing := `nines_webhook_alerts_received_total{status="firing"}`
	before := metricValue(t, n.base, firing)
	eventually(t, 30*time.Second, "two more firing notifications", func() bool {
		return metricValue(t, n.base, firing) >= before+2
	})
	// They do not reopen the incident.
	for _, inc := range n.incidents().Incidents {
		if inc.ID == id && inc.State != "resolved" {
			t.Fatalf("after firing notifications the incident is %s, want it still resolved", inc.State)
		}
	}

	// The alert resolves in Alertmanager, a few seconds after the resolve
	// by hand.
	end := time.Now().UTC().Truncate(time.Second)
	if end.Sub(byHand) < 2*time.Second {
		time.Sleep(2*time.Second - end.Sub(byHand))
		end = time.Now().UTC().Truncate(time.Second)
	}
	alert["endsAt"] = end.Format(time.RFC3339)
	postAlerts(t, am, []map[string]any{alert})
	eventually(t, 30*time.Second, "the alert's resolve to reach the incident", func() bool {
		for _, inc := range n.incidents().Incidents {
			if inc.ID == id && len(inc.Alerts) == 1 && inc.Alerts[0].Status == "resolved" {
				return true
			}
		}
		return false
	})

	// The incident stays resolved, at the person's resolve, and is the
	// only one: the firing notifications opened nothing.
	page := n.incidents()
	if len(page.Incidents) != 1 {
		t.Fatalf("%d incidents, want 1: %+v", len(page.Incidents), page.Incidents)
	}
	inc := page.Incidents[0]
	if inc.State != "resolved" || inc.ResolvedAt == nil || !inc.ResolvedAt.Equal(byHand) {
		t.Errorf("incident %s resolved_at %v, want resolved at the resolve by hand %v", inc.State, inc.ResolvedAt, byHand)
	}

	// The downtime is the alert's whole firing time: start to end.
	from := start.Add(-time.Minute)
	q := url.Values{"from": {from.Format(time.RFC3339)}, "to": {end.Format(time.RFC3339)}}
	code, b = n.do("GET", "/api/v1/services/ledger/availability?"+q.Encode(), "", nil)
	if code != http.StatusOK {
		t.Fatalf("availability: %d %s", code, b)
	}
	var fig struct {
		Availability    float64 `json:"availability"`
		DowntimeSeconds float64 `json:"downtime_seconds"`
		Incidents       int     `json:"incidents"`
	}
	if err := json.Unmarshal(b, &fig); err != nil {
		t.Fatal(err)
	}
	wantDown := end.Sub(start).Seconds()
	wantAvail := 1 - wantDown/end.Sub(from).Seconds()
	if fig.DowntimeSeconds != wantDown || math.Abs(fig.Availability-wantAvail) > 1e-9 || fig.Incidents != 1 {
		t.Errorf("availability %v, downtime %vs, %d incidents; want %v, %vs (the alert fired %s–%s; resolved by hand at %s), 1 incident\n%s",
			fig.Availability, fig.DowntimeSeconds, fig.Incidents, wantAvail, wantDown,
			start.Format(time.TimeOnly), end.Format(time.TimeOnly), byHand.Format(time.StampMilli), b)
	}
}
