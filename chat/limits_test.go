package chat_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/chat/chattest"
	"github.com/ninesops/nines/chat/slacktest"
	"github.com/ninesops/nines/incidents"
)

// TestRateLimited: on HTTP 429 the sender waits Retry-After before it
// writes to the channel again, then posts once.
func TestRateLimited(t *testing.T) {
	memHarness(t, func(t *testing.T, h *harness) {
		h.slack.RateLimit("chat.postMessage", 7*time.Second, 1)
		r := h.start("a")
		h.notify("g1", alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: time.Now().Add(-time.Minute)})
		h.idle(r)
		var limited time.Time
		var limitedChannel string
		for _, c := range h.slack.Calls() {
			if c.Error == "http_429" {
				limited, limitedChannel = c.At, c.Channel
				continue
			}
			if !limited.IsZero() && c.Method == "chat.postMessage" && c.Channel == limitedChannel {
				if wait := c.At.Sub(limited); wait < 7*time.Second {
					t.Errorf("retried %s after %s, want at least Retry-After (7s)", c.Channel, wait)
				}
			}
		}
		if limited.IsZero() {
			t.Fatal("no call was rate limited")
		}
		for _, ch := range []string{"#operations", "#checkout"} {
			if n := h.assertOnce(ch); n != 1 {
				t.Errorf("%s has %d messages, want 1", ch, n)
			}
		}
		if got := r.metric("nines_chat_messages_total", "method", "chat.postMessage", "result", "rate_limited"); got != 1 {
			t.Errorf("rate_limited = %v, want 1", got)
		}
		// The other channel was not held up by the rate limit.
		for _, c := range h.slack.Calls() {
			if c.Method == "chat.postMessage" && c.Channel != limitedChannel && c.Error == "" && c.At.Sub(limited) > time.Second {
				t.Errorf("%s waited for %s's rate limit", c.Channel, limitedChannel)
			}
		}
	})
}

// TestPermanentErrors: Slack's final refusals are logged, counted and
// recorded as failed, and never retried; other channels carry on.
func TestPermanentErrors(t *testing.T) {
	tests := []struct {
		name   string
		code   string
		break_ func(f *slacktest.Fake)
	}{
		{"deleted channel", "channel_not_found", func(f *slacktest.Fake) { f.Delete("#checkout") }},
		{"bot not in channel", "not_in_channel", func(f *slacktest.Fake) { f.Kick("#checkout") }},
		{"archived channel", "is_archived", func(f *slacktest.Fake) { f.Archive("#checkout") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			memHarness(t, func(t *testing.T, h *harness) {
				tc.break_(h.slack)
				r := h.start("a")
				h.notify("g1", alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: time.Now().Add(-time.Minute)})
				id := h.incidentOf("checkout")
				h.idle(r)
				if _, err := h.svc.Acknowledge(context.Background(), id, "slack:alice"); err != nil {
					t.Fatal(err)
				}
				h.idle(r)
				attempts := 0
				for _, c := range h.slack.Calls() {
					if c.Channel == "#checkout" {
						attempts++
						if c.Error != tc.code {
							t.Errorf("call to #checkout answered %q, want %q", c.Error, tc.code)
						}
					}
				}
				if attempts != 1 {
					t.Errorf("%d calls to #checkout, want exactly 1 (no retries)", attempts)
				}
				if got := len(h.slack.Messages("#operations")); got != 1 || len(h.slack.Messages("#operations")[0].Replies) != 1 {
					t.Errorf("#operations: %d messages, want 1 with the ack reply", got)
				}
				if got := r.metric("nines_chat_permanent_errors_total", "error", tc.code); got != 1 {
					t.Errorf("permanent errors{%s} = %v, want 1", tc.code, got)
				}
				if got := r.metric("nines_chat_messages_total", "method", "chat.postMessage", "result", "permanent_error"); got != 1 {
					t.Errorf("postMessage permanent_error = %v, want 1", got)
				}
				failed := 0
				for _, d := range h.store.(*chattest.Mem).Deliveries() {
					if d.Channel == "#checkout" && d.State == chat.StateFailed {
						failed++
						if d.Key == chat.KindMain && d.Error != tc.code {
							t.Errorf("failed main recorded with %q, want %q", d.Error, tc.code)
						}
					}
				}
				if failed < 2 {
					t.Errorf("%d failed deliveries in #checkout, want the main message and its events", failed)
				}
			})
		})
	}
}

