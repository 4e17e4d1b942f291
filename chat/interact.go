package chat

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/slack-go/slack"

	"github.com/ninesops/nines/answer"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// Defaults of HandlerOptions.
const (
	// DefaultMaxRequestAge is how far a request's timestamp may be from
	// now: Slack's recommendation.
	DefaultMaxRequestAge = 5 * time.Minute
	DefaultWorkers       = 4
	DefaultQueueSize     = 64
	// maxRequestBody bounds what the endpoints read.
	maxRequestBody = 1 << 20
	// maxSeen bounds the remembered signatures.
	maxSeen = 100_000
	// jobTimeout bounds the work done for one request.
	jobTimeout = 30 * time.Second
)

// Actor knows how to change incidents on a Slack user's behalf.
// *incidents.Service implements it.
type Actor interface {
	Acknowledge(ctx context.Context, id, actor string) (*incidents.Incident, error)
	Resolve(ctx context.Context, id, actor string) (*incidents.Incident, error)
}

// HandlerOptions configure a Handler.
type HandlerOptions struct {
	// SigningSecret is the Slack app's signing secret (required).
	SigningSecret string
	// Actor acknowledges and resolves incidents (required).
	Actor Actor
	// Incidents lists incidents for /nines open and status (optional).
	Incidents IncidentLister
	// Availability answers /nines status (optional).
	Availability Availability
	// HTTPClient posts answers to Slack's response_url.
	HTTPClient *http.Client
	// Workers and QueueSize bound the work done after answering.
	Workers   int
	QueueSize int
	// MaxRequestAge rejects older (or newer) request timestamps
	// (DefaultMaxRequestAge).
	MaxRequestAge time.Duration
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
	Now           func() time.Time
}

// Handler serves Slack's interactive requests: the incident message's
// buttons and the /nines slash command. Every request is verified with
// the signing secret and answered at once; the work happens afterwards on
// a bounded pool (Run), and its result is posted to the request's
// response_url. Incident messages change through the usual path: the
// action writes timeline events, which the Sender picks up.
type Handler struct {
	secret  string
	actor   Actor
	list    IncidentLister
	avail   Availability
	http    *http.Client
	workers int
	maxAge  time.Duration
	log     *slog.Logger
	metrics *handlerMetrics
	now     func() time.Time
	jobs    chan job

	mu   sync.Mutex
	seen map[string]time.Time // signature → when it may be forgotten
}

// job is work done after the answer.
type job struct {
	what        string // ack, resolve, open, status
	arg         string
	actor       string
	responseURL string
}

