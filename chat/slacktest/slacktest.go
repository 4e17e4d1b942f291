// Package slacktest is a fake of the parts of Slack's Web API that nines
// uses, for tests: chat.postMessage, chat.update, conversations.history,
// conversations.replies, conversations.list and auth.test, incoming
// webhooks and interaction response URLs. It behaves like Slack where
// nines depends on it: it checks the bearer token (or the token form
// field, as slack-go sends it), reads form and JSON bodies, answers
// {"ok":false,"error":"…"} with Slack's error strings, returns HTTP 429
// with Retry-After when told to, requires channel IDs where Slack does,
// and records every message with its thread, updates and metadata.
//
// Use New for an in-process fake (its Client calls the handler directly,
// which works inside testing/synctest bubbles) or NewServer for a real
// HTTP server (Serve outside tests).
package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Metadata is a message's metadata as Slack stores it.
type Metadata struct {
	EventType    string         `json:"event_type"`
	EventPayload map[string]any `json:"event_payload"`
}

// Message is a message in the fake workspace.
type Message struct {
	ChannelID string
	Channel   string // #name
	TS        string
	ThreadTS  string // the parent's ts for thread replies
	Text      string
	Blocks    json.RawMessage
	Metadata  *Metadata
	// Via is "bot" or "webhook".
	Via string
	// Versions are the earlier contents, oldest first, one per update.
	Versions []json.RawMessage
	Replies  []*Message
}

// Updates returns how often the message was updated.
func (m *Message) Updates() int { return len(m.Versions) }

// EventID returns the metadata's event_id, if any.
func (m *Message) EventID() string {
	if m.Metadata == nil {
		return ""
	}
	s, _ := m.Metadata.EventPayload["event_id"].(string)
	return s
}

// Call is one API call the fake answered.
type Call struct {
	Method  string
	Channel string // as given
	TS      string // the message posted or updated
	Thread  string
	Error   string // Slack's error string, "http_429", "http_500", or ""
	At      time.Time
}

// Response is an answer posted to an interaction's response_url.
type Response struct {
	ID   string
	Body map[string]any
}

type channel struct {
	id, name string
	archived bool
	member   bool
	msgs     []*Message // top level, oldest first
}

type fault struct {
	method     string
	n          int
	status     int
	code       string
	retryAfter time.Duration
	afterward  bool // do the call, then fail the answer (status)
}

// Fake is a fake Slack workspace.
type Fake struct {
	token string
	base  string
	now   func() time.Time

	mu        sync.Mutex
	channels  map[string]*channel // by ID
	byName    map[string]string   // name without # → ID
	hooks     map[string]string   // hook ID → channel ID
	byTS      map[string]*Message // channelID/ts → message
	faults    []*fault
	calls     []Call
	responses []Response
	lastTS    int64 // microseconds
	nextID    int
	after     func(Call)
	latency   time.Duration
	client    *http.Client
}

// New returns an in-process fake that accepts token. Its API is at
// APIURL, reachable through Client.
func New(token string) *Fake {
	f := &Fake{
		token: token, base: "http://slack.fake/", now: time.Now,
		channels: map[string]*channel{}, byName: map[string]string{}, hooks: map[string]string{},
		byTS: map[string]*Message{},
	}
	f.client = &http.Client{Transport: inProcess{f}}
	return f
}

// NewServer returns a fake served over HTTP by an httptest server that
// is closed when the test ends.
func NewServer(t testing.TB, token string) *Fake {
	f := New(token)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.base = srv.URL + "/"
	f.client = srv.Client()
	return f
}

// Serve returns a fake served over HTTP on l until the server it returns
// is closed: for processes other than the test's own (nines-chaos).
func Serve(l net.Listener, token string) (*Fake, *http.Server) {
	f := New(token)
	f.base = "http://" + l.Addr().String() + "/"
	f.client = &http.Client{}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return f, srv
}

