package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// What Alertmanager cannot re-send.
//
// An alert that fires and resolves while nines cannot take webhooks is
// never delivered again, and restarts of Prometheus or Alertmanager can
// drop a resolve. A Reconciler compares nines' open incidents with the
// alerts Alertmanager reports as active through its v2 API:
//
//   - A firing alert of an open incident that Alertmanager has not reported
//     as active for Grace is resolved, on behalf of the reconciler, at the
//     best end time known: the alert's endsAt if it expired there (before
//     it went missing), else the last time Alertmanager reported it active,
//     else when the reconciler noticed it missing. The incident resolves
//     when no alert is left firing. Nothing is resolved while Alertmanager
//     has been up for less than Grace: a restarted Alertmanager reports no
//     alerts until Prometheus sends them again.
//   - An alert active (not silenced or inhibited) for Grace, routed to
//     nines' receiver, that no open incident holds, is fed through the
//     normal intake as Alertmanager would have sent it: a notification of
//     its whole group, with Alertmanager's group key, "<route key>:<group
//     labels>". The group labels come from /api/v2/alerts/groups; the route
//     key cannot be read from the API, so it is configured (RouteKey, "{}"
//     for the root route: the part before the colon in the groupKey of
//     nines' incidents). Waiting Grace first leaves Alertmanager time to
//     deliver the alert itself.

// Defaults for ReconcilerOptions.
const (
	DefaultReconcileInterval = time.Minute
	DefaultReconcileGrace    = 5 * time.Minute
	DefaultReceiver          = "nines"
	DefaultRouteKey          = "{}"
)

// maxAPIResponse bounds what is read from Alertmanager's API.
const maxAPIResponse = 64 << 20

// OpenIncidentLister knows how to list the open incidents that alerts
// opened, with their alerts; chstore.Store implements it.
type OpenIncidentLister interface {
	OpenIncidentsFromAlerts(ctx context.Context) ([]*incidents.Incident, error)
}

// StaleResolver knows how to resolve alerts that are no longer active;
// journal.Journal implements it (through the log).
type StaleResolver interface {
	ResolveStale(ctx context.Context, id string, ends map[string]time.Time, actor string) (*incidents.Incident, error)
}

