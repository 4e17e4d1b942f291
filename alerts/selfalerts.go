package alerts

import (
	"slices"

	"github.com/ninesops/nines/incidents"
)

// SelfAlertLabel marks the alerts of nines' own rules: every rule in
// deploy/prometheus/nines-rules.yml and every rule `nines rules generate`
// writes sets it to the rule's name. Such an alert is about nines or about
// the figures nines computes; made into an incident it would feed the
// figures it is about (an error budget alert would burn the budget that
// raised it, and keep itself firing). The intake therefore never opens an
// incident from one: the webhook drops them from every notification
// (counted by nines_notifications_self_alerts_total, logged at debug) and
// the reconciler never feeds them. Alertmanager should not route them to
// nines in the first place (README, "Configure Alertmanager"); this is the
// backstop for a route that does.
const SelfAlertLabel = "nines_rule"

// isSelfAlert tells whether labels belong to an alert of nines' own rules.
func isSelfAlert(labels map[string]string) bool { return labels[SelfAlertLabel] != "" }

// selfRule returns the rule an alert's labels name under SelfAlertLabel,
// or "" for an alert not of nines' own rules.
func selfRule(labels []incidents.Pair) string {
	for _, l := range labels {
		if l.Name == SelfAlertLabel {
			return l.Value
		}
	}
	return ""
}

// dropSelfAlerts removes the alerts of nines' own rules from w and returns
// how many it removed and the rule of the first one.
func dropSelfAlerts(w *webhook) (dropped int, rule string) {
	for _, a := range w.alerts {
		if r := selfRule(a.Labels); r != "" {
			if dropped == 0 {
				rule = r
			}
			dropped++
		}
	}
	if dropped > 0 {
		w.alerts = slices.DeleteFunc(w.alerts, func(a incidents.PairAlert) bool { return selfRule(a.Labels) != "" })
	}
	return dropped, rule
}
