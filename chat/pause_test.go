package chat_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/chat/chattest"
)

// pause stops a simulated process, as SIGSTOP, a long GC pause or a frozen
// VM would: once tripped, every store call and Slack call of the paused
// sender blocks (ignoring its context, as a stopped process does) until
// resume. trip decides where the pause strikes.
type pause struct {
	trip func(point string) bool

	mu      sync.Mutex
	paused  bool
	tripped bool
	resumed chan struct{}
}

func newPause(trip func(point string) bool) *pause {
	return &pause{trip: trip, resumed: make(chan struct{})}
}

// at is called at each point where the process may be stopped: it blocks
// while paused, and pauses when trip says so (the first time).
func (p *pause) at(point string) {
	p.mu.Lock()
	if !p.tripped && p.trip(point) {
		p.tripped, p.paused = true, true
	}
	paused := p.paused
	p.mu.Unlock()
	if paused {
		<-p.resumed
	}
}

func (p *pause) isPaused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused
}

func (p *pause) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		p.paused = false
		close(p.resumed)
	}
}

// pausedStore is the store as a paused process sees it.
type pausedStore struct {
	chattest.Store
	p *pause
}

func (s pausedStore) ChatEventsSince(ctx context.Context, since, notBefore time.Time) ([]chat.StoredEvent, error) {
	s.p.at("read events")
	return s.Store.ChatEventsSince(ctx, since, notBefore)
}

func (s pausedStore) LoadChat(ctx context.Context, ids []string, self string) (chat.Records, error) {
	s.p.at("read deliveries")
	return s.Store.LoadChat(ctx, ids, self)
}

func (s pausedStore) WriteChat(ctx context.Context, r chat.Records) error {
	point := "write results"
	for _, d := range r.Deliveries {
		if d.State == chat.StateIntent && d.Kind == chat.KindMain {
			point = "write main intents"
		}
	}
	s.p.at(point)
	return s.Store.WriteChat(ctx, r)
}

func (s pausedStore) Heartbeat(ctx context.Context, name, holder string, at time.Time) error {
	s.p.at("heartbeat")
	return s.Store.Heartbeat(ctx, name, holder, at)
}

// pausedTransport is Slack as a paused process reaches it: the pause
// strikes after the request is built and before it is sent; once resumed,
// the request goes on as Go's transport would (it is not sent if its
// context ended meanwhile).
type pausedTransport struct {
	next http.RoundTripper
	p    *pause
}

func (t pausedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.p.at("slack " + req.URL.Path[strings.LastIndex(req.URL.Path, "/")+1:])
	return t.next.RoundTrip(req)
}

// TestPausedLeader pauses the leader at each point of a main message's
// delivery (writing its intent, reading it back, calling Slack) for longer
// than its lease, lets the other replica take over and post, and resumes
// it: each channel gets the incident's main message once.
func TestPausedLeader(t *testing.T) {
	tests := []struct {
		name string
		at   string
	}{
		{"writing its intents", "write main intents"},
		{"reading its intents back", "read deliveries"},
		{"calling Slack", "slack chat.postMessage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bothStores(t, func(t *testing.T, h *harness) {
				var armed sync.Mutex
				armedAt := false
				p := newPause(func(point string) bool {
					armed.Lock()
					defer armed.Unlock()
					if point == "write main intents" {
						armedAt = true // the main message's delivery has begun
					}
					return armedAt && point == tc.at
				})
				a := h.start("a", func(o *chat.Options) {
					ps := pausedStore{Store: h.store, p: p}
					o.Events, o.Ledger, o.Leases = ps, ps, ps
					o.HTTPClient = &http.Client{Transport: pausedTransport{next: h.slack.Client().Transport, p: p}}
				})
				h.waitFor("a to lead", 10*time.Second, func() bool { return a.metric("nines_chat_leader") == 1 })
				b := h.start("b")
				h.notify("g1", alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: time.Now().Add(-time.Minute)})
				id := h.incidentOf("checkout")
				h.waitFor("a to pause", 10*time.Second, p.isPaused)

				// b takes over and posts; its records reach the store.
				h.waitFor("b to post and record the main messages", 30*time.Second, func() bool {
					recs, err := h.store.LoadChat(context.Background(), []string{id}, "")
					if err != nil {
						return false
					}
					n := 0
					for _, d := range recs.Deliveries {
						if d.Key == chat.KindMain && d.State == chat.StateSent && d.Holder == "b" {
							n++
						}
					}
					return n == 2
				})
				p.resume()
				// a, the older replica, leads again.
				h.waitFor("a to lead again", 10*time.Second, func() bool { return b.metric("nines_chat_leader") == 0 })
				h.idle(a)
				h.assertOneMessage("#operations", "#checkout")
			})
		})
	}
}