// ReconcilerOptions configure a Reconciler.
type ReconcilerOptions struct {
	// URL is Alertmanager's base URL, e.g. http://alertmanager:9093.
	// Required.
	URL string
	// BearerToken, if set, is sent to Alertmanager's API.
	BearerToken string
	// Receiver is a regular expression matching the names of the
	// receivers that send to nines (anchored, as in Alertmanager's API).
	Receiver string
	// RouteKey is the key of the route that sends to nines.
	RouteKey string
	// Interval is the time between comparisons; Grace how long an alert
	// must be missing (or active) before the reconciler acts on it.
	Interval, Grace time.Duration
	// Client makes the API calls; nil means one with a 30s timeout.
	Client *http.Client
	// Ingester opens incidents, Incidents lists the open ones and
	// Resolver resolves stale alerts. Required.
	Ingester  Ingester
	Incidents OpenIncidentLister
	Resolver  StaleResolver
	Logger    *slog.Logger
	// Registerer receives the reconciler's metrics; nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Reconciler compares nines' open incidents with Alertmanager's active
// alerts. See the comment above.
type Reconciler struct {
	o        ReconcilerOptions
	base     *url.URL
	receiver *regexp.Regexp
	log      *slog.Logger
	metrics  *reconcileMetrics

	mu      sync.Mutex
	seen    map[string]seenAlert // by occurrence key: what Alertmanager said last
	missing map[string]time.Time // by occurrence key: when it was noticed missing
}

type seenAlert struct {
	first, last time.Time // when the reconciler saw it active first and last
	endsAt      time.Time // the endsAt Alertmanager gave it then
}

type reconcileMetrics struct {
	runs     *prometheus.CounterVec
	resolved prometheus.Counter
	opened   prometheus.Counter
	active   prometheus.Gauge
	last     prometheus.Gauge
}

// NewReconciler builds a Reconciler.
func NewReconciler(o ReconcilerOptions) (*Reconciler, error) {
	if o.URL == "" {
		return nil, errors.New("reconciler: the Alertmanager URL is required")
	}
	base, err := url.Parse(o.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("reconciler: Alertmanager URL %q: want http(s)://host[:port][/prefix]", redactURL(o.URL))
	}
	if o.Ingester == nil || o.Incidents == nil || o.Resolver == nil {
		return nil, errors.New("reconciler: an ingester, an incident lister and a resolver are required")
	}
	if o.Receiver == "" {
		o.Receiver = DefaultReceiver
	}
	re, err := regexp.Compile("^(?:" + o.Receiver + ")$")
	if err != nil {
		return nil, fmt.Errorf("reconciler: receiver: %w", err)
	}
	if o.RouteKey == "" {
		o.RouteKey = DefaultRouteKey
	}
	if o.Interval <= 0 {
		o.Interval = DefaultReconcileInterval
	}
	if o.Grace <= 0 {
		o.Grace = DefaultReconcileGrace
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 30 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	f := promauto.With(o.Registerer)
	return &Reconciler{
		o: o, base: base, receiver: re, log: o.Logger.With("component", "reconciler"),
		seen: map[string]seenAlert{}, missing: map[string]time.Time{},
		metrics: &reconcileMetrics{
			runs: f.NewCounterVec(prometheus.CounterOpts{
				Name: "nines_reconcile_runs_total",
				Help: "Comparisons of open incidents with Alertmanager's active alerts, by result (ok, error).",
			}, []string{"result"}),
			resolved: f.NewCounter(prometheus.CounterOpts{
				Name: "nines_reconcile_resolved_alerts_total",
				Help: "Firing alerts resolved because Alertmanager no longer reports them as active.",
			}),
			opened: f.NewCounter(prometheus.CounterOpts{
				Name: "nines_reconcile_opened_alerts_total",
				Help: "Active alerts that no open incident held, fed to the intake by the reconciler.",
			}),
			active: f.NewGauge(prometheus.GaugeOpts{
				Name: "nines_reconcile_alertmanager_active_alerts",
				Help: "Alerts routed to nines that Alertmanager reported as active at the last comparison.",
			}),
			last: f.NewGauge(prometheus.GaugeOpts{
				Name: "nines_reconcile_last_success_timestamp_seconds",
				Help: "When the last comparison succeeded, in Unix seconds.",
			}),
		},
	}, nil
}

// Run compares every Interval until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	t := time.NewTicker(r.o.Interval)
	defer t.Stop()
	for {
		if res, err := r.Reconcile(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			r.log.Warn("reconcile with Alertmanager failed", "err", err)
		} else if res.Resolved > 0 || res.Opened > 0 {
			r.log.Info("reconciled with Alertmanager", "active", res.Active, "open_incidents", res.Open,
				"resolved_alerts", res.Resolved, "opened_alerts", res.Opened)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// ReconcileResult says what one comparison found and did.
type ReconcileResult struct {
	Active, Open     int // alerts active in Alertmanager, incidents open in nines
	Resolved, Opened int // alerts resolved, alerts fed to the intake
}

// Reconcile runs one comparison.
func (r *Reconciler) Reconcile(ctx context.Context) (ReconcileResult, error) {
	res, err := r.reconcile(ctx)
	if err != nil {
		r.metrics.runs.WithLabelValues("error").Inc()
		return res, err
	}
	r.metrics.runs.WithLabelValues("ok").Inc()
	r.metrics.last.Set(float64(r.o.Now().Unix()))
	return res, nil
}

func (r *Reconciler) reconcile(ctx context.Context) (ReconcileResult, error) {
	var res ReconcileResult
	now := r.o.Now()
	var status amStatus
	if err := r.get(ctx, "/api/v2/status", nil, &status); err != nil {
		return res, err
	}
	q := url.Values{"active": {"true"}, "silenced": {"true"}, "inhibited": {"true"}, "unprocessed": {"true"}, "receiver": {r.o.Receiver}}
	var alerts []amAlert
	if err := r.get(ctx, "/api/v2/alerts", q, &alerts); err != nil {
		return res, err
	}
	active := map[string]amAlert{}
	for _, a := range alerts {
		if !r.routedHere(a) {
			continue
		}
		k := a.key()
		active[k] = a
	}
	res.Active = len(active)
	r.metrics.active.Set(float64(len(active)))
	open, err := r.o.Incidents.OpenIncidentsFromAlerts(ctx)
	if err != nil {
		return res, fmt.Errorf("reconcile: %w", err)
	}
	res.Open = len(open)

	r.mu.Lock()
	for k, a := range active {
		s := r.seen[k]
		if s.first.IsZero() {
			s.first = now
		}
		s.last, s.endsAt = now, a.EndsAt
		r.seen[k] = s
		delete(r.missing, k)
	}
	// A restarted Alertmanager knows no alerts until Prometheus re-sends
	// them: resolve nothing until it has been up for Grace.
	mayResolve := !status.Uptime.IsZero() && now.Sub(status.Uptime) >= r.o.Grace
	held := map[string]bool{}
	type work struct {
		id   string
		ends map[string]time.Time
	}
	var todo []work
	for _, inc := range open {
		if inc.Source != incidents.SourceAlertmanager || !inc.State.Open() {
			continue
		}
		ends := map[string]time.Time{}
		firing := 0
		for _, al := range inc.Alerts {
			k := al.Key()
			held[k] = true
			if al.Status != incidents.AlertFiring {
				continue
			}
			firing++
			if _, ok := active[k]; ok {
				continue
			}
			since, ok := r.missing[k]
			if !ok {
				r.missing[k] = now
				since = now
			}
			if mayResolve && now.Sub(since) >= r.o.Grace {
				ends[k] = r.bestEnd(k, al.StartsAt, since)
			}
		}
		if len(ends) > 0 || (firing == 0 && len(inc.Alerts) > 0) {
			todo = append(todo, work{inc.ID, ends})
		}
	}
	// Forget what is neither active nor held by an open incident.
	for k := range r.seen {
		if _, ok := active[k]; !ok && !held[k] {
			delete(r.seen, k)
		}
	}
	for k := range r.missing {
		if !held[k] {
			delete(r.missing, k)
		}
	}
	var unheld []string
	for k, a := range active {
		if !held[k] && a.Status.State == "active" && now.Sub(r.seen[k].first) >= r.o.Grace {
			unheld = append(unheld, k)
		}
	}
	r.mu.Unlock()

	var errs []error
	for _, w := range todo {
		inc, err := r.o.Resolver.ResolveStale(ctx, w.id, w.ends, incidents.ActorReconciler)
		switch {
		case errors.Is(err, fault.ErrConflict), errors.Is(err, fault.ErrNotFound):
			continue // resolved meanwhile
		case err != nil:
			errs = append(errs, fmt.Errorf("resolve stale alerts of %s: %w", w.id, err))
			continue
		}
		res.Resolved += len(w.ends)
		r.metrics.resolved.Add(float64(len(w.ends)))
		r.log.Info("resolved alerts no longer active in Alertmanager", "incident", w.id, "alerts", len(w.ends), "state", inc.State)
	}
	if len(unheld) > 0 {
		n, err := r.open(ctx, unheld, now)
		res.Opened = n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// bestEnd is when a missing alert most likely ended: at its endsAt if it
// expired there before it went missing, else when Alertmanager last
// reported it active, else when it was noticed missing.
func (r *Reconciler) bestEnd(k string, start, missingSince time.Time) time.Time {
	s, ok := r.seen[k]
	switch {
	case ok && !s.endsAt.IsZero() && s.endsAt.After(start) && !s.endsAt.After(missingSince):
		return s.endsAt
	case ok && !s.last.IsZero():
		return s.last
	}
	return missingSince
}

// routedHere reports whether Alertmanager routes the alert to a receiver
// of nines. The API filters by receiver already; this also copes with
// servers that ignore the filter.
func (r *Reconciler) routedHere(a amAlert) bool {
	if isSelfAlert(a.Labels) {
		return false // nines' own rules: never an incident
	}
	if len(a.Receivers) == 0 {
		return true // unprocessed: not routed yet
	}
	for _, rc := range a.Receivers {
		if r.receiver.MatchString(rc.Name) {
			return true
		}
	}
	return false
}

// open feeds the groups of the active alerts keys to the intake, each as
// the notification Alertmanager would have sent. It returns how many of
// the keys it fed.
func (r *Reconciler) open(ctx context.Context, keys []string, now time.Time) (int, error) {
	q := url.Values{"active": {"true"}, "silenced": {"false"}, "inhibited": {"false"}, "receiver": {r.o.Receiver}}
	var groups []amGroup
	if err := r.get(ctx, "/api/v2/alerts/groups", q, &groups); err != nil {
		return 0, err
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	fed, done := 0, map[string]bool{}
	var errs []error
	for _, g := range groups {
		if !r.receiver.MatchString(g.Receiver.Name) {
			continue
		}
		g.Alerts = slices.DeleteFunc(g.Alerts, func(a amAlert) bool { return isSelfAlert(a.Labels) })
		hit := 0
		for _, a := range g.Alerts {
			if want[a.key()] && !done[a.key()] {
				hit++
			}
		}
		if hit == 0 {
			continue
		}
		n := g.notification(r.o.RouteKey, r.base.Redacted(), now)
		if err := r.o.Ingester.Ingest(ctx, n); err != nil {
			errs = append(errs, fmt.Errorf("open incident for group %s: %w", n.GroupKey, err))
			continue
		}
		for _, a := range g.Alerts {
			done[a.key()] = true
		}
		fed += hit
		r.metrics.opened.Add(float64(hit))
		r.log.Info("fed active alerts that no incident held", "group_key", n.GroupKey, "alerts", hit)
	}
	return fed, errors.Join(errs...)
}

// get fetches an API path into v.
func (r *Reconciler) get(ctx context.Context, path string, q url.Values, v any) error {
	u := *r.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("alertmanager %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	if r.o.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+r.o.BearerToken)
	}
	resp, err := r.o.Client.Do(req)
	if err != nil {
		// net/http redacts a password in the URL from its errors.
		return fmt.Errorf("alertmanager %s: %w", path, err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxAPIResponse)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(body, 512))
		return fmt.Errorf("alertmanager %s: status %d: %s", path, resp.StatusCode, quote(strings.TrimSpace(string(b))))
	}
	if err := json.NewDecoder(body).Decode(v); err != nil {
		return fmt.Errorf("alertmanager %s: decode: %w", path, err)
	}
	return nil
}

func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable)"
}

// Alertmanager v2 API types: only what the reconciler reads.

type amStatus struct {
	Uptime time.Time `json:"uptime"`
}

type amAlert struct {
	Fingerprint  string            `json:"fingerprint"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Receivers    []struct {
		Name string `json:"name"`
	} `json:"receivers"`
	Status struct {
		State string `json:"state"` // active, suppressed, unprocessed
	} `json:"status"`
}

// key is the occurrence key, as incidents.Alert.Key.
func (a amAlert) key() string {
	return a.Fingerprint + "@" + strconv.FormatInt(a.StartsAt.UnixMilli(), 10)
}

type amGroup struct {
	Labels   map[string]string `json:"labels"`
	Receiver struct {
		Name string `json:"name"`
	} `json:"receiver"`
	Alerts []amAlert `json:"alerts"`
}

// notification is the notification Alertmanager sends for the group.
func (g amGroup) notification(routeKey, externalURL string, now time.Time) incidents.Notification {
	n := incidents.Notification{
		Receiver:    regexp.QuoteMeta(g.Receiver.Name), // as Alertmanager's webhook sends it
		Status:      incidents.AlertFiring,
		GroupKey:    routeKey + ":" + labelSetString(g.Labels),
		GroupLabels: g.Labels,
		ExternalURL: externalURL,
		ReceivedAt:  now.UTC(),
	}
	for i, a := range g.Alerts {
		n.Alerts = append(n.Alerts, incidents.Alert{
			Fingerprint: a.Fingerprint, Status: incidents.AlertFiring, Labels: a.Labels, Annotations: a.Annotations,
			StartsAt: a.StartsAt.UTC(), GeneratorURL: a.GeneratorURL,
		})
		if i == 0 {
			n.CommonLabels, n.CommonAnnotations = maps.Clone(a.Labels), maps.Clone(a.Annotations)
			continue
		}
		intersect(n.CommonLabels, a.Labels)
		intersect(n.CommonAnnotations, a.Annotations)
	}
	return n
}

func intersect(common, m map[string]string) {
	for k, v := range common {
		if m[k] != v {
			delete(common, k)
		}
	}
}

// labelSetString formats labels as Prometheus' model.LabelSet.String
// does, which Alertmanager uses in group keys: {a="1", b="2"}.
func labelSetString(labels map[string]string) string {
	names := slices.Collect(maps.Keys(labels))
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(labels[name]))
	}
	b.WriteByte('}')
	return b.String()
}
