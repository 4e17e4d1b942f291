package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/ninesops/nines/chat/slacktest"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/web"
)

// chromiumBinary finds Debian's chromium; under make test
// (NINES_REQUIRE_INTEGRATION) its absence fails the test.
func chromiumBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("NINES_TEST_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if p == "" {
			continue
		}
		if _, err := exec.LookPath(p); err == nil {
			return p
		}
	}
	if os.Getenv("NINES_REQUIRE_INTEGRATION") != "" {
		t.Fatal("chromium is missing: deploy/dev/ensure-deps installs Debian's chromium")
	}
	t.Skip("chromium not installed (apt-get install chromium); set NINES_REQUIRE_INTEGRATION=1 to fail instead")
	return ""
}

const browserCatalog = `
squads:
  - {name: storage, channel: "#storage"}
  - {name: payments, channel: "#payments"}
services:
  - {name: db, owner: storage, tier: 1, slo_target: 99.9, system: platform, description: "The primary database."}
  - name: api
    owner: payments
    tier: 1
    slo_target: 99.9
    system: shop
    dependencies: [db]
    maintenance:
      - {start: "%s", end: "%s", reason: "DB upgrade"}
  - {name: web, owner: payments, tier: 2, slo_target: 99.5, system: shop, dependencies: [api]}
`

