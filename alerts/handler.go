package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/ninesops/nines/answer"
	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// Ingester knows how to store a notification. Ingest returns nil only once
// the notification is stored durably; an error wrapping
// fault.ErrUnavailable means "try again later", one wrapping
// fault.ErrInvalid means the notification can never be accepted.
type Ingester interface {
	Ingest(ctx context.Context, n incidents.Notification) error
}

// StoredIngester is an Ingester that also takes a notification already in
// its stored form (incidents.MarshalNotification's bytes), with the same
// contract as Ingest. The webhook writes that form straight from what it
// decoded, without building the alerts' label maps, and hands it to an
// Ingester that is a StoredIngester (the spool) this way.
type StoredIngester interface {
	Ingester
	IngestStoredForm(ctx context.Context, groupKey string, body []byte) error
}

// Options configure a Handler.
type Options struct {
	// Ingester stores notifications. Required.
	Ingester Ingester
	// Auth checks credentials. Nil means no authentication: the caller
	// decides whether that is allowed (cmd refuses unless told to run
	// insecurely). A non-nil Auth is always enforced.
	Auth *Auth
	// MaxBodyBytes bounds a request's body. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxInflightBytes bounds the bodies of all requests being taken at
	// once (each counts its Content-Length, or MaxBodyBytes without one),
	// so that many large notifications at once cannot exhaust memory.
	// Zero means DefaultMaxInflightBytes.
	MaxInflightBytes int64
	// InflightWait is how long a request waits for room under
	// MaxInflightBytes before it is answered 503 (DefaultInflightWait).
	InflightWait time.Duration
	// Logger receives errors. Nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the handler's metrics. Nil means they are not
	// registered.
	Registerer prometheus.Registerer
	// Now stamps ReceivedAt. Nil means time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxInflightBytes == 0 {
		o.MaxInflightBytes = DefaultMaxInflightBytes
	}
	if o.InflightWait == 0 {
		o.InflightWait = DefaultInflightWait
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

func (o *Options) validate() error {
	if o.Ingester == nil {
		return errors.New("ingester is required")
	}
	if o.MaxBodyBytes < 0 {
		return fmt.Errorf("max body bytes %d is negative", o.MaxBodyBytes)
	}
	if o.MaxInflightBytes < 0 {
		return fmt.Errorf("max in-flight bytes %d is negative", o.MaxInflightBytes)
	}
	return nil
}

// Handler serves Alertmanager's webhook, POST /api/v1/alerts. It answers
// 2xx only once the Ingester has stored the notification, 5xx when a retry
// may help (Alertmanager 0.25 retries only 5xx and transport errors, so it
// never answers 429) and 4xx when it cannot.
type Handler struct {
	ingester Ingester
	auth     *Auth
	maxBytes int64
	inflight *semaphore.Weighted
	maxIn    int64
	wait     time.Duration
	logger   *slog.Logger
	now      func() time.Time
	metrics  *metrics
}

// NewHandler builds a Handler and registers its metrics.
func NewHandler(opts Options) (*Handler, error) {
	opts.defaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("alerts handler: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("alerts handler: %w", err)
	}
	return &Handler{
		ingester: opts.Ingester,
		auth:     opts.Auth,
		maxBytes: opts.MaxBodyBytes,
		inflight: semaphore.NewWeighted(opts.MaxInflightBytes),
		maxIn:    opts.MaxInflightBytes,
		wait:     opts.InflightWait,
		logger:   opts.Logger,
		now:      opts.Now,
		metrics:  m,
	}, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code := h.serve(w, r)
	h.metrics.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	h.metrics.duration.Observe(time.Since(start).Seconds())
}

// serve handles one request and returns the status it answered.
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) int {
	receivedAt := h.now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return answer.Message(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed, use POST")
	}
	if h.auth != nil && !h.auth.Check(r) {
		for _, c := range h.auth.challenges() {
			w.Header().Add("WWW-Authenticate", c)
		}
		// Never log the Authorization header: it is the secret.
		h.logger.Warn("webhook refused: missing or invalid credentials", "remote", r.RemoteAddr)
		return answer.Message(w, http.StatusUnauthorized, "missing or invalid credentials")
	}
	if msg := unsupportedMedia(r.Header); msg != "" {
		return answer.Message(w, http.StatusUnsupportedMediaType, msg)
	}
	if r.ContentLength > h.maxBytes {
		return answer.Message(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", h.maxBytes))
	}
	// Room for the body among the requests in flight, before reading it.
	size := h.maxBytes
	if r.ContentLength >= 0 {
		size = r.ContentLength
	}
	size = min(max(size, 1), h.maxIn)
	wctx, cancel := context.WithTimeout(r.Context(), h.wait)
	err := h.inflight.Acquire(wctx, size)
	cancel()
	if err != nil {
		h.metrics.busy.Inc()
		return answer.Message(w, http.StatusServiceUnavailable, fmt.Sprintf(
			"busy: %d bytes of notifications in flight (--webhook.max-inflight-bytes); retry", h.maxIn))
	}
	defer h.inflight.Release(size)

	// http.MaxBytesReader, unlike the limit Decode applies, also tells the
	// server to close the connection rather than drain an oversized body.
	body := &bodyReader{r: http.MaxBytesReader(w, r.Body, h.maxBytes)}
	n, refused, err := decode(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return answer.Message(w, http.StatusRequestEntityTooLarge, err.Error())
		}
		h.logger.Warn("webhook refused: invalid notification", "remote", r.RemoteAddr, "err", err)
		return answer.Message(w, http.StatusBadRequest, err.Error())
	}
	n.head.ReceivedAt = receivedAt
	h.countReceived(&n)
	if len(refused) > 0 {
		h.metrics.refused.Add(float64(len(refused)))
		h.logger.Warn("webhook: alerts refused, the others taken", "remote", r.RemoteAddr, "group_key", n.head.GroupKey,
			"refused", len(refused), "taken", len(n.alerts), "first", refused[0].Error())
	}

	self, rule := dropSelfAlerts(&n)
	if self > 0 {
		h.metrics.selfAlerts.Add(float64(self))
		h.logger.Debug("webhook: alerts of nines' own rules dropped, no incident opened", "group_key", n.head.GroupKey,
			"alerts", self, SelfAlertLabel, rule)
		if len(n.alerts) == 0 {
			return answer.JSON(w, http.StatusOK, accepted{Status: "ok", SelfAlerts: self, Refused: refusals(refused)})
		}
	}
	// n is not used after ingest: its decoded alerts may go while the
	// request waits for the log (thousands of requests wait at once).
	groupKey, taken := n.head.GroupKey, len(n.alerts)
	if err := h.ingest(r.Context(), &n); err != nil {
		return h.ingestFailed(w, r, groupKey, taken, err)
	}
	return answer.JSON(w, http.StatusOK, accepted{Status: "ok", Alerts: taken, SelfAlerts: self, Refused: refusals(refused)})
}

