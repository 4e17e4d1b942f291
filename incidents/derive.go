package incidents

import (
	"fmt"
	"sort"
	"time"
)

// This file derives a group's incidents from its alert occurrences: a pure
// function of the SET of occurrences (and of the actions people took), so
// that the order in which notifications arrive cannot change the result.
//
// Rules, applied to the set:
//   - An occurrence is (fingerprint, startsAt). Copies of one occurrence
//     merge: a resolved copy beats a firing one, and of two resolved copies
//     the earlier end wins (an end inferred from a replacement, below, is
//     never earlier than the real resolve).
//   - A fingerprint fires one occurrence at a time: an occurrence followed
//     by a later occurrence of the same fingerprint (Alertmanager replaced
//     it) ends when the later one starts, at the latest.
//   - Occurrences are taken in order of start. One that starts while the
//     current incident's period is firing (or exactly when it ended) joins
//     that period; one that starts within ReopenWindow after the period
//     ended opens a new period of the same incident (a flap); any later one
//     starts a new incident.
//   - A resolve by hand at R ends the current period at R (never before the
//     period's start): the incident is resolved, later notifications of the
//     occurrences it holds do not reopen it, and the next occurrence that
//     starts after R is a flap within the window, a new incident after it.
//   - Impact over time: for each impact, the union of the intervals of the
//     incident's occurrences of that impact, as Segments, whatever a resolve
//     by hand says: a person's resolve is a statement about the incident,
//     not about whether the service was down, so an occurrence still firing
//     after it keeps weighing (availability counts the segments) until its
//     alert resolves. The worst segment open at an instant is the
//     incident's impact then.
//   - IDs: an incident is named by its group and its first occurrence
//     (EpisodeID), so that the set decides every ID whatever the order;
//     an incident already stored keeps its ID while its first occurrence
//     stays first (Group.Known: incidents stored before this scheme, with
//     IDs from SuccessorID, keep theirs).

// Segment is a stretch of time during which an incident had alerts of one
// impact firing. Segments of different impacts overlap.
type Segment struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"` // zero while open
	Impact Impact    `json:"impact"`
}

// Action is something done to one of a group's incidents by a person (or by
// nines itself, as a cascade link): kept so that deriving the group again
// keeps it. Actions shape incidents only; their timeline events are written
// when they are taken.
type Action struct {
	Kind     EventKind // EventAcknowledged, EventResolved, EventLinked, EventUnlinked, EventNotDowntime or EventNotDowntimeWithdrawn
	Incident string
	Actor    string
	At       time.Time
	CausedBy string     // for EventLinked
	Excluded *Exclusion // for EventNotDowntime; for EventNotDowntimeWithdrawn, its At names the mark
}

// Group is what a group's incidents are derived from.
type Group struct {
	Ref GroupRef
	// Known maps the first occurrence (Alert.Key) of incidents already
	// stored to their IDs: an episode that starts with the same occurrence
	// keeps the ID.
	Known map[string]string
	// Alerts are the group's occurrences, in any order, with copies.
	Alerts []Alert
	// Actions are applied in this order.
	Actions []Action
	// Reconciled holds the keys of occurrences the reconciler resolved.
	Reconciled map[string]bool
}

// EpisodeID is the ID of the incident of a group (grouping key and
// service) whose first alert occurrence is first.
func EpisodeID(groupKey, service string, first Alert) string {
	return "inc-" + StableHash("episode", groupKey, service, first.Key())[:20]
}

// FirstOccurrence returns the occurrence an incident's alerts start with,
// in Occurrences' order (start, then fingerprint), and false for none.
func FirstOccurrence(alerts []Alert) (Alert, bool) {
	if len(alerts) == 0 {
		return Alert{}, false
	}
	first := alerts[0]
	for _, a := range alerts[1:] {
		if a.StartsAt.Before(first.StartsAt) || (a.StartsAt.Equal(first.StartsAt) && a.Fingerprint < first.Fingerprint) {
			first = a
		}
	}
	return first, true
}

