package main

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
)

// millisIncident is the part of an incident's answer that holds times.
type millisIncident struct {
	ID             string     `json:"id"`
	State          string     `json:"state"`
	StartedAt      *time.Time `json:"started_at"`
	AcknowledgedAt *time.Time `json:"acknowledged_at"`
	ResolvedAt     *time.Time `json:"resolved_at"`
	Periods        []struct {
		Start *time.Time `json:"start"`
		End   *time.Time `json:"end"`
	} `json:"periods"`
	Alerts []struct {
		Fingerprint string     `json:"fingerprint"`
		StartsAt    *time.Time `json:"starts_at"`
		EndsAt      *time.Time `json:"ends_at"`
	} `json:"alerts"`
	Timeline []struct {
		Kind        string    `json:"kind"`
		At          time.Time `json:"at"`
		Fingerprint string    `json:"fingerprint"`
	} `json:"timeline"`
}

// TestIncidentTimesKeepMilliseconds is issue 15's precision case: an
// alert starts at …:38.310Z, another ends at …:05.678Z, someone
// acknowledges and resolves the incident. Every time a later GET (and the
// list) shows keeps its milliseconds and is the one the action answered:
// started, acknowledged, resolved, the periods, the alerts' starts and
// ends, and the timeline's entries; they were cut to whole seconds when
// stored (the action answered "…38.31Z", a GET "…38Z").
func TestIncidentTimesKeepMilliseconds(t *testing.T) {
	n := startNines(t, chtest.Database(t))
	base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Minute)
	startA := base.Add(38*time.Second + 310*time.Millisecond)
	startB := base.Add(40*time.Second + 125*time.Millisecond)
	endB := base.Add(2*time.Minute + 5*time.Second + 678*time.Millisecond)
	const gk = `{}:{alertname="LedgerSlow"}`
	labels := func(pod string) map[string]string {
		return map[string]string{"alertname": "LedgerSlow", "service": "ledger", "severity": "critical", "pod": pod}
	}
	const never = "0001-01-01T00:00:00Z"
	post := func(body []byte) {
		t.Helper()
		if code, b := n.postAlerts(body); code != http.StatusOK {
			t.Fatalf("webhook: %d %s", code, b)
		}
	}
	post(webhookNote(gk,
		inputAlert("a", labels("a"), startA.Format(time.RFC3339Nano), never, "firing"),
		inputAlert("b", labels("b"), startB.Format(time.RFC3339Nano), never, "firing")))
	post(webhookNote(gk,
		inputAlert("a", labels("a"), startA.Format(time.RFC3339Nano), never, "firing"),
		inputAlert("b", labels("b"), startB.Format(time.RFC3339Nano), endB.Format(time.RFC3339Nano), "resolved")))
	incs := listService(t, n, "ledger")
	if len(incs) != 1 {
		t.Fatalf("%d ledger incidents, want 1", len(incs))
	}
	id := incs[0].ID

	// act posts an action and returns its answer, checking that the time
	// it records (at) was taken during the request, to the millisecond.
	act := func(action string, at func(millisIncident) *time.Time) (millisIncident, []byte) {
		t.Helper()
		before := time.Now().UTC().Truncate(time.Millisecond)
		code, b := n.do("POST", "/api/v1/incidents/"+id+"/"+action, n.apiToken, map[string]string{"actor": "alice"})
		after := time.Now().UTC()
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", action, code, b)
		}
		var inc millisIncident
		if err := json.Unmarshal(b, &inc); err != nil {
			t.Fatalf("%s answered %s: %v", action, b, err)
		}
		if got := at(inc); got == nil || got.Before(before) || got.After(after) {
			t.Errorf("%s answered its time %v, want between %s and %s, to the millisecond",
				action, got, before.Format(time.RFC3339Nano), after.Format(time.RFC3339Nano))
		}
		return inc, b
	}
	acked, _ := act("ack", func(i millisIncident) *time.Time { return i.AcknowledgedAt })
	resolved, resolvedBody := act("resolve", func(i millisIncident) *time.Time { return i.ResolvedAt })

	code, b := n.do("GET", "/api/v1/incidents/"+id, "", nil)
	if code != http.StatusOK {
		t.Fatalf("get: %d %s", code, b)
	}
	var got millisIncident
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"started_at":"`+startA.Format(time.RFC3339Nano)+`"`) ||
		!strings.Contains(startA.Format(time.RFC3339Nano), ":38.31Z") {
		t.Errorf("GET does not render started_at as %s:\n%s", startA.Format(time.RFC3339Nano), b)
	}

	same := func(what string, got, want *time.Time) {
		t.Helper()
		switch {
		case want == nil || got == nil:
			if got != want {
				t.Errorf("%s: %v, want %v", what, got, want)
			}
		case !got.Equal(*want):
			t.Errorf("%s: %s, want %s", what, got.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
	}
	same("started_at", got.StartedAt, &startA)
	same("acknowledged_at", got.AcknowledgedAt, acked.AcknowledgedAt)
	same("resolved_at", got.ResolvedAt, resolved.ResolvedAt)
	// The resolve by hand ends the one period at its time.
	if len(got.Periods) != 1 {
		t.Fatalf("periods %+v, want one", got.Periods)
	}
	same("period start", got.Periods[0].Start, &startA)
	same("period end", got.Periods[0].End, resolved.ResolvedAt)
	alerts := map[string][2]*time.Time{}
	for _, a := range got.Alerts {
		alerts[a.Fingerprint] = [2]*time.Time{a.StartsAt, a.EndsAt}
	}
	same("alert a starts_at", alerts["a"][0], &startA)
	same("alert a ends_at", alerts["a"][1], nil)
	same("alert b starts_at", alerts["b"][0], &startB)
	same("alert b ends_at", alerts["b"][1], &endB)
	seen := map[string]bool{}
	for _, e := range got.Timeline {
		var want *time.Time
		switch {
		case e.Kind == "opened" || (e.Kind == "alert_fired" && e.Fingerprint == "a"):
			want = &startA
		case e.Kind == "alert_fired" && e.Fingerprint == "b":
			want = &startB
		case e.Kind == "alert_resolved" && e.Fingerprint == "b":
			want = &endB
		case e.Kind == "acknowledged":
			want = acked.AcknowledgedAt
		case e.Kind == "resolved":
			want = resolved.ResolvedAt
		default:
			continue
		}
		same("timeline "+e.Kind+" "+e.Fingerprint, &e.At, want)
		seen[e.Kind+" "+e.Fingerprint] = true
	}
	for _, k := range []string{"opened ", "alert_fired a", "alert_fired b", "alert_resolved b", "acknowledged ", "resolved "} {
		if !seen[k] {
			t.Errorf("the timeline has no %q entry: %+v", k, got.Timeline)
		}
	}

	// The whole answer of the last action is what a GET shows (but for
	// the timeline, which only a GET has), and so is the list's entry.
	var answered, shown, listed map[string]any
	if err := json.Unmarshal(resolvedBody, &answered); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &shown); err != nil {
		t.Fatal(err)
	}
	delete(shown, "timeline")
	if !reflect.DeepEqual(shown, answered) {
		t.Errorf("GET shows\n%v\nthe resolve answered\n%v", shown, answered)
	}
	code, lb := n.do("GET", "/api/v1/incidents?service=ledger", "", nil)
	var page struct {
		Incidents []map[string]any `json:"incidents"`
	}
	if err := json.Unmarshal(lb, &page); code != http.StatusOK || err != nil || len(page.Incidents) != 1 {
		t.Fatalf("list: %d %s (%v)", code, lb, err)
	}
	if listed = page.Incidents[0]; !reflect.DeepEqual(listed, answered) {
		t.Errorf("the list shows\n%v\nthe resolve answered\n%v", listed, answered)
	}
}
