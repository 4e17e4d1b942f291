// Planning: from the leader's state, pick for each channel that may be
// written to now its most urgent action, and settle what needs no Slack
// call. Next stage: deliver.go.

package chat

import (
	"slices"
	"sort"
	"time"

	"github.com/ninesops/nines/incidents"
)

// Action kinds and priorities: within a channel, recoveries go first,
// then new incidents, then updates, then thread replies; so in a storm
// every incident is posted before any is updated, and an update carries
// all changes made meanwhile.
const (
	actRecover = iota
	actPost
	actUpdate
	actReply
	actFlap
	actDigest
)

type action struct {
	kind   int
	prio   int
	pair   *pairState
	is     *incState
	key    string
	dkind  string // delivery kind
	event  *evRec
	covers []string
	intent *intent
	digest *digestJob
	order  int
}

func (a *action) channel() string {
	if a.digest != nil {
		return a.digest.channel
	}
	return a.pair.channel
}

// needsIntent reports whether the action posts a new message and so
// must be recorded before the call.
func (a *action) needsIntent() bool {
	switch a.kind {
	case actPost, actReply, actFlap, actDigest:
		return a.intent == nil
	}
	return false
}

// plan picks, for each channel that may be written to now, its most
// urgent action. It also settles what needs no Slack call (events the
// main message covers, events of an incident whose message failed) and
// reports the queue metrics and the cursor.
func (s *Sender) plan(now time.Time) ([]*action, time.Time) {
	st := s.st
	var wake time.Time
	soon := func(t time.Time) {
		if t.After(now) && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	incs := make([]*incState, 0, len(st.incs))
	for _, is := range st.incs {
		incs = append(incs, is)
	}
	sort.Slice(incs, func(i, j int) bool {
		a, b := incs[i], incs[j]
		if len(a.events) > 0 && len(b.events) > 0 && !a.events[0].inserted.Equal(b.events[0].inserted) {
			return a.events[0].inserted.Before(b.events[0].inserted)
		}
		return a.id < b.id
	})
	best := map[string]*action{}
	order := 0
	consider := func(a *action) {
		a.order = order
		order++
		if b := best[a.channel()]; b == nil || a.prio < b.prio {
			best[a.channel()] = a
		}
	}
	depth := 0
	var oldest, minPending time.Time
	pendingAt := func(t time.Time) {
		if minPending.IsZero() || t.Before(minPending) {
			minPending = t
		}
	}
	for _, is := range incs {
		if is.inc == nil || !is.loaded {
			for _, e := range is.events {
				depth++
				pendingAt(e.inserted)
			}
			continue
		}
		for _, p := range s.pairsOf(is) {
			for _, a := range s.pairActions(is, p, now, soon) {
				consider(a)
			}
			if p.msg == nil && p.failed == "" {
				depth++
			}
			for _, e := range is.events {
				if !p.done[e.ev.ID] {
					depth++
					pendingAt(e.inserted)
				}
			}
		}
	}
	for _, j := range st.digestJobs {
		if a := s.digestAction(j, now, soon); a != nil {
			depth++
			consider(a)
		}
	}
	if !minPending.IsZero() {
		oldest = minPending
		st.cursor = minPending
	} else {
		st.cursor = st.maxSeen
	}
	s.metrics.queueDepth.Set(float64(depth))
	if oldest.IsZero() {
		s.metrics.queueAge.Set(0)
	} else {
		s.metrics.queueAge.Set(max(now.Sub(oldest).Seconds(), 0))
	}
	s.prune()

	var round []*action
	for ch, a := range best {
		if r := st.ready[ch]; r.After(now) {
			soon(r)
			continue
		}
		round = append(round, a)
	}
	sort.Slice(round, func(i, j int) bool { return round[i].order < round[j].order })
	return round, wake
}

// prune forgets incidents that are fully handled and older than the
// window the tail reads.
func (s *Sender) prune() {
	st := s.st
	horizon := st.cursor.Add(-s.cfg.Lookback)
	for _, is := range st.incs {
		if is.inc == nil || len(is.events) == 0 || !is.events[len(is.events)-1].inserted.Before(horizon) {
			continue
		}
		busy := false
		for _, p := range st.byInc[is.id] {
			if len(p.intents) > 0 || len(p.held) > 0 || (p.msg != nil && p.hook == "" && p.msg.Hash != is.hash) {
				busy = true
			}
			for _, e := range is.events {
				if !p.done[e.ev.ID] {
					busy = true
				}
			}
		}
		if !busy {
			s.forget(is)
		}
	}
}

// pairsOf returns the channels of an incident: where it is routed now and
// where it already has a message.
func (s *Sender) pairsOf(is *incState) []*pairState {
	var out []*pairState
	seen := map[string]bool{}
	for _, ch := range s.cfg.Route(is.inc, s.catalog().Channel(is.inc.Service)) {
		seen[ch] = true
		if s.hooks[ch] == "" && s.api.client == nil {
			if !s.warned[ch] {
				s.warned[ch] = true
				s.log.Warn("chat: no bot token and no webhook for channel; incidents are not posted there", "channel", ch)
			}
			continue
		}
		out = append(out, s.pair(is.id, ch))
	}
	for _, p := range s.st.byInc[is.id] {
		if !seen[p.channel] && (p.msg != nil || len(p.intents) > 0) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].channel < out[j].channel })
	return out
}

