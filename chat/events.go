// Reading events: the leader tails the incident timeline from the store,
// merges what it reads into its state and keeps each incident's rendered
// messages current. Next stage: plan.go.

package chat

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ninesops/nines/incidents"
)

type budgetEntry struct {
	fig Figure
	ok  bool
	at  time.Time
}

type evRec struct {
	ev       incidents.Event
	inserted time.Time
}

type incState struct {
	id      string
	inc     *incidents.Incident
	events  []*evRec // by (inserted, at, id)
	loaded  bool     // the ledger was read for it
	msg     rendered // the main message, interactive
	hookMsg rendered // the same for incoming webhooks
	hash    string
	first   time.Time // when the tail first saw it
}

// poll reads the timeline from cursor − lookback, loads the ledger of
// incidents seen for the first time, and refreshes touched incidents.
func (s *Sender) poll(ctx context.Context, now time.Time) error {
	st := s.st
	since := st.cursor.Add(-s.cfg.Lookback)
	evs, err := s.events.ChatEventsSince(ctx, since, since.Add(-s.maxAge))
	if err != nil {
		return err
	}
	touched := map[string]bool{}
	for _, e := range evs {
		if _, ok := st.events[e.ID]; ok {
			continue
		}
		r := &evRec{ev: e.Event, inserted: e.InsertedAt}
		st.events[e.ID] = r
		is := st.incs[e.IncidentID]
		if is == nil {
			is = &incState{id: e.IncidentID, first: now}
			st.incs[e.IncidentID] = is
		}
		is.events = append(is.events, r)
		touched[e.IncidentID] = true
		if e.InsertedAt.After(st.maxSeen) {
			st.maxSeen = e.InsertedAt
		}
	}
	for id, is := range st.incs {
		if is.inc == nil || !is.loaded {
			touched[id] = true
		}
	}
	if len(touched) == 0 {
		return nil
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range touched {
			if !yield(id) {
				return
			}
		}
	})
	var load []string
	for _, id := range ids {
		is := st.incs[id]
		sort.SliceStable(is.events, func(i, j int) bool { return evLess(is.events[i], is.events[j]) })
		if !is.loaded {
			load = append(load, id)
		}
	}
	if len(load) > 0 {
		recs, err := s.ledger.LoadChat(ctx, load, s.holder)
		if err != nil {
			return err
		}
		s.merge(recs)
		for _, id := range load {
			st.incs[id].loaded = true
		}
	}
	incs, err := s.events.ChatIncidents(ctx, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		is := st.incs[id]
		if inc := incs[id]; inc != nil {
			s.refresh(ctx, is, inc, now)
		} else if is.inc == nil && now.Sub(is.first) > s.cfg.Lookback {
			s.log.Warn("chat: events of an unknown incident, ignored", "incident", id)
			s.forget(is)
		}
	}
	return nil
}

// evLess orders events as they happened: by when they were stored, then
// by their own time, then in the order the lifecycle emits kinds within
// one change (the store does not keep it), then by ID.
func evLess(a, b *evRec) bool {
	if !a.inserted.Equal(b.inserted) {
		return a.inserted.Before(b.inserted)
	}
	if !a.ev.At.Equal(b.ev.At) {
		return a.ev.At.Before(b.ev.At)
	}
	if ra, rb := kindRank[a.ev.Kind], kindRank[b.ev.Kind]; ra != rb {
		return ra < rb
	}
	return a.ev.ID < b.ev.ID
}

// kindRank orders the kinds of one change.
var kindRank = map[incidents.EventKind]int{
	incidents.EventOpened: 0, incidents.EventReopened: 1, incidents.EventAlertFired: 2, incidents.EventTruncated: 3,
	incidents.EventImpactChanged: 4, incidents.EventLinked: 5, incidents.EventUnlinked: 6, incidents.EventAlertResolved: 7,
	incidents.EventAcknowledged: 8, incidents.EventNote: 9, incidents.EventResolved: 10,
}

