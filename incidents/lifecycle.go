package incidents

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file holds people's actions (acknowledge, resolve, note, open,
// link) as pure functions of (incident, input, now), and the older
// incremental merge that the reconciler's fallback and the replica merge
// (join, settle) still use. How notifications become incidents is
// derive.go: a pure function of the set of a group's alert occurrences.
//
//   - An incident read from the store is made to agree with its alerts
//     (settle).

// merge adds alerts to inc and recomputes its state. isNew marks an
// incident that is being opened by these alerts.
func (c *Config) merge(inc *Incident, isNew bool, alerts []Alert, n *Notification, now time.Time) (Change, bool) {
	ch := Change{Incident: inc}
	wasResolved := !isNew && inc.State == StateResolved
	index := make(map[string]int, len(inc.Alerts))
	for i, a := range inc.Alerts {
		index[a.Key()] = i
	}
	sorted := append([]Alert(nil), alerts...)
	sort.Slice(sorted, func(i, j int) bool {
		if !sorted[i].StartsAt.Equal(sorted[j].StartsAt) {
			return sorted[i].StartsAt.Before(sorted[j].StartsAt)
		}
		return sorted[i].Fingerprint < sorted[j].Fingerprint
	})
	var newFiring []Alert
	for _, a := range sorted {
		if i, ok := index[a.Key()]; ok {
			old := &inc.Alerts[i]
			if old.Status == AlertFiring && a.Status == AlertResolved {
				old.Status = AlertResolved
				old.EndsAt = a.EndsAt
				inc.Facts++
				ch.Alerts = append(ch.Alerts, *old)
				ch.Events = append(ch.Events, alertEvent(inc.ID, EventAlertResolved, *old))
				// Its interval is already in the periods, open; the
				// incident's resolve closes it.
			}
			continue
		}
		index[a.Key()] = len(inc.Alerts)
		inc.Alerts = append(inc.Alerts, a)
		ch.Alerts = append(ch.Alerts, a)
		ch.Events = append(ch.Events, alertEvent(inc.ID, EventAlertFired, a))
		inc.Facts++
		if a.Status == AlertResolved {
			inc.Facts++
			ch.Events = append(ch.Events, alertEvent(inc.ID, EventAlertResolved, a))
			inc.Periods = addPeriod(inc.Periods, Period{Start: a.StartsAt, End: a.EndsAt})
		} else {
			newFiring = append(newFiring, a)
		}
	}
	if n.TruncatedAlerts > inc.TruncatedAlerts {
		inc.TruncatedAlerts = n.TruncatedAlerts
		inc.Facts++
		ch.Events = append(ch.Events, Event{
			ID: EventID(inc.ID, string(EventTruncated), fmt.Sprint(n.TruncatedAlerts)), IncidentID: inc.ID,
			At: n.ReceivedAt, Kind: EventTruncated, Actor: ActorAlertmanager,
			Text: fmt.Sprintf("Alertmanager left out %d alerts of this group (max_alerts): the alert list is incomplete", n.TruncatedAlerts),
		})
	}
	if !isNew && len(ch.Alerts) == 0 && len(ch.Events) == 0 {
		return Change{}, false
	}

	// Reopen: a resolved incident with new firing alerts flaps back open.
	if wasResolved && len(newFiring) > 0 {
		at := newFiring[0].StartsAt
		inc.Flaps++
		inc.State = StateFiring
		inc.ResolvedAt, inc.ResolvedBy = time.Time{}, ""
		ch.Events = append(ch.Events, reopenedEvent(inc.ID, inc.Flaps, at, newFiring[0]))
	}
	for _, a := range newFiring {
		// Open intervals only count while the incident is open: after a
		// resolve by hand, still-firing alerts no longer add downtime.
		if inc.State != StateResolved || isNew {
			inc.Periods = addPeriod(inc.Periods, Period{Start: a.StartsAt})
		}
	}

	firing, worstFiring, worstAll := 0, ImpactNone, ImpactNone
	var lastEnd time.Time
	for _, a := range inc.Alerts {
		worstAll = max(worstAll, a.Impact)
		if a.Status == AlertFiring {
			firing++
			worstFiring = max(worstFiring, a.Impact)
		} else if a.EndsAt.After(lastEnd) {
			lastEnd = a.EndsAt
		}
	}
	oldImpact := inc.Impact
	switch {
	case firing > 0:
		inc.Impact = worstFiring
	case isNew:
		inc.Impact = worstAll
	}
	if isNew {
		inc.State = StateFiring
		if firing == 0 {
			inc.State = StateResolved
		}
		ch.Events = append([]Event{{
			ID: EventID(inc.ID, string(EventOpened)), IncidentID: inc.ID, At: inc.StartedAt,
			Kind: EventOpened, Actor: ActorAlertmanager,
			Text: fmt.Sprintf("Opened with impact %s", inc.Impact), Impact: recorded(inc.Impact),
		}}, ch.Events...)
	} else if inc.Impact != oldImpact && inc.State.Open() {
		ch.Events = append(ch.Events, Event{
			ID: EventID(inc.ID, string(EventImpactChanged), fmt.Sprint(inc.Facts)), IncidentID: inc.ID, At: n.ReceivedAt,
			Kind: EventImpactChanged, Actor: ActorAlertmanager,
			Text: fmt.Sprintf("Impact changed from %s to %s", oldImpact, inc.Impact), Impact: recorded(inc.Impact),
		})
	}
	if firing == 0 && (inc.State.Open() || isNew) {
		end := lastEnd
		inc.State = StateResolved
		inc.ResolvedAt = end
		inc.ResolvedBy = ActorAlertmanager
		inc.Periods = closePeriods(inc.Periods, end)
		ch.Events = append(ch.Events, resolvedEvent(inc.ID, inc.Flaps, end))
	} else if inc.State == StateResolved && inc.ResolvedBy == ActorAlertmanager && lastEnd.After(inc.ResolvedAt) {
		// A late resolve of an occurrence that overlapped the incident.
		inc.ResolvedAt = lastEnd
	}
	if len(inc.Periods) > 0 {
		inc.StartedAt = inc.Periods[0].Start
	}
	inc.Segments = SegmentsOf(inc.Alerts, inc.Periods)
	c.describe(inc, n)
	inc.UpdatedAt = now
	return ch, true
}