// ingest hands n over in its stored form to a StoredIngester, and as a
// notification to any other Ingester.
func (h *Handler) ingest(ctx context.Context, n *webhook) error {
	si, ok := h.ingester.(StoredIngester)
	if !ok {
		return h.ingester.Ingest(ctx, n.notification())
	}
	body, err := n.stored()
	if err != nil {
		return fmt.Errorf("%w: %w", fault.ErrInvalid, err)
	}
	groupKey := n.head.GroupKey
	*n = webhook{} // only the stored form is held while the request waits
	return si.IngestStoredForm(ctx, groupKey, body)
}

// accepted is the answer to a stored notification. Refused lists the
// alerts left out because they failed their checks (at most
// maxRefusalsShown of them); Alerts counts those taken; SelfAlerts those
// of nines' own rules, dropped (SelfAlertLabel).
type accepted struct {
	Status     string    `json:"status"`
	Alerts     int       `json:"alerts"`
	SelfAlerts int       `json:"self_alerts,omitempty"`
	Refused    []refusal `json:"refused,omitempty"`
}

type refusal struct {
	Field  string `json:"field"`
	Reason string `json:"reason"`
}

// maxRefusalsShown bounds the refusals listed in an answer.
const maxRefusalsShown = 100

func refusals(errs []*DecodeError) []refusal {
	out := make([]refusal, 0, min(len(errs), maxRefusalsShown))
	for _, e := range errs[:min(len(errs), maxRefusalsShown)] {
		out = append(out, refusal{Field: e.Field, Reason: e.Reason})
	}
	return out
}

