// Recovery: an intent without an outcome (a crash, a call that ended
// without an answer) is finished by looking the message up in Slack by its
// metadata; when it is not there the delivery is planned afresh.

package chat

import (
	"context"
	"time"
)

// recover finishes an intent: the message is looked up in Slack by its
// metadata and recorded when found; when it is not there, the delivery is
// planned afresh.
func (s *Sender) recover(ctx context.Context, a *action, now time.Time) {
	it := a.intent
	hook := ""
	if a.digest != nil {
		hook = a.digest.hook
	} else {
		hook = a.pair.hook
	}
	if hook != "" {
		// Incoming webhooks cannot be looked up: at least once.
		s.dropIntent(a)
		return
	}
	var chID, thread string
	if a.dkind == KindMain || a.dkind == KindDigest {
		id, err := s.api.channelID(ctx, a.channel())
		if err != nil {
			if classify(err).result != resultPermanent {
				s.written(a.channel(), err, now)
				return
			}
			s.log.Warn("chat: cannot look up an interrupted post (channel ID unknown); sending it again", "channel", a.channel(), "err", err)
			s.dropIntent(a)
			return
		}
		chID = id
	} else {
		p := a.pair
		if p.msg == nil {
			s.dropIntent(a)
			return
		}
		chID, thread = p.msg.ChannelID, p.msg.TS
	}
	ts, err := s.api.find(ctx, chID, thread, it.d.At.Add(-time.Minute), deliveryMeta{Key: it.d.Key, IncidentID: a.incidentID()})
	s.lookedUp(a.channel(), err, now)
	if err != nil {
		if classify(err).result == resultPermanent {
			s.log.Warn("chat: cannot look up an interrupted post; sending it again", "channel", a.channel(), "err", err)
			s.dropIntent(a)
		}
		return
	}
	if ts == "" {
		s.dropIntent(a)
		return
	}
	s.log.Info("chat: interrupted post found in Slack", "incident", a.incidentID(), "channel", a.channel(), "key", it.d.Key)
	a.covers = it.d.Covers
	s.sent(a, chID, ts, now)
}

// lookedUp paces a channel after a look-up. A look-up that works says
// nothing of whether posts do: the backoff of the post that failed stands
// (README.md: 1 s doubling to 5 min between attempts), or a channel whose
// posts keep failing would be retried every second.
func (s *Sender) lookedUp(ch string, err error, now time.Time) {
	if err != nil {
		s.written(ch, err, now)
		return
	}
	st := s.st
	st.ready[ch] = later(st.ready[ch], now.Add(s.cfg.ChannelInterval))
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