// describe fills the incident's title and links from the notification.
func (c *Config) describe(inc *Incident, n *Notification) {
	if n.ExternalURL != "" {
		inc.ExternalURL = n.ExternalURL
	}
	if inc.Annotations == nil && len(n.CommonAnnotations) > 0 {
		inc.Annotations = cloneMap(n.CommonAnnotations)
	}
	if inc.Labels == nil && len(n.CommonLabels) > 0 {
		inc.Labels = cloneMap(n.CommonLabels)
	}
	first := Alert{}
	if len(inc.Alerts) > 0 {
		first = inc.Alerts[0]
	}
	if inc.Title == "" {
		switch {
		case n.CommonAnnotations["summary"] != "":
			inc.Title = n.CommonAnnotations["summary"]
		case first.Annotations["summary"] != "":
			inc.Title = first.Annotations["summary"]
		case first.Labels["alertname"] != "":
			inc.Title = first.Labels["alertname"]
		default:
			inc.Title = "Alerts on " + inc.Service
		}
	}
	if inc.RunbookURL == "" {
		inc.RunbookURL = firstNonEmpty(n.CommonAnnotations["runbook_url"], first.Annotations["runbook_url"])
	}
	if inc.GeneratorURL == "" {
		inc.GeneratorURL = first.GeneratorURL
	}
}