// Derive returns the group's incidents, oldest first, each as a Change
// holding the whole incident (with its alerts, periods and segments), all
// its alerts and its whole derived timeline (actions' events excepted).
// Facts and UpdatedAt are left for the caller. Derive is deterministic: the
// same set of alerts and the same actions give the same result, whatever
// the order of Alerts.
func (c *Config) Derive(g Group) []Change {
	occ := Occurrences(g.Alerts)
	resolves := map[string][]Action{}
	for _, a := range g.Actions {
		if a.Kind == EventResolved {
			resolves[a.Incident] = append(resolves[a.Incident], a)
		}
	}
	var (
		builds []*build
		cur    *build
	)
	for _, a := range occ {
		s := a.StartsAt
		if cur != nil {
			cur.resolveByHand(s)
		}
		switch {
		case cur != nil && (cur.open || !s.After(cur.end)):
		case cur != nil && !s.After(cur.end.Add(c.ReopenWindow)):
			cur.newPeriod(s)
		default:
			if cur != nil {
				cur.finish()
			}
			id := g.Known[a.Key()]
			if id == "" {
				id = EpisodeID(g.Ref.GroupKey, g.Ref.Service, a)
			}
			cur = &build{id: id, resolves: resolves[id]}
			builds = append(builds, cur)
			cur.newPeriod(s)
		}
		cur.add(a)
	}
	if cur != nil {
		cur.finish()
	}
	out := make([]Change, 0, len(builds))
	for _, b := range builds {
		ch := b.incident(g)
		c.describe(ch.Incident, &Notification{}) // title and links from its first alert
		out = append(out, ch)
	}
	return out
}

// Occurrences merges copies of the same occurrence and ends occurrences
// that a later one of the same fingerprint replaced, when it starts at the
// latest. The result is sorted
// by start, then fingerprint.
func Occurrences(alerts []Alert) []Alert {
	byKey := make(map[string]Alert, len(alerts))
	for _, a := range alerts {
		if a.Status == AlertResolved {
			if a.EndsAt.Before(a.StartsAt) {
				a.EndsAt = a.StartsAt
			}
		} else {
			a.Status, a.EndsAt = AlertFiring, time.Time{}
		}
		k := a.Key()
		if old, ok := byKey[k]; !ok || supersedes(a, old) {
			byKey[k] = a
		}
	}
	out := make([]Alert, 0, len(byKey))
	for _, a := range byKey {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartsAt.Equal(out[j].StartsAt) {
			return out[i].StartsAt.Before(out[j].StartsAt)
		}
		return out[i].Fingerprint < out[j].Fingerprint
	})
	last := map[string]int{}
	for i, a := range out {
		if j, ok := last[a.Fingerprint]; ok && (out[j].Status == AlertFiring || out[j].EndsAt.After(a.StartsAt)) {
			// Also a resolved one: its end may be one inferred earlier
			// from a later occurrence, before this one was known.
			out[j].Status, out[j].EndsAt = AlertResolved, a.StartsAt
		}
		last[a.Fingerprint] = i
	}
	return out
}

// supersedes reports whether copy a of an occurrence wins over copy b.
func supersedes(a, b Alert) bool {
	switch {
	case a.Status != b.Status:
		return a.Status == AlertResolved
	case a.Status == AlertResolved && !a.EndsAt.Equal(b.EndsAt):
		return a.EndsAt.Before(b.EndsAt)
	}
	// Same state: any fixed choice keeps the result independent of order.
	return a.Impact > b.Impact || (a.Impact == b.Impact && fmt.Sprint(a.Labels) < fmt.Sprint(b.Labels))
}

// interval is an occurrence's contribution: [start, end), end zero while
// it counts open.
type interval struct {
	start, end time.Time
	impact     Impact
}

// build is an incident being derived.
type build struct {
	id       string
	alerts   []Alert
	ivs      []interval
	periods  []Period
	closedBy []string // per period, who ended it ("" while open or by alerts)
	first    []int    // per period, the index of its first alert
	open     bool
	end      time.Time // of the current period, while not open
	resolves []Action  // resolves by hand not applied yet
}

func (b *build) newPeriod(s time.Time) {
	if n := len(b.periods); n > 0 {
		b.periods[n-1].End = b.end
	}
	b.periods = append(b.periods, Period{Start: s})
	b.closedBy = append(b.closedBy, "")
	b.first = append(b.first, len(b.alerts))
	b.open, b.end = false, s
}

func (b *build) add(a Alert) {
	b.alerts = append(b.alerts, a)
	iv := interval{start: a.StartsAt, impact: a.Impact}
	if a.Status == AlertFiring {
		b.open = true
	} else {
		iv.end = a.EndsAt
		if iv.end.After(b.end) {
			b.end = iv.end
		}
	}
	b.ivs = append(b.ivs, iv)
}