// NewHandler builds a Handler.
func NewHandler(o HandlerOptions) (*Handler, error) {
	if o.SigningSecret == "" {
		return nil, errors.New("chat: a Slack signing secret is required")
	}
	if o.Actor == nil {
		return nil, errors.New("chat: an Actor is required")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxRequestAge <= 0 {
		o.MaxRequestAge = DefaultMaxRequestAge
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{
		secret: o.SigningSecret, actor: o.Actor, list: o.Incidents, avail: o.Availability, http: o.HTTPClient,
		workers: o.Workers, maxAge: o.MaxRequestAge, log: o.Logger.With("component", "chat-interactions"),
		metrics: newHandlerMetrics(o.Registerer), now: o.Now, jobs: make(chan job, o.QueueSize),
		seen: map[string]time.Time{},
	}, nil
}

// Run does the queued work until ctx ends.
func (h *Handler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range h.workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-h.jobs:
					h.do(ctx, j)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// Signature errors.
var (
	errNoSignature  = errors.New("missing X-Slack-Signature or X-Slack-Request-Timestamp")
	errBadTimestamp = errors.New("bad X-Slack-Request-Timestamp")
	errStale        = errors.New("request timestamp too far from now")
	errBadSignature = errors.New("invalid signature")
	errReplay       = errors.New("request replayed")
	errSeenFull     = errors.New("too many recent requests")
)

// verifySignature checks Slack's v0 request signature: HMAC-SHA256 of
// "v0:<timestamp>:<body>" with the signing secret, and that the timestamp
// is within maxAge of now. (slack.NewSecretsVerifier computes the same
// signature but reads the wall clock, which tests and replicas with an
// injected clock cannot use.)
func verifySignature(secret string, header http.Header, body []byte, now time.Time, maxAge time.Duration) error {
	ts, sig := header.Get("X-Slack-Request-Timestamp"), header.Get("X-Slack-Signature")
	if ts == "" || sig == "" {
		return errNoSignature
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errBadTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxAge || d < -maxAge {
		return errStale
	}
	hexSig, ok := strings.CutPrefix(sig, "v0=")
	if !ok {
		return errBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return errBadSignature
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return errBadSignature
	}
	return nil
}

// authenticate reads the body and checks its signature and freshness,
// remembering the signature to reject replays within the window.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request, endpoint string) ([]byte, bool) {
	if r.Method != http.MethodPost {
		h.metrics.requests.WithLabelValues(endpoint, "bad_method").Inc()
		answer.Message(w, http.StatusMethodNotAllowed, "method not allowed")
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		h.metrics.requests.WithLabelValues(endpoint, "too_large").Inc()
		answer.Message(w, http.StatusRequestEntityTooLarge, "request body too large")
		return nil, false
	}
	now := h.now()
	if err := verifySignature(h.secret, r.Header, body, now, h.maxAge); err != nil {
		h.metrics.requests.WithLabelValues(endpoint, "unauthenticated").Inc()
		h.log.Warn("rejected a Slack request", "endpoint", endpoint, "err", err)
		answer.Message(w, http.StatusUnauthorized, err.Error())
		return nil, false
	}
	if err := h.remember(r.Header.Get("X-Slack-Signature"), now); err != nil {
		h.metrics.requests.WithLabelValues(endpoint, "replay").Inc()
		h.log.Warn("rejected a Slack request", "endpoint", endpoint, "err", err)
		status := http.StatusUnauthorized
		if errors.Is(err, errSeenFull) {
			status = http.StatusServiceUnavailable
		}
		answer.Message(w, status, err.Error())
		return nil, false
	}
	return body, true
}

// remember records a verified signature; a signature seen before within
// the window is a replay.
func (h *Handler) remember(sig string, now time.Time) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if exp, ok := h.seen[sig]; ok && now.Before(exp) {
		return errReplay
	}
	if len(h.seen) >= maxSeen/2 {
		for s, exp := range h.seen {
			if !now.Before(exp) {
				delete(h.seen, s)
			}
		}
		if len(h.seen) >= maxSeen {
			return errSeenFull
		}
	}
	// A signature is valid for maxAge on either side of its timestamp.
	h.seen[sig] = now.Add(2 * h.maxAge)
	return nil
}

// interaction is what nines reads of a Slack interaction payload.
type interaction struct {
	Type string `json:"type"`
	User struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Name     string `json:"name"`
	} `json:"user"`
	ResponseURL string `json:"response_url"`
	Actions     []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
	} `json:"actions"`
}

var incidentIDRe = regexp.MustCompile(`^inc-[0-9a-f]{20}$`)

// buttonPress is a press of one of nines' buttons.
type buttonPress struct {
	action      string // ActionAck or ActionResolve
	incident    string
	actor       string
	responseURL string
}

// parseInteraction reads a form-encoded interaction request body. It
// returns ok=false for interactions that are not presses of nines'
// buttons (which are acknowledged and ignored), and an error for bodies
// that are not interactions at all.
func parseInteraction(body []byte) (buttonPress, bool, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return buttonPress{}, false, fmt.Errorf("form: %w", err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return buttonPress{}, false, errors.New("no payload")
	}
	var in interaction
	if err := json.Unmarshal([]byte(payload), &in); err != nil {
		return buttonPress{}, false, fmt.Errorf("payload: %w", err)
	}
	if in.Type != string(slack.InteractionTypeBlockActions) {
		return buttonPress{}, false, nil
	}
	actor := slackActor(in.User.Username, in.User.Name, in.User.ID)
	if actor == "" {
		return buttonPress{}, false, errors.New("payload: no user")
	}
	for _, a := range in.Actions {
		if (a.ActionID == ActionAck || a.ActionID == ActionResolve) && incidentIDRe.MatchString(a.Value) {
			return buttonPress{action: a.ActionID, incident: a.Value, actor: actor, responseURL: in.ResponseURL}, true, nil
		}
	}
	return buttonPress{}, false, nil
}

// slackActor names a Slack user as the actor recorded on incidents:
// slack:<username>, else slack:<user ID>, keeping safe characters only.
func slackActor(candidates ...string) string {
	for _, c := range candidates {
		clean := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
				return r
			}
			return -1
		}, c)
		if clean != "" {
			return "slack:" + clip(clean, 64)
		}
	}
	return ""
}

