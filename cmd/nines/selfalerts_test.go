package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/alerts"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/collector/promtest"
)

// shippedRuleFiles are the alerting rules nines ships and generates.
var shippedRuleFiles = []string{"deploy/prometheus/nines-rules.yml", "deploy/prometheus/generated/budget-rules.yml"}

// TestShippedRulesMarkTheirAlerts: every alerting rule nines ships or
// generates sets nines_rule to its own name, which is how nines' webhook
// knows its own alerts (alerts.SelfAlertLabel).
func TestShippedRulesMarkTheirAlerts(t *testing.T) {
	for _, f := range shippedRuleFiles {
		var doc struct {
			Groups []struct {
				Rules []struct {
					Alert  string            `yaml:"alert"`
					Labels map[string]string `yaml:"labels"`
				} `yaml:"rules"`
			} `yaml:"groups"`
		}
		decodeYAML(t, f, &doc)
		n := 0
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				n++
				if got := r.Labels[alerts.SelfAlertLabel]; got != r.Alert {
					t.Errorf("%s: alert %s has %s=%q, want %q", f, r.Alert, alerts.SelfAlertLabel, got, r.Alert)
				}
			}
		}
		if n == 0 {
			t.Errorf("%s: no alerting rules", f)
		}
	}
}

// readmeReceiverSnippet is the Alertmanager configuration README.md tells
// people to copy (the first yaml block under "## Configure Alertmanager",
// as deploy/check reads it).
func readmeReceiverSnippet(t *testing.T) string {
	t.Helper()
	readme := string(readRepoFile(t, "README.md"))
	_, rest, ok := strings.Cut(readme, "\n## Configure Alertmanager\n")
	if !ok {
		t.Fatal("README.md: no section ## Configure Alertmanager")
	}
	_, rest, ok = strings.Cut(rest, "```yaml\n")
	snippet, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md: no yaml block under ## Configure Alertmanager")
	}
	return snippet
}

// TestAcceptanceSelfAlertsNeverIncidents runs Debian's Prometheus with the
// shipped rules (their `for` shortened to 0s) and two real Alertmanagers:
// one configured with README.md's receiver snippet as it stands, one that
// routes everything to nines. nines' own alert (NinesDown, critical, on a
// nines instance that is down) fires in both; the snippet keeps it away
// from nines, and where it does reach nines' webhook it is dropped: it
// never becomes an incident, while an ordinary alert through the same
// Alertmanager does.
func TestAcceptanceSelfAlertsNeverIncidents(t *testing.T) {
	dsn := chtest.Database(t)
	promtest.Prometheus(t)
	alertmanagerBinary(t)
	n := startNines(t, dsn)
	token := writeFile(t, t.TempDir(), "nines-token", "s3cr3t-token\n")

	// The README's snippet, pointed at this nines and token file.
	snippet := readmeReceiverSnippet(t)
	for _, s := range []string{"http://nines:9095", "/etc/alertmanager/nines-token"} {
		if !strings.Contains(snippet, s) {
			t.Fatalf("README.md receiver snippet no longer holds %q; update this test:\n%s", s, snippet)
		}
	}
	snippet = strings.NewReplacer("http://nines:9095", n.base, "/etc/alertmanager/nines-token", token).Replace(snippet)
	amReadme := startAlertmanagerConfig(t, snippet)
	// A route that forgets to keep nines' alerts out: everything to nines.
	amAll := startAlertmanager(t, n.base)

	forClause := regexp.MustCompile(`(?m)^(\s+for:) \S+$`)
	files := map[string]string{}
	var ruleNames []string
	for i, f := range shippedRuleFiles {
		name := fmt.Sprintf("rules-%d.yml", i)
		files[name] = forClause.ReplaceAllString(string(readRepoFile(t, f)), "$1 0s")
		ruleNames = append(ruleNames, strconv.Quote(name))
	}
	down := freePort(t) // nothing listens: this nines instance is down
	prom := promtest.StartConfig(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q, %q]
rule_files: [%s]
scrape_configs:
  - job_name: nines
    static_configs:
      - targets: [%q, %q]
`, strings.TrimPrefix(amReadme, "http://"), strings.TrimPrefix(amAll, "http://"), strings.Join(ruleNames, ", "),
		strings.TrimPrefix(n.base, "http://"), down), files)
	promtest.Await(t, prom, `ALERTS{alertname="NinesDown", alertstate="firing", nines_rule="NinesDown"}`, 1)

	// Both Alertmanagers hold the alert; the snippet routes it away from
	// nines, the other to nines.
	for am, want := range map[string]string{amReadme: "blackhole", amAll: "nines"} {
		eventually(t, 30*time.Second, "NinesDown in Alertmanager "+am, func() bool {
			return slices.Equal(amReceivers(t, am, "NinesDown"), []string{want})
		})
	}
	// The webhook got it from the second.
	eventually(t, 30*time.Second, "nines' webhook to receive its own alert", func() bool {
		return metricValue(t, n.base, `nines_webhook_alerts_received_total{status="firing"}`) >= 1
	})

	// The same Alertmanager delivers an ordinary alert, which does open an
	// incident: the pipeline works, and nines' own alert is still not one.
	postAlerts(t, amAll, []map[string]any{{
		"labels":   map[string]string{"alertname": "CheckoutDown", "service": "checkout", "severity": "critical"},
		"startsAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
	}})
	var page incidentsPage
	eventually(t, 30*time.Second, "the checkout incident", func() bool {
		page = n.incidents()
		return len(page.Incidents) > 0
	})
	time.Sleep(3 * time.Second) // a group_interval: any re-send of NinesDown arrives meanwhile
	page = n.incidents()
	if len(page.Incidents) != 1 || page.Incidents[0].Service != "checkout" {
		t.Errorf("incidents %+v, want the checkout incident alone", page.Incidents)
	}
	if v := metricValue(t, n.base, "nines_notifications_self_alerts_total"); v < 1 {
		t.Errorf("nines_notifications_self_alerts_total = %v, want at least 1", v)
	}
}

// amReceivers are the receivers Alertmanager routes the active alert
// named alertname to (nil while it has none).
func amReceivers(t *testing.T, am, alertname string) []string {
	t.Helper()
	resp, err := http.Get(am + "/api/v2/alerts?filter=" + `alertname="` + alertname + `"`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []struct {
		Receivers []struct {
			Name string `json:"name"`
		} `json:"receivers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range got {
		for _, r := range a.Receivers {
			out = append(out, r.Name)
		}
	}
	return out
}

// metricValue reads one sample from nines' /metrics, named as exposed
// (name{labels}); -1 when it is missing.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}
