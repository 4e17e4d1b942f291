package chat_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/chat/chattest"
	"github.com/ninesops/nines/chat/slacktest"
	"github.com/ninesops/nines/incidents"
)

const secret = "8f742231b10e8888abcd99yyyzzz85a5"

// signed builds a request Slack would send, signed at now.
func signed(path, body string, now time.Time) *http.Request {
	ts := fmt.Sprint(now.Unix())
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":" + body))
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Slack-Request-Timestamp", ts)
	r.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return r
}

func buttonBody(action, id, user, responseURL string) string {
	p := fmt.Sprintf(`{"type":"block_actions","user":{"id":"U0%s","username":%q,"name":%q},"response_url":%q,"actions":[{"action_id":%q,"block_id":"actions","value":%q,"type":"button"}]}`,
		user, user, user, responseURL, action, id)
	return "payload=" + url.QueryEscape(p)
}

func commandBody(text, user, responseURL string) string {
	return url.Values{"command": {"/nines"}, "text": {text}, "user_id": {"U0" + user}, "user_name": {user},
		"response_url": {responseURL}, "channel_id": {"C1"}}.Encode()
}

// blockingActor holds every change until released, to show that requests
// are answered before the work is done.
type blockingActor struct {
	chat.Actor
	release chan struct{}
}

func (a blockingActor) Acknowledge(ctx context.Context, id, actor string) (*incidents.Incident, error) {
	<-a.release
	return a.Actor.Acknowledge(ctx, id, actor)
}

type handlerEnv struct {
	h     *chat.Handler
	svc   *incidents.Service
	store *chattest.Mem
	slack *slacktest.Fake
	id    string
}

func newHandlerEnv(t *testing.T, actor func(*incidents.Service) chat.Actor, queue int) *handlerEnv {
	t.Helper()
	store := chattest.NewMem(nil)
	svc, err := incidents.NewService(incidents.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	fake := slacktest.New(token)
	avail := &fakeAvailability{figs: map[string]map[string]chat.Figure{
		"30d": {"checkout": {Service: "checkout", Availability: 0.99912, SLOTarget: 0.999, BudgetSeconds: 2592, BudgetRemaining: 0.12}},
		"7d":  {"checkout": {Service: "checkout", Availability: 0.9995, SLOTarget: 0.999, BudgetSeconds: 604.8, BudgetRemaining: 0.5}},
	}}
	h, err := chat.NewHandler(chat.HandlerOptions{
		SigningSecret: secret, Actor: actor(svc), Incidents: store, Availability: avail,
		HTTPClient: fake.Client(), QueueSize: queue, Workers: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	inc, err := svc.Open(context.Background(), incidents.OpenRequest{Service: "checkout", Title: "Checkout down", Impact: incidents.ImpactOutage, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return &handlerEnv{h: h, svc: svc, store: store, slack: fake, id: inc.ID}
}

func serve(h http.HandlerFunc, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h(w, r)
	return w
}

// TestButtonPress: a signed press of Acknowledge is answered at once and
// acknowledges the incident as the Slack user afterwards.
func TestButtonPress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		env := newHandlerEnv(t, func(s *incidents.Service) chat.Actor { return blockingActor{Actor: s, release: release} }, 4)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = env.h.Run(ctx) }()
		defer func() { cancel(); <-done }()

		w := serve(env.h.Interactions, signed("/api/v1/slack/interactions", buttonBody(chat.ActionAck, env.id, "alice", env.slack.ResponseURL("r1")), time.Now()))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		inc, _ := env.store.Get(context.Background(), env.id)
		if inc.State != incidents.StateFiring {
			t.Fatal("acknowledged before the answer")
		}
		close(release)
		synctest.Wait()
		inc, _ = env.store.Get(context.Background(), env.id)
		if inc.State != incidents.StateAcknowledged || inc.AcknowledgedBy != "slack:alice" {
			t.Errorf("incident = %s by %q, want acknowledged by slack:alice", inc.State, inc.AcknowledgedBy)
		}
		// Pressing again: the conflict is told to the user, privately.
		w = serve(env.h.Interactions, signed("/api/v1/slack/interactions", buttonBody(chat.ActionAck, env.id, "bob", env.slack.ResponseURL("r2")), time.Now()))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
		synctest.Wait()
		rs := env.slack.Responses()
		if len(rs) != 2 || rs[1].ID != "r2" || !strings.Contains(fmt.Sprint(rs[1].Body["text"]), "already acknowledged by slack:alice") || rs[1].Body["response_type"] != "ephemeral" {
			t.Errorf("responses = %+v", rs)
		}
	})
}

// TestRequestsRejected: bad, stale and replayed signatures are refused.
func TestRequestsRejected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newHandlerEnv(t, func(s *incidents.Service) chat.Actor { return s }, 4)
		body := buttonBody(chat.ActionAck, env.id, "alice", env.slack.ResponseURL("r"))
		good := signed("/api/v1/slack/interactions", body, time.Now())

		tampered := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(strings.Replace(body, "alice", "mallory", 1)))
		tampered.Header = good.Header.Clone()

		stale := signed("/api/v1/slack/interactions", body, time.Now().Add(-6*time.Minute))
		unsigned := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))

		for name, r := range map[string]*http.Request{"tampered": tampered, "stale": stale, "unsigned": unsigned} {
			if w := serve(env.h.Interactions, r); w.Code != http.StatusUnauthorized {
				t.Errorf("%s: status %d, want 401", name, w.Code)
			}
		}
		if w := serve(env.h.Interactions, good); w.Code != http.StatusOK {
			t.Fatalf("good request: %d %s", w.Code, w.Body)
		}
		replay := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		replay.Header = good.Header.Clone()
		if w := serve(env.h.Interactions, replay); w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "replayed") {
			t.Errorf("replay: %d %s, want 401", w.Code, w.Body)
		}
		if w := serve(env.h.Commands, signed("/", commandBody("help", "alice", ""), time.Now().Add(10*time.Minute))); w.Code != http.StatusUnauthorized {
			t.Errorf("command from the future: %d", w.Code)
		}
	})
}

