package chat_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chat"
)

func testFigures() *fakeAvailability {
	fig := func(svc, owner string, a, slo, budget, left float64, n int) chat.Figure {
		return chat.Figure{Service: svc, Owner: owner, Availability: a, SLOTarget: slo, BudgetSeconds: budget, BudgetRemaining: left, Incidents: n}
	}
	return &fakeAvailability{figs: map[string]map[string]chat.Figure{
		"7d": {
			"checkout": fig("checkout", "payments", 0.998, 0.999, 604.8, -1, 2),
			"frontend": fig("frontend", "web", 1, 0.999, 604.8, 1, 0),
			"search":   fig("search", "discovery", 0.9995, 0.999, 604.8, 0.5, 1),
		},
		"30d": {
			"checkout": fig("checkout", "payments", 0.9991, 0.999, 2592, 0.12, 3),
			"frontend": fig("frontend", "web", 1, 0.999, 2592, 1, 0),
			"search":   fig("search", "discovery", 0.9999, 0.999, 2592, 0.9, 1),
		},
	}}
}

// TestDigestScheduled: the weekly digest goes to #operations and each
// squad's channel once, at the configured time, and not again after a
// restart. Incident messages show the error budget they used.
func TestDigestScheduled(t *testing.T) {
	memHarness(t, func(t *testing.T, h *harness) {
		// The bubble's clock starts on Saturday 2000-01-01 00:00 UTC.
		h.cfg.Digest = chat.DigestConfig{Cadence: chat.CadenceWeekly, Weekday: "monday", At: "09:00"}
		h.avail = testFigures()
		monday := time.Date(2000, 1, 3, 9, 0, 0, 0, time.UTC)
		time.Sleep(time.Until(monday) - 5*time.Minute)
		a := h.start("a")
		h.notify("g1", alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: time.Now().Add(-259 * time.Second)})
		h.idle(a)
		main := h.slack.Messages("#checkout")[0]
		if !strings.Contains(string(main.Blocks), "This incident has used 10% of checkout's 30-day error budget (12% left)") {
			t.Errorf("no budget line in %s", main.Blocks)
		}
		if _, err := h.svc.Resolve(context.Background(), h.incidentOf("checkout"), "slack:alice"); err != nil {
			t.Fatal(err)
		}
		h.idle(a)
		before := len(h.slack.Messages("#operations"))

		time.Sleep(time.Until(monday) - time.Second)
		if len(h.slack.Messages("#operations")) != before {
			t.Fatal("digest posted before it was due")
		}
		time.Sleep(5 * time.Second)
		h.idle(a)
		check := func() {
			t.Helper()
			for ch, want := range map[string][]string{
				"#operations":   {"All services", "checkout", "frontend", "search", "Below SLO"},
				"#payments-ops": {"Squad payments", "checkout"},
				"#web-ops":      {"Squad web", "frontend", "Every service met its SLO"},
			} {
				var digests []string
				for _, m := range h.slack.Messages(ch) {
					if strings.HasPrefix(m.EventID(), "digest:") {
						digests = append(digests, string(m.Blocks))
					}
				}
				if len(digests) != 1 {
					t.Errorf("%s: %d digests, want 1", ch, len(digests))
					continue
				}
				for _, w := range want {
					if !strings.Contains(digests[0], w) {
						t.Errorf("%s digest lacks %q", ch, w)
					}
				}
				if ch == "#payments-ops" && strings.Contains(digests[0], "frontend") {
					t.Errorf("payments' digest shows web's services")
				}
			}
		}
		check()
		a.stop()
		time.Sleep(10 * time.Minute)
		b := h.start("b")
		h.idle(b)
		check() // not posted again
	})
}
