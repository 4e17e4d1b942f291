package incidents

import (
	"fmt"
	"maps"
	"time"
)

// keepResolvedFor is how long after it resolved an earlier incident of a
// group stays in memory beside the group's latest one, so that a late
// notification about it is derived with it (and can split or merge it)
// instead of being taken for a new episode.
const keepResolvedFor = 24 * time.Hour

// rederive merges alerts into the occurrences of ref's incidents held in
// e (cur standing for e.inc), derives the group again (Config.Derive) and
// returns the changes to store, oldest first, and the group's next
// entry. refill (the group was just read from the store) also writes the
// derived timeline of incidents that do not change: a deriver that stopped
// between storing an incident version and its events (they go last)
// leaves them missing, and the next one, finding the version stored,
// would otherwise never write them. Events are idempotent (deterministic
// IDs), so writing them again costs rows, not truth. An incident whose alerts moved to another one gets a split event;
// one left without alerts (merged into another) is stored one last time,
// resolved and without periods, with a merged event. No changes means the
// alerts added nothing.
func (s *Service) rederive(e *entry, cur *Incident, ref GroupRef, n *Notification, alerts []Alert, reconciled map[string]bool, refill bool, now time.Time) ([]Change, *entry) {
	var held []*Incident
	held = append(held, e.earlier...)
	if cur != nil {
		held = append(held, cur)
	}
	known := map[string]Alert{}
	for _, inc := range held {
		for _, a := range inc.Alerts {
			known[a.Key()] = a
		}
	}
	var fresh []Alert
	for _, a := range alerts {
		k := a.Key()
		if e.closed[k] {
			s.metrics.lateCopies.Inc()
			continue
		}
		if a.Status == AlertResolved && a.EndsAt.Before(a.StartsAt) {
			a.EndsAt = a.StartsAt
		}
		if a.Status != AlertResolved {
			a.EndsAt = time.Time{}
		}
		if old, ok := known[k]; !ok || supersedes(a, old) {
			fresh = append(fresh, a)
		}
	}
	truncated := cur != nil && cur.State.Open() && n.TruncatedAlerts > cur.TruncatedAlerts
	if len(fresh) == 0 && !truncated && !refill {
		return nil, nil
	}
	all := make([]Alert, 0, len(known)+len(fresh))
	for _, inc := range held {
		all = append(all, inc.Alerts...)
	}
	all = append(all, fresh...)
	rec := e.reconciled
	if len(reconciled) > 0 {
		rec = maps.Clone(e.reconciled)
		if rec == nil {
			rec = map[string]bool{}
		}
		maps.Copy(rec, reconciled)
	}
	// The held incidents' own fields may hold actions this process did
	// not take: merged from another replica's version (join).
	actions := e.actions
	for _, inc := range held {
		actions = append(actions[:len(actions):len(actions)], restoredActions(inc)...)
	}
	g := Group{Ref: ref, Alerts: all, Actions: actions, Reconciled: rec, Known: map[string]string{}}
	for _, inc := range held {
		if a, ok := FirstOccurrence(inc.Alerts); ok {
			g.Known[a.Key()] = inc.ID
		}
	}
	derived := s.cfg.Derive(g)

	byID := make(map[string]*Incident, len(held))
	for _, inc := range held {
		byID[inc.ID] = inc
	}
	incoming := make(map[string]bool, len(alerts))
	for _, a := range alerts {
		incoming[a.Key()] = true
	}
	owner := map[string]string{} // alert key → derived incident ID
	for _, d := range derived {
		for _, a := range d.Incident.Alerts {
			owner[a.Key()] = d.Incident.ID
		}
	}
	written := maps.Clone(e.written)
	if written == nil {
		written = map[string]string{}
	}
	var (
		out  []Change
		list []*Incident
		top  = e.top
	)
	for _, inc := range held {
		top = max(top, inc.Facts)
	}
	for _, d := range derived {
		inc := d.Incident
		prev := byID[inc.ID]
		inc.Title, inc.RunbookURL, inc.GeneratorURL = "", "", ""
		gotIncoming := false
		for _, a := range inc.Alerts {
			gotIncoming = gotIncoming || incoming[a.Key()]
		}
		var extra []Event
		if prev != nil {
			inc.Title, inc.RunbookURL, inc.GeneratorURL, inc.ExternalURL = prev.Title, prev.RunbookURL, prev.GeneratorURL, prev.ExternalURL
			inc.Labels, inc.Annotations, inc.TruncatedAlerts = prev.Labels, prev.Annotations, prev.TruncatedAlerts
		} else {
			inc.Labels = cloneMap(n.CommonLabels)
		}
		if gotIncoming || prev == nil {
			s.cfg.describe(inc, n)
			if n.TruncatedAlerts > inc.TruncatedAlerts {
				inc.TruncatedAlerts = n.TruncatedAlerts
				extra = append(extra, Event{
					ID: EventID(inc.ID, string(EventTruncated), fmt.Sprint(n.TruncatedAlerts)), IncidentID: inc.ID,
					At: n.ReceivedAt, Kind: EventTruncated, Actor: ActorAlertmanager,
					Text: fmt.Sprintf("Alertmanager left out %d alerts of this group (max_alerts): the alert list is incomplete", n.TruncatedAlerts),
				})
			}
		}
		ch := Change{Incident: inc}
		if prev != nil {
			ch.Moved, extra = movedAlerts(prev, owner, extra)
			if len(ch.Moved) == 0 && len(extra) == 0 && sameDerived(prev, inc) {
				list = append(list, prev)
				if refill {
					var evs []Event
					for _, ev := range d.Events {
						if _, ok := written[ev.ID]; !ok {
							written[ev.ID] = ev.IncidentID
							evs = append(evs, ev)
						}
					}
					if len(evs) > 0 {
						out = append(out, Change{Incident: prev, Events: evs})
					}
				}
				continue
			}
		}
		prevAlerts := map[string]Alert{}
		if prev != nil {
			for _, a := range prev.Alerts {
				prevAlerts[a.Key()] = a
			}
		}
		for _, a := range inc.Alerts {
			if old, ok := prevAlerts[a.Key()]; !ok || old.Status != a.Status || !old.EndsAt.Equal(a.EndsAt) {
				ch.Alerts = append(ch.Alerts, a)
			}
		}
		for _, ev := range append(d.Events, extra...) {
			if _, ok := written[ev.ID]; !ok {
				written[ev.ID] = ev.IncidentID
				ch.Events = append(ch.Events, ev)
			}
		}
		// Every version written for the group outranks every earlier one,
		// so that an ID a merge emptied and a split fills again wins.
		top = max(facts(inc, len(ch.Events)), top+1)
		inc.Facts, inc.UpdatedAt = top, now
		out = append(out, ch)
		list = append(list, inc)
	}
	// Incidents left without alerts: merged into another one.
	for _, prev := range held {
		if derivedHas(derived, prev.ID) {
			continue
		}
		m := prev.Clone()
		m.Alerts, m.Periods, m.Segments = nil, nil, nil
		m.State, m.ResolvedBy = StateResolved, "nines"
		if m.ResolvedAt.IsZero() {
			m.ResolvedAt = m.StartedAt
		}
		into := owner[firstKey(prev)]
		ch := Change{Incident: m, Moved: prev.Alerts, Events: []Event{{
			ID: EventID(prev.ID, string(EventMerged), into), IncidentID: prev.ID, At: now,
			Kind: EventMerged, Actor: "nines",
			Text: fmt.Sprintf("Merged into %s: a late notification joined its alerts to that incident's", into),
		}}}
		top++
		m.Facts, m.UpdatedAt = top, now
		out = append(out, ch)
	}
	if len(out) == 0 {
		return nil, nil
	}
	next := *e
	next.written, next.reconciled, next.top = written, rec, top
	next.inc = list[len(list)-1]
	next.earlier = nil
	var dropped []*Incident
	for _, inc := range list[:len(list)-1] {
		if inc.State.Open() || !inc.ResolvedAt.Add(keepResolvedFor).Before(next.inc.StartedAt) {
			next.earlier = append(next.earlier, inc)
		} else {
			dropped = append(dropped, inc)
		}
	}
	if len(dropped) > 0 {
		next.closed = maps.Clone(e.closed)
		if next.closed == nil {
			next.closed = map[string]bool{}
		}
		for _, inc := range dropped {
			for _, a := range inc.Alerts {
				next.closed[a.Key()] = true
			}
		}
		maps.DeleteFunc(next.written, func(_, id string) bool { return isDropped(dropped, id) })
		var acts []Action
		for _, a := range e.actions {
			if !isDropped(dropped, a.Incident) {
				acts = append(acts, a)
			}
		}
		next.actions = acts
	}
	return out, &next
}