// SetLatency makes every API call take d before it acts, as Slack's do.
func (f *Fake) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// SetClock sets the clock that message timestamps come from.
func (f *Fake) SetClock(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// APIURL is the Web API's base URL, for slack.OptionAPIURL.
func (f *Fake) APIURL() string { return f.base + "api/" }

// Client returns an HTTP client that reaches the fake.
func (f *Fake) Client() *http.Client { return f.client }

// inProcess calls the fake's handler without a network, so that it works
// inside synctest bubbles.
type inProcess struct{ f *Fake }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.f.ServeHTTP(rec, req)
	if req.Body != nil {
		_ = req.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		// The caller gave up while Slack was acting: like a timeout,
		// the call may have taken effect.
		return nil, err
	}
	return rec.Result(), nil
}

// AddChannel creates a channel the bot is a member of and returns its ID.
// name is "#name" or "name".
func (f *Fake) AddChannel(name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	name = strings.TrimPrefix(name, "#")
	if id, ok := f.byName[name]; ok {
		return id
	}
	f.nextID++
	id := fmt.Sprintf("C%08d", f.nextID)
	f.channels[id] = &channel{id: id, name: name, member: true}
	f.byName[name] = id
	return id
}

// Delete deletes a channel: calls naming it fail with channel_not_found.
func (f *Fake) Delete(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.lookup(name); c != nil {
		delete(f.channels, c.id)
		delete(f.byName, c.name)
	}
}

// Archive archives a channel: posts fail with is_archived.
func (f *Fake) Archive(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.lookup(name); c != nil {
		c.archived = true
	}
}

// Kick removes the bot from a channel: posts fail with not_in_channel.
func (f *Fake) Kick(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.lookup(name); c != nil {
		c.member = false
	}
}

// AddWebhook creates an incoming webhook posting to a channel and
// returns its URL.
func (f *Fake) AddWebhook(name string) string {
	id := f.AddChannel(name)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	hook := fmt.Sprintf("T000/B%06d/secret%d", f.nextID, f.nextID)
	f.hooks[hook] = id
	return f.base + "hooks/" + hook
}

// ResponseURL returns a URL that records what is posted to it, as an
// interaction's response_url.
func (f *Fake) ResponseURL(id string) string { return f.base + "respond/" + id }

// Fail makes the next n calls of method answer {"ok":false,"error":code}.
func (f *Fake) Fail(method, code string, n int) {
	f.addFault(&fault{method: method, n: n, code: code})
}

// RateLimit makes the next n calls of method answer HTTP 429 with
// Retry-After (whole seconds, at least 1).
func (f *Fake) RateLimit(method string, retryAfter time.Duration, n int) {
	f.addFault(&fault{method: method, n: n, status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// ServerError makes the next n calls of method answer HTTP 500 without
// acting.
func (f *Fake) ServerError(method string, n int) {
	f.addFault(&fault{method: method, n: n, status: http.StatusInternalServerError})
}

// LoseAnswer makes the next n calls of method take effect but answer
// HTTP 502, as when a proxy drops Slack's answer.
func (f *Fake) LoseAnswer(method string, n int) {
	f.addFault(&fault{method: method, n: n, status: http.StatusBadGateway, afterward: true})
}

// ClearFaults drops every pending fault.
func (f *Fake) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

func (f *Fake) addFault(x *fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, x)
}

// AfterCall sets a hook run after each call took effect and before it is
// answered, e.g. to stop the caller between Slack's action and its own
// bookkeeping.
func (f *Fake) AfterCall(fn func(Call)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.after = fn
}

// Messages returns copies of a channel's top-level messages, oldest
// first, with their replies.
func (f *Fake) Messages(name string) []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.lookup(name)
	if c == nil {
		return nil
	}
	out := make([]Message, 0, len(c.msgs))
	for _, m := range c.msgs {
		out = append(out, copyMsg(m))
	}
	return out
}

func copyMsg(m *Message) Message {
	c := *m
	c.Versions = slices.Clone(m.Versions)
	c.Replies = nil
	for _, r := range m.Replies {
		rc := copyMsg(r)
		c.Replies = append(c.Replies, &rc)
	}
	return c
}

// Calls returns the calls answered so far.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// Responses returns what was posted to response URLs.
func (f *Fake) Responses() []Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.responses)
}

