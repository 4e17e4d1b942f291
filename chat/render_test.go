package chat

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ninesops/nines/incidents"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var t0 = time.Date(2026, 11, 16, 9, 30, 0, 0, time.UTC)

// fixture is an incident with two alerts, one resolved.
func fixture() *incidents.Incident {
	return &incidents.Incident{
		ID: "inc-0123456789abcdef0123", Service: "checkout", GroupKey: "{}:{alertname=\"CheckoutDown\"}",
		Title: "Checkout error rate above 5% <for 10m>", Impact: incidents.ImpactOutage, State: incidents.StateFiring,
		Source: incidents.SourceAlertmanager, StartedAt: t0,
		RunbookURL:   "https://runbooks.example.com/checkout?a=1&b=2",
		GeneratorURL: "http://prometheus.example.com/graph?g0.expr=rate",
		ExternalURL:  "http://alertmanager.example.com",
		Alerts: []incidents.Alert{
			{Fingerprint: "aaaa", Status: incidents.AlertFiring, Impact: incidents.ImpactOutage, StartsAt: t0,
				Labels:      map[string]string{"alertname": "CheckoutErrors", "instance": "checkout-1:8080"},
				Annotations: map[string]string{"summary": "5xx above 5%"}},
			{Fingerprint: "bbbb", Status: incidents.AlertResolved, Impact: incidents.ImpactDegraded, StartsAt: t0.Add(time.Minute), EndsAt: t0.Add(4 * time.Minute),
				Labels: map[string]string{"alertname": "CheckoutLatency"}},
		},
		Periods: []incidents.Period{{Start: t0}},
	}
}

func view(inc *incidents.Incident) incidentView {
	return incidentView{Inc: inc, Owner: "payments", Runbook: inc.RunbookURL,
		Dashboard: "https://grafana.example.com/d/nines-svc-checkout", Interactive: true,
		Page:   incidentPage("https://nines.example.com", inc.ID),
		Budget: &budgetUse{Window: "30-day", Used: 0.12, Left: 0.41}}
}

func goldenMessages() map[string]rendered {
	open := fixture()

	acked := fixture()
	acked.State, acked.AcknowledgedAt, acked.AcknowledgedBy = incidents.StateAcknowledged, t0.Add(3*time.Minute), "slack:alice"

	resolved := fixture()
	resolved.State, resolved.AcknowledgedAt, resolved.AcknowledgedBy = incidents.StateResolved, t0.Add(3*time.Minute), "slack:alice"
	resolved.ResolvedAt, resolved.ResolvedBy = t0.Add(47*time.Minute+12*time.Second), "alertmanager"
	resolved.Alerts[0].Status, resolved.Alerts[0].EndsAt = incidents.AlertResolved, resolved.ResolvedAt
	resolved.Periods = []incidents.Period{{Start: t0, End: resolved.ResolvedAt}}
	rv := view(resolved)
	rv.Budget.Used = 0.004

	reopened := fixture()
	reopened.Flaps = 2
	reopened.CausedBy = "inc-ffffffffffffffffffff"

	many := fixture()
	many.TruncatedAlerts = 7
	for i := range 25 {
		many.Alerts = append(many.Alerts, incidents.Alert{Fingerprint: fmt.Sprintf("f%02d", i), Status: incidents.AlertFiring,
			Impact: incidents.ImpactOutage, StartsAt: t0, Labels: map[string]string{"alertname": "CheckoutPodDown", "instance": fmt.Sprintf("checkout-%02d", i)}})
	}
	webhook := view(open)
	webhook.Interactive = false

	note := incidents.Event{ID: "ev-1", IncidentID: open.ID, At: t0.Add(5 * time.Minute), Kind: incidents.EventNote, Actor: "slack:bob",
		Text: "Rolling back 1.42 <!channel> & paging the DB team"}
	var flaps []incidents.Event
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Minute)
		flaps = append(flaps,
			incidents.Event{ID: fmt.Sprint("r", i), Kind: incidents.EventAlertResolved, At: at, Actor: "alertmanager", Text: "CheckoutErrors on checkout-1:8080 resolved (outage)"},
			incidents.Event{ID: fmt.Sprint("x", i), Kind: incidents.EventResolved, At: at, Actor: "alertmanager", Text: "All alerts resolved"},
			incidents.Event{ID: fmt.Sprint("o", i), Kind: incidents.EventReopened, At: at.Add(30 * time.Second), Actor: "alertmanager", Text: fmt.Sprintf("Reopened: CheckoutErrors on checkout-1:8080 fired again (flap %d)", i+1)},
			incidents.Event{ID: fmt.Sprint("f", i), Kind: incidents.EventAlertFired, At: at.Add(30 * time.Second), Actor: "alertmanager", Text: "CheckoutErrors on checkout-1:8080 fired (outage)"},
		)
	}
	return map[string]rendered{
		"open":          renderIncident(view(open)),
		"acked":         renderIncident(view(acked)),
		"resolved":      renderIncident(rv),
		"reopened":      renderIncident(view(reopened)),
		"many-alerts":   renderIncident(view(many)),
		"webhook":       renderIncident(webhook),
		"reply-note":    renderEvent(open, note),
		"reply-ack":     renderEvent(open, incidents.Event{ID: "ev-2", Kind: incidents.EventAcknowledged, At: t0.Add(3 * time.Minute), Actor: "slack:alice", Text: "Acknowledged by slack:alice"}),
		"flap-summary":  renderFlap(reopened, flaps, 5*time.Minute),
		"digest":        renderDigest(digestFixture()),
		"digest-squad":  renderDigest(digestFixture().forSquad("payments")),
		"webhook-reply": standalone(open, renderEvent(open, incidents.Event{ID: "ev-3", Kind: incidents.EventResolved, At: t0.Add(time.Hour), Actor: "alertmanager", Text: "All alerts resolved"})),
	}
}

