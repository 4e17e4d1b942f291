package collector_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/collector"
	"github.com/ninesops/nines/collector/promtest"
)

const rulesCatalog = `
squads:
  - name: payments
services:
  - name: checkout
    owner: payments
    slo_target: 99.9
    runbook_url: https://runbooks.example.com/checkout
  - name: ledger
    slo_target: 99.99
`

func parseCatalog(t *testing.T, yml string) *catalog.Catalog {
	t.Helper()
	cat, err := catalog.Parse([]byte(yml), "catalog.yml")
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	return cat
}

// burnExpr is the generated condition of one tier over one window.
func burnExpr(service, window, slo, factor string) string {
	return `(1 - min by (service) (nines_service_availability_ratio{service="` + service + `", window="` + window + `"})) / (1 - ` + slo + `) > ` + factor
}

func TestGenerateRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		windows []string
		want    []string // substrings, in this order
		not     []string
		err     string
	}{
		{
			name:    "workbook windows: four two-window tiers",
			windows: []string{"5m", "30m", "1h", "2h", "6h", "24h", "3d", "30d"},
			want: []string{
				"- name: nines-budget-checkout",
				burnExpr("checkout", "1h", "0.999", "14.4") + "\n          and\n          " + burnExpr("checkout", "5m", "0.999", "14.4"),
				burnExpr("checkout", "6h", "0.999", "6") + "\n          and\n          " + burnExpr("checkout", "30m", "0.999", "6"),
				burnExpr("checkout", "24h", "0.999", "3") + "\n          and\n          " + burnExpr("checkout", "2h", "0.999", "3"),
				burnExpr("checkout", "3d", "0.999", "1") + "\n          and\n          " + burnExpr("checkout", "6h", "0.999", "1"),
				burnExpr("checkout", "30d", "0.999", "0.75"),
				"- name: nines-budget-ledger",
				burnExpr("ledger", "1h", "0.9999", "14.4"),
			},
		},
		{
			name:    "default windows: the day paired with the hour, the hour alone",
			windows: collector.DefaultWindows(),
			want: []string{
				burnExpr("checkout", "1h", "0.999", "14.4") + "\n        for: 2m",
				burnExpr("checkout", "24h", "0.999", "3") + "\n          and\n          " + burnExpr("checkout", "1h", "0.999", "3"),
				"runbook_url: https://runbooks.example.com/checkout",
			},
			not: []string{"> 6\n", "> 1\n", "owner: \n"},
		},
		{
			name:    "windows named otherwise match by length",
			windows: []string{"60m", "720h"},
			want:    []string{burnExpr("checkout", "60m", "0.999", "14.4"), burnExpr("checkout", "720h", "0.999", "0.75")},
		},
		{
			name:    "calendar windows are not rolling",
			windows: []string{"1h", "month"},
			err:     "need the 30d window",
		},
		{name: "bad window", windows: []string{"1h", "30d", "fortnight"}, err: `window "fortnight"`},
	}
	cat := parseCatalog(t, rulesCatalog)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := collector.GenerateRules(cat, tc.windows)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("GenerateRules = %v, want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("GenerateRules: %v", err)
			}
			rest := string(out)
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks, or has out of order, %q:\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
			for _, n := range tc.not {
				if strings.Contains(string(out), n) {
					t.Errorf("output has %q:\n%s", n, out)
				}
			}
			again, _ := collector.GenerateRules(cat, tc.windows)
			if string(again) != string(out) {
				t.Error("two generations differ")
			}
		})
	}
}

func TestGenerateRulesEmptyCatalog(t *testing.T) {
	t.Parallel()
	out, err := collector.GenerateRules(catalog.Empty(0.999), collector.DefaultWindows())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "groups: []") {
		t.Errorf("empty catalog: %s", out)
	}
}

// burnTest proves with promtool what the short window is for: the page
// fires when both windows burn, and stops as soon as the short one is
// clean, although the hour still holds the outage.
const burnTest = `rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - name: page fires on both windows and stops with the short one
    interval: 1m
    input_series:
      - series: 'nines_service_availability_ratio{service="checkout", owner="payments", window="1h"}'
        values: '1 1 0.9x30'
      - series: 'nines_service_availability_ratio{service="checkout", owner="payments", window="5m"}'
        values: '1 1 0.5x8 1x22'
      - series: 'nines_service_availability_ratio{service="ledger", window="1h"}'
        values: '1x32'
      - series: 'nines_service_availability_ratio{service="ledger", window="5m"}'
        values: '1x32'
    alert_rule_test:
      - eval_time: 6m
        alertname: NinesServiceErrorBudgetBurn
        exp_alerts:
          - exp_labels: {service: checkout, owner: payments, severity: critical, window: 1h, nines_rule: NinesServiceErrorBudgetBurn}
            exp_annotations:
              summary: checkout is burning its error budget 100.0 times as fast as its SLO allows
              description: 'checkout (owner payments, SLO 99.9%) was unavailable over the last 1h and the last 5m more than 14.4 times what its SLO allows: at this rate 2% of its 30d error budget goes in 1h.'
              runbook_url: https://runbooks.example.com/checkout
      - eval_time: 12m
        alertname: NinesServiceErrorBudgetBurn
        exp_alerts: []
`

func TestGeneratedRulesPassPromtool(t *testing.T) {
	t.Parallel()
	promtool := promtest.Promtool(t)
	out, err := collector.GenerateRules(parseCatalog(t, rulesCatalog), []string{"5m", "1h", "30d"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, content := range map[string]string{"rules.yml": string(out), "rules.test.yml": burnTest} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"check", "rules", "rules.yml"}, {"test", "rules", "rules.test.yml"}} {
		cmd := exec.CommandContext(t.Context(), promtool, args...)
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s\nrules:\n%s", strings.Join(args, " "), err, b, out)
		}
	}
}
