package chat_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/chat/chattest"
	"github.com/ninesops/nines/chat/slacktest"
)

// assertOnce checks that a channel holds at most one message per
// incident and at most one reply per event, and returns the number of
// messages.
func (h *harness) assertOnce(channel string) int {
	h.t.Helper()
	msgs := h.slack.Messages(channel)
	seen := map[string]bool{}
	for _, m := range msgs {
		key := fmt.Sprint(m.Metadata.EventPayload["incident_id"], "/", m.EventID())
		if seen[key] {
			h.t.Errorf("%s: %s posted twice", channel, key)
		}
		seen[key] = true
		replies := map[string]bool{}
		for _, r := range m.Replies {
			if replies[r.EventID()] {
				h.t.Errorf("%s: reply %s posted twice", channel, r.EventID())
			}
			replies[r.EventID()] = true
		}
	}
	return len(msgs)
}

// switchLedger fails every write once tripped, as a crashed process
// writes nothing more.
type switchLedger struct {
	chat.Ledger
	down atomic.Bool
}

func (l *switchLedger) WriteChat(ctx context.Context, r chat.Records) error {
	if l.down.Load() {
		return fmt.Errorf("crashed")
	}
	return l.Ledger.WriteChat(ctx, r)
}

// TestRestartContinues stops a sender with a queue Slack could not take,
// starts another on the same store, and then crashes one between Slack's
// action and its own record of it: every message is posted once, and
// none is missing.
func TestRestartContinues(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		start := time.Now().Add(-time.Minute).Truncate(time.Second)

		// Slack is down: the queue builds up.
		h.slack.ServerError("chat.postMessage", 1_000_000)
		a := h.start("a")
		h.notify("g1", alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: start})
		h.notify("g2", alertSpec{name: "PaymentsDown", service: "payments-api", severity: "critical", start: start})
		checkout, payments := h.incidentOf("checkout"), h.incidentOf("payments-api")
		if _, err := h.svc.Acknowledge(ctx, checkout, "slack:alice"); err != nil {
			t.Fatal(err)
		}
		h.waitFor("failed attempts", 20*time.Second, func() bool {
			return a.metric("nines_chat_messages_total", "method", "chat.postMessage", "result", "retry") >= 2
		})
		if d := a.metric("nines_chat_queue_depth"); d == 0 {
			t.Error("queue depth 0 while Slack is down")
		}
		a.stop()
		if got := len(h.slack.Messages("#operations")); got != 0 {
			t.Fatalf("posted %d messages while Slack was down", got)
		}

		// Slack is back; a new sender takes over after a's lease expires
		// and delivers the queue.
		h.slack.ClearFaults()
		b := h.start("b")
		h.idle(b)
		for _, ch := range []string{"#operations", "#checkout", "#payments-ops"} {
			h.assertOnce(ch)
		}
		kinds := h.kinds(checkout, payments)
		if got, want := h.shape("#checkout", kinds), []string{"bot main updates=0"}; !equal(got, want) {
			t.Errorf("#checkout = %q, want %q (the ack happened before the post: no reply)", got, want)
		}
		if got := len(h.slack.Messages("#operations")); got != 2 {
			t.Errorf("#operations has %d messages, want 2", got)
		}

		// A crash right after Slack acted: b's record of the post is lost.
		ledger := &switchLedger{Ledger: h.store}
		b.stop()
		var once sync.Once
		var c *running
		crashed := make(chan struct{})
		h.slack.AfterCall(func(call slacktest.Call) {
			if call.Method == "chat.postMessage" && call.Thread != "" {
				once.Do(func() {
					ledger.down.Store(true)
					go func() { c.stop(); close(crashed) }()
				})
			}
		})
		c = h.start("c", func(o *chat.Options) { o.Ledger = ledger })
		// An event that becomes a thread reply in two channels.
		if _, err := h.svc.AddNote(ctx, checkout, "slack:bob", "rolling back"); err != nil {
			t.Fatal(err)
		}
		h.waitFor("the crash", 20*time.Second, func() bool {
			select {
			case <-crashed:
				return true
			default:
				return false
			}
		})
		h.slack.AfterCall(nil)
		before := len(h.slack.Calls())

		d := h.start("d")
		h.idle(d)
		for _, ch := range []string{"#operations", "#checkout", "#payments-ops"} {
			h.assertOnce(ch)
		}
		kinds = h.kinds(checkout, payments)
		want := []string{"bot main updates=0", "  reply note"}
		if got := h.shape("#checkout", kinds); !equal(got, want) {
			t.Errorf("#checkout after the crash = %q, want %q", got, want)
		}
		looked := false
		for _, call := range h.slack.Calls()[before:] {
			if call.Method == "conversations.replies" {
				looked = true
			}
		}
		if !looked {
			t.Error("the new sender did not look the interrupted reply up in Slack")
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLostAnswers: a post Slack made but whose answer was lost is found
// by its metadata, not posted again; a post Slack refused with a 5xx is
// looked up, not found, and posted.
func TestLostAnswers(t *testing.T) {
	memHarness(t, func(t *testing.T, h *harness) {
		h.slack.LoseAnswer("chat.postMessage", 1)
		r := h.start("a")
		start := time.Now().Add(-time.Minute)
		h.notify("g1", alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: start})
		h.idle(r)
		id := h.incidentOf("checkout")
		h.slack.LoseAnswer("chat.postMessage", 1)
		if _, err := h.svc.AddNote(context.Background(), id, "slack:bob", "first note"); err != nil {
			t.Fatal(err)
		}
		h.idle(r)
		h.slack.ServerError("chat.postMessage", 1)
		if _, err := h.svc.AddNote(context.Background(), id, "slack:bob", "second note"); err != nil {
			t.Fatal(err)
		}
		h.idle(r)
		kinds := h.kinds(id)
		want := []string{"bot main updates=0", "  reply note", "  reply note"}
		for _, ch := range []string{"#operations", "#checkout"} {
			h.assertOnce(ch)
			if got := h.shape(ch, kinds); !equal(got, want) {
				t.Errorf("%s = %q, want %q", ch, got, want)
			}
		}
		calls := map[string]int{}
		for _, c := range h.slack.Calls() {
			calls[c.Method]++
		}
		if calls["conversations.history"] == 0 || calls["conversations.replies"] < 2 {
			t.Errorf("calls = %v, want look-ups in history and replies", calls)
		}
	})
}