func digestFixture() digestData {
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	mtta, mttr := 4*time.Minute+30*time.Second, 52*time.Minute
	return digestData{
		PageURL: "https://nines.example.com",
		Scope:   "All services", From: now.Add(-7 * 24 * time.Hour), To: now, Loc: time.UTC,
		Rows: []digestRow{
			{Service: "checkout", Owner: "payments", SLO: 0.9995, Week: 0.99712, Month: 0.99891, BudgetLeft: -1.18, Incidents: 3},
			{Service: "search", Owner: "discovery", SLO: 0.999, Week: 0.99993, Month: 0.99921, BudgetLeft: 0.21, Incidents: 1},
			{Service: "payments-api", Owner: "payments", SLO: 0.9999, Week: 1, Month: 0.99995, BudgetLeft: 0.5, Incidents: 0},
			{Service: "frontend", Owner: "web", SLO: 0.9995, Week: 1, Month: 1, BudgetLeft: 1, Incidents: 0},
		},
		Longest: []digestItem{
			{ID: "inc-0123456789abcdef0123", Service: "checkout", Owner: "payments", Title: "Checkout error rate above 5%", Impact: incidents.ImpactOutage, Downtime: 47 * time.Minute, Started: now.Add(-50 * time.Hour)},
			{ID: "inc-1111111111111111aaaa", Service: "search", Owner: "discovery", Title: "Search latency", Impact: incidents.ImpactDegraded, Downtime: 12 * time.Minute, Started: now.Add(-30 * time.Hour)},
		},
		Incidents: 4, MTTA: &mtta, MTTR: &mttr,
	}
}

// TestGolden compares each kind of message with its golden file.
// Regenerate with: go test ./chat -run TestGolden -update
func TestGolden(t *testing.T) {
	for name, msg := range goldenMessages() {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false) // keep <, > and & readable in the files
			enc.SetIndent("", "  ")
			if err := enc.Encode(msg); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			path := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file; run go test ./chat -run TestGolden -update and review the diff\ngot:\n%s", path, got)
			}
			checkLimits(t, msg)
		})
	}
}

// checkLimits checks a message against Slack's Block Kit limits.
func checkLimits(t *testing.T, msg rendered) {
	t.Helper()
	if len(msg.Blocks) > maxBlocks {
		t.Errorf("%d blocks, Slack takes %d", len(msg.Blocks), maxBlocks)
	}
	if len(msg.Text) > maxFallback {
		t.Errorf("text of %d bytes", len(msg.Text))
	}
	b, _ := json.Marshal(msg.Blocks)
	var blocks []map[string]any
	if err := json.Unmarshal(b, &blocks); err != nil {
		t.Fatal(err)
	}
	for i, bl := range blocks {
		if txt, ok := bl["text"].(map[string]any); ok {
			s, _ := txt["text"].(string)
			limit := maxSectionText
			if bl["type"] == "header" {
				limit = maxHeaderText
			}
			if utf8.RuneCountInString(s) > limit || !utf8.ValidString(s) {
				t.Errorf("block %d (%s): text of %d characters, limit %d", i, bl["type"], utf8.RuneCountInString(s), limit)
			}
		}
		if fields, ok := bl["fields"].([]any); ok {
			if len(fields) > 10 {
				t.Errorf("block %d: %d fields", i, len(fields))
			}
			for _, f := range fields {
				if s, _ := f.(map[string]any)["text"].(string); len(s) > maxFieldText {
					t.Errorf("block %d: field of %d bytes", i, len(s))
				}
			}
		}
	}
}