// isChurn reports whether an event is alert churn, which a flapping
// incident produces in bursts and which is throttled.
func isChurn(e incidents.Event) bool {
	switch e.Kind {
	case incidents.EventAlertFired, incidents.EventAlertResolved, incidents.EventReopened:
		return true
	case incidents.EventResolved, incidents.EventImpactChanged:
		return e.Actor == incidents.ActorAlertmanager
	}
	return false
}

// webhookEvent reports whether an incoming-webhook channel gets a post
// for the event: it cannot be threaded or updated, so it hears only of
// resolves and reopens.
func webhookEvent(e incidents.Event) bool {
	return e.Kind == incidents.EventResolved || e.Kind == incidents.EventReopened
}

// pairActions returns what an incident needs in one channel, most urgent
// first, settling on the way what needs no Slack call.
func (s *Sender) pairActions(is *incState, p *pairState, now time.Time, soon func(time.Time)) []*action {
	if p.failed != "" {
		for _, e := range is.events {
			if !p.done[e.ev.ID] {
				s.settleLocal(p, e.ev.ID, StateFailed, "the incident's message failed: "+p.failed, now)
			}
		}
		p.held = nil
		return nil
	}
	if len(p.intents) > 0 {
		var it *intent
		for _, x := range p.intents {
			if it == nil || x.d.At.Before(it.d.At) || (x.d.At.Equal(it.d.At) && x.d.Key < it.d.Key) {
				it = x
			}
		}
		if it.lookup || !now.Before(it.d.At.Add(s.grace)) {
			return []*action{{kind: actRecover, prio: 0, pair: p, is: is, key: it.d.Key, dkind: it.d.Kind, intent: it}}
		}
		soon(it.d.At.Add(s.grace))
		return nil
	}
	if p.msg == nil {
		var covers []string
		for _, e := range is.events {
			if !p.done[e.ev.ID] {
				covers = append(covers, e.ev.ID)
			}
		}
		return []*action{{kind: actPost, prio: 1, pair: p, is: is, key: KindMain, dkind: KindMain, covers: covers}}
	}
	var out []*action
	interval := s.cfg.FlapInterval
	held := map[string]bool{}
	for _, id := range p.held {
		held[id] = true
	}
	for _, e := range is.events {
		id := e.ev.ID
		if p.done[id] || held[id] {
			continue
		}
		if e.ev.Kind == incidents.EventOpened || (p.hook != "" && !webhookEvent(e.ev)) {
			s.settleLocal(p, id, StateCovered, "", now)
			continue
		}
		kind := KindReply
		if isChurn(e.ev) {
			kind = KindChurn
			allowed := len(p.held) == 0 && (interval <= 0 || p.lastChurn.IsZero() ||
				!now.Before(p.lastChurn.Add(interval)) || e.inserted.Equal(p.churnBatch))
			if !allowed {
				p.held = append(p.held, id)
				held[id] = true
				continue
			}
		}
		out = append(out, &action{kind: actReply, prio: 3, pair: p, is: is, key: id, dkind: kind, event: e})
		break
	}
	if len(out) == 0 && len(p.held) > 0 {
		due := p.lastChurn.Add(interval)
		if !now.Before(due) {
			out = append(out, &action{kind: actFlap, prio: 3, pair: p, is: is, key: "flap:" + p.held[0], dkind: KindFlap, covers: slices.Clone(p.held)})
		} else {
			soon(due)
		}
	}
	if p.hook == "" && p.msg.Hash != is.hash {
		out = append(out, &action{kind: actUpdate, prio: 2, pair: p, is: is})
	}
	return out
}

// settleLocal records a delivery that needs no Slack call.
func (s *Sender) settleLocal(p *pairState, key string, state DeliveryState, reason string, now time.Time) {
	p.done[key] = true
	s.st.buf.Deliveries = append(s.st.buf.Deliveries, Delivery{
		IncidentID: p.inc, Channel: p.channel, Key: key, Kind: KindReply, State: state,
		Error: reason, Holder: s.holder, At: now,
	})
}
