package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
)

// webhookNote builds a webhook body with the given alerts.
func webhookNote(groupKey string, alerts ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{
		"version": "4", "status": "firing", "receiver": "nines", "groupKey": groupKey,
		"groupLabels": map[string]string{}, "commonLabels": map[string]string{}, "commonAnnotations": map[string]string{},
		"externalURL": "http://am", "alerts": alerts,
	})
	return b
}

func inputAlert(fp string, labels map[string]string, startsAt, endsAt, status string) map[string]any {
	return map[string]any{"status": status, "fingerprint": fp, "labels": labels, "annotations": map[string]string{},
		"startsAt": startsAt, "endsAt": endsAt}
}

// Metacharacters of SQL, templates, HTML, JSON and shells, and some
// awkward Unicode: stored and shown verbatim.
var nasty = []string{
	`'; DROP TABLE incidents; --`,
	`" OR 1=1 --`,
	`{{ .Secret }}{{ template "x" }}`,
	`${jndi:ldap://x}`,
	`<script>alert(1)</script>`,
	`\x00\\n\\"`,
	"tab\tnewline\nnull\x00end",
	"éè 漢字 🚨 \u202e",
	`%s %d %!`,
	"`backtick` $(rm -rf /)",
}

// TestBadInputNeverHurts sends, end to end through the router, the
// webhook and the real ClickHouse, the inputs the issue lists: huge and
// odd notifications are taken, invalid ones refused with a 4xx that says
// why, odd strings come back verbatim, and path tricks find nothing.
func TestBadInputNeverHurts(t *testing.T) {
	n := startNines(t, chtest.Database(t))
	start := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	post := func(body []byte) (int, []byte) {
		req, _ := http.NewRequest("POST", n.base+"/api/v1/alerts", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+webhookToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	t.Run("10,000 alerts in one notification", func(t *testing.T) {
		var alerts []map[string]any
		for i := range 10000 {
			alerts = append(alerts, inputAlert(fmt.Sprintf("big%05d", i),
				map[string]string{"alertname": "Big", "service": "bulk", "instance": fmt.Sprint(i)}, start, "0001-01-01T00:00:00Z", "firing"))
		}
		if code, b := post(webhookNote(`{}:{alertname="Big"}`, alerts...)); code != 200 {
			t.Fatalf("%d %.300s", code, b)
		}
		incs := listService(t, n, "bulk")
		if len(incs) != 1 || incs[0].AlertCount != 10000 {
			t.Errorf("incidents %+v, want one with 10000 alerts", incs)
		}
	})
	t.Run("1,000 labels and huge values", func(t *testing.T) {
		labels := map[string]string{"alertname": "Wide", "service": "wide", "huge": strings.Repeat("h", 1<<20)}
		for i := range 1000 {
			labels[fmt.Sprintf("label_%04d", i)] = fmt.Sprint(i)
		}
		if code, b := post(webhookNote(`{}:{alertname="Wide"}`, inputAlert("wide", labels, start, "0001-01-01T00:00:00Z", "firing"))); code != 200 {
			t.Fatalf("%d %.300s", code, b)
		}
		incs := listService(t, n, "wide")
		if len(incs) != 1 {
			t.Fatalf("incidents %+v", incs)
		}
		got := getIncident(t, n, incs[0].ID)
		if l := got.Alerts[0].Labels; len(l) != 1003 || l["huge"] != labels["huge"] {
			t.Errorf("labels came back with %d entries, huge value %d bytes", len(l), len(l["huge"]))
		}
	})
	t.Run("refused with a reason", func(t *testing.T) {
		tests := []struct {
			name   string
			alert  map[string]any
			reason string
		}{
			{"start in year 1", inputAlert("x", map[string]string{"a": "b"}, "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "firing"), "startsAt"},
			{"start in year 3000", inputAlert("x", map[string]string{"a": "b"}, "3000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "firing"), "startsAt"},
			{"start in 1969", inputAlert("x", map[string]string{"a": "b"}, "1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "firing"), "startsAt"},
			{"end before start", inputAlert("x", map[string]string{"a": "b"}, start, "2000-01-01T00:00:00Z", "resolved"), "before startsAt"},
			{"end in year 9999", inputAlert("x", map[string]string{"a": "b"}, start, "9999-01-01T00:00:00Z", "resolved"), "endsAt"},
			{"not a time", inputAlert("x", map[string]string{"a": "b"}, "yesterday", "0001-01-01T00:00:00Z", "firing"), "invalid"},
		}
		for _, tc := range tests {
			code, b := post(webhookNote("g", tc.alert))
			if code != http.StatusBadRequest || !strings.Contains(string(b), tc.reason) {
				t.Errorf("%s: %d %s, want 400 naming %q", tc.name, code, b, tc.reason)
			}
		}
	})
	t.Run("an alert the store cannot hold is refused, the others stored", func(t *testing.T) {
		code, b := post(webhookNote("partly", inputAlert("ok", map[string]string{"alertname": "Partly", "service": "partly"}, start, "0001-01-01T00:00:00Z", "firing"),
			inputAlert("late", map[string]string{"alertname": "Partly", "service": "partly"}, "2150-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "firing"),
			inputAlert("last", map[string]string{"alertname": "Partly", "service": "partly"}, "2106-02-07T06:28:15Z", "0001-01-01T00:00:00Z", "firing")))
		if code != 200 || !strings.Contains(string(b), `"field":"alerts[1].startsAt"`) {
			t.Fatalf("%d %s, want 200 naming alerts[1].startsAt", code, b)
		}
		incs := listService(t, n, "partly")
		if len(incs) != 1 {
			t.Fatalf("incidents %+v, want one", incs)
		}
		if got := getIncident(t, n, incs[0].ID); len(got.Alerts) != 2 {
			t.Errorf("alerts %+v, want ok and last", got.Alerts)
		}
	})
	t.Run("time filters out of range are refused, not wrapped around", func(t *testing.T) {
		n.sync()
		tests := []struct{ query, param string }{
			{"until=1969-01-01T00:00:00Z", "until"},
			{"since=1969-01-01T00:00:00Z", "since"},
			{"since=2107-01-01T00:00:00Z", "since"},
			{"until=9999-12-31T23:59:59Z", "until"},
		}
		for _, tc := range tests {
			resp, err := http.Get(n.base + "/api/v1/incidents?" + tc.query)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var v struct{ Error string }
			if resp.StatusCode != 400 || json.Unmarshal(b, &v) != nil || !strings.Contains(v.Error, tc.param+":") {
				t.Errorf("%s: %d %.200s, want 400 naming %s", tc.query, resp.StatusCode, b, tc.param)
			}
		}
		if code, b := post(webhookNote("filtered", inputAlert("filtered", map[string]string{"alertname": "F", "service": "filtered"}, start, "0001-01-01T00:00:00Z", "firing"))); code != 200 {
			t.Fatalf("%d %s", code, b)
		}
		n.sync()
		resp, err := http.Get(n.base + "/api/v1/incidents?since=1970-01-01T00:00:00Z&until=2106-02-07T06:28:15Z&service=filtered")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"service":"filtered"`) {
			t.Errorf("the whole range: %d %.300s, want the incident of service filtered", resp.StatusCode, b)
		}
	})
	t.Run("metacharacters stored and shown verbatim", func(t *testing.T) {
		for i, s := range nasty {
			labels := map[string]string{"alertname": s, "service": "meta " + s, "value": s}
			if code, b := post(webhookNote("meta:"+s, inputAlert(fmt.Sprintf("meta%02d", i), labels, start, "0001-01-01T00:00:00Z", "firing"))); code != 200 {
				t.Fatalf("%q: %d %s", s, code, b)
			}
			incs := listService(t, n, "meta "+s)
			if len(incs) != 1 {
				t.Errorf("service %q: %d incidents", "meta "+s, len(incs))
				continue
			}
			got := getIncident(t, n, incs[0].ID)
			if got.Service != "meta "+s || got.GroupKey != "meta:"+s || got.Title != s || got.Alerts[0].Labels["value"] != s {
				t.Errorf("%q came back as service %q, key %q, title %q, label %q", s, got.Service, got.GroupKey, got.Title, got.Alerts[0].Labels["value"])
			}
		}
	})
	t.Run("unknown IDs and path tricks", func(t *testing.T) {
		paths := []string{
			"/api/v1/incidents/inc-00000000000000000000",
			"/api/v1/incidents/inc-ZZZZZZZZZZZZZZZZZZZZ",
			"/api/v1/incidents/../../metrics",
			"/api/v1/incidents/%2e%2e",
			"/api/v1/incidents/%2e%2e%2f%2e%2e%2fmetrics",
			"/api/v1/incidents/..%2f..%2fmetrics",
			"/api/v1/incidents/inc-00000000000000000000%00",
			"/api/v1/incidents/" + strings.Repeat("a", 8000),
			"/api/v1/incidents/inc-00000000000000000000/../../../-/ready",
			"/api/v1/incidents//inc-00000000000000000000",
		}
		for _, p := range paths {
			for _, m := range []string{"GET", "POST"} {
				req, err := http.NewRequest(m, n.base+p, strings.NewReader(`{}`))
				if err != nil {
					t.Fatal(err)
				}
				req.URL.Opaque = p // send the path as written, not cleaned
				req.Header.Set("Authorization", "Bearer "+n.apiToken)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", m, p, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var v map[string]any
				if resp.StatusCode/100 != 4 || json.Unmarshal(b, &v) != nil || v["error"] == nil {
					t.Errorf("%s %.80s: %d %.200s, want a 4xx JSON error", m, p, resp.StatusCode, b)
				}
			}
		}
	})
}

type apiIncident struct {
	ID         string            `json:"id"`
	Service    string            `json:"service"`
	GroupKey   string            `json:"group_key"`
	Title      string            `json:"title"`
	Impact     string            `json:"impact"`
	Labels     map[string]string `json:"labels"`
	AlertCount int               `json:"-"`
	Alerts     []struct {
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

func listService(t *testing.T, n *nines, service string) []apiIncident {
	t.Helper()
	n.sync()
	req, _ := http.NewRequest("GET", n.base+"/api/v1/incidents", nil)
	q := req.URL.Query()
	q.Set("service", service)
	req.URL.RawQuery = q.Encode()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Incidents []apiIncident `json:"incidents"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	for i := range page.Incidents {
		page.Incidents[i].AlertCount = len(page.Incidents[i].Alerts)
	}
	return page.Incidents
}

func getIncident(t *testing.T, n *nines, id string) apiIncident {
	t.Helper()
	code, b := n.do("GET", "/api/v1/incidents/"+id, "", nil)
	if code != 200 {
		t.Fatalf("get %s: %d %s", id, code, b)
	}
	var inc apiIncident
	if err := json.Unmarshal(b, &inc); err != nil {
		t.Fatal(err)
	}
	return inc
}