// TestPagesInBrowser loads every page in headless Chromium against nines
// and a real ClickHouse holding a scenario (a deploy, a cascade from db to
// api, maintenance, a degraded incident that reopens), as a person would:
// it reads what the pages show, follows every link (Grafana's data links
// and the Slack message's too), watches the console, checks landmarks and
// chart titles, presses Acknowledge after signing in, compares the figures
// with the API's and keeps a screenshot of each page under
// .build/test/screenshots.
func TestPagesInBrowser(t *testing.T) {
	chromium := chromiumBinary(t)
	began := time.Now()
	dsn := chtest.Database(t)
	slack := slacktest.NewServer(t, chatTestToken)
	slack.AddChannel("#operations")
	now := time.Now().UTC().Truncate(time.Minute)
	at := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }
	dir := t.TempDir()
	addr := freePort(t)
	base := "http://" + addr
	n := startNinesAt(t, addr, dsn,
		"--catalog.file="+writeFile(t, dir, "catalog.yml", fmt.Sprintf(browserCatalog, at(-26*time.Hour), at(-25*time.Hour))),
		"--config.file="+writeFile(t, dir, "config.yml", "chat:\n  operations_channel: \"#operations\"\n  grafana_url: http://grafana.example\n  digest: {cadence: \"off\"}\n"),
		"--slack.token-file="+writeFile(t, dir, "slack.token", chatTestToken+"\n"), "--slack.api-url="+slack.APIURL(),
		"--web.external-url="+base, "--slack.workspace-url=https://acme.slack.com",
	)

	// The scenario.
	if code, b := n.do("POST", "/api/v1/changes", n.apiToken, map[string]any{
		"id": "deploy-db-2", "service": "db", "kind": "deploy", "version": "v2.0", "status": "succeeded",
		"rollout": 0.5, "at": at(-3*time.Hour - 10*time.Minute), "actor": "ci",
	}); code != http.StatusCreated {
		t.Fatalf("record change: %d %s", code, b)
	}
	notify := func(service, alertname, severity, status, startsAt, endsAt string) {
		t.Helper()
		body := fmt.Sprintf(`{"receiver":"nines","status":%q,"alerts":[{"status":%q,"labels":{"alertname":%q,"service":%q,"severity":%q,"pod":"%s-7d9f"},
"annotations":{"summary":"%s"},"startsAt":%q,"endsAt":%q,"generatorURL":"http://prometheus.example/graph","fingerprint":"%x"}],
"groupLabels":{"alertname":%q},"commonLabels":{"alertname":%q,"service":%q},"commonAnnotations":{},"externalURL":"http://alertmanager.example",
"version":"4","groupKey":"{}:{alertname=\"%s\"}","truncatedAlerts":0}`,
			status, status, alertname, service, severity, service, alertname, startsAt, endsAt, alertname, alertname, alertname, service, alertname)
		req, _ := http.NewRequest("POST", n.base+"/api/v1/alerts", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer s3cr3t-token")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("notify %s %s: %v %v", alertname, status, err, resp)
		}
		resp.Body.Close()
	}
	const never = "0001-01-01T00:00:00Z"
	notify("db", "DBDown", "critical", "firing", at(-3*time.Hour), never)
	notify("api", "APIErrors", "critical", "firing", at(-3*time.Hour+5*time.Minute), never)
	notify("api", "APIErrors", "critical", "resolved", at(-3*time.Hour+5*time.Minute), at(-2*time.Hour-35*time.Minute))
	notify("db", "DBDown", "critical", "resolved", at(-3*time.Hour), at(-2*time.Hour-30*time.Minute))
	notify("web", "WebSlow", "warning", "firing", at(-2*time.Hour), never)
	notify("web", "WebSlow", "warning", "resolved", at(-2*time.Hour), at(-1*time.Hour-50*time.Minute))
	notify("web", "WebSlow", "warning", "firing", at(-1*time.Hour-45*time.Minute), never)

	ids := map[string]string{}
	for _, inc := range n.incidents().Incidents {
		ids[inc.Service] = inc.ID
	}
	if len(ids) != 3 {
		t.Fatalf("incidents by service: %v, want db, api and web", ids)
	}
	var api struct {
		CausedBy string `json:"caused_by"`
		Flaps    int    `json:"flaps"`
	}
	getJSON(t, base+"/api/v1/incidents/"+ids["api"], &api)
	if api.CausedBy != ids["db"] {
		t.Fatalf("api's incident is not linked to db's: caused_by %q", api.CausedBy)
	}

	t.Logf("incidents stored after %s", time.Since(began))
	// Slack messages link to the incident pages.
	pageLink := regexp.MustCompile(`<(` + regexp.QuoteMeta(base) + `/incidents/inc-[0-9a-f]{20})\|Incident page>`)
	var slackLink string
	eventually(t, 30*time.Second, "a Slack message linking to the incident page", func() bool {
		for _, m := range slack.Messages("#operations") {
			blocks := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&").Replace(string(m.Blocks))
			if sm := pageLink.FindStringSubmatch(blocks); sm != nil {
				slackLink = sm[1]
				return true
			}
		}
		return false
	})

	// Incident pages link to the Slack thread once the message is posted.
	eventually(t, 30*time.Second, "db's page linking to its Slack thread", func() bool {
		resp, err := http.Get(base + "/incidents/" + ids["db"])
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return regexp.MustCompile(`href="https://acme\.slack\.com/archives/C[0-9A-Z]+/p[0-9]{16}"[^>]*>Slack thread<`).Match(b)
	})
	t.Logf("scenario ready after %s", time.Since(began))
	b := newBrowser(t, chromium)
	pages := []struct {
		name, path string
		want       []string
	}{
		{"overview", "/", []string{"Open incidents (1)", "WebSlow", "Services, worst first", "api", "db", "web", "storage", "payments"}},
		{"overview-squad", "/?squad=storage", []string{"Open incidents (0)", "db"}},
		{"incident-db", "/incidents/" + ids["db"], []string{"DBDown", "resolved", "storage", "Impact over time", "outage",
			`pod="db-7d9f"`, "Downstream incidents it caused", "APIErrors", "deploy v2.0", "50.0%", "Alertmanager", "Source", "Grafana dashboard", "Slack thread", "Postmortem draft"}},
		{"incident-api", "/incidents/" + ids["api"], []string{"APIErrors", "Caused by upstream incident", "DBDown", "deploy v2.0"}},
		{"incident-web", "/incidents/" + ids["web"], []string{"WebSlow", "firing", "reopened", "Degraded", "Sign in to act"}},
		{"incident-from-slack", strings.TrimPrefix(slackLink, base), []string{"Impact over time", "Timeline", "Postmortem draft"}},
		{"service-api", "/services/api", []string{"Service api", "payments", "99.900%", "Depends on", "db", "Depended on by", "web",
			"Daily availability", "Incidents and changes", "APIErrors", "leaves out maintenance (1h)"}},
		{"service-db", "/services/db", []string{"Service db", "The primary database.", "v2.0", "ci", "DBDown"}},
		{"squad-payments", "/squads/payments", []string{"Squad payments", "#payments", "WebSlow", "api", "web"}},
		{"status", "/status", []string{"platform", "shop", "Degraded", "Outage of db", "Outage of api", "Degraded performance of web"}},
		{"postmortem-api", "/incidents/" + ids["api"] + "/postmortem", []string{"Postmortem draft: APIErrors", "Upstream cause", "db: DBDown",
			"deploy", "v2.0", "Time to mitigate", "20m", "Causes", "Lessons", "Action items"}},
		{"postmortem-db", "/incidents/" + ids["db"] + "/postmortem", []string{"Downstream services affected", "api: Outage for 20m", "Outage", "30m"}},
		{"login", "/login", []string{"Sign in", "API token"}},
	}
	shots := filepath.Join("..", "..", ".build", "test", "screenshots")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	links, loaded := map[string]bool{}, map[string]bool{}
	for _, pg := range pages {
		t.Run(pg.name, func(t *testing.T) {
			v := b.load(t, base+pg.path)
			for _, w := range pg.want {
				if !strings.Contains(v.Text, w) {
					t.Errorf("%s does not show %q; it shows:\n%s", pg.path, w, v.Text)
				}
			}
			for _, bad := range []string{"internal_host", "pod=", "DBDown", "APIErrors", "WebSlow"} {
				if pg.name == "status" && strings.Contains(v.Text, bad) {
					t.Errorf("the status page shows internal detail %q", bad)
				}
			}
			if v.Status != http.StatusOK {
				t.Errorf("%s answered %d", pg.path, v.Status)
			}
			loaded[base+pg.path] = true
			if len(v.Errors) > 0 {
				t.Errorf("%s: console errors: %v", pg.path, v.Errors)
			}
			for _, p := range v.Problems {
				t.Errorf("%s: %s", pg.path, p)
			}
			for _, r := range v.Resources {
				if !strings.HasPrefix(r, base) && !strings.HasPrefix(r, "data:") {
					t.Errorf("%s loads %s from outside nines", pg.path, r)
				}
			}
			for _, l := range v.Links {
				links[l] = true
			}
			if err := os.WriteFile(filepath.Join(shots, pg.name+".png"), v.Shot, 0o644); err != nil {
				t.Error(err)
			}
		})
	}

	t.Logf("pages loaded after %s", time.Since(began))
	// Every link to nines on every page resolves; links elsewhere
	// (Alertmanager, Prometheus) are the alerts' own.
	var toCheck []string
	for _, l := range slices.Sorted(mapKeysOf(links)) {
		if strings.HasPrefix(l, base) && !loaded[l] {
			toCheck = append(toCheck, l)
		}
	}
	for l, code := range statuses(t, toCheck) {
		if code == http.StatusNotFound || code >= 500 {
			t.Errorf("link %s answers %d", l, code)
		}
	}
	// The data links of the dashboards generated for this catalog, with
	// Grafana's variables as Grafana fills them.
	dashDir := t.TempDir()
	var out strings.Builder
	if err := run(context.Background(), []string{"dashboards", "generate", "--catalog.file", filepath.Join(dir, "catalog.yml"), "--out", dashDir}, &out, &out, nil); err != nil {
		t.Fatalf("generate dashboards: %v\n%s", err, out.String())
	}
	dataLinks := dashboardDataLinks(t, dashDir)
	if len(dataLinks) < 3 {
		t.Fatalf("found %d data links to nines in the generated dashboards", len(dataLinks))
	}
	var urls []string
	for _, l := range dataLinks {
		u := strings.NewReplacer("${nines_url}", base, "${window}", "30d").Replace(l)
		if strings.Contains(u, "/incidents/") {
			u = strings.ReplaceAll(u, "${__value.raw}", ids["db"])
		} else {
			u = strings.ReplaceAll(u, "${__value.raw}", "api")
		}
		urls = append(urls, u)
	}
	for u, code := range statuses(t, urls) {
		if code != http.StatusOK {
			t.Errorf("dashboard data link %s answers %d", u, code)
		}
	}
	t.Logf("%d links and %d data links checked after %s", len(toCheck), len(urls), time.Since(began))
	// The figures the pages show are the API's.
	var svc struct {
		Figures []struct {
			Window               string  `json:"window"`
			Availability         float64 `json:"availability"`
			ErrorBudgetRemaining float64 `json:"error_budget_remaining"`
			ErrorBudgetSeconds   float64 `json:"error_budget_seconds"`
			Incidents            int     `json:"incidents"`
		} `json:"figures"`
	}
	type check struct{ page, sel, want, what string }
	var checks []check
	for _, name := range []string{"db", "api"} {
		getJSON(t, base+"/api/v1/services/"+name, &svc)
		if len(svc.Figures) == 0 {
			t.Fatalf("%s: no figures", name)
		}
		for _, f := range svc.Figures {
			want := web.Avail(f.Availability)
			checks = append(checks,
				check{"/", fmt.Sprintf(`tr[data-service=%q] td[data-window=%q] [data-figure=availability]`, name, f.Window), want, "overview: " + name + " over " + f.Window},
				check{"/services/" + name, fmt.Sprintf(`tr[data-window=%q] td[data-figure=availability]`, f.Window), want, "service page: " + name + " over " + f.Window},
				check{"/services/" + name, fmt.Sprintf(`tr[data-window=%q] td[data-figure=incidents]`, f.Window), fmt.Sprint(f.Incidents), "service page: incidents of " + name + " over " + f.Window},
			)
		}
		var f90 struct {
			Availability float64 `json:"availability"`
		}
		getJSON(t, base+"/api/v1/services/"+name+"/availability?window=90d", &f90)
		checks = append(checks, check{"/status", fmt.Sprintf(`tr[data-service=%q] [data-figure=uptime]`, name), web.Avail(f90.Availability), "status page: uptime of " + name})
	}
	var pm web.Postmortem
	getJSON(t, base+"/api/v1/incidents/"+ids["api"]+"/postmortem", &pm)
	checks = append(checks, check{"/incidents/" + ids["api"] + "/postmortem", `[data-figure=budget]`,
		web.Percent(pm.BudgetConsumed) + " of " + web.Duration(int64(pm.BudgetSeconds)), "postmortem: budget consumed"})
	byPage := map[string][]check{}
	for _, c := range checks {
		byPage[c.page] = append(byPage[c.page], c)
	}
	for page, cs := range byPage {
		var sels []string
		for _, c := range cs {
			sels = append(sels, c.sel)
		}
		for i, got := range b.texts(t, base+page, sels...) {
			if got != cs[i].want {
				t.Errorf("%s: page shows %q, the API %q", cs[i].what, got, cs[i].want)
			}
		}
	}

	// The postmortem drafts of the cascade, from the command line, name
	// the upstream cause, the downstream service and the suspect change.
	for _, tc := range []struct {
		id   string
		want []string
	}{
		{ids["api"], []string{"# Postmortem: APIErrors", "| Upstream cause | db: DBDown", "deployed 15m before: db v2.0 at 50%", "## Action items"}},
		{ids["db"], []string{"Downstream services affected", "- api: outage, 20m", "deployed 10m before: db v2.0", "| Outage | 30m |"}},
	} {
		var out, errOut strings.Builder
		if err := run(context.Background(), []string{"incidents", "postmortem", "--url", base, tc.id}, &out, &errOut, nil); err != nil {
			t.Fatalf("nines incidents postmortem %s: %v %s", tc.id, err, errOut.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("postmortem of %s lacks %q:\n%s", tc.id, w, out.String())
			}
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"incidents", "postmortem", "--url", base, "inc-00000000000000000000"}, &out, &out, nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("postmortem of an unknown incident: %v", err)
	}
	t.Logf("figures compared after %s", time.Since(began))
	// Signing in gives the buttons; Acknowledge acknowledges.
	b.signInAndAck(t, base, n.apiToken, ids["web"])
	var webInc struct {
		State          string `json:"state"`
		AcknowledgedBy string `json:"acknowledged_by"`
	}
	getJSON(t, base+"/api/v1/incidents/"+ids["web"], &webInc)
	if webInc.State != "acknowledged" || webInc.AcknowledgedBy != "browser-test" {
		t.Errorf("after pressing Acknowledge: %+v", webInc)
	}

	// A status_page section in the catalog replaces the systems by its
	// groups and public names; titles and labels show only where the
	// section says so.
	writeFile(t, dir, "catalog.yml", fmt.Sprintf(browserCatalog, at(-26*time.Hour), at(-25*time.Hour))+`status_page:
  groups:
    - name: Online shop
      services: [web, api]
    - name: Data storage
      services: [db]
      show_titles: true
      show_labels: true
`)
	eventually(t, 30*time.Second, "the status page showing the catalog's status_page groups", func() bool {
		var st web.StatusView
		getJSON(t, base+"/api/v1/status", &st)
		return len(st.Groups) == 2 && st.Groups[0].Name == "Online shop"
	})
	v := b.load(t, base+"/status")
	for _, w := range []string{"Online shop", "Data storage", "Outage of api", "Degraded performance of web", "DBDown", `alertname="DBDown"`} {
		if !strings.Contains(v.Text, w) {
			t.Errorf("the status page with a status_page section does not show %q; it shows:\n%s", w, v.Text)
		}
	}
	for _, bad := range []string{"platform", "APIErrors", "WebSlow", `service="api"`} {
		if strings.Contains(v.Text, bad) {
			t.Errorf("the status page with a status_page section shows %q", bad)
		}
	}
	if len(v.Errors) > 0 || len(v.Problems) > 0 || v.Status != http.StatusOK {
		t.Errorf("status page with a status_page section: %d, console %v, problems %v", v.Status, v.Errors, v.Problems)
	}
	if err := os.WriteFile(filepath.Join(shots, "status-groups.png"), v.Shot, 0o644); err != nil {
		t.Error(err)
	}
}

