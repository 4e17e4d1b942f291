package chat_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/lease"
)

// TestIncidentLife follows one incident through its life in #operations
// and in its owner's channel: one message each, posted on open and
// updated in place on ack and resolve, with a thread reply per timeline
// event, in order.
func TestIncidentLife(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		// The only sender: it leads from its first heartbeat, so the
		// default lease costs nothing, and a loaded machine cannot make
		// it lapse (on ClickHouse, in real time, the test lease of 1.5s
		// lapsed when a check took over 0.9s; a call cut short by the
		// lease's end is looked up, which the exact call list below would
		// show: TestLapseMidRound covers lapses).
		r := h.start("a", func(o *chat.Options) {
			o.LeaseTTL, o.LeaseHeartbeat = lease.DefaultTTL, lease.DefaultHeartbeat
		})
		start := time.Now().Add(-time.Minute).Truncate(time.Second)
		down := alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: start}
		h.notify("g1", down)
		id := h.incidentOf("checkout")
		h.idle(r)
		if _, err := h.svc.Acknowledge(context.Background(), id, "slack:alice"); err != nil {
			t.Fatal(err)
		}
		h.idle(r)
		if _, err := h.svc.AddNote(context.Background(), id, "slack:bob", "Rolling back the deploy <!channel>"); err != nil {
			t.Fatal(err)
		}
		h.idle(r)
		down.end = time.Now().Truncate(time.Second)
		h.notify("g1", down)
		h.idle(r)

		kinds := h.kinds(id)
		want := []string{
			"bot main updates=2",
			"  reply acknowledged",
			"  reply note",
			"  reply alert_resolved",
			"  reply resolved",
		}
		for _, ch := range []string{"#operations", "#checkout"} {
			if got := h.shape(ch, kinds); !slices.Equal(got, want) {
				t.Errorf("%s:\n got %q\nwant %q", ch, got, want)
			}
		}
		// The calls per channel, in order: the update comes before the
		// reply of the same change (updates outrank replies).
		var calls []string
		for _, c := range h.slack.Calls() {
			if c.Channel == "#checkout" || c.Channel == h.channelID("#checkout") {
				op := c.Method
				if c.Thread != "" {
					op = "reply"
				}
				calls = append(calls, op)
			}
		}
		wantCalls := []string{"chat.postMessage", "chat.update", "reply", "reply", "chat.update", "reply", "reply"}
		if !slices.Equal(calls, wantCalls) {
			t.Errorf("calls in #checkout = %v, want %v", calls, wantCalls)
		}
		msg := h.slack.Messages("#operations")[0]
		if msg.Metadata == nil || msg.Metadata.EventType != "nines_event" || msg.Metadata.EventPayload["incident_id"] != id {
			t.Errorf("main message metadata = %+v", msg.Metadata)
		}
		blocks := string(msg.Blocks)
		for _, s := range []string{"Resolved by alertmanager", "acknowledged by slack:alice", "CheckoutDown", "Runbook", "https://grafana.example.com/d/checkout"} {
			if !strings.Contains(blocks, s) {
				t.Errorf("final message lacks %q: %s", s, blocks)
			}
		}
		if strings.Contains(blocks, "nines_ack") || strings.Contains(blocks, "nines_resolve") {
			t.Errorf("a resolved incident's message has buttons: %s", blocks)
		}
		// The acked version (the first update's content) had only Resolve.
		var first struct {
			Blocks json.RawMessage `json:"blocks"`
		}
		if err := json.Unmarshal(msg.Versions[1], &first); err != nil {
			t.Fatal(err)
		}
		if s := string(first.Blocks); strings.Contains(s, "nines_ack") || !strings.Contains(s, "nines_resolve") {
			t.Errorf("acknowledged version: want Resolve only: %s", s)
		}
		note := msg.Replies[1]
		if strings.Contains(string(note.Blocks), "<!channel>") {
			t.Errorf("note not escaped: %s", note.Blocks)
		}
		if got := r.metric("nines_chat_messages_total", "method", "chat.postMessage", "result", "ok"); got != 10 {
			t.Errorf("postMessage ok = %v, want 10", got)
		}
		if got := r.metric("nines_chat_leader"); got != 1 {
			t.Errorf("leader = %v, want 1", got)
		}
	})
}

