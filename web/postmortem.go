package web

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/incidents"
)

// Postmortem is the draft of an incident's postmortem: what nines knows,
// with empty sections for what people add in the meeting.
type Postmortem struct {
	ID        string     `json:"id"`
	Title     string     `json:"title"`
	Service   string     `json:"service"`
	Owner     string     `json:"owner"`
	Impact    string     `json:"impact"`
	State     string     `json:"state"`
	StartedAt time.Time  `json:"started_at"`
	AckedAt   *time.Time `json:"acknowledged_at"`
	EndedAt   *time.Time `json:"resolved_at"`
	Summary   string     `json:"summary"`
	// DowntimeByImpactSeconds is how long the incident was at each impact.
	DowntimeByImpactSeconds availability.ImpactSeconds `json:"downtime_by_impact_seconds"`
	// WeightedDowntimeSeconds weighs that by the configured impact weights:
	// what the incident cost the error budget.
	WeightedDowntimeSeconds float64 `json:"weighted_downtime_seconds"`
	BudgetWindow            string  `json:"error_budget_window"`
	BudgetSeconds           float64 `json:"error_budget_seconds"`
	// BudgetConsumed is the share of the window's error budget the incident
	// used.
	BudgetConsumed float64           `json:"error_budget_consumed"`
	Upstream       *IncidentRow      `json:"upstream_cause,omitempty"`
	Downstream     []IncidentRow     `json:"downstream"`
	Timeline       []incidents.Event `json:"timeline"`
	Suspects       []changes.Suspect `json:"suspects"`
	// DetectedAt is when the first alert started firing.
	DetectedAt *time.Time `json:"detected_at"`
	// TimeToAcknowledgeSeconds and TimeToMitigateSeconds run from the
	// start; null while it has not happened.
	TimeToAcknowledgeSeconds *int64 `json:"time_to_acknowledge_seconds"`
	TimeToMitigateSeconds    *int64 `json:"time_to_mitigate_seconds"`
	Markdown                 string `json:"markdown"`
}

func (p *Pages) postmortem(ctx context.Context, id string) (Postmortem, error) {
	v, err := p.incident(ctx, id)
	if err != nil {
		return Postmortem{}, err
	}
	in := v.Incident
	pm := Postmortem{
		ID: in.ID, Title: in.Title, Service: in.Service, Owner: v.Owner, Impact: in.Impact, State: in.State,
		StartedAt: *in.StartedAt, AckedAt: in.AcknowledgedAt, EndedAt: in.ResolvedAt,
		Upstream: v.Upstream, Downstream: v.Downstream, Timeline: in.Timeline, Suspects: v.Suspects,
	}
	weights := p.o.Availability.Config().ImpactWeights
	for _, s := range v.Segments {
		switch s.impact {
		case incidents.ImpactOutage:
			pm.DowntimeByImpactSeconds.Outage += s.Seconds()
		case incidents.ImpactDegraded:
			pm.DowntimeByImpactSeconds.Degraded += s.Seconds()
		default:
			pm.DowntimeByImpactSeconds.None += s.Seconds()
		}
		pm.WeightedDowntimeSeconds += weights.Weight(s.impact) * float64(s.Seconds())
	}
	// The budget comes from the figures computed for every service.
	figs, _, err := p.serviceFigures(ctx, p.o.Catalog(), in.Service)
	if err != nil {
		return pm, err
	}
	prim, err := p.primary()
	if err != nil {
		return pm, err
	}
	f := figs[prim]
	pm.BudgetWindow, pm.BudgetSeconds = f.Window, f.ErrorBudgetSeconds
	if f.ErrorBudgetSeconds > 0 {
		pm.BudgetConsumed = pm.WeightedDowntimeSeconds / f.ErrorBudgetSeconds
	}
	for _, a := range in.Alerts {
		if a.StartsAt != nil && (pm.DetectedAt == nil || a.StartsAt.Before(*pm.DetectedAt)) {
			t := *a.StartsAt
			pm.DetectedAt = &t
		}
	}
	if in.AcknowledgedAt != nil {
		pm.TimeToAcknowledgeSeconds = ptr(int64(in.AcknowledgedAt.Sub(pm.StartedAt) / time.Second))
	}
	if in.ResolvedAt != nil {
		pm.TimeToMitigateSeconds = ptr(int64(in.ResolvedAt.Sub(pm.StartedAt) / time.Second))
	}
	pm.Summary = summary(pm)
	pm.Markdown = pm.markdown(p.Link)
	return pm, nil
}

func ptr[T any](v T) *T { return &v }