func (f *Fake) lookup(name string) *channel {
	if c, ok := f.channels[name]; ok {
		return c
	}
	if id, ok := f.byName[strings.TrimPrefix(name, "#")]; ok {
		return f.channels[id]
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/api/"):
		f.api(w, r, strings.TrimPrefix(r.URL.Path, "/api/"))
	case strings.HasPrefix(r.URL.Path, "/hooks/"):
		f.webhook(w, r, strings.TrimPrefix(r.URL.Path, "/hooks/"))
	case strings.HasPrefix(r.URL.Path, "/respond/"):
		f.respond(w, r, strings.TrimPrefix(r.URL.Path, "/respond/"))
	default:
		http.NotFound(w, r)
	}
}

// args reads a call's arguments from a form or JSON body and the query.
func args(r *http.Request) (url.Values, error) {
	v := r.URL.Query()
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return nil, err
	}
	ct := r.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/json"):
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, err
		}
		for k, x := range m {
			switch t := x.(type) {
			case string:
				v.Set(k, t)
			default:
				b, _ := json.Marshal(t)
				v.Set(k, string(b))
			}
		}
	default:
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, err
		}
		for k, x := range form {
			v[k] = x
		}
	}
	return v, nil
}

func (f *Fake) api(w http.ResponseWriter, r *http.Request, method string) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	f.mu.Lock()
	latency := f.latency
	f.mu.Unlock()
	if latency > 0 {
		time.Sleep(latency)
	}
	v, err := args(r)
	if err != nil {
		writeJSON(w, map[string]any{"ok": false, "error": "invalid_form_data"})
		return
	}
	token := v.Get("token")
	if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		token = h
	}
	f.mu.Lock()
	call := Call{Method: method, Channel: v.Get("channel"), Thread: v.Get("thread_ts"), At: f.now()}
	x := f.fault(method)
	if x != nil && !x.afterward {
		f.answerFault(w, x, call)
		return
	}
	var resp map[string]any
	switch {
	case token == "":
		resp = slackErr("not_authed")
	case token != f.token:
		resp = slackErr("invalid_auth")
	default:
		switch method {
		case "auth.test":
			resp = map[string]any{"ok": true, "url": f.base, "team": "nines-test", "user": "nines", "team_id": "T000", "user_id": "U000", "bot_id": "B000"}
		case "chat.postMessage":
			resp = f.postMessage(v, &call)
		case "chat.update":
			resp = f.update(v, &call)
		case "conversations.history":
			resp = f.history(v)
		case "conversations.replies":
			resp = f.replies(v)
		case "conversations.list":
			resp = f.list(v)
		default:
			resp = slackErr("unknown_method")
		}
	}
	if e, _ := resp["error"].(string); e != "" {
		call.Error = e
	}
	f.calls = append(f.calls, call)
	after := f.after
	f.mu.Unlock()
	if after != nil {
		after(call)
	}
	if x != nil { // a fault that let the call act: the answer is lost
		w.WriteHeader(x.status)
		fmt.Fprint(w, "<html>bad gateway</html>")
		return
	}
	writeJSON(w, resp)
}

// fault takes the next fault for method, if any. Must hold f.mu.
func (f *Fake) fault(method string) *fault {
	for i, x := range f.faults {
		if x.method != method {
			continue
		}
		x.n--
		if x.n <= 0 {
			f.faults = slices.Delete(f.faults, i, i+1)
		}
		return x
	}
	return nil
}

// answerFault answers a fault that prevents the call. It unlocks f.mu.
func (f *Fake) answerFault(w http.ResponseWriter, x *fault, call Call) {
	switch {
	case x.status == http.StatusTooManyRequests:
		call.Error = "http_429"
		f.calls = append(f.calls, call)
		f.mu.Unlock()
		secs := max(int(x.retryAfter.Round(time.Second)/time.Second), 1)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_ = json.NewEncoder(w).Encode(slackErr("ratelimited"))
	case x.status != 0:
		call.Error = fmt.Sprintf("http_%d", x.status)
		f.calls = append(f.calls, call)
		f.mu.Unlock()
		w.WriteHeader(x.status)
		fmt.Fprint(w, "<html>server error</html>")
	default:
		call.Error = x.code
		f.calls = append(f.calls, call)
		f.mu.Unlock()
		writeJSON(w, slackErr(x.code))
	}
}

func slackErr(code string) map[string]any { return map[string]any{"ok": false, "error": code} }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