// Acknowledge records that actor is working on the incident.
func Acknowledge(inc *Incident, actor string, at time.Time) (Change, error) {
	if inc.State == StateResolved {
		return Change{}, fmt.Errorf("%w: incident %s is resolved", ErrConflict, inc.ID)
	}
	if inc.State == StateAcknowledged {
		return Change{}, fmt.Errorf("%w: incident %s is already acknowledged by %s", ErrConflict, inc.ID, inc.AcknowledgedBy)
	}
	inc = inc.Clone()
	inc.State = StateAcknowledged
	if inc.AcknowledgedAt.IsZero() {
		inc.AcknowledgedAt = at
	}
	inc.AcknowledgedBy = actor
	return manualEvent(inc, EventAcknowledged, actor, at, "Acknowledged by "+actor), nil
}

// Resolve closes the incident by hand. Alerts still firing stay attached
// but stop counting as downtime; a new alert in the group reopens it.
func Resolve(inc *Incident, actor string, at time.Time) (Change, error) {
	if inc.State == StateResolved {
		return Change{}, fmt.Errorf("%w: incident %s is already resolved", ErrConflict, inc.ID)
	}
	inc = inc.Clone()
	if at.Before(inc.StartedAt) {
		at = inc.StartedAt
	}
	inc.State = StateResolved
	inc.ResolvedAt = at
	inc.ResolvedBy = actor
	inc.Periods = closePeriods(inc.Periods, at)
	// The segments stay as the alerts left them: a resolve by hand does
	// not end the downtime of alerts still firing (derive.go).
	return manualEvent(inc, EventResolved, actor, at, "Resolved by "+actor), nil
}

// Note adds a note to the incident's timeline.
func Note(inc *Incident, actor, text string, at time.Time) (Change, error) {
	if strings.TrimSpace(text) == "" {
		return Change{}, fmt.Errorf("%w: note text is empty", ErrInvalid)
	}
	return manualEvent(inc.Clone(), EventNote, actor, at, text), nil
}

// OpenRequest is an incident opened by hand.
type OpenRequest struct {
	Service   string
	Title     string
	Impact    Impact
	StartedAt time.Time // default: now
	Actor     string
	Labels    map[string]string
	Key       string // idempotency key; default: derived from the fields
}

// Open builds a new incident opened by hand.
func Open(req OpenRequest, now time.Time) (Change, error) {
	if strings.TrimSpace(req.Service) == "" {
		return Change{}, fmt.Errorf("%w: service: required", ErrInvalid)
	}
	if strings.TrimSpace(req.Title) == "" {
		return Change{}, fmt.Errorf("%w: title: required", ErrInvalid)
	}
	start := req.StartedAt
	if start.IsZero() {
		start = now
	}
	if start.After(now.Add(time.Minute)) {
		return Change{}, fmt.Errorf("%w: started_at: in the future", ErrInvalid)
	}
	key := req.Key
	if key == "" {
		key = req.Title
	}
	groupKey := "manual:" + key
	inc := &Incident{
		ID:        IncidentID(groupKey, req.Service, start),
		Service:   req.Service,
		GroupKey:  groupKey,
		Title:     req.Title,
		Impact:    req.Impact,
		State:     StateFiring,
		Source:    SourceManual,
		StartedAt: start.UTC(),
		Labels:    cloneMap(req.Labels),
		Periods:   []Period{{Start: start.UTC()}},
	}
	ch := manualEvent(inc, EventOpened, req.Actor, start, fmt.Sprintf("Opened by %s with impact %s", req.Actor, req.Impact))
	ch.Events[0].Impact = recorded(req.Impact)
	return ch, nil
}

// Link records that inc was caused by the upstream incident up.
func Link(inc *Incident, up *Incident, actor string, at time.Time) (Change, error) {
	if up.ID == inc.ID {
		return Change{}, fmt.Errorf("%w: caused_by: an incident cannot cause itself", ErrInvalid)
	}
	if inc.CausedBy == up.ID {
		return Change{}, fmt.Errorf("%w: incident %s is already linked to %s", ErrConflict, inc.ID, up.ID)
	}
	inc = inc.Clone()
	inc.CausedBy = up.ID
	return manualEvent(inc, EventLinked, actor, at,
		fmt.Sprintf("Caused by %s: %s on %s", up.ID, up.Title, up.Service)), nil
}