// TestFlapThrottled: an alert that flaps for minutes gets one thread
// reply at first and then one summary per flap interval, with a count.
func TestFlapThrottled(t *testing.T) {
	memHarness(t, func(t *testing.T, h *harness) {
		r := h.start("a")
		start := time.Now()
		spec := alertSpec{name: "CheckoutFlaky", service: "checkout", severity: "critical", start: start}
		h.notify("g1", spec)
		id := h.incidentOf("checkout")
		// Seven flaps, 40 seconds apart: resolve, then fire again.
		for range 7 {
			time.Sleep(20 * time.Second)
			spec.end = time.Now()
			h.notify("g1", spec)
			time.Sleep(20 * time.Second)
			spec = alertSpec{name: spec.name, service: spec.service, severity: spec.severity, start: time.Now()}
			h.notify("g1", spec)
		}
		// Let the flap interval run out.
		time.Sleep(6 * time.Minute)
		h.idle(r)

		kinds := h.kinds(id)
		want := []string{
			"bot main updates=14",
			"  reply alert_resolved", // the first change is posted at once
			"  reply resolved",
			"  reply flap", // the other 13 changes, summarized
		}
		got := h.shape("#operations", kinds)
		if !equal(got, want) {
			t.Fatalf("#operations = %q, want %q", got, want)
		}
		msg := h.slack.Messages("#operations")[0]
		flap := string(msg.Replies[2].Blocks)
		if !strings.Contains(flap, "flapped 7 times in the last 5m") || !strings.Contains(flap, "reopened 7×") {
			t.Errorf("flap summary = %s", flap)
		}
		// At most one alert-change reply per flap interval.
		var churn []time.Time
		for _, c := range h.slack.Calls() {
			if c.Method == "chat.postMessage" && c.Thread != "" && c.Channel == msg.ChannelID {
				churn = append(churn, c.At)
			}
		}
		if len(churn) != 3 || churn[2].Sub(churn[0]) < 5*time.Minute {
			t.Errorf("alert-change replies at %v, want the summary at least 5m after the first", churn)
		}
		inc, _ := h.store.Get(context.Background(), id)
		if inc.Flaps != 7 || inc.State != incidents.StateFiring {
			t.Errorf("incident: %d flaps, %s", inc.Flaps, inc.State)
		}
	})
}

// TestStorm: a hundred incidents at once. Every incident is posted before
// any is updated, later changes to a message become one update, and no
// channel gets more than one write per ChannelInterval.
func TestStorm(t *testing.T) {
	memHarness(t, func(t *testing.T, h *harness) {
		h.cfg.ChannelInterval = time.Second
		r := h.start("a")
		start := time.Now().Add(-time.Minute)
		const n = 100
		for i := range n {
			h.notify(fmt.Sprintf("storm-%03d", i), alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: start, instance: fmt.Sprintf("host-%03d", i)})
		}
		// Ten seconds in, with about ten incidents posted, everything is
		// acknowledged and noted twice.
		time.Sleep(10 * time.Second)
		ids, _, err := h.store.(chat.IncidentLister).List(context.Background(), incidents.Filter{Limit: 1000})
		if err != nil || len(ids) != n {
			t.Fatalf("%d incidents (%v)", len(ids), err)
		}
		for _, inc := range ids {
			if _, err := h.svc.Acknowledge(context.Background(), inc.ID, "slack:alice"); err != nil {
				t.Fatal(err)
			}
			for k := range 2 {
				if _, err := h.svc.AddNote(context.Background(), inc.ID, "slack:bob", fmt.Sprint("note ", k)); err != nil {
					t.Fatal(err)
				}
			}
		}
		h.waitFor("the storm to drain", 30*time.Minute, func() bool {
			return r.metric("nines_chat_queue_depth") == 0 && len(h.slack.Messages("#operations")) == n
		})
		h.idle(r)
		for _, ch := range []string{"#operations", "#checkout"} {
			msgs := h.slack.Messages(ch)
			if len(msgs) != n {
				t.Errorf("%s: %d messages, want %d", ch, len(msgs), n)
			}
			h.assertOnce(ch)
			for _, m := range msgs {
				if m.Updates() > 1 {
					t.Errorf("%s: a message was updated %d times, want at most once", ch, m.Updates())
				}
			}
		}
		last := map[string]time.Time{}
		lastPost := map[string]time.Time{}
		firstUpdate := map[string]time.Time{}
		for _, c := range h.slack.Calls() {
			ch := c.Channel
			if ch == "#operations" || ch == "#checkout" {
				ch = h.channelID(ch)
			}
			if prev, ok := last[ch]; ok && c.At.Sub(prev) < time.Second {
				t.Fatalf("%s written %s after the previous write", ch, c.At.Sub(prev))
			}
			last[ch] = c.At
			switch {
			case c.Method == "chat.postMessage" && c.Thread == "":
				lastPost[ch] = c.At
			case c.Method == "chat.update" && firstUpdate[ch].IsZero():
				firstUpdate[ch] = c.At
			}
		}
		for ch, u := range firstUpdate {
			if u.Before(lastPost[ch]) {
				t.Errorf("%s: an update before every incident was posted", ch)
			}
		}
	})
}