// ts returns a new, strictly increasing message timestamp. Must hold f.mu.
func (f *Fake) ts() string {
	us := f.now().UnixMicro()
	if us <= f.lastTS {
		us = f.lastTS + 1
	}
	f.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1e6, us%1e6)
}

func (f *Fake) postMessage(v url.Values, call *Call) map[string]any {
	c := f.lookup(v.Get("channel"))
	switch {
	case c == nil:
		return slackErr("channel_not_found")
	case c.archived:
		return slackErr("is_archived")
	case !c.member:
		return slackErr("not_in_channel")
	case v.Get("text") == "" && v.Get("blocks") == "":
		return slackErr("no_text")
	}
	m := &Message{ChannelID: c.id, Channel: "#" + c.name, TS: f.ts(), Text: v.Get("text"), Via: "bot"}
	if b := v.Get("blocks"); b != "" {
		if !json.Valid([]byte(b)) {
			return slackErr("invalid_blocks")
		}
		m.Blocks = json.RawMessage(b)
	}
	if md := v.Get("metadata"); md != "" {
		var meta Metadata
		if err := json.Unmarshal([]byte(md), &meta); err != nil {
			return slackErr("invalid_metadata_format")
		}
		m.Metadata = &meta
	}
	if parent := v.Get("thread_ts"); parent != "" {
		p := f.byTS[c.id+"/"+parent]
		if p == nil {
			return slackErr("thread_not_found")
		}
		m.ThreadTS = parent
		p.Replies = append(p.Replies, m)
	} else {
		c.msgs = append(c.msgs, m)
	}
	f.byTS[c.id+"/"+m.TS] = m
	call.TS = m.TS
	return map[string]any{"ok": true, "channel": c.id, "ts": m.TS, "message": wire(m, true)}
}

func (f *Fake) update(v url.Values, call *Call) map[string]any {
	id := v.Get("channel")
	c, ok := f.channels[id] // chat.update takes a channel ID, not a name
	if !ok {
		return slackErr("channel_not_found")
	}
	m := f.byTS[c.id+"/"+v.Get("ts")]
	switch {
	case m == nil:
		return slackErr("message_not_found")
	case m.Via != "bot":
		return slackErr("cant_update_message")
	}
	prev, _ := json.Marshal(map[string]any{"text": m.Text, "blocks": m.Blocks})
	m.Versions = append(m.Versions, prev)
	m.Text = v.Get("text")
	if b := v.Get("blocks"); b != "" {
		if !json.Valid([]byte(b)) {
			return slackErr("invalid_blocks")
		}
		m.Blocks = json.RawMessage(b)
	}
	call.TS = m.TS
	return map[string]any{"ok": true, "channel": c.id, "ts": m.TS, "text": m.Text}
}

// wire is a message as the API returns it.
func wire(m *Message, withMeta bool) map[string]any {
	out := map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "bot_id": "B000"}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if len(m.Replies) > 0 {
		out["thread_ts"] = m.TS
		out["reply_count"] = len(m.Replies)
	}
	if m.Blocks != nil {
		out["blocks"] = m.Blocks
	}
	if withMeta && m.Metadata != nil {
		out["metadata"] = m.Metadata
	}
	return out
}

func tsAfter(ts, oldest string) bool {
	if oldest == "" {
		return true
	}
	a, _ := strconv.ParseFloat(ts, 64)
	b, _ := strconv.ParseFloat(oldest, 64)
	return a > b
}

// page applies limit and cursor (an offset) to msgs.
func page(msgs []*Message, v url.Values, meta bool) ([]map[string]any, string) {
	start, _ := strconv.Atoi(v.Get("cursor"))
	limit, _ := strconv.Atoi(v.Get("limit"))
	if limit <= 0 || limit > 200 {
		limit = 100
	}
	var out []map[string]any
	end := min(start+limit, len(msgs))
	for _, m := range msgs[min(start, len(msgs)):end] {
		out = append(out, wire(m, meta))
	}
	next := ""
	if end < len(msgs) {
		next = strconv.Itoa(end)
	}
	return out, next
}