// movedAlerts returns prev's alerts that now belong to another incident,
// and extra with a split event for each incident they moved to.
func movedAlerts(prev *Incident, owner map[string]string, extra []Event) ([]Alert, []Event) {
	var moved []Alert
	to := map[string]int{}
	var order []string
	for _, a := range prev.Alerts {
		if o := owner[a.Key()]; o != prev.ID {
			moved = append(moved, a)
			if to[o] == 0 {
				order = append(order, o)
			}
			to[o]++
		}
	}
	for _, o := range order {
		extra = append(extra, Event{
			ID: EventID(prev.ID, string(EventSplit), o, fmt.Sprint(len(prev.Alerts))), IncidentID: prev.ID, At: prev.UpdatedAt,
			Kind: EventSplit, Actor: "nines",
			Text: fmt.Sprintf("Split: %d of its alerts belong to %s, a separate episode (a late notification showed the gap)", to[o], o),
		})
	}
	return moved, extra
}

func firstKey(inc *Incident) string {
	if len(inc.Alerts) == 0 {
		return ""
	}
	return inc.Alerts[0].Key()
}

func derivedHas(chs []Change, id string) bool {
	for _, ch := range chs {
		if ch.Incident.ID == id {
			return true
		}
	}
	return false
}

func isDropped(incs []*Incident, id string) bool {
	for _, inc := range incs {
		if inc.ID == id {
			return true
		}
	}
	return false
}