func mapKeysOf(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

// statuses GETs the URLs, a few at a time, and returns their statuses.
func statuses(t *testing.T, urls []string) map[string]int {
	t.Helper()
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[string]int{}
		sem = make(chan struct{}, 4)
	)
	for _, u := range urls {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			code := 0
			if resp, err := http.Get(u); err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			out[u] = code
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// dashboardDataLinks lists the data links to nines (${nines_url}…) of the
// generated dashboards in dir.
func dashboardDataLinks(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("generated dashboards: %v %v", files, err)
	}
	re := regexp.MustCompile(`"url": "(\$\{nines_url\}[^"]*)"`)
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			seen[m[1]] = true
		}
	}
	return slices.Sorted(mapKeysOf(seen))
}

// browser is one headless Chromium.
type browser struct {
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

func newBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	// Chromium's helpers may still write its profile a moment after it
	// exits, which t.TempDir's cleanup takes for a failure: the profile is
	// removed after the browser's cleanup, retrying for a while.
	profile, err := os.MkdirTemp("", "nines-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 50 {
			if err = os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("remove chromium's profile: %v", err)
	})
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile), chromedp.WindowSize(1200, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browser{ctx: ctx}
	chromedp.ListenTarget(ctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError || e.Type == runtime.APITypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value))
				}
				b.errors = append(b.errors, "console."+string(e.Type)+": "+strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			b.errors = append(b.errors, "exception: "+e.ExceptionDetails.Error())
		case *log.EventEntryAdded:
			if e.Entry.Level == log.LevelError || e.Entry.Level == log.LevelWarning {
				b.errors = append(b.errors, string(e.Entry.Source)+": "+e.Entry.Text+" "+e.Entry.URL)
			}
		}
	})
	if err := chromedp.Run(ctx, log.Enable(), runtime.Enable()); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return b
}