// resolveByHand applies the resolves by hand made before s (clamped to the
// current period's start) that find the current period still firing.
func (b *build) resolveByHand(s time.Time) {
	var keep []Action
	p := len(b.periods) - 1
	for _, r := range b.resolves {
		at := r.At
		if at.Before(b.periods[p].Start) {
			at = b.periods[p].Start
		}
		if !s.IsZero() && !at.Before(s) {
			keep = append(keep, r)
			continue
		}
		if !b.open && !b.end.After(at) {
			continue // the alerts had ended it already
		}
		// The period ends; the occurrences' intervals (segments) do not.
		b.open, b.end = false, at
		b.closedBy[p] = r.Actor
	}
	b.resolves = keep
}

func (b *build) finish() {
	b.resolveByHand(time.Time{})
	n := len(b.periods) - 1
	if b.open {
		b.periods[n].End = time.Time{}
	} else {
		b.periods[n].End = b.end
	}
}

// incident turns the build into an incident and its derived timeline.
func (b *build) incident(g Group) Change {
	inc := &Incident{
		ID: b.id, Service: g.Ref.Service, GroupKey: g.Ref.GroupKey, Source: SourceAlertmanager,
		Alerts: b.alerts, Periods: b.periods, StartedAt: b.periods[0].Start, Flaps: len(b.periods) - 1,
	}
	inc.Segments = segments(b.ivs)
	var worstOpen, worstAll Impact
	for _, iv := range b.ivs {
		worstAll = max(worstAll, iv.impact)
		if iv.end.IsZero() {
			worstOpen = max(worstOpen, iv.impact)
		}
	}
	last := len(b.periods) - 1
	if b.open {
		inc.State, inc.Impact = StateFiring, worstOpen
	} else {
		inc.State, inc.Impact = StateResolved, worstAll
		inc.ResolvedAt = b.periods[last].End
		inc.ResolvedBy = b.closedBy[last]
		if inc.ResolvedBy == "" {
			inc.ResolvedBy = b.autoCloser(g, last)
		}
	}
	for _, a := range g.Actions {
		if a.Incident != b.id {
			continue
		}
		switch a.Kind {
		case EventAcknowledged:
			if inc.AcknowledgedAt.IsZero() || a.At.Before(inc.AcknowledgedAt) {
				inc.AcknowledgedAt, inc.AcknowledgedBy = a.At, a.Actor
			}
		case EventLinked:
			inc.CausedBy = a.CausedBy
		case EventUnlinked:
			inc.CausedBy = ""
		case EventNotDowntime:
			if a.Excluded != nil {
				inc.Excluded = withExclusion(inc.Excluded, *a.Excluded)
			}
		case EventNotDowntimeWithdrawn:
			if a.Excluded != nil {
				inc.Excluded = withoutExclusion(inc.Excluded, a.Excluded.At)
			}
		}
	}
	if inc.State == StateFiring && !inc.AcknowledgedAt.IsZero() {
		// An acknowledgement stands until the incident reopens.
		for _, a := range g.Actions {
			if a.Incident == b.id && a.Kind == EventAcknowledged && !latest(a.At, inc.StartedAt).Before(b.periods[last].Start) {
				inc.State = StateAcknowledged
			}
		}
	}
	return Change{Incident: inc, Alerts: b.alerts, Events: b.timeline(inc, g)}
}

// autoCloser names who ended period p by its alerts: the reconciler when
// it resolved the occurrence that ended last.
func (b *build) autoCloser(g Group, p int) string {
	end := b.periods[p].End
	hi := len(b.alerts)
	if p+1 < len(b.first) {
		hi = b.first[p+1]
	}
	for i := b.first[p]; i < hi; i++ {
		if a := b.alerts[i]; a.Status == AlertResolved && a.EndsAt.Equal(end) && g.Reconciled[a.Key()] {
			return ActorReconciler
		}
	}
	return ActorAlertmanager
}

