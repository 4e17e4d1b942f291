package web

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/incidents"
)

const testToken = "t0ken-for-tests"

var t0 = time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)

// scenarioCatalog is the scenario's catalog.
const scenarioCatalog = `
squads:
  - {name: storage, channel: "#storage"}
  - {name: payments, channel: "#payments"}
services:
  - {name: db, owner: storage, tier: 1, slo_target: 99.9, system: platform}
  - {name: api, owner: payments, tier: 1, slo_target: 99.9, system: shop, dependencies: [db]}
  - {name: web, owner: payments, tier: 2, slo_target: 99.5, system: shop, dependencies: [api]}
`

// scenario: db fails (outage, suspect deploy), api fails because of it
// (linked cascade), and web is degraded right now.
func scenario(t testing.TB) *fake {
	t.Helper()
	cat, err := catalog.Parse([]byte(scenarioCatalog), "catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	f := newFake(t0.Add(48*time.Hour), cat)
	db := &incidents.Incident{ID: "inc-00000000000000000001", Service: "db", Title: "DB primary down", Impact: incidents.ImpactOutage,
		State: incidents.StateResolved, StartedAt: t0, AcknowledgedAt: t0.Add(4 * time.Minute), ResolvedAt: t0.Add(30 * time.Minute),
		Annotations: map[string]string{}, Labels: map[string]string{"alertname": "DBDown", "internal_host": "db-7.corp"},
		ExternalURL: "http://alertmanager.example/#/alerts",
		Alerts: []incidents.Alert{
			{Fingerprint: "a1", Status: incidents.AlertResolved, Impact: incidents.ImpactDegraded, StartsAt: t0, EndsAt: t0.Add(30 * time.Minute), Labels: map[string]string{"alertname": "DBSlow", "internal_host": "db-7.corp"}},
			{Fingerprint: "a2", Status: incidents.AlertResolved, Impact: incidents.ImpactOutage, StartsAt: t0.Add(10 * time.Minute), EndsAt: t0.Add(20 * time.Minute), Labels: map[string]string{"alertname": "DBDown", "internal_host": "db-7.corp"}},
		}}
	api := &incidents.Incident{ID: "inc-00000000000000000002", Service: "api", Title: "API errors", Impact: incidents.ImpactOutage,
		State: incidents.StateResolved, StartedAt: t0.Add(11 * time.Minute), ResolvedAt: t0.Add(21 * time.Minute), CausedBy: db.ID,
		Periods: []incidents.Period{{Start: t0.Add(11 * time.Minute), End: t0.Add(21 * time.Minute)}}}
	web := &incidents.Incident{ID: "inc-00000000000000000003", Service: "web", Title: "Slow pages", Impact: incidents.ImpactDegraded,
		State: incidents.StateFiring, StartedAt: f.now.Add(-time.Hour), Periods: []incidents.Period{{Start: f.now.Add(-time.Hour)}}}
	for _, inc := range []*incidents.Incident{db, api, web} {
		f.add(inc)
	}
	f.index()
	f.timelines[db.ID] = []incidents.Event{
		{At: t0, Kind: incidents.EventOpened, Actor: "alertmanager", Text: "DBSlow fired"},
		{At: t0.Add(4 * time.Minute), Kind: incidents.EventAcknowledged, Actor: "alice"},
	}
	deploy := changes.Change{ID: "c1", Service: "db", Kind: changes.KindDeploy, Version: "v2.0", Status: changes.StatusSucceeded, Rollout: 1, At: t0.Add(-5 * time.Minute)}
	f.changes = []changes.Change{deploy}
	f.suspects[db.ID] = []changes.Suspect{{Change: deploy, SameService: true, BeforeSeconds: 300, Hint: "deployed 5 min before: db v2.0"}}
	return f
}

// mux routes like cmd/nines does, for the tests.
func mux(p *Pages) http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /{$}", p.Overview)
	m.HandleFunc("GET /incidents/{id}", p.Incident)
	m.HandleFunc("GET /incidents/{id}/postmortem", p.Postmortem)
	for _, a := range []string{"ack", "resolve", "notes"} {
		m.HandleFunc("POST /incidents/{id}/"+a, p.Act)
	}
	m.HandleFunc("GET /services/{name}", p.Service)
	m.HandleFunc("GET /squads/{name}", p.Squad)
	m.HandleFunc("GET /status", p.Status)
	m.HandleFunc("GET /api/v1/status", p.StatusJSON)
	m.HandleFunc("GET /api/v1/incidents/{id}/postmortem", p.PostmortemJSON)
	m.HandleFunc("/login", p.SignIn)
	m.HandleFunc("POST /logout", p.SignOut)
	m.HandleFunc("GET /static/", p.Static)
	return m
}