// TestSlashCommands runs /nines with each subcommand.
func TestSlashCommands(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newHandlerEnv(t, func(s *incidents.Service) chat.Actor { return s }, 8)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = env.h.Run(ctx) }()
		defer func() { cancel(); <-done }()

		inline := []struct{ text, want string }{
			{"", "/nines open"},
			{"help", "/nines status SERVICE"},
			{"frobnicate", "Unknown command `frobnicate`"},
			{"ack nope", "Usage: `/nines ack inc-…`"},
			{"status", "Usage: `/nines status SERVICE`"},
		}
		for _, tc := range inline {
			w := serve(env.h.Commands, signed("/", commandBody(tc.text, "alice", env.slack.ResponseURL("x")), time.Now()))
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), tc.want) || !strings.Contains(w.Body.String(), `"ephemeral"`) {
				t.Errorf("/nines %s: %d %s, want %q", tc.text, w.Code, w.Body, tc.want)
			}
		}
		queued := []struct{ text, want string }{
			{"open", env.id},
			{"ack " + env.id, "Acknowledged `" + env.id + "` as slack:alice"},
			{"status checkout", "99.912% over 30 days, 99.950% over 7 days (SLO 99.9%); 12% of the error budget left"},
			{"status nosuch", "Unknown service `nosuch`"},
			{"resolve " + env.id, "Resolved `" + env.id + "` as slack:alice"},
			{"resolve " + env.id, "already resolved"},
			{"open", "No open incidents"},
		}
		for i, tc := range queued {
			id := fmt.Sprint("c", i)
			w := serve(env.h.Commands, signed("/", commandBody(tc.text, "alice", env.slack.ResponseURL(id)), time.Now()))
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Errorf("/nines %s: %d %q, want an empty 200", tc.text, w.Code, w.Body)
			}
			synctest.Wait()
			rs := env.slack.Responses()
			if len(rs) != i+1 || rs[i].ID != id || !strings.Contains(fmt.Sprint(rs[i].Body["text"]), tc.want) {
				t.Errorf("/nines %s answered %+v, want %q", tc.text, rs[len(rs)-1].Body, tc.want)
			}
		}
		inc, _ := env.store.Get(context.Background(), env.id)
		if inc.ResolvedBy != "slack:alice" {
			t.Errorf("resolved by %q", inc.ResolvedBy)
		}
		if w := serve(env.h.Commands, signed("/", "ssl_check=1&token=x", time.Now())); w.Code != http.StatusOK {
			t.Errorf("ssl_check: %d", w.Code)
		}
	})
}

// TestBusy: with the work queue full, requests are still answered at once.
func TestBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		env := newHandlerEnv(t, func(s *incidents.Service) chat.Actor { return blockingActor{Actor: s, release: release} }, 1)
		// No workers running: the queue of one fills up.
		for i := range 3 {
			w := serve(env.h.Commands, signed("/", commandBody("ack "+env.id, fmt.Sprint("u", i), env.slack.ResponseURL("x")), time.Now()))
			if w.Code != http.StatusOK {
				t.Errorf("request %d: %d", i, w.Code)
			}
			if i > 0 && !strings.Contains(w.Body.String(), "busy") {
				t.Errorf("request %d: %s, want busy", i, w.Body)
			}
		}
		close(release)
	})
}

// TestSlackErrorsAreJSON: every refusal of a Slack endpoint is a JSON
// {"error"} naming the problem, like every other answer of nines; a press
// taken is Slack's empty 200.
func TestSlackErrorsAreJSON(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		env := newHandlerEnv(t, func(s *incidents.Service) chat.Actor { return s }, 4)
		unsigned := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(commandBody("help", "alice", "")))
		get := httptest.NewRequest(http.MethodGet, "/", nil)
		tests := []struct {
			name     string
			h        http.HandlerFunc
			r        *http.Request
			wantCode int
			wantErr  string
		}{
			{"unsigned command", env.h.Commands, unsigned, http.StatusUnauthorized, "X-Slack-Signature"},
			{"GET interaction", env.h.Interactions, get, http.StatusMethodNotAllowed, "method not allowed"},
			{"bad payload", env.h.Interactions, signed("/", "payload=%7Bnot-json", time.Now()), http.StatusBadRequest, "payload"},
			{"command without response_url", env.h.Commands, signed("/", commandBody("open", "alice", ""), time.Now()), http.StatusBadRequest, "response_url"},
		}
		for _, tc := range tests {
			w := serve(tc.h, tc.r)
			if w.Code != tc.wantCode {
				t.Errorf("%s: status %d, want %d (%s)", tc.name, w.Code, tc.wantCode, w.Body)
				continue
			}
			var body struct {
				Error string `json:"error"`
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: Content-Type %q, want application/json", tc.name, ct)
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || !strings.Contains(body.Error, tc.wantErr) {
				t.Errorf("%s: body %q, want a JSON error naming %q", tc.name, w.Body, tc.wantErr)
			}
		}
		press := signed("/", buttonBody(chat.ActionAck, env.id, "alice", env.slack.ResponseURL("r")), time.Now())
		if w := serve(env.h.Interactions, press); w.Code != http.StatusOK || w.Body.Len() != 0 {
			t.Errorf("a press: %d %q, want Slack's empty 200", w.Code, w.Body)
		}
	})
}
