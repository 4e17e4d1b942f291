package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/dashboards"
	"github.com/ninesops/nines/incidents"
)

// TestNotDowntimeOnEverySurface is issue 15's mark, end to end on the
// test ClickHouse: an outage alert fires 12:00–12:20, someone marks
// 12:05–12:10 as not downtime (a false positive) through the API. The
// API refuses a mark without a reason or with from ≥ to, and one on an
// unknown incident; the mark is on the incident and its timeline with its
// actor and reason; the API, `nines report` and the overview dashboard's
// SQL all show 15 minutes of downtime, and the explanation lists the mark
// with the 5 minutes it removed.
func TestNotDowntimeOnEverySurface(t *testing.T) {
	ctx := context.Background()
	dsn := chtest.Database(t)
	store := chtest.Open(t, dsn)
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	now := at(12, 0)
	svc, err := incidents.NewService(incidents.Options{Store: store, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	notify := func(end time.Time) {
		t.Helper()
		a := incidents.Alert{
			Fingerprint: "fp", Status: incidents.AlertFiring, StartsAt: at(12, 0),
			Labels: map[string]string{"alertname": "ProbeFailing", "service": "api", "severity": "critical"},
		}
		if !end.IsZero() {
			a.Status, a.EndsAt = incidents.AlertResolved, end
		}
		n := incidents.Notification{Receiver: "nines", Status: a.Status, GroupKey: "g", Alerts: []incidents.Alert{a}, ReceivedAt: now}
		if err := svc.Ingest(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	notify(time.Time{})
	list, _, err := store.List(ctx, incidents.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("incidents %+v, %v", list, err)
	}
	id := list[0].ID

	cat, err := catalog.Parse([]byte("defaults:\n  slo_target: 99.5\nservices:\n  - name: api\n    owner: team-a\n"), "catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	figures, err := availability.New(availability.Options{
		Source: store, Catalog: func() *catalog.Catalog { return cat }, Now: func() time.Time { return at(14, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	incAPI := incidents.NewAPI(svc, store, slog.New(slog.DiscardHandler))
	availAPI := availability.NewAPI(figures, slog.New(slog.DiscardHandler))
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/incidents/{id}/not-downtime", incAPI.NotDowntime)
	mux.HandleFunc("POST /api/v1/incidents/{id}/not-downtime/withdraw", incAPI.WithdrawNotDowntime)
	mux.HandleFunc("GET /api/v1/availability", availAPI.Availability)
	mux.HandleFunc("GET /api/v1/services/{name}/availability", availAPI.ServiceAvailability)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	post := func(id, body string) (int, []byte) {
		t.Helper()
		resp, err := http.Post(srv.URL+"/api/v1/incidents/"+id+"/not-downtime", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}

	now = at(12, 12)
	for _, tc := range []struct {
		name, id, body string
		status         int
		says           string
	}{
		{"no reason", id, `{"from":"2026-11-22T12:05:00Z","to":"2026-11-22T12:10:00Z","actor":"alice"}`, 400, "reason"},
		{"from after to", id, `{"from":"2026-11-22T12:10:00Z","to":"2026-11-22T12:05:00Z","reason":"x"}`, 400, "from must be before to"},
		{"from equal to", id, `{"from":"2026-11-22T12:10:00Z","to":"2026-11-22T12:10:00Z","reason":"x"}`, 400, "from must be before to"},
		{"unknown incident", "inc-00000000000000000000", `{"reason":"x"}`, 404, ""},
	} {
		code, b := post(tc.id, tc.body)
		var e struct {
			Error string `json:"error"`
		}
		if code != tc.status || json.Unmarshal(b, &e) != nil || e.Error == "" || !strings.Contains(e.Error, tc.says) {
			t.Errorf("%s: %d %s, want %d with an error naming %q", tc.name, code, b, tc.status, tc.says)
		}
	}
	code, b := post(id, `{"from":"2026-11-22T12:05:00Z","to":"2026-11-22T12:10:00Z","reason":"false positive: the probe's DNS broke","actor":"alice"}`)
	var inc incidents.IncidentJSON
	if code != http.StatusOK || json.Unmarshal(b, &inc) != nil {
		t.Fatalf("mark: %d %s", code, b)
	}
	if len(inc.NotDowntime) != 1 || inc.NotDowntime[0].By != "alice" || !inc.NotDowntime[0].From.Equal(at(12, 5)) ||
		inc.NotDowntime[0].To == nil || !inc.NotDowntime[0].To.Equal(at(12, 10)) {
		t.Errorf("answered not_downtime %s, want 12:05–12:10 by alice", b)
	}
	now = at(12, 20)
	notify(at(12, 20)) // the alert resolves: derived again, the mark stays

	tl, err := store.Timeline(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var entry *incidents.Event
	for i := range tl {
		if tl[i].Kind == incidents.EventNotDowntime {
			entry = &tl[i]
		}
	}
	if entry == nil || entry.Actor != "alice" || !strings.Contains(entry.Text, "the probe's DNS broke") {
		t.Errorf("timeline %+v: want a not_downtime entry by alice with the reason", tl)
	}
	stored, err := store.Get(ctx, id)
	if err != nil || len(stored.Excluded) != 1 || stored.State != incidents.StateResolved {
		t.Fatalf("stored %+v (%v): want resolved, with the mark", stored, err)
	}

	const from, to, want = "2026-11-22T11:00:00Z", "2026-11-22T14:00:00Z", 15 * 60.
	near := func(surface string, got float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-9 {
			t.Errorf("%s: downtime %v s, want %v s (20 minutes of outage less the 5 marked)", surface, got, want)
		}
	}

	// The API, with its explanation.
	resp, err := http.Get(srv.URL + "/api/v1/services/api/availability?from=" + from + "&to=" + to + "&explain=1")
	if err != nil {
		t.Fatal(err)
	}
	var f availability.Figure
	err = json.NewDecoder(resp.Body).Decode(&f)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	near("API", f.DowntimeSeconds)
	if f.Incidents != 1 || f.MTTRSeconds == nil || *f.MTTRSeconds != 20*60 {
		t.Errorf("incidents %d, MTTR %v: want 1 incident recovered in 20 minutes (the mark is not about response)", f.Incidents, f.MTTRSeconds)
	}
	if len(f.NotDowntime) != 1 {
		t.Fatalf("explanation %+v, want the mark", f.NotDowntime)
	}
	if n := f.NotDowntime[0]; n.IncidentID != id || n.By != "alice" || n.Reason != "false positive: the probe's DNS broke" ||
		!n.From.Equal(at(12, 5)) || n.To == nil || !n.To.Equal(at(12, 10)) || n.RemovedSeconds != 300 {
		t.Errorf("explanation %+v, want %s 12:05–12:10 by alice with the reason, 300 s removed", n, id)
	}

	// nines report, as a client of the server: its JSON, and its table
	// with --explain.
	var out, stderr bytes.Buffer
	if err := run(ctx, []string{"report", "--server.url", srv.URL, "--from", from, "--to", to, "--format", "json"}, &out, &stderr, nil); err != nil {
		t.Fatalf("report: %v (%s)", err, stderr.String())
	}
	var rep availability.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Services) != 1 {
		t.Fatalf("report %s: %v", out.String(), err)
	}
	near("report", rep.Services[0].DowntimeSeconds)
	out.Reset()
	if err := run(ctx, []string{"report", "--server.url", srv.URL, "--from", from, "--to", to, "--explain"}, &out, &stderr, nil); err != nil {
		t.Fatalf("report: %v (%s)", err, stderr.String())
	}
	if line := "not downtime: " + id + " from 2026-11-22T12:05:00Z to 2026-11-22T12:10:00Z, marked by alice (false positive: the probe's DNS broke): 5m removed"; !strings.Contains(out.String(), line) {
		t.Errorf("report --explain:\n%s\nwant the line %q", out.String(), line)
	}

	// The overview dashboard's availability table: its SQL on ClickHouse.
	ds, err := dashboards.Generate(cat, dashboards.Options{Queries: chstore.DashboardQueries{}, Now: at(14, 0)})
	if err != nil {
		t.Fatal(err)
	}
	sql := overviewTableSQL(t, ds[0])
	sql = strings.NewReplacer(
		"${service:singlequote}", "'api'",
		"$__fromTime", fmt.Sprintf("toDateTime(%d)", at(11, 0).Unix()),
		"$__toTime", fmt.Sprintf("toDateTime(%d)", at(14, 0).Unix()),
	).Replace(sql)
	rows := overviewRows(t, dsn, sql)
	if len(rows) != 1 {
		t.Fatalf("dashboard rows %d: want api's", len(rows))
	}
	near("dashboard", rows[0].down)

	// Withdrawn: the 20 minutes count again, and nothing is explained away.
	body := fmt.Sprintf(`{"marked_at":%q,"reason":"the probe was right","actor":"bob"}`, inc.NotDowntime[0].At.Format(time.RFC3339Nano))
	resp, err = http.Post(srv.URL+"/api/v1/incidents/"+id+"/not-downtime/withdraw", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"not_downtime":[]`) {
		t.Fatalf("withdraw: %d %s", resp.StatusCode, b)
	}
	resp, err = http.Get(srv.URL + "/api/v1/services/api/availability?from=" + from + "&to=" + to + "&explain=1")
	if err != nil {
		t.Fatal(err)
	}
	f = availability.Figure{}
	err = json.NewDecoder(resp.Body).Decode(&f)
	resp.Body.Close()
	if err != nil || f.DowntimeSeconds != 20*60 || len(f.NotDowntime) != 0 {
		t.Errorf("after the withdrawal: downtime %v s, explained %+v (%v): want 1200 s, nothing", f.DowntimeSeconds, f.NotDowntime, err)
	}
}