// Interactions serves POST /api/v1/slack/interactions (Slack's
// interactivity request URL). A press taken or ignored is answered 200
// with an empty body, which is how Slack wants an interaction
// acknowledged; the outcome is posted to the response URL. Errors are
// JSON {"error": "..."} like every answer of nines (package answer).
func (h *Handler) Interactions(w http.ResponseWriter, r *http.Request) {
	const endpoint = "interactions"
	body, ok := h.authenticate(w, r, endpoint)
	if !ok {
		return
	}
	press, ok, err := parseInteraction(body)
	switch {
	case err != nil:
		h.metrics.requests.WithLabelValues(endpoint, "bad_request").Inc()
		answer.Message(w, http.StatusBadRequest, err.Error())
		return
	case !ok:
		h.metrics.requests.WithLabelValues(endpoint, "ignored").Inc()
		w.WriteHeader(http.StatusOK)
		return
	}
	what := "ack"
	if press.action == ActionResolve {
		what = "resolve"
	}
	if !h.enqueue(job{what: what, arg: press.incident, actor: press.actor, responseURL: press.responseURL}) {
		h.metrics.requests.WithLabelValues(endpoint, "busy").Inc()
		h.log.Warn("interaction dropped: the work queue is full", "incident", press.incident, "actor", press.actor)
		w.WriteHeader(http.StatusOK)
		return
	}
	h.metrics.requests.WithLabelValues(endpoint, "accepted").Inc()
	w.WriteHeader(http.StatusOK)
}

// Commands serves POST /api/v1/slack/commands (the /nines slash
// command): open, ack ID, resolve ID, status SERVICE, help. A reply is
// Slack's ephemeral-message JSON; a command taken is answered 200 with an
// empty body (Slack's acknowledgement) and answered later through the
// response URL. Errors are JSON {"error": "..."} (package answer).
func (h *Handler) Commands(w http.ResponseWriter, r *http.Request) {
	const endpoint = "commands"
	body, ok := h.authenticate(w, r, endpoint)
	if !ok {
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		h.metrics.requests.WithLabelValues(endpoint, "bad_request").Inc()
		answer.Message(w, http.StatusBadRequest, "bad form")
		return
	}
	if form.Get("ssl_check") == "1" {
		w.WriteHeader(http.StatusOK)
		return
	}
	actor := slackActor(form.Get("user_name"), form.Get("user_id"))
	args := strings.Fields(form.Get("text"))
	reply := func(text string) {
		h.metrics.requests.WithLabelValues(endpoint, "answered").Inc()
		writeEphemeral(w, text)
	}
	if len(args) == 0 || args[0] == "help" {
		reply(helpText)
		return
	}
	j := job{what: strings.ToLower(args[0]), actor: actor, responseURL: form.Get("response_url")}
	switch j.what {
	case "open":
		if len(args) != 1 {
			reply("Usage: `/nines open`")
			return
		}
	case "ack", "resolve":
		if len(args) != 2 || !incidentIDRe.MatchString(args[1]) {
			reply(fmt.Sprintf("Usage: `/nines %s inc-…` with an incident ID such as `inc-0123456789abcdef0123`.", j.what))
			return
		}
		j.arg = args[1]
	case "status":
		if len(args) != 2 {
			reply("Usage: `/nines status SERVICE`")
			return
		}
		j.arg = args[1]
	default:
		reply("Unknown command `" + esc(args[0]) + "`.\n" + helpText)
		return
	}
	if actor == "" || j.responseURL == "" {
		h.metrics.requests.WithLabelValues(endpoint, "bad_request").Inc()
		answer.Message(w, http.StatusBadRequest, "missing user or response_url")
		return
	}
	if !h.enqueue(j) {
		reply("nines is busy; try again in a moment.")
		return
	}
	h.metrics.requests.WithLabelValues(endpoint, "accepted").Inc()
	w.WriteHeader(http.StatusOK)
}

const helpText = "*nines* — incidents and availability\n" +
	"• `/nines open` — open incidents\n" +
	"• `/nines ack ID` — acknowledge an incident\n" +
	"• `/nines resolve ID` — resolve an incident\n" +
	"• `/nines status SERVICE` — availability and error budget\n" +
	"• `/nines help` — this text"

// writeEphemeral answers a slash command with a message only its caller
// sees, in the JSON shape Slack requires.
func writeEphemeral(w http.ResponseWriter, text string) {
	answer.JSON(w, http.StatusOK, map[string]string{"response_type": slack.ResponseTypeEphemeral, "text": text})
}

func (h *Handler) enqueue(j job) bool {
	select {
	case h.jobs <- j:
		return true
	default:
		return false
	}
}