// view is what a person gets from a page.
type view struct {
	Status    int
	Text      string
	Links     []string
	Resources []string
	Problems  []string
	Errors    []string
	Shot      []byte
}

// a11y lists accessibility problems the browser can see: landmarks, one
// h1, titled charts, labelled form fields, alternative text.
const a11y = `(() => {
  const p = [];
  for (const s of ["header", "nav", "main", "footer", "h1"]) if (!document.querySelector(s)) p.push("no <" + s + ">");
  if (document.querySelectorAll("h1").length !== 1) p.push("not exactly one h1");
  if (!document.documentElement.lang) p.push("no lang");
  document.querySelectorAll("svg").forEach(s => {
    const labelled = s.getAttribute("aria-labelledby") || s.getAttribute("aria-label");
    if (s.getAttribute("role") !== "img" || !labelled || !s.querySelector("title")) p.push("chart without role=img and a title");
  });
  document.querySelectorAll("img:not([alt])").forEach(() => p.push("image without alt"));
  document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(e => {
    if (!e.id || !document.querySelector("label[for='" + e.id + "']")) p.push("form field without a label: " + e.name);
  });
  document.querySelectorAll(".badge").forEach(e => { if (!e.innerText.trim()) p.push("badge that is colour only"); });
  return p;
})()`

