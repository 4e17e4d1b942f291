package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
)

// TestReplayAfterASeverityChange: warnings were degraded (weight 0) when
// they arrived; the configuration now maps them to outage. `nines replay
// --dry-run` reports the availability the new mapping gives over the same
// notifications, without writing; `nines replay` writes it, and the running
// nines shows it and goes on from it.
func TestReplayAfterASeverityChange(t *testing.T) {
	dsn := chtest.Database(t)
	n := startNines(t, dsn)
	began := time.Now().UTC().Add(-time.Minute)
	start := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	end := start.Add(time.Hour)
	post := func(status, endsAt string) {
		t.Helper()
		req, _ := http.NewRequest("POST", n.base+"/api/v1/alerts", bytes.NewReader(webhookNote(`{}:{alertname="Slow"}`,
			inputAlert("slow", map[string]string{"alertname": "Slow", "service": "search", "severity": "warning"},
				start.Format(time.RFC3339), endsAt, status))))
		req.Header.Set("Authorization", "Bearer s3cr3t-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("webhook: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	post("firing", "0001-01-01T00:00:00Z")
	post("resolved", end.Format(time.RFC3339))
	incs := listService(t, n, "search")
	if len(incs) != 1 {
		t.Fatalf("incidents %+v, want one", incs)
	}
	id := incs[0].ID

	dir := t.TempDir()
	cfg := writeFile(t, dir, "config.yml", `incidents:
  severity_label: severity
  impacts:
    critical: outage
    warning: outage
`)
	// The period ends on a whole second after the notifications were
	// logged (and before now, so that the figures' window is fixed).
	time.Sleep(1100 * time.Millisecond)
	logged := time.Now().UTC().Truncate(time.Second)
	replay := func(extra ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		args := append([]string{"replay", "--clickhouse.dsn=" + dsn, "--config.file=" + cfg,
			"--from=" + began.Format(time.RFC3339), "--to=" + logged.Format(time.RFC3339)}, extra...)
		if err := run(context.Background(), args, &out, &errb, nil); err != nil {
			t.Fatalf("nines %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		return out.String()
	}
	// figures reads the window the figures cover and search's before and
	// after, and says what after should be: the incident's hour of
	// outage within the window.
	figures := func(out string) (from, to time.Time, before, after, want float64) {
		t.Helper()
		m := regexp.MustCompile(`availability from (\S+) to (\S+):`).FindStringSubmatch(out)
		row := regexp.MustCompile(`(?m)^search\s+(\S+)\s+(\S+)`).FindStringSubmatch(out)
		if m == nil || row == nil {
			t.Fatalf("no window or no row for search in:\n%s", out)
		}
		from, _ = time.Parse(time.RFC3339, m[1])
		to, _ = time.Parse(time.RFC3339, m[2])
		before, _ = strconv.ParseFloat(row[1], 64)
		after, _ = strconv.ParseFloat(row[2], 64)
		return from, to, before, after, 1 - end.Sub(start).Seconds()/to.Sub(from).Seconds()
	}
	out := replay("--dry-run")
	t.Logf("nines replay --dry-run:\n%s", out)
	_, _, before, after, want := figures(out)
	if before != 1 || fmt.Sprintf("%.6f", after) != fmt.Sprintf("%.6f", want) {
		t.Errorf("search before %v after %v, want 1 then %.6f", before, after, want)
	}
	if !strings.Contains(out, "1 changed") || !strings.Contains(out, "dry run: nothing written") {
		t.Errorf("the dry run does not say that the incident changes and nothing was written:\n%s", out)
	}
	if got := getIncident(t, n, id); got.Impact != "degraded" {
		t.Errorf("after the dry run the incident is %s, want still degraded", got.Impact)
	}

	out = replay()
	t.Logf("nines replay:\n%s", out)
	from, to, _, after, want := figures(out)
	if fmt.Sprintf("%.6f", after) != fmt.Sprintf("%.6f", want) {
		t.Errorf("search after %v, want %.6f", after, want)
	}
	if !strings.Contains(out, "wrote 1 incident versions") || strings.Contains(out, "no deriver confirmed") {
		t.Errorf("replay did not write the incident, or the deriver did not re-read it:\n%s", out)
	}
	got := getIncident(t, n, id)
	if got.Impact != "outage" {
		t.Errorf("after the replay the incident is %s, want outage", got.Impact)
	}
	code, b := n.do("GET", "/api/v1/services/search/availability?from="+from.Format(time.RFC3339)+"&to="+to.Format(time.RFC3339), "", nil)
	var fig struct {
		Availability float64 `json:"availability"`
	}
	if err := json.Unmarshal(b, &fig); code != 200 || err != nil {
		t.Fatalf("availability: %d %s", code, b)
	}
	if fmt.Sprintf("%.6f", fig.Availability) != fmt.Sprintf("%.6f", want) {
		t.Errorf("the API says %.6f after the replay, want %.6f", fig.Availability, want)
	}
}