// do runs one job and posts its answer.
func (h *Handler) do(ctx context.Context, j job) {
	ctx, cancel := context.WithTimeout(ctx, jobTimeout)
	defer cancel()
	log := h.log.With("command", j.what, "arg", j.arg, "actor", j.actor)
	var text string
	switch j.what {
	case "ack", "resolve":
		var err error
		if j.what == "ack" {
			_, err = h.actor.Acknowledge(ctx, j.arg, j.actor)
		} else {
			_, err = h.actor.Resolve(ctx, j.arg, j.actor)
		}
		verb := map[string]string{"ack": "acknowledge", "resolve": "resolve"}[j.what]
		switch {
		case err == nil:
			log.Info("incident changed from Slack")
			text = fmt.Sprintf(":white_check_mark: %sd `%s` as %s.", titleCase(verb), j.arg, j.actor)
			if verb == "acknowledge" {
				text = fmt.Sprintf(":white_check_mark: Acknowledged `%s` as %s.", j.arg, j.actor)
			}
		case errors.Is(err, fault.ErrNotFound):
			text = fmt.Sprintf(":warning: No incident `%s`.", j.arg)
		case errors.Is(err, fault.ErrConflict), errors.Is(err, fault.ErrInvalid):
			text = fmt.Sprintf(":warning: Could not %s `%s`: %s.", verb, j.arg, esc(err.Error()))
		default:
			log.Error("incident change from Slack failed", "err", err)
			text = fmt.Sprintf(":x: Could not %s `%s` right now; try again.", verb, j.arg)
		}
	case "open":
		text = h.openText(ctx)
	case "status":
		text = h.statusText(ctx, j.arg)
	}
	if j.responseURL == "" || text == "" {
		return
	}
	err := slack.PostWebhookCustomHTTPContext(ctx, j.responseURL, h.http, &slack.WebhookMessage{
		ResponseType: slack.ResponseTypeEphemeral, Text: clip(text, maxFallback),
	})
	if err != nil {
		h.metrics.responses.WithLabelValues("error").Inc()
		log.Warn("could not answer Slack", "err", err)
		return
	}
	h.metrics.responses.WithLabelValues("ok").Inc()
}

// maxOpenLines bounds /nines open.
const maxOpenLines = 20

func (h *Handler) openText(ctx context.Context) string {
	if h.list == nil {
		return "Listing incidents is not available."
	}
	var open []*incidents.Incident
	for _, st := range []incidents.State{incidents.StateFiring, incidents.StateAcknowledged} {
		incs, _, err := h.list.List(ctx, incidents.Filter{State: st, Limit: maxOpenLines + 1})
		if err != nil {
			h.log.Error("/nines open failed", "err", err)
			return ":x: Could not list incidents right now; try again."
		}
		open = append(open, incs...)
	}
	if len(open) == 0 {
		return ":white_check_mark: No open incidents."
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*Open incidents*")
	for i, inc := range open {
		if i == maxOpenLines {
			fmt.Fprintf(&b, "\n…and more")
			break
		}
		fmt.Fprintf(&b, "\n• %s `%s` *%s* — %s — %s since %s", impactEmoji(inc.Impact), inc.ID, esc(inc.Service),
			esc(clip(inc.Title, 150)), stateWord(inc), slackDate(inc.StartedAt))
	}
	return b.String()
}

func (h *Handler) statusText(ctx context.Context, service string) string {
	if h.avail == nil {
		return "Availability is not available."
	}
	month, err := h.avail.Figure(ctx, service, digestMonth)
	if errors.Is(err, fault.ErrNotFound) {
		return fmt.Sprintf(":warning: Unknown service `%s`.", esc(service))
	}
	if err != nil {
		h.log.Error("/nines status failed", "service", service, "err", err)
		return ":x: Could not compute availability right now; try again."
	}
	week, err := h.avail.Figure(ctx, service, digestWeek)
	if err != nil {
		h.log.Error("/nines status failed", "service", service, "err", err)
		return ":x: Could not compute availability right now; try again."
	}
	text := fmt.Sprintf("*%s*: %s over 30 days, %s over 7 days (SLO %s); %s.",
		esc(service), pct3(month.Availability), pct3(week.Availability), catalog.Percent(month.SLOTarget), budgetLeftText(month.BudgetRemaining))
	if h.list != nil {
		var open []string
		for _, st := range []incidents.State{incidents.StateFiring, incidents.StateAcknowledged} {
			incs, _, err := h.list.List(ctx, incidents.Filter{Service: service, State: st, Limit: 10})
			if err != nil {
				break
			}
			for _, inc := range incs {
				open = append(open, fmt.Sprintf("• %s `%s` %s (%s)", impactEmoji(inc.Impact), inc.ID, esc(clip(inc.Title, 150)), stateWord(inc)))
			}
		}
		if len(open) > 0 {
			text += "\n*Open incidents*\n" + strings.Join(open, "\n")
		}
	}
	return text
}