// TestLeadershipHandover runs two senders on one store: only the lease
// holder sends; when it stops heartbeating the other takes over.
func TestLeadershipHandover(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		a := h.start("a")
		// b starts once a leads: started together, b may check the
		// lease before a's first heartbeat and lead briefly too.
		h.waitFor("a to lead", 10*time.Second, func() bool { return a.metric("nines_chat_leader") == 1 })
		b := h.start("b")
		start := time.Now().Add(-time.Minute)
		h.notify("g1", alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: start})
		first := h.incidentOf("checkout")
		h.idle(a)
		if b.metric("nines_chat_leader") != 0 {
			t.Error("both senders lead")
		}
		a.stop()
		h.waitFor("b to lead", 10*time.Second, func() bool { return b.metric("nines_chat_leader") == 1 })
		h.notify("g2", alertSpec{name: "PaymentsDown", service: "payments-api", severity: "critical", start: start})
		second := h.incidentOf("payments-api")
		h.idle(b)
		h.assertOnce("#operations")
		if got := len(h.slack.Messages("#operations")); got != 2 {
			t.Fatalf("#operations has %d messages, want 2", got)
		}
		recs, err := h.store.LoadChat(context.Background(), []string{first, second}, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range recs.Deliveries {
			if d.Key != chat.KindMain {
				continue
			}
			want := "a"
			if d.IncidentID == second {
				want = "b"
			}
			if d.State != chat.StateSent || d.Holder != want {
				t.Errorf("%s in %s: %s by %s, want sent by %s", d.IncidentID, d.Channel, d.State, d.Holder, want)
			}
		}
	})
}

// TestStoreDown: while the chat tables cannot be read or written the
// sender waits (nothing is posted without its intent stored), and it
// catches up once they are back.
func TestStoreDown(t *testing.T) {
	memHarness(t, func(t *testing.T, h *harness) {
		mem := h.store.(*chattest.Mem)
		r := h.start("a")
		h.waitFor("a to lead", 10*time.Second, func() bool { return r.metric("nines_chat_leader") == 1 })
		mem.Down(true)
		h.notify("g1", alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: time.Now().Add(-time.Minute)})
		time.Sleep(time.Minute)
		if n := len(h.slack.Calls()); n != 0 {
			t.Fatalf("%d Slack calls while the store was down", n)
		}
		if r.metric("nines_chat_store_errors_total") == 0 {
			t.Error("store errors not counted")
		}
		mem.Down(false)
		// The sender retries on its own schedule (up to maxBackoff after a
		// minute of errors): wait for the catch-up, then for quiet, so that
		// a duplicate would show.
		h.waitFor("the messages once the store is back", 10*time.Minute, func() bool {
			return len(h.slack.Messages("#operations")) > 0 && len(h.slack.Messages("#checkout")) > 0
		})
		h.idle(r)
		h.assertOneMessage("#operations", "#checkout")
	})
}

// TestCheckAuth: a good token names the bot, a bad one is an error.
func TestCheckAuth(t *testing.T) {
	memHarness(t, func(t *testing.T, h *harness) {
		s, err := chat.New(h.options("a"))
		if err != nil {
			t.Fatal(err)
		}
		if who, err := s.CheckAuth(context.Background()); err != nil || who != "nines in nines-test" {
			t.Errorf("CheckAuth = %q, %v", who, err)
		}
		o := h.options("b")
		o.Token = "xoxb-wrong"
		s, err = chat.New(o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.CheckAuth(context.Background()); err == nil || !strings.Contains(err.Error(), "invalid_auth") {
			t.Errorf("CheckAuth with a wrong token = %v, want invalid_auth", err)
		}
	})
}