// TestLapseMidRound: a leader whose lease lapses in the middle of a round
// (a slow heartbeat) stops before its next call; when it leads again it
// knows which of its intents it never acted on and posts them without
// looking them up, once.
func TestLapseMidRound(t *testing.T) {
	memHarness(t, func(t *testing.T, h *harness) {
		var slow sync.Mutex
		slowing := false
		p := newPause(func(point string) bool {
			slow.Lock()
			defer slow.Unlock()
			return slowing && point == "heartbeat"
		})
		// Slack answers the round's first post late: meanwhile a
		// heartbeat hangs, and the lease lapses before the next call.
		a := h.start("a", func(o *chat.Options) {
			ps := pausedStore{Store: h.store, p: p}
			o.Leases = ps
			next := h.slack.Client().Transport
			o.HTTPClient = &http.Client{Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
				resp, err := next.RoundTrip(req)
				if !strings.HasSuffix(req.URL.Path, "/chat.postMessage") {
					return resp, err
				}
				slow.Lock()
				first := !slowing
				slowing = true
				slow.Unlock()
				if first {
					for !p.isPaused() {
						time.Sleep(10 * time.Millisecond)
					}
					time.Sleep(2 * time.Second) // longer than the lease's fence
					p.resume()
				}
				return resp, err
			})}
		})
		h.waitFor("a to lead", 10*time.Second, func() bool { return a.metric("nines_chat_leader") == 1 })
		h.notify("g1", alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: time.Now().Add(-time.Minute)})
		h.idle(a)
		h.assertOneMessage("#operations", "#checkout")
		for _, c := range h.slack.Calls() {
			if strings.HasPrefix(c.Method, "conversations.") {
				t.Errorf("a %s look-up of a post the sender knows it never made", c.Method)
			}
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestBackoffPostsOnly: while Slack answers 5xx to posts only (look-ups
// work), the time between two posts to a channel doubles.
func TestBackoffPostsOnly(t *testing.T) {
	memHarness(t, func(t *testing.T, h *harness) {
		h.slack.ServerError("chat.postMessage", 1_000_000)
		a := h.start("a")
		h.waitFor("a to lead", 10*time.Second, func() bool { return a.metric("nines_chat_leader") == 1 })
		h.notify("g1", alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: time.Now().Add(-time.Minute)})
		time.Sleep(2 * time.Minute)
		var posts []time.Time
		lookups := 0
		for _, c := range h.slack.Calls() {
			switch {
			case c.Method == "chat.postMessage" && c.Channel == "#checkout":
				posts = append(posts, c.At)
			case c.Method == "conversations.history":
				lookups++
			}
		}
		// 1 s, 2 s, 4 s, … 64 s: 7 posts in two minutes.
		if len(posts) < 5 || len(posts) > 8 {
			t.Errorf("%d posts to #checkout in 2 minutes, want 7 (backoff 1 s doubling)", len(posts))
		}
		for i := 1; i < len(posts); i++ {
			gap, want := posts[i].Sub(posts[i-1]), min(time.Second<<min(i-1, 20), 5*time.Minute)
			if gap < want {
				t.Errorf("post %d came %s after the previous one, want at least %s", i+1, gap, want)
				break
			}
		}
		if lookups == 0 {
			t.Error("no look-up before a post was retried")
		}
	})
}

// blindLeases hides a holder from a replica's view of the lease, as clocks
// further apart than the lease's margin would: both replicas lead.
type blindLeases struct {
	chat.Leases
	hide string
}

func (l blindLeases) LeaseHolders(ctx context.Context, name string, since time.Time) ([]string, error) {
	hs, err := l.Leases.LeaseHolders(ctx, name, since)
	return slices.DeleteFunc(hs, func(h string) bool { return h == l.hide }), err
}

// TestDoubleLeaderTakesTheOthersRecord: two replicas lead at once; one is
// held up reading its intents back while the other posts the same
// messages. Reading back, it finds them delivered and takes their record
// instead of posting.
func TestDoubleLeaderTakesTheOthersRecord(t *testing.T) {
	bothStores(t, func(t *testing.T, h *harness) {
		// Only a's read-back of its main intents is held up; its
		// heartbeats go on, so it leads throughout.
		p := newPause(func(point string) bool { return point == "read deliveries" })
		var wrote sync.Mutex
		intents := false
		a := h.start("a", func(o *chat.Options) {
			o.Ledger = heldReadBack{Ledger: h.store, p: p, after: func() bool {
				wrote.Lock()
				defer wrote.Unlock()
				return intents
			}, wrote: func() {
				wrote.Lock()
				intents = true
				wrote.Unlock()
			}}
		})
		h.waitFor("a to lead", 10*time.Second, func() bool { return a.metric("nines_chat_leader") == 1 })
		h.notify("g1", alertSpec{name: "CheckoutDown", service: "checkout", severity: "critical", start: time.Now().Add(-time.Minute)})
		h.waitFor("a to be held up reading back", 10*time.Second, p.isPaused)
		// b leads as well, finds a's intents, looks them up after the
		// grace period, does not find them and posts.
		b := h.start("b", func(o *chat.Options) { o.Leases = blindLeases{Leases: h.store, hide: "a"} })
		h.waitFor("b to post", 30*time.Second, func() bool {
			return len(h.slack.Messages("#operations")) == 1 && len(h.slack.Messages("#checkout")) == 1
		})
		b.stop()
		p.resume()
		h.idle(a)
		h.assertOneMessage("#operations", "#checkout")
	})
}

// heldReadBack holds up the first read of the ledger after main intents
// were written (the sender reading its intents back).
type heldReadBack struct {
	chat.Ledger
	p     *pause
	after func() bool
	wrote func()
}

func (l heldReadBack) WriteChat(ctx context.Context, r chat.Records) error {
	err := l.Ledger.WriteChat(ctx, r)
	for _, d := range r.Deliveries {
		if d.State == chat.StateIntent && d.Kind == chat.KindMain && err == nil {
			l.wrote()
		}
	}
	return err
}

func (l heldReadBack) LoadChat(ctx context.Context, ids []string, self string) (chat.Records, error) {
	if l.after() {
		l.p.at("read deliveries")
	}
	return l.Ledger.LoadChat(ctx, ids, self)
}

// assertOneMessage checks that each channel holds exactly one message,
// posted once.
func (h *harness) assertOneMessage(channels ...string) {
	h.t.Helper()
	for _, ch := range channels {
		if n := h.assertOnce(ch); n != 1 {
			h.t.Errorf("%s: %d messages, want 1", ch, n)
		}
	}
}