func (f *Fake) history(v url.Values) map[string]any {
	c, ok := f.channels[v.Get("channel")]
	if !ok {
		return slackErr("channel_not_found")
	}
	var msgs []*Message
	for i := len(c.msgs) - 1; i >= 0; i-- { // newest first, as Slack
		if tsAfter(c.msgs[i].TS, v.Get("oldest")) {
			msgs = append(msgs, c.msgs[i])
		}
	}
	meta := v.Get("include_all_metadata") == "1" || v.Get("include_all_metadata") == "true"
	out, next := page(msgs, v, meta)
	return map[string]any{"ok": true, "messages": nonNil(out), "has_more": next != "",
		"response_metadata": map[string]any{"next_cursor": next}}
}

func (f *Fake) replies(v url.Values) map[string]any {
	c, ok := f.channels[v.Get("channel")]
	if !ok {
		return slackErr("channel_not_found")
	}
	parent := f.byTS[c.id+"/"+v.Get("ts")]
	if parent == nil {
		return slackErr("thread_not_found")
	}
	msgs := []*Message{parent} // the parent comes first, as Slack
	for _, r := range parent.Replies {
		if tsAfter(r.TS, v.Get("oldest")) {
			msgs = append(msgs, r)
		}
	}
	meta := v.Get("include_all_metadata") == "1" || v.Get("include_all_metadata") == "true"
	out, next := page(msgs, v, meta)
	return map[string]any{"ok": true, "messages": nonNil(out), "has_more": next != "",
		"response_metadata": map[string]any{"next_cursor": next}}
}

func (f *Fake) list(v url.Values) map[string]any {
	ids := make([]string, 0, len(f.channels))
	for id := range f.channels {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var chans []map[string]any
	for _, id := range ids {
		c := f.channels[id]
		if c.archived && v.Get("exclude_archived") == "true" {
			continue
		}
		chans = append(chans, map[string]any{"id": c.id, "name": c.name, "is_channel": true, "is_member": c.member, "is_archived": c.archived})
	}
	if chans == nil {
		chans = []map[string]any{}
	}
	return map[string]any{"ok": true, "channels": chans, "response_metadata": map[string]any{"next_cursor": ""}}
}

func nonNil(m []map[string]any) []map[string]any {
	if m == nil {
		return []map[string]any{}
	}
	return m
}

// webhook serves an incoming webhook: JSON in, "ok" or an error string
// with a 4xx status out, as Slack does.
func (f *Fake) webhook(w http.ResponseWriter, r *http.Request, hook string) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	f.mu.Lock()
	call := Call{Method: "incoming_webhook", At: f.now()}
	if x := f.fault("incoming_webhook"); x != nil && !x.afterward {
		f.answerFault(w, x, call)
		return
	}
	id, ok := f.hooks[hook]
	var c *channel
	if ok {
		c = f.channels[id]
		call.Channel = "#" + c.name
	}
	var msg struct {
		Text   string          `json:"text"`
		Blocks json.RawMessage `json:"blocks"`
	}
	status, answer := http.StatusOK, "ok"
	switch {
	case !ok:
		status, answer = http.StatusNotFound, "no_service"
	case c.archived:
		status, answer = http.StatusGone, "channel_is_archived"
	case json.Unmarshal(body, &msg) != nil:
		status, answer = http.StatusBadRequest, "invalid_payload"
	case msg.Text == "" && len(msg.Blocks) == 0:
		status, answer = http.StatusBadRequest, "no_text"
	default:
		m := &Message{ChannelID: c.id, Channel: "#" + c.name, TS: f.ts(), Text: msg.Text, Blocks: msg.Blocks, Via: "webhook"}
		c.msgs = append(c.msgs, m)
		f.byTS[c.id+"/"+m.TS] = m
		call.TS = m.TS
	}
	if status != http.StatusOK {
		call.Error = answer
	}
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	w.WriteHeader(status)
	fmt.Fprint(w, answer)
}

// respond records an answer posted to a response_url.
func (f *Fake) respond(w http.ResponseWriter, r *http.Request, id string) {
	var body map[string]any
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.responses = append(f.responses, Response{ID: id, Body: body})
	f.calls = append(f.calls, Call{Method: "response_url", At: f.now()})
	f.mu.Unlock()
	fmt.Fprint(w, "ok")
}
