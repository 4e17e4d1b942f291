package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
)

// TestSameFiguresOnBothEngines: the same incidents (the captured
// Alertmanager notifications and an outage opened by hand) give the same
// figures on ClickHouse 18.16 and on current ClickHouse (chDB): every
// availability endpoint of the API, `nines report`, the collector's series
// on /metrics and the digest posted to Slack. Most windows are fixed ones,
// or rolling ones (1h, 24h, 7d) in which every incident is either absent or
// open throughout, so that the moment each engine is asked changes nothing.
// The 30-day windows of the service pages and the digest hold incidents
// that started inside them, so their figures move with the seconds between
// the two runs: numbers are compared to within a relative 1e-4 (a run takes
// seconds; 30 days are 2.6 million), everything else exactly.
func TestSameFiguresOnBothEngines(t *testing.T) {
	if chtest.Engine(t) != chtest.EngineClickHouse18 {
		t.Skip("compares both engines: it runs once, in the ClickHouse 18.16 pass of `make test`, with both servers up")
	}
	engines := []string{chtest.EngineClickHouse18, chtest.EngineChDB}
	got := make([]map[string]string, len(engines))
	// Both at once, so that rolling windows end at nearly the same moment.
	t.Run("engines", func(t *testing.T) {
		for i, e := range engines {
			t.Run(e, func(t *testing.T) {
				t.Parallel()
				got[i] = engineFigures(t, chtest.DatabaseOn(t, e))
			})
		}
	})
	if t.Failed() {
		return
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range got[0] {
			if !yield(k) {
				return
			}
		}
	})
	if len(keys) != len(got[1]) {
		t.Errorf("%s gave %d answers, %s %d", engines[0], len(keys), engines[1], len(got[1]))
	}
	t.Logf("%d answers compared", len(keys))
	for _, k := range keys {
		a, b := rolling(got[0][k]), rolling(got[1][k])
		if why := differ(a, b); why != "" {
			t.Errorf("%s differs: %s\n%s: %s\n%s: %s", k, why, engines[0], a, engines[1], b)
		}
	}
}

// engineFigures fills the database behind dsn and returns what nines
// answers, by where it was asked.
func engineFigures(t *testing.T, dsn string) map[string]string {
	t.Helper()
	n, catalogFile, configFile := fixtureNines(t, dsn, "--collector.windows=1h,24h,7d", "--collector.refresh-interval=500ms")
	dir := t.TempDir()

	out := map[string]string{}
	get := func(path string) {
		code, b := n.do("GET", path, "", nil)
		if code != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, code, b)
		}
		out["GET "+path] = string(b)
	}
	const fixed = "from=2026-11-22T17:00:00Z&to=2026-11-22T18:00:00Z"
	for _, q := range []string{fixed, "window=7d", "window=24h"} {
		get("/api/v1/availability?" + q)
		get("/api/v1/services?" + q)
		for _, svc := range []string{"checkout", "search", "playlist"} {
			get("/api/v1/services/" + svc + "?" + q)
			get("/api/v1/services/" + svc + "/availability?" + q)
		}
	}
	for _, svc := range []string{"checkout", "search", "playlist"} {
		get("/api/v1/services/" + svc + "/daily?from=2026-11-21&to=2026-11-23")
	}

	args := []string{"--from=2026-11-22T17:00:00Z", "--to=2026-11-22T18:00:00Z",
		"--clickhouse.dsn=" + dsn, "--catalog.file=" + catalogFile, "--config.file=" + configFile, "--log.level=error"}
	for _, format := range []string{"json", "table"} {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), append([]string{"report"}, append(args, "--format="+format)...), &stdout, &stderr, nil); err != nil {
			t.Fatalf("report: %v\n%s", err, stderr.String())
		}
		out["report --format="+format] = stdout.String()
	}

	// The collector: its availability series once it has seen the
	// incidents (playlist is down throughout every window).
	var series string
	eventually(t, 30*time.Second, "playlist's outage on /metrics", func() bool {
		_, body := n.do("GET", "/metrics", "", nil)
		series = figureLines(string(body))
		return strings.Contains(series, `nines_service_availability_ratio{owner="music",service="playlist",window="24h"} 0`+"\n")
	})
	out["GET /metrics"] = series

	// The digest, posted to a Slack incoming webhook.
	hook := &webhookSink{}
	srv := httptest.NewServer(hook)
	defer srv.Close()
	hookFile := writeFile(t, dir, "hook", srv.URL+"/hook\n")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), append([]string{"report"}, append(args[2:], "--post", "--slack.webhook-url-file="+hookFile)...), &stdout, &stderr, nil); err != nil {
		t.Fatalf("report --post: %v\n%s", err, stderr.String())
	}
	out["digest"] = hook.String()
	if out["digest"] == "" {
		t.Error("the digest posted nothing")
	}
	return out
}