// timeline derives the incident's events from its alerts and periods, with
// deterministic IDs.
func (b *build) timeline(inc *Incident, g Group) []Event {
	id := inc.ID
	opening := ImpactNone
	for _, a := range b.alerts {
		if a.StartsAt.Equal(inc.StartedAt) {
			opening = max(opening, a.Impact)
		}
	}
	events := []Event{{
		ID: EventID(id, string(EventOpened)), IncidentID: id, At: inc.StartedAt,
		Kind: EventOpened, Actor: ActorAlertmanager, Text: fmt.Sprintf("Opened with impact %s", opening),
		Impact: recorded(opening),
	}}
	for _, a := range b.alerts {
		events = append(events, alertEvent(id, EventAlertFired, a))
		if a.Status == AlertResolved {
			ev := alertEvent(id, EventAlertResolved, a)
			if g.Reconciled[a.Key()] {
				ev.Actor = ActorReconciler
				ev.Text += ", no longer active in Alertmanager"
			}
			events = append(events, ev)
		}
	}
	for p, per := range b.periods {
		if p > 0 {
			events = append(events, reopenedEvent(id, p, per.Start, b.alerts[b.first[p]]))
		}
		if per.End.IsZero() || b.closedBy[p] != "" {
			continue // open, or resolved by hand (the action's own event)
		}
		ev := resolvedEvent(id, p, per.End)
		if by := b.autoCloser(g, p); by != ActorAlertmanager {
			ev.Actor = by
			ev.Text = "Resolved by the " + by + ": none of its alerts is active in Alertmanager any more"
		}
		events = append(events, ev)
	}
	for _, ch := range impactChanges(inc.Periods, inc.Segments) {
		events = append(events, Event{
			ID: EventID(id, string(EventImpactChanged), fmt.Sprint(ch.at.UnixMilli())), IncidentID: id, At: ch.at,
			Kind: EventImpactChanged, Actor: ActorAlertmanager,
			Text: fmt.Sprintf("Impact changed from %s to %s", ch.from, ch.to), Impact: recorded(ch.to),
		})
	}
	return events
}

// SegmentsOf computes the impact segments of an incident from its alerts,
// each counted only within the incident's periods: for versions built
// without Derive (a resolve by the reconciler on its own, a merge of
// replicas' versions, an incident read from the store).
func SegmentsOf(alerts []Alert, periods []Period) []Segment {
	var ivs []interval
	for _, a := range alerts {
		end := a.EndsAt
		if a.Status != AlertResolved {
			end = time.Time{}
		}
		for _, p := range periods {
			s, e := a.StartsAt, end
			if s.Before(p.Start) {
				s = p.Start
			}
			if !p.End.IsZero() && (e.IsZero() || e.After(p.End)) {
				e = p.End
			}
			if (e.IsZero() || e.After(s)) && (p.End.IsZero() || s.Before(p.End)) {
				ivs = append(ivs, interval{start: s, end: e, impact: a.Impact})
			}
		}
	}
	return segments(ivs)
}

// segments returns, for each impact, the union of the intervals of that
// impact, sorted by start then impact. Empty intervals are left out.
func segments(ivs []interval) []Segment {
	var out []Segment
	for _, imp := range Impacts {
		var ps []Period
		for _, iv := range ivs {
			if iv.impact == imp && (iv.end.IsZero() || iv.end.After(iv.start)) {
				ps = addPeriod(ps, Period{Start: iv.start, End: iv.end})
			}
		}
		for _, p := range ps {
			out = append(out, Segment{Start: p.Start, End: p.End, Impact: imp})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

type impactChange struct {
	at       time.Time
	from, to Impact
}

// impactChanges lists the instants inside a period (not at its start) when
// the worst open segment's impact changes.
func impactChanges(periods []Period, segs []Segment) []impactChange {
	var out []impactChange
	for _, p := range periods {
		// Candidate instants: segment bounds strictly inside the period.
		var ts []time.Time
		for _, s := range segs {
			for _, t := range []time.Time{s.Start, s.End} {
				if !t.IsZero() && t.After(p.Start) && (p.End.IsZero() || t.Before(p.End)) {
					ts = append(ts, t)
				}
			}
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		prev := WorstAt(segs, p.Start)
		for i, t := range ts {
			if i > 0 && t.Equal(ts[i-1]) {
				continue
			}
			if now := WorstAt(segs, t); now != prev && now >= 0 && prev >= 0 {
				out = append(out, impactChange{at: t, from: Impact(prev), to: Impact(now)})
				prev = now
			}
		}
	}
	return out
}

// WorstAt returns the worst impact among the segments open at t, or -1
// when none is.
func WorstAt(segs []Segment, t time.Time) Impact {
	worst := Impact(-1)
	for _, s := range segs {
		if !t.Before(s.Start) && (s.End.IsZero() || t.Before(s.End)) {
			worst = max(worst, s.Impact)
		}
	}
	return worst
}