// TestRenderLimits feeds huge and hostile values through every renderer.
func TestRenderLimits(t *testing.T) {
	huge := strings.Repeat("ü<&>", 5000)
	inc := fixture()
	inc.Title, inc.Service = huge, "svc-"+huge[:200]
	inc.Labels = map[string]string{"x": huge}
	for i := range 500 {
		inc.Alerts = append(inc.Alerts, incidents.Alert{Fingerprint: fmt.Sprint(i), Status: incidents.AlertFiring, StartsAt: t0,
			Labels: map[string]string{"alertname": huge, "instance": huge}, Annotations: map[string]string{"summary": huge}})
	}
	v := view(inc)
	v.Runbook = "https://example.com/" + huge
	checkLimits(t, renderIncident(v))
	ev := incidents.Event{Kind: incidents.EventNote, Text: huge, Actor: huge, At: t0}
	checkLimits(t, renderEvent(inc, ev))
	var evs []incidents.Event
	for range 300 {
		evs = append(evs, incidents.Event{Kind: incidents.EventAlertFired, Text: huge, At: t0})
	}
	checkLimits(t, renderFlap(inc, evs, time.Minute))
	dd := digestFixture()
	for i := range 400 {
		dd.Rows = append(dd.Rows, digestRow{Service: fmt.Sprintf("service-%03d-%s", i, strings.Repeat("x", 40)), SLO: 0.999, Week: 0.9, Month: 0.9, BudgetLeft: -3})
		dd.Longest = append(dd.Longest, digestItem{ID: "inc-x", Service: huge, Title: huge, Downtime: time.Hour})
	}
	checkLimits(t, renderDigest(dd))
	if s := esc(`<!channel> & <@U123>`); s != "&lt;!channel&gt; &amp; &lt;@U123&gt;" {
		t.Errorf("esc = %q", s)
	}
}

// TestPercentages: budget shares are whole percentages, availability has
// three decimals and never rounds a shortfall up to 100%.
func TestPercentages(t *testing.T) {
	for r, want := range map[float64]string{0: "0%", 0.004: "<1%", 0.12: "12%", 1.5: "150%"} {
		if got := percent(r); got != want {
			t.Errorf("percent(%v) = %q, want %q", r, got, want)
		}
	}
	for a, want := range map[float64]string{1: "100.000%", 0.99999: "99.999%", 0.999999: "99.999%", 0.9: "90.000%"} {
		if got := pct3(a); got != want {
			t.Errorf("pct3(%v) = %q, want %q", a, got, want)
		}
	}
}

// TestDigestSLOText: a 99.999% SLO reads 99.999% in the digest, not the
// float noise 99.99900000000001%.
func TestDigestSLOText(t *testing.T) {
	for _, slo := range []float64{0.99999, 0.9995, 0.999, 0.95} {
		dd := digestData{Scope: "All services", Loc: time.UTC, Rows: []digestRow{
			{Service: "checkout", Owner: "payments", SLO: slo, Week: 0.99, Month: 0.99, BudgetLeft: -1},
		}}
		b, err := json.Marshal(renderDigest(dd))
		if err != nil {
			t.Fatal(err)
		}
		want := map[float64]string{0.99999: "99.999%", 0.9995: "99.95%", 0.999: "99.9%", 0.95: "95%"}[slo]
		if !strings.Contains(string(b), "SLO "+want) && !strings.Contains(string(b), " "+want+" ") {
			t.Errorf("SLO %v: digest does not show %q: %s", slo, want, b)
		}
		if strings.Contains(string(b), "0000000") || strings.Contains(string(b), "9999999") {
			t.Errorf("SLO %v: float noise in the digest: %s", slo, b)
		}
	}
}