type client struct {
	t   *testing.T
	srv *httptest.Server
	c   *http.Client
}

func newClient(t *testing.T, h http.Handler) *client {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{t: t, srv: srv, c: c}
}

func (c *client) do(method, path string, form url.Values, cookie *http.Cookie) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", c.srv.URL)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestPagesShowWhatPeopleNeed(t *testing.T) {
	// The same with the figures over every service computed per request
	// and kept (as nines serve keeps them).
	for _, keep := range []time.Duration{0, time.Hour} {
		t.Run("kept "+keep.String(), func(t *testing.T) { testPagesShowWhatPeopleNeed(t, keep) })
	}
}

func testPagesShowWhatPeopleNeed(t *testing.T, keep time.Duration) {
	f := scenario(t)
	c := newClient(t, mux(newTestPages(f, Options{APIToken: testToken, RefreshInterval: keep})))
	tests := []struct {
		name, path string
		want       []string
		not        []string
	}{
		{"overview: open incidents, services worst first", "/", []string{"Open incidents (1)", "Slow pages", ">api<", ">db<", "worst first"}, nil},
		{"overview filtered by squad", "/?squad=storage", []string{"Open incidents (0)", ">db<"}, []string{">api<"}},
		{"incident: facts, strip, alerts, timeline, suspects, links", "/incidents/inc-00000000000000000001",
			[]string{"DB primary down", "storage", `role="img"`, "<title id=\"strip-t\">", "outage", "degraded", "DBDown", `internal_host="db-7.corp"`,
				"acknowledged", "alice", "deployed 5 min before: db v2.0", "API errors", "Alertmanager", "Postmortem draft"}, nil},
		{"incident: upstream cause", "/incidents/inc-00000000000000000002", []string{"Caused by upstream incident", "DB primary down"}, nil},
		{"service: catalog, figures, bars, changes", "/services/api", []string{"Service api", "payments", "99.900%", "Depends on", ">db<", "Depended on by", ">web<", "Daily availability", "API errors"}, nil},
		{"service: changes on the axis", "/services/db", []string{"v2.0", "Incidents and changes", "deploy"}, nil},
		// 30 minutes of incident, 10 of them at outage (weight 1), 20 degraded (weight 0).
		{"service: what cost what", "/services/db", []string{"What cost what", `<td><a href="/incidents/inc-00000000000000000001">DB primary down</a></td><td>Outage</td><td>30m</td><td>10m</td>`}, nil},
		{"squad", "/squads/payments", []string{"Squad payments", "#payments", "Slow pages", ">api<", ">web<"}, []string{">db<"}},
		{"status: groups, state, no internals", "/status", []string{"platform", "shop", "Degraded", "Outage of db", "Uptime of shop, last 90 days"},
			[]string{"DB primary down", "db-7.corp", "internal_host"}},
		{"postmortem", "/incidents/inc-00000000000000000001/postmortem", []string{"Postmortem draft", "Downstream services affected", "api", "deployed 5 min before", "Time to acknowledge", "4m", "Causes", "Lessons", "Action items"}, nil},
		{"unknown incident", "/incidents/inc-99999999999999999999", []string{"Not Found"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.do("GET", tc.path, nil, nil)
			if tc.name != "unknown incident" && resp.StatusCode != 200 {
				t.Fatalf("%s: %d\n%s", tc.path, resp.StatusCode, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s lacks %q", tc.path, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(body, n) {
					t.Errorf("%s shows %q", tc.path, n)
				}
			}
			for _, landmark := range []string{"<main", "<nav", "<header", "<h1"} {
				if !strings.Contains(body, landmark) {
					t.Errorf("%s lacks %s", tc.path, landmark)
				}
			}
		})
	}
}