// ingestFailed answers an Ingester's error with the status its kind maps
// to (package answer). Anything that may succeed on retry (an unavailable
// store, a request that ended early) is a 5xx, so that Alertmanager
// retries it; an error of no known kind is a 500 whose details (DSNs,
// hosts) go to the log, not to the client.
func (h *Handler) ingestFailed(w http.ResponseWriter, r *http.Request, groupKey string, alerts int, err error) int {
	log := h.logger.With("group_key", groupKey, "alerts", alerts)
	if answer.StatusOf(err) < http.StatusInternalServerError {
		log.Warn("webhook refused by ingester", "err", err)
	} else if r.Context().Err() != nil {
		log = log.With("cause", context.Cause(r.Context()))
	}
	return answer.Error(w, log, err)
}

func (h *Handler) countReceived(n *webhook) {
	var firing, resolved int
	for _, a := range n.alerts {
		if a.Status == incidents.AlertResolved {
			resolved++
		} else {
			firing++
		}
	}
	h.metrics.alerts.WithLabelValues(statusFiring).Add(float64(firing))
	h.metrics.alerts.WithLabelValues(statusResolved).Add(float64(resolved))
	h.metrics.truncated.Add(float64(n.head.TruncatedAlerts))
}

// unsupportedMedia returns why the body's media type or coding is refused,
// or "". A missing Content-Type is accepted; any JSON type is.
func unsupportedMedia(header http.Header) string {
	if ct := header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return "unsupported Content-Type " + quote(ct) + ", want application/json"
		}
	}
	// Alertmanager does not compress; a compressed body would only fail
	// as malformed JSON.
	if ce := header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return "unsupported Content-Encoding " + quote(ce)
	}
	return ""
}

// metrics are the handler's instruments. Each Handler has its own, so two
// can live in one process (as in tests).
type metrics struct {
	requests   *prometheus.CounterVec
	alerts     *prometheus.CounterVec
	duration   prometheus.Histogram
	truncated  prometheus.Counter
	refused    prometheus.Counter
	busy       prometheus.Counter
	selfAlerts prometheus.Counter
}

// newMetrics builds the instruments and registers them with reg, if any.
// It registers them itself rather than through promauto, whose
// MustRegister would panic on a duplicate registration: that is returned
// as an error instead.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nines_webhook_requests_total",
			Help: "Webhook requests answered, by HTTP status code.",
		}, []string{"code"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nines_webhook_alerts_received_total",
			Help: "Alerts in valid webhook notifications, by alert status, whether or not they were then stored.",
		}, []string{"status"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                            "nines_webhook_request_duration_seconds",
			Help:                            "Time to answer a webhook request.",
			Buckets:                         []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: time.Hour,
		}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nines_webhook_notifications_truncated_alerts_total",
			Help: "Alerts Alertmanager left out of notifications (truncatedAlerts, set by max_alerts).",
		}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nines_webhook_busy_total",
			Help: "Webhook requests answered 503 because the bytes of notifications in flight stayed at --webhook.max-inflight-bytes (Alertmanager retries them).",
		}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nines_webhook_alerts_refused_total",
			Help: "Alerts left out of notifications that were otherwise taken, because they failed their checks (a time the store cannot hold, no fingerprint…).",
		}),
		selfAlerts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nines_notifications_self_alerts_total",
			Help: "Alerts of nines' own rules (label " + SelfAlertLabel + ") dropped by the webhook: they never open incidents.",
		}),
	}
	// Export every code the handler answers, and both statuses, at zero
	// from the start, so that rates and alerts on them work before the
	// first failure.
	for _, code := range []int{
		http.StatusOK,
		http.StatusBadRequest,
		http.StatusUnauthorized,
		http.StatusMethodNotAllowed,
		http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType,
		http.StatusInternalServerError,
		http.StatusServiceUnavailable,
	} {
		m.requests.WithLabelValues(strconv.Itoa(code))
	}
	m.alerts.WithLabelValues(statusFiring)
	m.alerts.WithLabelValues(statusResolved)
	if reg == nil {
		return m, nil
	}
	collectors := []prometheus.Collector{m.requests, m.alerts, m.duration, m.truncated, m.refused, m.busy, m.selfAlerts}
	for i, c := range collectors {
		if err := reg.Register(c); err != nil {
			// Leave reg as it was found.
			for _, done := range collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}