// Unlink removes the incident's upstream cause.
func Unlink(inc *Incident, actor string, at time.Time) (Change, error) {
	if inc.CausedBy == "" {
		return Change{}, fmt.Errorf("%w: incident %s is not linked to an upstream incident", ErrConflict, inc.ID)
	}
	inc = inc.Clone()
	was := inc.CausedBy
	inc.CausedBy = ""
	return manualEvent(inc, EventUnlinked, actor, at, "No longer caused by "+was), nil
}

func manualEvent(inc *Incident, kind EventKind, actor string, at time.Time, text string) Change {
	inc.Facts++
	inc.UpdatedAt = at
	ev := Event{
		ID:         EventID(inc.ID, string(kind), actor, fmt.Sprint(at.UnixNano()), text),
		IncidentID: inc.ID, At: at.UTC(), Kind: kind, Actor: actor, Text: text,
	}
	return Change{Incident: inc, Events: []Event{ev}}
}

// periodEventID names the timeline entry of period p of incident id
// reopening or resolving (kind) at at. The time is part of it: a period
// that a late notification moved (a merge, a split, an end learned later)
// is an entry of its own, and OwnTimeline shows those that match the
// incident's periods as they stand.
func periodEventID(id string, kind EventKind, p int, at time.Time) string {
	return EventID(id, string(kind), fmt.Sprint(p), strconv.FormatInt(at.UnixMilli(), 10))
}

// reopenedEvent is the timeline entry of incident id reopening for its
// period p (its flap p) at at, first fired again by a.
func reopenedEvent(id string, p int, at time.Time, a Alert) Event {
	return Event{
		ID: periodEventID(id, EventReopened, p, at), IncidentID: id, At: at,
		Kind: EventReopened, Actor: ActorAlertmanager,
		Text: fmt.Sprintf("Reopened: %s fired again (flap %d)", alertName(a), p),
	}
}

// resolvedEvent is the timeline entry of incident id's period p ending at
// at with its last alert.
func resolvedEvent(id string, p int, at time.Time) Event {
	return Event{
		ID: periodEventID(id, EventResolved, p, at), IncidentID: id, At: at,
		Kind: EventResolved, Actor: ActorAlertmanager, Text: "All alerts resolved",
	}
}

// alertEvent is the timeline entry of occurrence a firing or resolving.
// A resolve's ID holds its end: an end learned late, or corrected since
// (a copy came with the real end after a new occurrence had ended this
// one), is an entry of its own, and OwnTimeline shows the one that
// matches the occurrence as it stands.
func alertEvent(id string, kind EventKind, a Alert) Event {
	at, verb := a.StartsAt, "fired"
	eid := EventID(id, string(kind), a.Key())
	if kind == EventAlertResolved {
		at, verb = a.EndsAt, "resolved"
		eid = EventID(id, string(kind), a.Key(), strconv.FormatInt(a.EndsAt.UnixMilli(), 10))
	}
	return Event{
		ID:         eid,
		IncidentID: id, At: at, Kind: kind, Actor: ActorAlertmanager, Fingerprint: a.Fingerprint,
		Text: fmt.Sprintf("%s %s (%s)", alertName(a), verb, a.Impact),
	}
}

func alertName(a Alert) string {
	name := a.Labels["alertname"]
	if name == "" {
		name = a.Fingerprint
	}
	if inst := a.Labels["instance"]; inst != "" {
		name += " on " + inst
	}
	return name
}

