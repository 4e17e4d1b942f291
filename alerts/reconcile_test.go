package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/ninesops/nines/incidents"
)

// fakeAM serves the parts of Alertmanager's v2 API the reconciler reads.
type fakeAM struct {
	mu       sync.Mutex
	uptime   time.Time
	alerts   []amAlert
	groups   []amGroup
	fail     bool
	queries  []string
	received http.Header
}

func (f *fakeAM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, r.URL.Path+"?"+r.URL.RawQuery)
	f.received = r.Header.Clone()
	if f.fail {
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	}
	var v any
	switch r.URL.Path {
	case "/am/api/v2/status":
		v = map[string]any{"uptime": f.uptime}
	case "/am/api/v2/alerts":
		v = f.alerts
	case "/am/api/v2/alerts/groups":
		v = f.groups
	default:
		http.NotFound(w, r)
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeAM) set(alerts ...amAlert) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.alerts = alerts
}

// fakeIncidents is the incident side: open incidents, stale resolves and
// the intake.
type fakeIncidents struct {
	mu       sync.Mutex
	open     []*incidents.Incident
	resolved map[string]map[string]time.Time
	ingested []incidents.Notification
}

func (f *fakeIncidents) OpenIncidentsFromAlerts(context.Context) ([]*incidents.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.open, nil
}

func (f *fakeIncidents) ResolveStale(_ context.Context, id string, ends map[string]time.Time, actor string) (*incidents.Incident, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if actor != incidents.ActorReconciler {
		return nil, fmt.Errorf("actor %q", actor)
	}
	if f.resolved == nil {
		f.resolved = map[string]map[string]time.Time{}
	}
	f.resolved[id] = ends
	return &incidents.Incident{ID: id, State: incidents.StateResolved}, nil
}

func (f *fakeIncidents) Ingest(_ context.Context, n incidents.Notification) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ingested = append(f.ingested, n)
	return nil
}

var r0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func amActive(fp string, start, endsAt time.Time, state string) amAlert {
	a := amAlert{
		Fingerprint: fp, StartsAt: start, EndsAt: endsAt,
		Labels:      map[string]string{"alertname": "Down", "service": "api", "fp": fp},
		Annotations: map[string]string{"summary": "API down"},
	}
	a.Receivers = append(a.Receivers, struct {
		Name string `json:"name"`
	}{"nines"})
	a.Status.State = state
	return a
}

func openIncident(id string, alerts ...incidents.Alert) *incidents.Incident {
	return &incidents.Incident{ID: id, Source: incidents.SourceAlertmanager, State: incidents.StateFiring, Alerts: alerts}
}

func firingAlert(fp string, start time.Time) incidents.Alert {
	return incidents.Alert{Fingerprint: fp, Status: incidents.AlertFiring, StartsAt: start}
}

type rig struct {
	am   *fakeAM
	inc  *fakeIncidents
	rec  *Reconciler
	now  time.Time
	srv  *httptest.Server
	test *testing.T
}

func newRig(t *testing.T, configure ...func(*ReconcilerOptions)) *rig {
	t.Helper()
	g := &rig{am: &fakeAM{uptime: r0.Add(-time.Hour)}, inc: &fakeIncidents{}, now: r0, test: t}
	g.srv = httptest.NewServer(g.am)
	t.Cleanup(g.srv.Close)
	o := ReconcilerOptions{
		URL: g.srv.URL + "/am/", Grace: 5 * time.Minute,
		Ingester: g.inc, Incidents: g.inc, Resolver: g.inc,
		Now: func() time.Time { return g.now },
	}
	for _, c := range configure {
		c(&o)
	}
	rec, err := NewReconciler(o)
	if err != nil {
		t.Fatal(err)
	}
	g.rec = rec
	return g
}

// at runs one comparison at r0+d.
func (g *rig) at(d time.Duration) ReconcileResult {
	g.test.Helper()
	g.now = r0.Add(d)
	res, err := g.rec.Reconcile(context.Background())
	if err != nil {
		g.test.Fatalf("reconcile at +%s: %v", d, err)
	}
	return res
}