func summary(pm Postmortem) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s had %s %s", pm.Service, article(pm.Impact), pm.Impact)
	if pm.EndedAt != nil {
		fmt.Fprintf(&b, " for %s, from %s to %s.", Duration(int64(pm.EndedAt.Sub(pm.StartedAt)/time.Second)),
			pm.StartedAt.UTC().Format(timeFmt), pm.EndedAt.UTC().Format(timeFmt))
	} else {
		fmt.Fprintf(&b, " that started %s and is still open.", pm.StartedAt.UTC().Format(timeFmt))
	}
	if pm.Upstream != nil {
		fmt.Fprintf(&b, " It was caused by an incident of %s (%s).", pm.Upstream.Service, pm.Upstream.Title)
	}
	if n := len(pm.Downstream); n > 0 {
		fmt.Fprintf(&b, " It caused %d incident(s) downstream (%s).", n, strings.Join(downstreamServices(pm.Downstream), ", "))
	}
	if len(pm.Suspects) > 0 {
		fmt.Fprintf(&b, " Top suspect: %s.", pm.Suspects[0].Hint)
	}
	return b.String()
}

func article(impact string) string {
	if strings.HasPrefix(impact, "o") {
		return "an"
	}
	return "a"
}

func downstreamServices(rows []IncidentRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Service)
	}
	return out
}

const timeFmt = "2006-01-02 15:04:05 UTC"

// markdown writes the draft; link makes a page's URL.
func (pm Postmortem) markdown(link func(string) string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Postmortem: %s\n\n", mdEsc(pm.Title))
	p("Incident [%s](%s) · service %s", pm.ID, link("/incidents/"+pm.ID), mdEsc(pm.Service))
	if pm.Owner != "" {
		p(" · owner %s", mdEsc(pm.Owner))
	}
	p(" · %s · %s\n\n", pm.Impact, pm.State)
	p("_Draft generated by nines: check the figures, then fill in the empty sections._\n\n")
	p("## Summary\n\n%s\n\n", mdEsc(pm.Summary))
	p("## Impact\n\n")
	p("| | |\n| --- | --- |\n")
	p("| Outage | %s |\n| Degraded | %s |\n", Duration(pm.DowntimeByImpactSeconds.Outage), Duration(pm.DowntimeByImpactSeconds.Degraded))
	p("| Error budget consumed (%s) | %s of %s |\n", pm.BudgetWindow, Percent(pm.BudgetConsumed), Duration(int64(pm.BudgetSeconds)))
	if pm.Upstream != nil {
		p("| Upstream cause | %s: %s ([%s](%s)) |\n", mdEsc(pm.Upstream.Service), mdEsc(pm.Upstream.Title), pm.Upstream.ID, link("/incidents/"+pm.Upstream.ID))
	}
	p("\n")
	if len(pm.Downstream) > 0 {
		p("Downstream services affected:\n\n")
		for _, d := range pm.Downstream {
			p("- %s: %s, %s ([%s](%s))\n", mdEsc(d.Service), d.Impact, Duration(d.DurationSeconds), d.ID, link("/incidents/"+d.ID))
		}
		p("\n")
	}
	p("## Detection and response\n\n")
	if pm.DetectedAt != nil {
		p("- Detected (first alert): %s\n", pm.DetectedAt.UTC().Format(timeFmt))
	}
	p("- Started: %s\n", pm.StartedAt.UTC().Format(timeFmt))
	p("- Time to acknowledge: %s\n", optDuration(pm.TimeToAcknowledgeSeconds))
	p("- Time to mitigate: %s\n\n", optDuration(pm.TimeToMitigateSeconds))
	p("## Timeline\n\n")
	for _, e := range pm.Timeline {
		p("- %s · %s · %s", e.At.UTC().Format(timeFmt), e.Kind, mdEsc(e.Actor))
		if e.Text != "" {
			p(" · %s", mdEsc(e.Text))
		}
		p("\n")
	}
	p("\n## What changed (suspects)\n\n")
	if len(pm.Suspects) == 0 {
		p("No change recorded near the incident.\n")
	}
	for _, s := range pm.Suspects {
		p("- %s", mdEsc(s.Hint))
		if s.Cause {
			p(" (marked as the cause)")
		}
		p("\n")
	}
	p("\n## Causes\n\n\n## Lessons\n\n\n## Action items\n\n- [ ] \n")
	return b.String()
}

func optDuration(s *int64) string {
	if s == nil {
		return "not yet"
	}
	return Duration(*s)
}

// mdEsc keeps text from starting Markdown structures.
func mdEsc(s string) string {
	r := strings.NewReplacer("\n", " ", "|", "\\|", "[", "\\[", "]", "\\]", "<", "&lt;", ">", "&gt;", "*", "\\*", "_", "\\_", "`", "\\`")
	return r.Replace(s)
}