func (b *browser) load(t *testing.T, u string) view {
	t.Helper()
	b.mu.Lock()
	b.errors = nil
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	var v view
	err := chromedp.Run(ctx,
		chromedp.Navigate(u),
		chromedp.WaitReady("body"),
		chromedp.Evaluate(`document.body.innerText`, &v.Text),
		chromedp.Evaluate(`Array.from(document.querySelectorAll("a[href]")).map(a => a.href)`, &v.Links),
		chromedp.Evaluate(`performance.getEntriesByType("resource").map(r => r.name)`, &v.Resources),
		chromedp.Evaluate(`performance.getEntriesByType("navigation")[0].responseStatus`, &v.Status),
		chromedp.Evaluate(a11y, &v.Problems),
		chromedp.FullScreenshot(&v.Shot, 100),
	)
	if err != nil {
		t.Fatalf("load %s: %v", u, err)
	}
	b.mu.Lock()
	v.Errors = slices.Clone(b.errors)
	b.mu.Unlock()
	return v
}

// texts loads u and returns the visible text of the first element
// matching each selector, as the browser computes it.
func (b *browser) texts(t *testing.T, u string, sels ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	js, _ := json.Marshal(sels)
	var out []string
	err := chromedp.Run(ctx, chromedp.Navigate(u), chromedp.WaitReady("body"), chromedp.Evaluate(fmt.Sprintf(
		`%s.map(s => { const e = document.querySelector(s); return e ? e.innerText.trim() : "(missing " + s + ")" })`, js), &out))
	if err != nil {
		t.Fatalf("load %s: %v", u, err)
	}
	return out
}

// signInAndAck signs in with the API token through the form, then presses
// Acknowledge on the incident's page.
func (b *browser) signInAndAck(t *testing.T, base, token, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	var before string
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/incidents/"+id),
		chromedp.Evaluate(`document.querySelectorAll("button").length + ""`, &before),
		chromedp.Navigate(base+"/login?next=/incidents/"+id),
		chromedp.SendKeys("#token", token, chromedp.ByQuery),
		chromedp.Submit("#token", chromedp.ByQuery),
		chromedp.WaitVisible(`button[value=ack]`, chromedp.ByQuery),
		chromedp.SendKeys("#actor", "browser-test", chromedp.ByQuery),
		chromedp.Click(`button[value=ack]`, chromedp.ByQuery),
		chromedp.WaitNotPresent(`button[value=ack]`, chromedp.ByQuery),
	)
	if before != "0" {
		t.Errorf("the incident page offers %s buttons before signing in", before)
	}
	if err != nil {
		t.Fatalf("acknowledge: %v", err)
	}
}