func TestWriteRights(t *testing.T) {
	f := scenario(t)
	c := newClient(t, mux(newTestPages(f, Options{APIToken: testToken})))
	open := "/incidents/inc-00000000000000000003"

	_, body := c.do("GET", open, nil, nil)
	if strings.Contains(body, "<button") || strings.Contains(body, "/ack") || strings.Contains(body, "<textarea") {
		t.Fatal("a page without write rights offers buttons")
	}
	if !strings.Contains(body, "Sign in to act") {
		t.Error("a page without write rights does not say how to get them")
	}
	resp, _ := c.do("POST", open+"/ack", url.Values{"actor": {"mallory"}}, nil)
	if resp.StatusCode != http.StatusForbidden || len(f.acts) != 0 {
		t.Fatalf("ack without rights: %d, acts %v", resp.StatusCode, f.acts)
	}
	forged := &http.Cookie{Name: sessionCookie, Value: testToken}
	if resp, _ := c.do("POST", open+"/resolve", url.Values{}, forged); resp.StatusCode != http.StatusForbidden || len(f.acts) != 0 {
		t.Fatalf("resolve with the token itself as cookie: %d, acts %v", resp.StatusCode, f.acts)
	}
	if resp, _ := c.do("POST", "/login", url.Values{"token": {"wrong"}}, nil); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("sign in with a wrong token: %d %v", resp.StatusCode, resp.Cookies())
	}
	resp, _ = c.do("POST", "/login", url.Values{"token": {testToken}, "next": {open}}, nil)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 || resp.Header.Get("Location") != open {
		t.Fatalf("sign in: %d %v %s", resp.StatusCode, resp.Cookies(), resp.Header.Get("Location"))
	}
	session := resp.Cookies()[0]
	if !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || strings.Contains(session.Value, testToken) {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not the token", session)
	}
	_, body = c.do("GET", open, nil, session)
	for _, w := range []string{">Acknowledge</button>", ">Resolve</button>", ">Add note</button>", ">Sign out</button>"} {
		if !strings.Contains(body, w) {
			t.Errorf("a page with write rights lacks %q", w)
		}
	}
	resp, _ = c.do("POST", open+"/ack", url.Values{"actor": {"bob"}}, session)
	if resp.StatusCode != http.StatusSeeOther || len(f.acts) != 1 || f.acts[0] != "ack inc-00000000000000000003 bob" {
		t.Fatalf("ack with rights: %d, acts %v", resp.StatusCode, f.acts)
	}
	req, _ := http.NewRequest("POST", c.srv.URL+open+"/resolve", strings.NewReader(""))
	req.Header.Set("Origin", "https://evil.example")
	req.AddCookie(session)
	if resp, err := c.c.Do(req); err != nil || resp.StatusCode != http.StatusForbidden || len(f.acts) != 1 {
		t.Fatalf("cross-site resolve: %v %v, acts %v", err, resp, f.acts)
	}
	if resp, _ := c.do("POST", open+"/notes", url.Values{"text": {"looking"}}, session); resp.StatusCode != http.StatusSeeOther || f.acts[1] != "note "+open[len("/incidents/"):]+" web looking" {
		t.Fatalf("note: %d %v", resp.StatusCode, f.acts)
	}
}

func TestPaginationKeepsFilters(t *testing.T) {
	c := newClient(t, mux(newTestPages(scenario(t), Options{PageSize: 1})))
	_, body := c.do("GET", "/?squad=payments", nil, nil)
	if !strings.Contains(body, "Page 1 of 2") || !strings.Contains(body, `href="?squad=payments&amp;page=2"`) {
		t.Errorf("no link to the next page keeping the filters:\n%s", body)
	}
	_, body = c.do("GET", "/?squad=payments&page=2", nil, nil)
	if !strings.Contains(body, "Page 2 of 2") || !strings.Contains(body, `href="?squad=payments&amp;page=1"`) {
		t.Errorf("page 2 of payments' services lacks its position or the link back:\n%s", body)
	}
}

