package web

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/catalog"
)

// withStatusSection gives the scenario's catalog a status_page section.
func withStatusSection(t *testing.T, f *fake, section string) {
	t.Helper()
	cat, err := catalog.Parse([]byte(scenarioCatalog+section), "catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	f.cat = cat
}

func TestStatusPageSection(t *testing.T) {
	f := scenario(t)
	withStatusSection(t, f, `status_page:
  groups:
    - name: Online shop
      services: [web, api]
    - name: Data & storage
      services: [db]
      show_titles: true
      show_labels: true
`)
	c := newClient(t, mux(newTestPages(f, Options{})))
	_, body := c.do("GET", "/status", nil, nil)
	for _, w := range []string{
		`<h2 id="g-0">Online shop`, `<h2 id="g-1">Data &amp; storage`, "Outage of api", // public title only
		"DB primary down", `<code>internal_host="db-7.corp"</code>`, // the group shows titles and labels
	} {
		if !strings.Contains(body, w) {
			t.Errorf("/status lacks %q:\n%s", w, body)
		}
	}
	for _, n := range []string{"API errors", ">platform<", ">shop<"} {
		if strings.Contains(body, n) {
			t.Errorf("/status shows %q", n)
		}
	}
	_, js := c.do("GET", "/api/v1/status", nil, nil)
	var v StatusView
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, g := range v.Groups {
		var svcs []string
		for _, s := range g.Services {
			svcs = append(svcs, s.Name)
		}
		got = append(got, g.Name+": "+strings.Join(svcs, ", ")+" ("+g.State+")")
	}
	if want := "Online shop: web, api (degraded)|Data & storage: db (operational)"; strings.Join(got, "|") != want {
		t.Errorf("groups %q, want %q", strings.Join(got, "|"), want)
	}
	if len(v.Groups) == 2 {
		for _, inc := range v.Groups[0].Incidents {
			if inc.Labels != nil {
				t.Errorf("Online shop's incident %q shows labels %v", inc.Title, inc.Labels)
			}
		}
		if inc := v.Groups[1].Incidents; len(inc) != 1 || inc[0].Labels["alertname"] != "DBDown" {
			t.Errorf("Data & storage's incidents: %+v, want DB primary down with its labels", inc)
		}
	}
}

// Without a status_page section the flag decides titles for every group,
// and labels never show.
func TestStatusPageWithoutSection(t *testing.T) {
	for _, titles := range []bool{false, true} {
		c := newClient(t, mux(newTestPages(scenario(t), Options{StatusTitles: titles})))
		_, body := c.do("GET", "/status", nil, nil)
		if got := strings.Contains(body, "DB primary down"); got != titles {
			t.Errorf("StatusTitles %v: shows the title: %v", titles, got)
		}
		if strings.Contains(body, "internal_host") {
			t.Errorf("StatusTitles %v: shows labels", titles)
		}
	}
}

// The figures over every service are computed once per refresh interval
// and served meanwhile with the time they are of; once older they are
// served while they are computed again; a new catalog computes them again
// at once.
func TestFiguresReusedForTheRefreshInterval(t *testing.T) {
	f := scenario(t)
	p := newTestPages(f, Options{RefreshInterval: time.Minute})
	c := newClient(t, mux(p))
	get := func(path string) string {
		t.Helper()
		resp, body := c.do("GET", path, nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		return body
	}
	idle := func(m interface{ idle() bool }) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !m.idle(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the refresh did not end")
			}
		}
	}
	asOf := "as of " + f.now.Format(timeFmt)
	if body := get("/"); !strings.Contains(body, asOf) {
		t.Errorf("the overview does not say %q", asOf)
	}
	windows := int64(len(fakeAvail{f}.Config().Windows))
	_ = get("/squads/payments")
	if n := f.allCalls.Load(); n != windows {
		t.Errorf("overview and squad page: %d All calls, want %d (one per window)", n, windows)
	}
	_ = get("/status")
	_ = get("/status?page=1")
	if n := f.dailyServices.Load(); n != 1 {
		t.Errorf("status page twice: %d DailyServices calls, want 1", n)
	}

	start := f.now
	f.now = f.now.Add(time.Minute)
	if body := get("/"); !strings.Contains(body, asOf) {
		t.Errorf("a stale overview is not served while it is refreshed: it does not say %q", asOf)
	}
	_ = get("/status")
	idle(p.windowFigures)
	idle(p.statusFigures)
	if n := f.allCalls.Load(); n != 2*windows+2 {
		t.Errorf("after the interval: %d All calls, want %d", n, 2*windows+2)
	}
	if n := f.dailyServices.Load(); n != 2 {
		t.Errorf("after the interval: %d DailyServices calls, want 2", n)
	}
	if body := get("/"); !strings.Contains(body, "as of "+f.now.Format(timeFmt)) || f.now.Equal(start) {
		t.Errorf("the refreshed overview is not of %s", f.now.Format(timeFmt))
	}

	f.cat = catalog.Empty(0)
	if body := get("/status"); !strings.Contains(body, "No services in the catalog") {
		t.Error("a new catalog did not recompute the status page")
	}
}

// Close ends a refresh running in the background and waits for it.
func TestCloseEndsRefreshes(t *testing.T) {
	f := scenario(t)
	p := newTestPages(f, Options{RefreshInterval: time.Minute})
	c := newClient(t, mux(p))
	if resp, _ := c.do("GET", "/", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("/: %d", resp.StatusCode)
	}
	f.hold = make(chan struct{}) // the next All never answers
	f.now = f.now.Add(time.Minute)
	if resp, _ := c.do("GET", "/", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("stale /: %d", resp.StatusCode)
	}
	if p.windowFigures.idle() {
		t.Fatal("no refresh started")
	}
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the refresh")
	}
	if !p.windowFigures.idle() {
		t.Error("a refresh still runs after Close")
	}
}