// facts counts what a derived incident was derived from: its alert
// occurrences' states, its flaps and its timeline events.
func facts(inc *Incident, events int) uint32 {
	n := uint32(inc.Flaps + events)
	for _, a := range inc.Alerts {
		n++
		if a.Status == AlertResolved {
			n++
		}
	}
	return n
}

// sameDerived reports whether a derived incident stores the same as prev.
func sameDerived(prev, inc *Incident) bool {
	if !sameState(prev, inc) || len(prev.Segments) != len(inc.Segments) {
		return false
	}
	for i, s := range prev.Segments {
		t := inc.Segments[i]
		if s.Impact != t.Impact || s.Start.Unix() != t.Start.Unix() || s.End.Unix() != t.End.Unix() {
			return false
		}
	}
	for i, a := range prev.Alerts {
		b := inc.Alerts[i]
		if a.Key() != b.Key() || a.Status != b.Status || !a.EndsAt.Equal(b.EndsAt) {
			return false
		}
	}
	return true
}

// restoredActions rebuilds, from an incident read from the store, the
// actions that shaped it, so that deriving its group again keeps them.
func restoredActions(inc *Incident) []Action {
	if inc == nil {
		return nil
	}
	var out []Action
	if inc.AcknowledgedBy != "" {
		out = append(out, Action{Kind: EventAcknowledged, Incident: inc.ID, Actor: inc.AcknowledgedBy, At: inc.AcknowledgedAt})
	}
	if inc.State == StateResolved && inc.ResolvedBy != "" && !automatic(inc.ResolvedBy) {
		out = append(out, Action{Kind: EventResolved, Incident: inc.ID, Actor: inc.ResolvedBy, At: inc.ResolvedAt})
	}
	if inc.CausedBy != "" {
		out = append(out, Action{Kind: EventLinked, Incident: inc.ID, Actor: "nines", CausedBy: inc.CausedBy})
	}
	return append(out, exclusionActions(inc)...)
}

// actionOf returns the action a person's change records, if it shapes the
// incident.
func actionOf(ch Change) (Action, bool) {
	if ch.Action != nil {
		return *ch.Action, true
	}
	if len(ch.Events) == 0 {
		return Action{}, false
	}
	ev := ch.Events[0]
	switch ev.Kind {
	case EventAcknowledged, EventResolved, EventLinked, EventUnlinked:
		return Action{Kind: ev.Kind, Incident: ch.Incident.ID, Actor: ev.Actor, At: ev.At, CausedBy: ch.Incident.CausedBy}, true
	case EventNotDowntime:
		for _, x := range ch.Incident.Excluded {
			if x.At.Equal(markedAt(ev.At)) && x.By == ev.Actor {
				return Action{Kind: ev.Kind, Incident: ch.Incident.ID, Actor: ev.Actor, At: ev.At, Excluded: &x}, true
			}
		}
	}
	return Action{}, false
}