// addPeriod merges p into the sorted union ps. A zero End is open-ended.
func addPeriod(ps []Period, p Period) []Period {
	end := func(x Period) time.Time {
		if x.End.IsZero() {
			return time.Unix(1<<62, 0)
		}
		return x.End
	}
	out := make([]Period, 0, len(ps)+1)
	for _, q := range ps {
		if end(q).Before(p.Start) || end(p).Before(q.Start) {
			out = append(out, q)
			continue
		}
		if q.Start.Before(p.Start) {
			p.Start = q.Start
		}
		if q.End.IsZero() || (!p.End.IsZero() && q.End.After(p.End)) {
			p.End = q.End
		}
	}
	out = append(out, p)
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// closePeriods ends every open period at at (or at its start, if later).
func closePeriods(ps []Period, at time.Time) []Period {
	out := append([]Period(nil), ps...)
	for i := range out {
		if out[i].End.IsZero() {
			out[i].End = at
			if at.Before(out[i].Start) {
				out[i].End = out[i].Start
			}
		}
	}
	return out
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// SuccessorID derives the ID of the incident a group (grouping key and
// service) opened after the incident prev, or of the group's first
// incident when prev is empty: the IDs of incidents stored before nines
// named them by their first occurrence (EpisodeID). Tests use it to build
// such incidents.
func SuccessorID(groupKey, service, prev string) string {
	return "inc-" + StableHash("successor", groupKey, service, prev)[:20]
}

// automatic reports whether a resolve was made by the alerts (or by the
// reconciler on their behalf) rather than by a person.
func automatic(by string) bool { return by == ActorAlertmanager || by == ActorReconciler }

// alertStats summarises an incident's alerts: how many fire, the worst
// impact among those, and the latest end among resolved ones.
func alertStats(alerts []Alert) (firing int, worst Impact, lastEnd time.Time) {
	for _, a := range alerts {
		if a.Status == AlertFiring {
			firing++
			worst = max(worst, a.Impact)
		} else if a.EndsAt.After(lastEnd) {
			lastEnd = a.EndsAt
		}
	}
	return firing, worst, lastEnd
}

// settle makes an incident's state agree with its alerts. A version read
// from a store that replicas share may not: its alerts are every alert any
// replica stored for it, while the incident row is one replica's view (one
// that crashed before merging, say). An open incident with no alert left
// firing resolves at its last alert's end; one resolved by its alerts that
// has an alert firing again reopens; a resolve by hand is left alone, as
// the lifecycle does. It changes inc in place and reports whether anything
// changed, with the events that record it. Times are compared to the
// second, the precision the store keeps.
func (c *Config) settle(inc *Incident) ([]Event, bool) {
	if inc.Source != SourceAlertmanager || len(inc.Alerts) == 0 {
		return nil, false
	}
	firing, worst, lastEnd := alertStats(inc.Alerts)
	var (
		events  []Event
		changed bool
	)
	switch {
	case inc.State.Open() && firing == 0:
		inc.State = StateResolved
		inc.ResolvedAt, inc.ResolvedBy = lastEnd, ActorAlertmanager
		events = append(events, resolvedEvent(inc.ID, inc.Flaps, lastEnd))
		changed = true
	case inc.State == StateResolved && automatic(inc.ResolvedBy) && firing > 0:
		inc.Flaps++
		inc.State = StateFiring
		inc.ResolvedAt, inc.ResolvedBy = time.Time{}, ""
		var first Alert
		for _, a := range inc.Alerts {
			if a.Status == AlertFiring {
				inc.Periods = addPeriod(inc.Periods, Period{Start: a.StartsAt})
				if first.Fingerprint == "" || a.StartsAt.Before(first.StartsAt) {
					first = a
				}
			}
		}
		events = append(events, reopenedEvent(inc.ID, inc.Flaps, first.StartsAt, first))
		changed = true
	case inc.State == StateResolved && automatic(inc.ResolvedBy) && lastEnd.Unix() > inc.ResolvedAt.Unix():
		// A late resolve of an occurrence that overlapped the incident.
		inc.ResolvedAt = lastEnd
		changed = true
	}
	if firing > 0 && inc.State.Open() && inc.Impact != worst {
		inc.Impact = worst
		changed = true
	}
	if inc.State == StateResolved {
		inc.Periods = closePeriods(inc.Periods, inc.ResolvedAt)
	}
	if len(inc.Periods) > 0 {
		inc.StartedAt = inc.Periods[0].Start
	}
	inc.Segments = SegmentsOf(inc.Alerts, inc.Periods)
	return events, changed
}

// sameState reports whether two versions of an incident store the same
// incident row, to the second: the facts count and update time aside.
// The store keeps milliseconds too: a derived incident whose times differ
// from prev's only in their milliseconds has other alert occurrences
// (which sameDerived compares exactly), unless prev was stored before
// milliseconds were kept, and that is not written again for them alone.
func sameState(a, b *Incident) bool {
	fa, _, _ := alertStats(a.Alerts)
	fb, _, _ := alertStats(b.Alerts)
	if a.State != b.State || a.Impact != b.Impact || a.Title != b.Title || a.Flaps != b.Flaps ||
		a.TruncatedAlerts != b.TruncatedAlerts || a.CausedBy != b.CausedBy ||
		a.AcknowledgedBy != b.AcknowledgedBy || a.ResolvedBy != b.ResolvedBy ||
		a.AcknowledgedAt.Unix() != b.AcknowledgedAt.Unix() || a.ResolvedAt.Unix() != b.ResolvedAt.Unix() ||
		a.StartedAt.Unix() != b.StartedAt.Unix() || len(a.Alerts) != len(b.Alerts) || fa != fb ||
		a.RunbookURL != b.RunbookURL || a.GeneratorURL != b.GeneratorURL || a.ExternalURL != b.ExternalURL ||
		fmt.Sprint(a.Labels) != fmt.Sprint(b.Labels) || fmt.Sprint(a.Annotations) != fmt.Sprint(b.Annotations) ||
		len(a.Periods) != len(b.Periods) {
		return false
	}
	for i := range a.Periods {
		if a.Periods[i].Start.Unix() != b.Periods[i].Start.Unix() || a.Periods[i].End.Unix() != b.Periods[i].End.Unix() {
			return false
		}
	}
	return true
}

func latest(ts ...time.Time) time.Time {
	var l time.Time
	for _, t := range ts {
		if t.After(l) {
			l = t
		}
	}
	return l
}

// ResolveStale resolves the incident's firing alerts named in ends (alert
// key → end time), which Alertmanager no longer reports as active, on
// behalf of actor (the reconciler). When no alert is left firing, the
// incident resolves at the latest alert end, unless a person resolved it
// already. An incident whose alerts all resolved without it (a version
// written by a replica that crashed before merging) is resolved too. It
// fails with ErrConflict when there is nothing to resolve.
func (c *Config) ResolveStale(inc *Incident, ends map[string]time.Time, actor string, now time.Time) (Change, error) {
	var alerts []Alert
	for _, a := range inc.Alerts {
		end, ok := ends[a.Key()]
		if !ok || a.Status != AlertFiring {
			continue
		}
		if end.Before(a.StartsAt) {
			end = a.StartsAt
		}
		a.Status, a.EndsAt = AlertResolved, end.UTC()
		alerts = append(alerts, a)
	}
	if len(alerts) == 0 {
		m := inc.Clone()
		events, changed := c.settle(m)
		if !changed {
			return Change{}, fmt.Errorf("%w: incident %s has no stale alert to resolve", ErrConflict, inc.ID)
		}
		m.Facts++
		m.UpdatedAt = now
		return Change{Incident: m, Events: events}, nil
	}
	wasOpen := inc.State.Open()
	ch, _ := c.merge(inc.Clone(), false, alerts, &Notification{ReceivedAt: now}, now)
	for i := range ch.Events {
		ev := &ch.Events[i]
		switch ev.Kind {
		case EventAlertResolved:
			ev.Actor = actor
			ev.Text += ", no longer active in Alertmanager"
		case EventResolved:
			ev.Actor = actor
			ev.Text = "Resolved by the " + actor + ": none of its alerts is active in Alertmanager any more"
		}
	}
	if wasOpen && ch.Incident.State == StateResolved && ch.Incident.ResolvedBy == ActorAlertmanager {
		ch.Incident.ResolvedBy = actor
	}
	return ch, nil
}