func TestReconcileResolvesStaleAlerts(t *testing.T) {
	start := r0.Add(-time.Hour)
	a1 := firingAlert("a1", start)
	a2 := firingAlert("a2", start)
	tests := []struct {
		name string
		// steps: what Alertmanager reports at +0, then at each later
		// comparison (every 3 minutes), nothing.
		first    []amAlert
		open     *incidents.Incident
		wantEnds map[string]time.Time
		uptime   time.Time
	}{
		{"expired at its endsAt", []amAlert{amActive("a1", start, r0.Add(2*time.Minute), "active")},
			openIncident("i1", a1), map[string]time.Time{a1.Key(): r0.Add(2 * time.Minute)}, time.Time{}},
		{"resolved before its endsAt: last seen active", []amAlert{amActive("a1", start, r0.Add(time.Hour), "active")},
			openIncident("i1", a1), map[string]time.Time{a1.Key(): r0}, time.Time{}},
		{"never seen: when it was noticed missing", nil,
			openIncident("i1", a1), map[string]time.Time{a1.Key(): r0}, time.Time{}},
		{"one of two", []amAlert{amActive("a1", start, r0.Add(time.Hour), "active"), amActive("a2", start, r0.Add(time.Hour), "suppressed")},
			openIncident("i1", a1, a2), map[string]time.Time{a1.Key(): r0}, time.Time{}},
		{"Alertmanager just restarted: nothing", nil,
			openIncident("i1", a1), nil, r0.Add(8 * time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t)
			if !tc.uptime.IsZero() {
				g.am.uptime = tc.uptime
			}
			g.inc.open = []*incidents.Incident{tc.open}
			g.am.set(tc.first...)
			g.at(0)
			if tc.name == "one of two" {
				g.am.set(tc.first[1]) // a2 stays (silenced, still active)
			} else {
				g.am.set()
			}
			g.at(3 * time.Minute) // missing, within grace: nothing yet
			if len(g.inc.resolved) != 0 {
				t.Fatalf("resolved within the grace period: %v", g.inc.resolved)
			}
			g.at(9 * time.Minute)
			got := g.inc.resolved["i1"]
			if fmt.Sprint(got) != fmt.Sprint(tc.wantEnds) {
				t.Errorf("resolved %v, want %v", got, tc.wantEnds)
			}
		})
	}
}

func TestReconcileSettlesIncidentWithoutFiringAlerts(t *testing.T) {
	g := newRig(t)
	inc := openIncident("i1", incidents.Alert{Fingerprint: "a1", Status: incidents.AlertResolved, StartsAt: r0, EndsAt: r0.Add(time.Minute)})
	g.inc.open = []*incidents.Incident{inc}
	g.at(0)
	if ends, ok := g.inc.resolved["i1"]; !ok || len(ends) != 0 {
		t.Errorf("resolved %v, want a settle of i1", g.inc.resolved)
	}
}