// rolling replaces the times that depend on the moment each engine was
// asked by placeholders: the bounds of rolling windows (every time but
// those of the fixtures' day, 2026-11-22) and when the digest was made.
func rolling(s string) string {
	s = slackDateRe.ReplaceAllString(s, "<generated-at>")
	return timeRe.ReplaceAllStringFunc(s, func(ts string) string {
		if strings.HasPrefix(ts, "2026-11-22T") {
			return ts
		}
		return "<now-relative>"
	})
}

var (
	timeRe = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	// A Slack date, in a message's text or escaped in its JSON
	// (\u003c…\u003e): the time the digest was made, which the two
	// engines' runs may put in different minutes.
	slackDateRe = regexp.MustCompile(`(?:<|\\u003c)!date\^\d+\^.*?(?:>|\\u003e)`)
)

// differ says how a and b differ, or nothing when they are equal but for
// numbers that differ by at most a relative 1e-4.
func differ(a, b string) string {
	if a == b {
		return ""
	}
	ta, tb := numberRe.ReplaceAllString(a, "#"), numberRe.ReplaceAllString(b, "#")
	if ta != tb {
		i := 0
		for i < len(ta) && i < len(tb) && ta[i] == tb[i] {
			i++
		}
		return fmt.Sprintf("text (numbers as #) differs at byte %d: %q vs %q", i, ta[max(i-60, 0):min(i+60, len(ta))], tb[max(i-60, 0):min(i+60, len(tb))])
	}
	na, nb := numberRe.FindAllString(a, -1), numberRe.FindAllString(b, -1)
	for i := range na {
		x, errx := strconv.ParseFloat(na[i], 64)
		y, erry := strconv.ParseFloat(nb[i], 64)
		// A number printed rounded (51.924% against 51.925%) may cross a
		// rounding boundary in the seconds between the runs: one unit of
		// its last printed digit is allowed too.
		tol := max(1e-4*math.Max(math.Abs(x), math.Abs(y)), lastDigit(na[i]), lastDigit(nb[i]))
		if errx != nil || erry != nil || math.Abs(x-y) > tol*(1+1e-9) {
			return fmt.Sprintf("number %d: %s vs %s", i, na[i], nb[i])
		}
	}
	return ""
}

// lastDigit is the value of one unit in the last digit of a printed
// decimal number ("51.925" → 0.001), or 0 for numbers printed whole or in
// exponent form.
func lastDigit(n string) float64 {
	_, frac, ok := strings.Cut(n, ".")
	if !ok || strings.ContainsAny(frac, "eE") {
		return 0
	}
	return math.Pow(10, -float64(len(frac)))
}

var numberRe = regexp.MustCompile(`-?\d+(\.\d+)?([eE][-+]?\d+)?`)

// figureLines keeps the exported figures of /metrics: the service series
// and the open-incident gauge, not the process's own counters.
func figureLines(metrics string) string {
	var b strings.Builder
	for _, l := range strings.Split(metrics, "\n") {
		if figureRe.MatchString(l) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

var figureRe = regexp.MustCompile(`^nines_(service_|squad_|incidents_open)`)

// webhookSink records what is posted to it, like a Slack incoming webhook.
type webhookSink struct {
	mu     sync.Mutex
	bodies []string
}

func (h *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.bodies = append(h.bodies, string(b))
	h.mu.Unlock()
	io.WriteString(w, "ok")
}

func (h *webhookSink) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.bodies, "\n")
}