func TestSlackThreadLink(t *testing.T) {
	thread := func(_ context.Context, id string) (string, error) {
		if id == "inc-00000000000000000001" {
			return "https://acme.slack.com/archives/C1/p1700000000000100", nil
		}
		return "", errors.New("chat store down")
	}
	c := newClient(t, mux(newTestPages(scenario(t), Options{SlackThread: thread})))
	if _, body := c.do("GET", "/incidents/inc-00000000000000000001", nil, nil); !strings.Contains(body, `<a href="https://acme.slack.com/archives/C1/p1700000000000100" rel="noopener">Slack thread</a>`) {
		t.Error("no link to the Slack thread")
	}
	if resp, body := c.do("GET", "/incidents/inc-00000000000000000002", nil, nil); resp.StatusCode != 200 || strings.Contains(body, "Slack thread") {
		t.Errorf("a failing chat store should cost the link only: %d", resp.StatusCode)
	}
}

func TestNoWriteRightsWithoutToken(t *testing.T) {
	f := scenario(t)
	c := newClient(t, mux(newTestPages(f, Options{})))
	_, body := c.do("GET", "/incidents/inc-00000000000000000003", nil, nil)
	if strings.Contains(body, "Sign in") || strings.Contains(body, "<button") {
		t.Error("without an API token nobody can get write rights, and the page should not offer them")
	}
	if resp, _ := c.do("POST", "/login", url.Values{"token": {""}}, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("sign in without a configured token: %d", resp.StatusCode)
	}
}

func TestImpactSegments(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	alert := func(im incidents.Impact, from, to int) incidents.Alert {
		a := incidents.Alert{Impact: im, StartsAt: at(from), Status: incidents.AlertResolved, EndsAt: at(to)}
		if to < 0 {
			a.Status, a.EndsAt = incidents.AlertFiring, time.Time{}
		}
		return a
	}
	tests := []struct {
		name   string
		inc    incidents.Incident
		want   []string
		outage int64
	}{
		{"worst impact wins while alerts overlap",
			incidents.Incident{Alerts: []incidents.Alert{alert(incidents.ImpactDegraded, 0, 30), alert(incidents.ImpactOutage, 10, 20)}},
			[]string{"degraded 0-10", "outage 10-20", "degraded 20-30"}, 600},
		{"gap between alerts",
			incidents.Incident{Alerts: []incidents.Alert{alert(incidents.ImpactOutage, 0, 5), alert(incidents.ImpactOutage, 10, 15)}},
			[]string{"outage 0-5", "outage 10-15"}, 600},
		{"firing alert runs to now",
			incidents.Incident{Alerts: []incidents.Alert{alert(incidents.ImpactOutage, 50, -1)}},
			[]string{"outage 50-60"}, 600},
		{"no alerts: the periods at the incident's impact",
			incidents.Incident{Impact: incidents.ImpactDegraded, Periods: []incidents.Period{{Start: at(0), End: at(7)}}},
			[]string{"degraded 0-7"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			segs := impactSegments(&tc.inc, at(60))
			var got []string
			var outage int64
			for _, s := range segs {
				got = append(got, s.Impact+" "+strconv.Itoa(int(s.Start.Sub(t0)/time.Minute))+"-"+strconv.Itoa(int(s.End.Sub(t0)/time.Minute)))
				if s.Impact == "outage" {
					outage += s.Seconds()
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") || outage != tc.outage {
				t.Errorf("got %v (outage %d s), want %v (%d s)", got, outage, tc.want, tc.outage)
			}
		})
	}
}

func TestPostmortemDraft(t *testing.T) {
	f := scenario(t)
	c := newClient(t, mux(newTestPages(f, Options{ExternalURL: "https://nines.example.com/"})))
	resp, md := c.do("GET", "/api/v1/incidents/inc-00000000000000000001/postmortem?format=markdown", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, md)
	}
	for _, w := range []string{
		"# Postmortem: DB primary down",
		"(https://nines.example.com/incidents/inc-00000000000000000001)",
		"| Outage | 10m |", "| Degraded | 20m |",
		// 600 s of the 30-day budget of 99.9% (2,592 s).
		"| Error budget consumed (30d) | 23.1% of 43m12s |",
		"- api: outage, 10m",
		"deployed 5 min before: db v2.0",
		"Time to acknowledge: 4m", "Time to mitigate: 30m",
		"## Causes", "## Lessons", "## Action items",
	} {
		if !strings.Contains(md, w) {
			t.Errorf("draft lacks %q:\n%s", w, md)
		}
	}
}