func TestReconcileOpensUnheldAlerts(t *testing.T) {
	start := r0.Add(-10 * time.Minute)
	firing := amActive("a1", start, r0.Add(time.Hour), "active")
	held := amActive("a2", start, r0.Add(time.Hour), "active")
	silenced := amActive("a3", start, r0.Add(time.Hour), "suppressed")
	silenced.Labels["alertname"] = "Quiet"
	tests := []struct {
		name     string
		routeKey string
		wantKey  string
	}{
		{"root route", "", `{}:{alertname="Down", service="api"}`},
		{"child route", `{}/{team="sre"}`, `{}/{team="sre"}:{alertname="Down", service="api"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newRig(t, func(o *ReconcilerOptions) { o.RouteKey = tc.routeKey })
			g.inc.open = []*incidents.Incident{openIncident("i2", firingAlert("a2", start))}
			g.am.set(firing, held, silenced)
			g.am.groups = []amGroup{
				{Labels: map[string]string{"alertname": "Down", "service": "api"}, Alerts: []amAlert{firing, held}},
			}
			g.am.groups[0].Receiver.Name = "nines"
			if res := g.at(0); res.Opened != 0 || len(g.inc.ingested) != 0 {
				t.Fatalf("opened %d at once; want to leave Alertmanager the grace period", res.Opened)
			}
			res := g.at(6 * time.Minute)
			if res.Opened != 1 || len(g.inc.ingested) != 1 {
				t.Fatalf("opened %d, ingested %d; want 1 (a1 only: a2 is held, a3 silenced)", res.Opened, len(g.inc.ingested))
			}
			n := g.inc.ingested[0]
			if n.GroupKey != tc.wantKey || n.Receiver != "nines" || n.Status != incidents.AlertFiring || len(n.Alerts) != 2 {
				t.Errorf("notification %+v", n)
			}
			if n.CommonLabels["alertname"] != "Down" || n.CommonLabels["fp"] != "" {
				t.Errorf("common labels %v", n.CommonLabels)
			}
		})
	}
}

// TestLabelSetStringMatchesAlertmanager checks group keys against what
// Alertmanager 0.25 sent in the shared fixtures.
func TestLabelSetStringMatchesAlertmanager(t *testing.T) {
	for _, name := range fixtureNames() {
		var m message
		if err := json.Unmarshal(readFixture(t, name), &m); err != nil {
			t.Fatal(err)
		}
		if got := "{}:" + labelSetString(m.GroupLabels); got != m.GroupKey {
			t.Errorf("%s: %s, want %s", name, got, m.GroupKey)
		}
	}
	if got := labelSetString(map[string]string{"b": `x"y`, "a": "é\n"}); got != `{a="é\n", b="x\"y"}` {
		t.Errorf("quoting: %s", got)
	}
}

func TestReconcileAPIFailure(t *testing.T) {
	g := newRig(t, func(o *ReconcilerOptions) { o.BearerToken = "am-token" })
	g.inc.open = []*incidents.Incident{openIncident("i1", firingAlert("a1", r0))}
	g.am.fail = true
	for _, d := range []time.Duration{0, 10 * time.Minute} {
		g.now = r0.Add(d)
		if _, err := g.rec.Reconcile(context.Background()); err == nil {
			t.Fatal("no error from a failing Alertmanager")
		}
	}
	if len(g.inc.resolved) != 0 {
		t.Errorf("resolved %v while Alertmanager failed", g.inc.resolved)
	}
	if got := g.am.received.Get("Authorization"); got != "Bearer am-token" {
		t.Errorf("Authorization %q", got)
	}
	if q := g.am.queries[0]; !regexp.MustCompile(`^/am/api/v2/status\?$`).MatchString(q) {
		t.Errorf("first query %s", q)
	}
}

func TestReconcilerOptions(t *testing.T) {
	inc := &fakeIncidents{}
	tests := []struct {
		name string
		o    ReconcilerOptions
	}{
		{"no url", ReconcilerOptions{Ingester: inc, Incidents: inc, Resolver: inc}},
		{"bad url", ReconcilerOptions{URL: "ftp://x", Ingester: inc, Incidents: inc, Resolver: inc}},
		{"no parts", ReconcilerOptions{URL: "http://am:9093"}},
		{"bad receiver", ReconcilerOptions{URL: "http://am:9093", Receiver: "(", Ingester: inc, Incidents: inc, Resolver: inc}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewReconciler(tc.o); err == nil {
				t.Error("accepted")
			}
		})
	}
	_, err := NewReconciler(ReconcilerOptions{URL: "http://user:hunter2@am:9093%zz", Ingester: inc, Incidents: inc, Resolver: inc})
	if err == nil || regexp.MustCompile("hunter2").MatchString(err.Error()) {
		t.Errorf("err = %v; want an error without the password", err)
	}
}
