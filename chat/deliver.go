// Delivery: write an intent before every new message, check that no other
// replica intends or made the same one, check the lease again just before
// each Slack call, make it, and record the outcome (sent, failed for good,
// or to be looked up: recover.go).

package chat

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/ninesops/nines/incidents"
)

// execute writes the round's intents, checks that no other replica is
// sending the same messages, and makes the calls.
func (s *Sender) execute(ctx context.Context, round []*action, now time.Time) {
	st := s.st
	rows := st.buf
	var fresh []*action
	for _, a := range round {
		if !a.needsIntent() {
			continue
		}
		d := Delivery{IncidentID: a.incidentID(), Channel: a.channel(), Key: a.key, Kind: a.dkind, State: StateIntent,
			Covers: a.covers, Holder: s.holder, At: now}
		if a.kind == actPost {
			d.Hash = a.is.hash
		}
		rows.Deliveries = append(rows.Deliveries, d)
		a.intent = &intent{d: d, fresh: true}
		fresh = append(fresh, a)
	}
	if rows.len() > 0 {
		if err := s.ledger.WriteChat(ctx, rows); err != nil {
			s.storeFailed("write intents", err)
			st.storeWait = now.Add(s.cfg.PollInterval)
			return
		}
		st.buf = Records{}
	}
	for _, a := range fresh {
		a.registerIntent()
	}
	if len(fresh) > 0 {
		deferred, err := s.claim(ctx, fresh, now)
		if err != nil {
			// Unsure whether another replica is sending: leave the
			// intents; they are looked up after the grace period.
			s.storeFailed("check intents", err)
			st.storeWait = now.Add(s.cfg.PollInterval)
			s.unsent(fresh)
			return
		}
		s.unsent(slices.Collect(maps.Keys(deferred)))
		round = slices.DeleteFunc(round, func(a *action) bool { return deferred[a] })
	}
	for i, a := range round {
		// Fenced: the lease lapsed (a paused process, a slow
		// heartbeat) and another replica may lead; its intents are
		// looked up by whoever leads next.
		term, until, ok := s.lease.Fence()
		if !ok || term != st.term {
			s.log.Warn("chat: the lease lapsed during a round; its remaining messages wait for the next leader", "left", len(round)-i)
			s.unsent(round[i:])
			return
		}
		s.perform(ctx, a, s.now(), until)
	}
}

// maxUnsent bounds the remembered intents never acted on.
const maxUnsent = 10_000

// unsent remembers this replica's fresh intents among actions it never
// acted on (no Slack call was made), so that when it reads them back on
// leading again it plans them afresh instead of looking them up: the
// process knows for sure it did not post them. Other replicas, which
// cannot know, look them up after the grace period.
func (s *Sender) unsent(actions []*action) {
	for _, a := range actions {
		if it := a.intent; it != nil && it.fresh {
			if len(s.notSent) >= maxUnsent {
				clear(s.notSent)
			}
			s.notSent[deliveryRef{it.d.IncidentID, it.d.Channel, it.d.Key}] = it.d.At.UnixMilli()
		}
	}
}

// neverSent reports (once) whether d is an intent of this replica that it
// never acted on (see unsent).
func (s *Sender) neverSent(d Delivery) bool {
	if d.State != StateIntent || d.Holder != s.holder {
		return false
	}
	k := deliveryRef{d.IncidentID, d.Channel, d.Key}
	at, ok := s.notSent[k]
	if !ok || at != d.At.UnixMilli() {
		return false
	}
	delete(s.notSent, k)
	return true
}

// deliveryRef names a delivery.
type deliveryRef struct{ inc, ch, key string }

func (a *action) incidentID() string {
	if a.digest != nil {
		return digestIncident
	}
	return a.pair.inc
}

func (a *action) registerIntent() {
	if a.digest != nil {
		a.digest.intent = a.intent
		return
	}
	a.pair.intents[a.key] = a.intent
}

