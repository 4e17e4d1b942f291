package availability

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/catalog"
)

// fakeSource answers with canned sums and records the queries.
type fakeSource struct {
	raws    []Raw
	days    []RawDay
	seen    []string
	queries []Query
	daily   []DailyQuery
}

func (f *fakeSource) Downtime(_ context.Context, q Query) ([]Raw, error) {
	f.queries = append(f.queries, q)
	var out []Raw
	for _, r := range f.raws {
		if q.Services == nil || slices.Contains(q.Services, r.Service) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeSource) Daily(_ context.Context, q DailyQuery) ([]RawDay, error) {
	f.daily = append(f.daily, q)
	return f.days, nil
}

func (f *fakeSource) SeenServices(context.Context) ([]string, error) { return f.seen, nil }

func newTestAPI(t *testing.T) (*API, *fakeSource, *http.ServeMux) {
	t.Helper()
	cat, err := catalog.Parse([]byte(`
defaults:
  timezone: Europe/Stockholm
services:
  - name: checkout
    owner: payments
    slo_target: 99.95
    dependencies: [search]
  - name: search
    owner: discovery
`), "catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{
		seen: []string{"checkout", "legacy"},
		raws: []Raw{
			{Service: "checkout", Downtime: 864, Incidents: 2, Recent: []float64{0, 0}},
			{Service: "legacy", Downtime: 86.4, Incidents: 1, Recent: []float64{0, 0}},
		},
		days: []RawDay{{Index: 1, Downtime: 3600, Incidents: 1}},
	}
	svc, err := New(Options{
		Source: src, Catalog: func() *catalog.Catalog { return cat },
		Now: func() time.Time { return time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	api := NewAPI(svc, nil)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/availability", api.Availability)
	mux.HandleFunc("GET /api/v1/services", api.Services)
	mux.HandleFunc("GET /api/v1/services/{name}", api.Service)
	mux.HandleFunc("GET /api/v1/services/{name}/availability", api.ServiceAvailability)
	mux.HandleFunc("GET /api/v1/services/{name}/daily", api.Daily)
	return api, src, mux
}

func get(t *testing.T, h http.Handler, url string) (int, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, url, nil))
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("GET %s: %d %q: %v", url, rec.Code, rec.Body.String(), err)
	}
	return rec.Code, body
}

func TestAvailabilityHTTPErrors(t *testing.T) {
	t.Parallel()
	_, _, mux := newTestAPI(t)
	tests := []struct {
		url    string
		status int
		want   string
	}{
		{"/api/v1/availability?window=5x", 400, `window: unknown window "5x"`},
		{"/api/v1/availability?from=2026-11-02&to=2026-11-01", 400, "from must be before to"},
		{"/api/v1/availability?from=yesterday&to=2026-11-01", 400, "from: want an RFC 3339 time or a date"},
		{"/api/v1/availability?to=2026-11-01", 400, "from: required with to"},
		{"/api/v1/availability?window=30d&from=2026-11-01", 400, "window: give either window or from and to"},
		{"/api/v1/availability?explain=maybe", 400, "explain: want 1 or 0"},
		{"/api/v1/services/nope", 404, `service "nope"`},
		{"/api/v1/services/nope/availability?window=30d", 404, `service "nope"`},
		{"/api/v1/services/checkout/availability?window=previous-fortnight", 400, "window: unknown window"},
		{"/api/v1/services/checkout/daily?from=2026-13-01", 400, "from: want a date like 2026-11-22"},
		{"/api/v1/services/checkout/daily?from=2026-11-03&to=2026-11-01", 400, "from must not be after to"},
		{"/api/v1/services/checkout/daily?from=2020-01-01&to=2026-11-01", 400, "to: at most 1000 days"},
		{"/api/v1/services/nope/daily", 404, `service "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel()
			status, body := get(t, mux, tc.url)
			if status != tc.status || !strings.Contains(body["error"].(string), tc.want) {
				t.Errorf("GET %s = %d %v, want %d and an error containing %q", tc.url, status, body, tc.status, tc.want)
			}
		})
	}
}

func TestAvailabilityHTTP(t *testing.T) {
	t.Parallel()
	_, src, mux := newTestAPI(t)

	status, body := get(t, mux, "/api/v1/availability?window=24h&explain=1")
	if status != 200 || body["window"] != "24h" {
		t.Fatalf("availability: %d %v", status, body)
	}
	var names []string
	for _, f := range body["services"].([]any) {
		names = append(names, f.(map[string]any)["service"].(string))
	}
	if !slices.Equal(names, []string{"checkout", "legacy", "search"}) {
		t.Errorf("services %v, want worst first with the uncatalogued one", names)
	}
	first := body["services"].([]any)[0].(map[string]any)
	if first["availability"].(float64) != 0.99 || first["owner"] != "payments" || first["mtta_seconds"] != nil {
		t.Errorf("checkout figure %v", first)
	}
	if q := src.queries[len(src.queries)-1]; !q.Explain || q.Services != nil || q.To.Sub(q.From) != 24*time.Hour {
		t.Errorf("query %+v", q)
	}

	status, body = get(t, mux, "/api/v1/availability?from=2026-11-01&to=2026-11-02")
	if status != 200 || body["from"] != "2026-10-31T23:00:00Z" {
		t.Errorf("dates are midnight in the catalog's time zone: %d %v", status, body)
	}

	status, body = get(t, mux, "/api/v1/services")
	if status != 200 || len(body["services"].([]any)) != 3 {
		t.Errorf("services: %d %v", status, body)
	}

	status, body = get(t, mux, "/api/v1/services/checkout")
	if status != 200 || body["owner"] != "payments" || len(body["figures"].([]any)) != 4 {
		t.Errorf("service: %d %v", status, body)
	}

	status, body = get(t, mux, "/api/v1/services/legacy/availability?window=month")
	if status != 200 || body["catalogued"] != false || body["slo_target"] != 0.999 || body["window"] != "month" {
		t.Errorf("uncatalogued: %d %v", status, body)
	}

	status, body = get(t, mux, "/api/v1/services/checkout/daily?from=2026-03-28&to=2026-03-30")
	days, _ := body["days"].([]any)
	if status != 200 || len(days) != 3 || body["timezone"] != "Europe/Stockholm" {
		t.Fatalf("daily: %d %v", status, body)
	}
	dst := days[1].(map[string]any)
	if dst["date"] != "2026-03-29" || dst["window_seconds"] != 82800.0 || dst["downtime_seconds"] != 3600.0 {
		t.Errorf("DST day %v", dst)
	}
	dq := src.daily[len(src.daily)-1]
	if len(dq.Days) != 3 || dq.Days[1].Duration() != 23*time.Hour || dq.Service != "checkout" {
		t.Errorf("daily query %+v", dq)
	}
}