// merge adds what the ledger knows about incidents to the state.
func (s *Sender) merge(r Records) {
	for _, m := range r.Messages {
		p := s.pair(m.IncidentID, m.Channel)
		rec := m
		p.msg = &rec
		s.api.learn(m.Channel, m.ChannelID)
	}
	for _, d := range r.Deliveries {
		if d.IncidentID == digestIncident {
			continue
		}
		p := s.pair(d.IncidentID, d.Channel)
		switch {
		case d.State.Final():
			p.done[d.Key] = true
			for _, c := range d.Covers {
				p.done[c] = true
			}
			if d.Kind == KindMain && d.State == StateFailed {
				p.failed = d.Error
			}
			if d.State == StateSent && (d.Kind == KindChurn || d.Kind == KindFlap) && d.At.After(p.lastChurn) {
				p.lastChurn = d.At
			}
		case s.neverSent(d):
			// Planned afresh: this replica knows it never sent it.
		case d.State == StateIntent:
			dd := d
			p.intents[d.Key] = &intent{d: dd}
		}
	}
}

// pair returns the state of an incident in a channel, creating it.
func (s *Sender) pair(inc, ch string) *pairState {
	k := pairKey{inc, ch}
	p := s.st.pairs[k]
	if p == nil {
		p = &pairState{inc: inc, channel: ch, hook: s.hooks[ch], done: map[string]bool{}, intents: map[string]*intent{}}
		s.st.pairs[k] = p
		s.st.byInc[inc] = append(s.st.byInc[inc], p)
	}
	return p
}

// forget drops an incident from memory.
func (s *Sender) forget(is *incState) {
	for _, e := range is.events {
		delete(s.st.events, e.ev.ID)
	}
	for _, p := range s.st.byInc[is.id] {
		delete(s.st.pairs, pairKey{p.inc, p.channel})
	}
	delete(s.st.byInc, is.id)
	delete(s.st.incs, is.id)
}

// refresh renders an incident's main message from its latest version.
func (s *Sender) refresh(ctx context.Context, is *incState, inc *incidents.Incident, now time.Time) {
	is.inc = inc
	v := s.view(ctx, inc, now)
	v.Interactive = s.api.client != nil
	is.msg = renderIncident(v)
	is.hash = is.msg.hash()
	v.Interactive = false
	is.hookMsg = renderIncident(v)
}

// view gathers what the incident message shows besides the incident.
func (s *Sender) view(ctx context.Context, inc *incidents.Incident, now time.Time) incidentView {
	v := incidentView{Inc: inc, Runbook: inc.RunbookURL, Page: incidentPage(s.pageURL, inc.ID)}
	if svc, ok := s.catalog().Service(inc.Service); ok {
		v.Owner = svc.Owner
		if v.Runbook == "" {
			v.Runbook = svc.RunbookURL
		}
		v.Dashboard = svc.DashboardURL
	}
	if v.Dashboard == "" && s.cfg.GrafanaURL != "" {
		v.Dashboard = strings.TrimSuffix(s.cfg.GrafanaURL, "/") + "/d/" + s.dashUID(inc.Service)
	}
	v.Budget = s.budget(ctx, inc, now)
	if s.suspects != nil {
		hint, err := s.suspects.TopSuspect(ctx, inc.ID)
		if err != nil {
			s.log.Debug("chat: no suspect for the incident message", "incident", inc.ID, "err", err)
		}
		v.Suspect = hint
	}
	return v
}

// Suspects knows how to name the change most likely to have caused an
// incident, as one line for people ("" when there is none).
type Suspects interface {
	TopSuspect(ctx context.Context, incidentID string) (string, error)
}

// budget computes the share of the service's 30-day error budget the
// incident used: its weighted firing time within the window over the
// window's budget.
func (s *Sender) budget(ctx context.Context, inc *incidents.Incident, now time.Time) *budgetUse {
	w := s.weight(inc.Impact)
	if s.avail == nil || w <= 0 {
		return nil
	}
	e, ok := s.budgets[inc.Service]
	if !ok || now.Sub(e.at) > budgetCacheFor {
		fig, err := s.avail.Figure(ctx, inc.Service, budgetWindow)
		if err != nil {
			s.log.Debug("chat: no error budget for the incident message", "service", inc.Service, "err", err)
		}
		e = budgetEntry{fig: fig, ok: err == nil, at: now}
		s.budgets[inc.Service] = e
	}
	if !e.ok || e.fig.BudgetSeconds <= 0 {
		return nil
	}
	from := now.Add(-30 * 24 * time.Hour)
	down := 0.0
	for _, p := range inc.Periods {
		start, end := p.Start, p.End
		if end.IsZero() {
			end = now
		}
		if start.Before(from) {
			start = from
		}
		if end.After(start) {
			down += end.Sub(start).Seconds()
		}
	}
	return &budgetUse{Window: "30-day", Used: w * down / e.fig.BudgetSeconds, Left: e.fig.BudgetRemaining}
}