// claim reads the intents back and returns the actions not to perform: a
// delivery another replica already made is taken from its record, and one
// another holder also intends to make (a brief double leadership) is left
// to the look-up after the grace period rather than sent twice.
func (s *Sender) claim(ctx context.Context, fresh []*action, now time.Time) (map[*action]bool, error) {
	ids := map[string]bool{}
	for _, a := range fresh {
		ids[a.incidentID()] = true
	}
	recs, err := s.ledger.LoadChat(ctx, slices.Sorted(maps.Keys(ids)), s.holder)
	if err != nil {
		return nil, err
	}
	foreign := map[deliveryRef]bool{}
	final := map[deliveryRef]Delivery{}
	for _, d := range recs.Deliveries {
		k := deliveryRef{d.IncidentID, d.Channel, d.Key}
		switch {
		case d.State.Final():
			final[k] = d
		case !d.ForeignIntentAt.IsZero() && now.Sub(d.ForeignIntentAt) < s.grace:
			foreign[k] = true
		}
	}
	out := map[*action]bool{}
	for _, a := range fresh {
		k := deliveryRef{a.incidentID(), a.channel(), a.key}
		if d, ok := final[k]; ok {
			// Another replica made it (or gave up on it) while this
			// one did not know: take its record.
			s.log.Warn("chat: another replica already delivered this message; not sending it", "incident", k.inc, "channel", k.ch, "key", k.key, "state", d.State, "holder", d.Holder)
			s.adopt(a, d, recs.Messages)
			out[a] = true
			continue
		}
		if foreign[k] {
			s.log.Warn("chat: another replica intends the same message; looking it up later instead", "incident", a.incidentID(), "channel", a.channel(), "key", a.key)
			out[a] = true
		}
	}
	return out, nil
}

// adopt takes another replica's final record of an action's delivery in
// place of making it.
func (s *Sender) adopt(a *action, d Delivery, msgs []MessageRecord) {
	if j := a.digest; j != nil {
		j.done, j.intent = true, nil
		return
	}
	s.dropIntent(a)
	var own []MessageRecord
	for _, m := range msgs {
		if m.IncidentID == d.IncidentID && m.Channel == d.Channel {
			own = append(own, m)
		}
	}
	s.merge(Records{Messages: own, Deliveries: []Delivery{d}})
}

// perform makes one action's Slack calls and records the outcome. The
// calls end by until, when the lease ends unless renewed: a call that a
// pause held up past it is not sent (see lease.Lease.Fence).
func (s *Sender) perform(ctx context.Context, a *action, now, until time.Time) {
	cctx, cancel := context.WithTimeout(ctx, min(callTimeout, until.Sub(now)))
	defer cancel()
	if a.intent != nil {
		a.intent.fresh = false // acted on from here
	}
	switch a.kind {
	case actPost, actReply, actFlap, actDigest:
		chID, ts, err := s.send(cctx, a)
		s.settle(a, chID, ts, err, now)
	case actUpdate:
		p, is := a.pair, a.is
		err := s.api.update(cctx, p.msg.ChannelID, p.msg.TS, is.msg)
		s.written(p.channel, err, now)
		if err == nil || classify(err).result == resultPermanent {
			if err != nil {
				s.log.Warn("chat: Slack refused to update the incident message; it stays as it is", "incident", p.inc, "channel", p.channel, "err", err)
			}
			p.msg.Hash = is.hash
			p.msg.At = now
			s.st.buf.Messages = append(s.st.buf.Messages, *p.msg)
		}
	case actRecover:
		s.recover(cctx, a, now)
	}
}

// send posts the action's message and returns where it landed.
func (s *Sender) send(ctx context.Context, a *action) (chID, ts string, err error) {
	if j := a.digest; j != nil {
		if j.hook != "" {
			return "", "", s.api.webhook(ctx, j.hook, j.msg)
		}
		return s.api.post(ctx, j.channel, "", j.msg, deliveryMeta{Key: j.key, IncidentID: digestIncident})
	}
	p, is := a.pair, a.is
	meta := deliveryMeta{Key: a.key, IncidentID: p.inc}
	var msg rendered
	switch a.kind {
	case actPost:
		if p.hook != "" {
			return "", "", s.api.webhook(ctx, p.hook, is.hookMsg)
		}
		return s.api.post(ctx, p.channel, "", is.msg, meta)
	case actReply:
		msg = renderEvent(is.inc, a.event.ev)
		if p.hook != "" {
			return "", "", s.api.webhook(ctx, p.hook, standalone(is.inc, msg))
		}
	case actFlap:
		var evs []incidents.Event
		for _, id := range a.covers {
			if e := s.st.events[id]; e != nil {
				evs = append(evs, e.ev)
			}
		}
		msg = renderFlap(is.inc, evs, s.cfg.FlapInterval)
		if p.hook != "" {
			return "", "", s.api.webhook(ctx, p.hook, standalone(is.inc, msg))
		}
	}
	return s.api.post(ctx, p.msg.ChannelID, p.msg.TS, msg, meta)
}

