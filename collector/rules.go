package collector

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ninesops/nines/alerts"
	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
)

// Alert names of the generated rules. They start with "Nines" so that
// Alertmanager configurations that keep nines' own alerts out of nines'
// webhook (alertname =~ "Nines.*") keep these out too, and differ from the
// generic figure alerts of deploy/prometheus/nines-rules.yml.
const (
	AlertBudgetBurn = "NinesServiceErrorBudgetBurn"
	AlertBudgetLow  = "NinesServiceErrorBudgetLow"
)

// budgetPeriod is the period the error budget is meant over: the burn-rate
// factors below spend a 30-day budget, and the budget alert watches it. A
// 30-day rolling window ("30d", or "720h") must be among the collector's.
const budgetPeriod = 30 * 24 * time.Hour

// budgetLowSpent is the share of the budget spent that makes the budget
// alert fire: 75% spent, 25% left.
const budgetLowSpent = 0.75

// burnTier is one multi-window burn-rate condition: the error rate over
// the long window and over the short one both exceed factor × (1 − SLO).
// The long window makes the alert significant, the short one makes it stop
// soon after the burning does.
type burnTier struct {
	severity    string
	long, short time.Duration
	factor      float64
	budgetShare string // of a 30-day budget, spent by the long window at the factor
	forDur      string
}

// burnTiers are the Google SRE workbook's (chapter 5, "Alerting on SLOs")
// for a 30-day budget: pages at 2% of the budget in an hour and 5% in six
// hours, tickets at 10% in a day and 10% in three days.
func burnTiers() []burnTier {
	return []burnTier{
		{"critical", time.Hour, 5 * time.Minute, 14.4, "2%", "2m"},
		{"critical", 6 * time.Hour, 30 * time.Minute, 6, "5%", "5m"},
		{"warning", 24 * time.Hour, 2 * time.Hour, 3, "10%", "15m"},
		{"warning", 72 * time.Hour, 6 * time.Hour, 1, "10%", "1h"},
	}
}

// rollingWindows maps the rolling windows among names (already normalized)
// to their durations; calendar windows ("month", "previous-week") have no
// fixed length and are left out.
func rollingWindows(names []string) map[time.Duration]string {
	out := map[time.Duration]string{}
	a := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	b := a.Add(37*24*time.Hour + 5*time.Hour + 7*time.Minute)
	for _, name := range names {
		wa, errA := availability.ParseWindow(name, a, time.UTC)
		wb, errB := availability.ParseWindow(name, b, time.UTC)
		// A rolling window ends now and has the same length whenever now is.
		if errA == nil && errB == nil && wa.To.Equal(a) && wa.Duration() == wb.Duration() {
			if _, dup := out[wa.Duration()]; !dup {
				out[wa.Duration()] = name
			}
		}
	}
	return out
}

// burnRule is one tier as it applies to the exported windows.
type burnRule struct {
	burnTier
	longName, shortName string // shortName empty: no short window exported
}