func (h *harness) channelID(name string) string {
	for _, m := range h.slack.Messages(name) {
		return m.ChannelID
	}
	return ""
}

// TestRoutingRules checks which channels hear of incidents of each impact
// under rules, and the incoming-webhook fallback.
func TestRoutingRules(t *testing.T) {
	memHarness(t, func(t *testing.T, h *harness) {
		outage := incidents.ImpactOutage
		degraded := incidents.ImpactDegraded
		h.cfg.Rules = []chat.Rule{
			{Channel: chat.DestOwner, MinImpact: &degraded},
			{Channel: chat.DestOperations, MinImpact: &outage},
			{Channel: "#payments-leads", Services: []string{"payments-api"}, MinImpact: &outage},
		}
		h.slack.AddChannel("#payments-leads")
		h.hooks = map[string]string{"#web-ops": h.slack.AddWebhook("#web-ops")}
		r := h.start("a")
		now := time.Now().Add(-time.Minute)
		h.notify("g-checkout-warn", alertSpec{name: "CheckoutSlow", service: "checkout", severity: "warning", start: now})
		h.notify("g-payments", alertSpec{name: "PaymentsDown", service: "payments-api", severity: "critical", start: now})
		h.notify("g-search-info", alertSpec{name: "SearchInfo", service: "search", severity: "info", start: now})
		h.notify("g-front", alertSpec{name: "FrontendDown", service: "frontend", severity: "critical", start: now})
		h.idle(r)

		count := func(ch string) map[string]int {
			out := map[string]int{}
			for _, m := range h.slack.Messages(ch) {
				out[incidentOfMsg(m.Blocks)]++
			}
			return out
		}
		checkout, payments, search, front := h.incidentOf("checkout"), h.incidentOf("payments-api"), h.incidentOf("search"), h.incidentOf("frontend")
		tests := []struct {
			channel string
			want    []string
		}{
			{"#operations", []string{payments, front}}, // outages only
			{"#checkout", []string{checkout}},          // degraded reaches the owner
			{"#payments-ops", []string{payments}},      // payments-api's owner channel
			{"#payments-leads", []string{payments}},    // a rule's own channel
			{"#web-ops", []string{front}},              // through the webhook
		}
		for _, tc := range tests {
			got := count(tc.channel)
			if len(got) != len(tc.want) {
				t.Errorf("%s got %v, want %v", tc.channel, got, tc.want)
			}
			for _, id := range tc.want {
				if got[id] != 1 {
					t.Errorf("%s: %s posted %d times, want once", tc.channel, id, got[id])
				}
			}
		}
		for _, m := range h.slack.Messages("#operations") {
			if incidentOfMsg(m.Blocks) == search {
				t.Error("an impact-none incident reached #operations")
			}
		}
		web := h.slack.Messages("#web-ops")
		if web[0].Via != "webhook" || strings.Contains(string(web[0].Blocks), "nines_ack") {
			t.Errorf("webhook post = %+v, want a webhook post without buttons", web[0])
		}

		// Resolving: the webhook channel gets a post (no update, no
		// thread); the bot channels an update and replies.
		h.notify("g-front", alertSpec{name: "FrontendDown", service: "frontend", severity: "critical", start: now, end: time.Now()})
		h.idle(r)
		web = h.slack.Messages("#web-ops")
		if len(web) != 2 || web[1].Via != "webhook" || !strings.Contains(web[1].Text, "frontend") || len(web[0].Replies) != 0 {
			t.Errorf("#web-ops after resolve: %+v", web)
		}
		ops := h.slack.Messages("#operations")
		for _, m := range ops {
			if incidentOfMsg(m.Blocks) == front && (m.Updates() != 1 || len(m.Replies) != 2) {
				t.Errorf("frontend in #operations: %d updates, %d replies; want 1 and 2", m.Updates(), len(m.Replies))
			}
		}
	})
}

// incidentOfMsg finds the incident ID in a message's blocks.
func incidentOfMsg(blocks json.RawMessage) string {
	s := string(blocks)
	i := strings.Index(s, "inc-")
	if i < 0 || len(s) < i+24 {
		return ""
	}
	return s[i : i+24]
}