// settle records the outcome of a post.
func (s *Sender) settle(a *action, chID, ts string, err error, now time.Time) {
	ch := a.channel()
	s.written(ch, err, now)
	if err == nil {
		s.sent(a, chID, ts, now)
		return
	}
	ce := classify(err)
	switch {
	case ce.result != resultPermanent && ce.uncertain:
		a.intent.lookup = true
	case ce.result != resultPermanent:
		// Slack answered that it did not post (a rate limit): plan
		// the delivery afresh.
		s.dropIntent(a)
	default:
		s.log.Warn("chat: Slack refused a message for good", "incident", a.incidentID(), "channel", ch, "key", a.key, "err", err)
		p := s.finish(a, Delivery{State: StateFailed, Error: ce.code}, now)
		if p == nil {
			return
		}
		if a.dkind == KindMain {
			p.failed = ce.code
		}
		if a.dkind == KindFlap {
			p.held = nil
		}
	}
}

// finish records the final outcome of a delivery (d gives its state and,
// when sent, its ts; the rest comes from the action) and marks it done:
// its intent is gone and neither it nor the events it covers are planned
// again. It returns the delivery's pair, or nil for a digest.
func (s *Sender) finish(a *action, d Delivery, now time.Time) *pairState {
	d.IncidentID, d.Channel, d.Key, d.Kind = a.incidentID(), a.channel(), a.key, a.dkind
	d.Covers, d.Holder, d.At = a.covers, s.holder, now
	s.st.buf.Deliveries = append(s.st.buf.Deliveries, d)
	if j := a.digest; j != nil {
		j.done, j.intent = true, nil
		return nil
	}
	p := a.pair
	delete(p.intents, a.key)
	p.done[a.key] = true
	for _, c := range a.covers {
		p.done[c] = true
	}
	return p
}

// dropIntent forgets an intent known not to have been posted, so that
// the delivery is planned afresh (with a new intent).
func (s *Sender) dropIntent(a *action) {
	if j := a.digest; j != nil {
		j.intent = nil
		return
	}
	delete(a.pair.intents, a.key)
}

// sent records a message that exists in Slack.
func (s *Sender) sent(a *action, chID, ts string, now time.Time) {
	st := s.st
	covers := a.covers
	p := s.finish(a, Delivery{State: StateSent, TS: ts}, now)
	if p == nil {
		return
	}
	switch a.dkind {
	case KindMain:
		hash := a.is.hash
		if a.kind == actRecover {
			// Found, not written now: it shows what its intent said
			// (or, if unknown, gets updated).
			hash = a.intent.d.Hash
		}
		p.msg = &MessageRecord{IncidentID: p.inc, Channel: p.channel, ChannelID: chID, TS: ts, Hash: hash, At: now}
		st.buf.Messages = append(st.buf.Messages, *p.msg)
	case KindChurn:
		p.lastChurn = now
		if a.event != nil {
			p.churnBatch = a.event.inserted
		}
	case KindFlap:
		p.lastChurn = now
		p.held = slices.DeleteFunc(p.held, func(id string) bool { return slices.Contains(covers, id) })
	}
}

// written paces a channel after a call: one write per ChannelInterval,
// Retry-After after a rate limit, exponential backoff after transient
// errors.
func (s *Sender) written(ch string, err error, now time.Time) {
	st := s.st
	if err == nil {
		st.fails[ch] = 0
		st.ready[ch] = now.Add(s.cfg.ChannelInterval)
		return
	}
	ce := classify(err)
	switch ce.result {
	case resultRateLimited:
		st.ready[ch] = now.Add(max(ce.wait, s.cfg.ChannelInterval))
		s.log.Info("chat: rate limited by Slack", "channel", ch, "retry_after", ce.wait.String())
	case resultRetry:
		st.fails[ch]++
		wait := backoff(st.fails[ch])
		st.ready[ch] = now.Add(wait)
		s.log.Warn("chat: Slack call failed, retrying", "channel", ch, "in", wait.String(), "err", err)
	default:
		st.fails[ch] = 0
		st.ready[ch] = now.Add(s.cfg.ChannelInterval)
	}
}

// backoff is 1s, 2s, 4s, … up to maxBackoff.
func backoff(n int) time.Duration {
	d := time.Second
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}