// planBurnRules picks the tiers whose long window the collector exports,
// each with the workbook's short window if exported, else the longest
// exported window at most a twelfth of the long one (the workbook's ratio),
// else none: then the alert stops only once the long window's burn rate
// has fallen below the factor.
func planBurnRules(windows []string) []burnRule {
	rolling := rollingWindows(windows)
	var out []burnRule
	for _, tier := range burnTiers() {
		long, ok := rolling[tier.long]
		if !ok {
			continue
		}
		r := burnRule{burnTier: tier, longName: long}
		if short, ok := rolling[tier.short]; ok {
			r.shortName = short
		} else {
			var best time.Duration
			for d, name := range rolling {
				if d <= tier.long/12 && d > best {
					best, r.shortName = d, name
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// Rule file structure, as Prometheus reads it.
type (
	ruleFile struct {
		Groups []ruleGroup `yaml:"groups"`
	}
	ruleGroup struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	}
	rule struct {
		Alert       string            `yaml:"alert"`
		Expr        literal           `yaml:"expr"`
		For         string            `yaml:"for,omitempty"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
)

// literal is a string written as a YAML block scalar (|), for PromQL.
type literal string

// MarshalYAML implements yaml.Marshaler.
func (l literal) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Style: yaml.LiteralStyle, Value: string(l)}, nil
}

// GenerateRules writes Prometheus alerting rules for every service of the
// catalog, over the windows the collector exports (normalized, as
// NormalizeWindows returns them):
//
//   - NinesServiceErrorBudgetBurn: multi-window, multi-burn-rate alerts
//     (severity critical for pages, warning for tickets) for each tier of
//     the SRE workbook whose long window is exported;
//   - NinesServiceErrorBudgetLow: more than 75% of the 30-day error budget
//     spent (severity warning).
//
// Each rule bakes in the service's SLO target from the catalog and carries
// its owner, so the rules must be regenerated when the catalog changes.
// The output is deterministic.
func GenerateRules(cat *catalog.Catalog, windows []string) ([]byte, error) {
	windows, err := NormalizeWindows(windows)
	if err != nil {
		return nil, err
	}
	budgetWindow, ok := rollingWindows(windows)[budgetPeriod]
	if !ok {
		return nil, fmt.Errorf("the budget rules need the 30d window among the collector's windows (%s)", strings.Join(windows, ","))
	}
	plan := planBurnRules(windows)
	if len(plan) == 0 {
		return nil, errors.New("the burn-rate rules need one of the windows 1h, 6h, 24h or 72h (3d) among the collector's windows")
	}

	var file ruleFile
	for _, svc := range cat.Services() {
		g := ruleGroup{Name: "nines-budget-" + svc.Name}
		for _, r := range plan {
			g.Rules = append(g.Rules, burnAlert(svc, r, budgetWindow))
		}
		g.Rules = append(g.Rules, budgetAlert(svc, budgetWindow))
		file.Groups = append(file.Groups, g)
	}
	if len(file.Groups) == 0 {
		file.Groups = []ruleGroup{} // "groups: []", still a valid rule file
	}

	var buf bytes.Buffer
	buf.WriteString(rulesHeader(windows, plan, budgetWindow))
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(file); err != nil {
		return nil, fmt.Errorf("encode rules: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode rules: %w", err)
	}
	return buf.Bytes(), nil
}

// burnRateExpr is the PromQL for a service's burn rate over a window: the
// share of the window it was unavailable, over the share its SLO allows.
// min by (service) keeps the worst of several replicas and drops the
// owner label, which the rule sets from the catalog.
func burnRateExpr(service, window string, slo float64) string {
	return fmt.Sprintf(`(1 - min by (service) (%s{service=%s, window=%s})) / (1 - %s)`,
		MetricAvailability, strconv.Quote(service), strconv.Quote(window), formatFloat(slo))
}

func burnAlert(svc catalog.Service, r burnRule, budgetWindow string) rule {
	factor := formatFloat(r.factor)
	expr := burnRateExpr(svc.Name, r.longName, svc.SLOTarget) + " > " + factor
	windows := "the last " + r.longName
	if r.shortName != "" {
		expr += "\nand\n" + burnRateExpr(svc.Name, r.shortName, svc.SLOTarget) + " > " + factor
		windows += " and the last " + r.shortName
	}
	return rule{
		Alert:  AlertBudgetBurn,
		Expr:   literal(expr + "\n"),
		For:    r.forDur,
		Labels: ruleLabels(AlertBudgetBurn, svc, r.severity, r.longName),
		Annotations: ruleAnnotations(svc,
			fmt.Sprintf(`%s is burning its error budget {{ $value | printf "%%.1f" }} times as fast as its SLO allows`, svc.Name),
			fmt.Sprintf("%s (owner %s, SLO %s) was unavailable over %s more than %s times what its SLO allows: "+
				"at this rate %s of its %s error budget goes in %s.",
				svc.Name, orNone(svc.Owner), catalog.Percent(svc.SLOTarget), windows, factor, r.budgetShare, budgetWindow, r.longName)),
	}
}

func budgetAlert(svc catalog.Service, budgetWindow string) rule {
	return rule{
		Alert:  AlertBudgetLow,
		Expr:   literal(burnRateExpr(svc.Name, budgetWindow, svc.SLOTarget) + " > " + formatFloat(budgetLowSpent) + "\n"),
		For:    "15m",
		Labels: ruleLabels(AlertBudgetLow, svc, "warning", budgetWindow),
		Annotations: ruleAnnotations(svc,
			fmt.Sprintf("%s has spent {{ $value | humanizePercentage }} of its %s error budget", svc.Name, budgetWindow),
			fmt.Sprintf("%s (owner %s, SLO %s) has less than %s of the downtime its SLO allows over %s left.",
				svc.Name, orNone(svc.Owner), catalog.Percent(svc.SLOTarget), catalog.Percent(1-budgetLowSpent), budgetWindow)),
	}
}

// ruleLabels are the labels of a rule raising alert. SelfAlertLabel marks
// it as nines' own, so that nines' webhook never makes an incident of it.
func ruleLabels(alert string, svc catalog.Service, severity, window string) map[string]string {
	// service is in the expression's result too; as a rule label it keeps
	// the rules of two services with one owner apart for promtool's lint.
	l := map[string]string{"service": svc.Name, "severity": severity, "window": window, alerts.SelfAlertLabel: alert}
	if svc.Owner != "" {
		l["owner"] = svc.Owner
	}
	return l
}

func ruleAnnotations(svc catalog.Service, summary, description string) map[string]string {
	a := map[string]string{"summary": summary, "description": description}
	if svc.RunbookURL != "" {
		a["runbook_url"] = svc.RunbookURL
	}
	return a
}

func rulesHeader(windows []string, plan []burnRule, budgetWindow string) string {
	var b strings.Builder
	b.WriteString(`# Code generated by "nines rules generate"; DO NOT EDIT.
#
# Error budget alerts for every service of the catalog, over the
# availability nines' collector exports (` + MetricAvailability + `).
# Each rule holds the service's SLO target and owner from the catalog:
# regenerate after changing the catalog or the collector's windows.
#
# Burn rate = (1 - availability over a window) / (1 - SLO target); at 1 the
# ` + budgetWindow + ` error budget lasts exactly ` + budgetWindow + `. Tiers (Google SRE workbook, "Alerting
# on SLOs"), with the windows the collector exported when generated
# (--collector.windows=` + strings.Join(windows, ",") + `):
`)
	for _, r := range plan {
		short := "no shorter window exported: the alert stops once the " + r.longName + " rate falls"
		if r.shortName != "" {
			short = "and over " + r.shortName
		}
		fmt.Fprintf(&b, "#   %-8s burn rate > %s over %s, %s\n", r.severity, formatFloat(r.factor), r.longName, short)
	}
	b.WriteString(`#   warning  more than ` + catalog.Percent(budgetLowSpent) + ` of the ` + budgetWindow + ` budget spent (` + AlertBudgetLow + `)
# Export the short windows too (e.g. --collector.windows=5m,30m,1h,2h,6h,24h,3d,7d,30d)
# for every tier with both of its windows.
`)
	return b.String()
}

// formatFloat writes a float as PromQL and people read it: 0.9995, 14.4.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
