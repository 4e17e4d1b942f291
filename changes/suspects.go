package changes

import (
	"fmt"
	"sort"
	"time"

	"github.com/ninesops/nines/incidents"
)

// DefaultLookback is how long before an incident's start changes are
// suspects.
const DefaultLookback = 2 * time.Hour

// Suspect is a change that may have caused an incident.
type Suspect struct {
	Change Change `json:"change"`
	// SameService is true for changes to the incident's own service;
	// false for changes to a service it depends on.
	SameService bool `json:"same_service"`
	// BeforeSeconds is how long before the incident started the change
	// happened (negative: during the incident).
	BeforeSeconds int64 `json:"before_seconds"`
	// Flags: partial_rollout, failed, rolled_back, marked_cause.
	Flags []string `json:"flags"`
	// Cause is true when a person marked the change as the cause.
	Cause bool `json:"cause"`
	// Hint is one line for people: "deployed 12m before: checkout
	// v1.4.2 at 50% — consider rollback".
	Hint string `json:"hint"`
}

// Rank lists the changes that may have caused an incident on service that
// started at start: changes to the service or to the services it depends
// on (upstream) from lookback before the start until end (the incident's
// end, or now while it is open). Rollbacks are remedies, not suspects.
// Order: changes marked as the cause first, then the service's own
// changes, then the most recent first.
func Rank(service string, start, end time.Time, upstream []string, cs []Change, lookback time.Duration, causes map[string]bool) []Suspect {
	if lookback <= 0 {
		lookback = DefaultLookback
	}
	related := map[string]bool{service: true}
	for _, u := range upstream {
		related[u] = true
	}
	from := start.Add(-lookback)
	var out []Suspect
	for _, c := range cs {
		if c.Kind == KindRollback || !related[c.Service] || c.At.Before(from) || c.At.After(end) {
			continue
		}
		s := Suspect{
			Change: c, SameService: c.Service == service,
			BeforeSeconds: int64(start.Sub(c.At) / time.Second),
			Cause:         causes[c.ID],
			Flags:         []string{},
		}
		if c.Partial() {
			s.Flags = append(s.Flags, "partial_rollout")
		}
		switch c.Status {
		case StatusFailed:
			s.Flags = append(s.Flags, "failed")
		case StatusRolledBack:
			s.Flags = append(s.Flags, "rolled_back")
		}
		if s.Cause {
			s.Flags = append(s.Flags, "marked_cause")
		}
		s.Hint = hint(s)
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Cause != b.Cause {
			return a.Cause
		}
		if a.SameService != b.SameService {
			return a.SameService
		}
		if !a.Change.At.Equal(b.Change.At) {
			return a.Change.At.After(b.Change.At)
		}
		return a.Change.ID < b.Change.ID
	})
	return out
}

// hint says in one line what the change was, when, and what to consider.
func hint(s Suspect) string {
	verb := map[Kind]string{
		KindDeploy: "deployed", KindConfig: "config changed", KindFeatureFlag: "flag changed", KindScale: "scaled",
	}[s.Change.Kind]
	when := incidents.FormatDuration(time.Duration(s.BeforeSeconds) * time.Second)
	if s.BeforeSeconds >= 0 {
		when += " before"
	} else {
		when = incidents.FormatDuration(-time.Duration(s.BeforeSeconds)*time.Second) + " after the start"
	}
	h := fmt.Sprintf("%s %s: %s", verb, when, s.Change.Label())
	switch {
	case s.Change.Status == StatusRolledBack:
		h += " — already rolled back"
	case s.Change.Kind == KindFeatureFlag:
		h += " — consider turning it off"
	case s.Change.Kind == KindDeploy || s.Change.Kind == KindConfig:
		h += " — consider rollback"
	}
	return h
}
