package chat_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/chat/chattest"
	"github.com/ninesops/nines/chat/slacktest"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

const token = "xoxb-test-token"

// testCatalog is the service catalog of the sender tests.
const testCatalog = `
squads:
  - name: payments
    channel: "#payments-ops"
  - name: web
    channel: "#web-ops"
  - name: discovery
services:
  - name: checkout
    owner: payments
    channel: "#checkout"
    slo_target: 99.9
    runbook_url: https://runbooks.example.com/checkout
    dashboard_url: https://grafana.example.com/d/checkout
  - name: payments-api
    owner: payments
    slo_target: 99.99
  - name: frontend
    owner: web
  - name: search
    owner: discovery
`

func testCatalogs(t testing.TB) func() *catalog.Catalog {
	t.Helper()
	c, err := catalog.Parse([]byte(testCatalog), "catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	return func() *catalog.Catalog { return c }
}

// fastConfig is a chat config with short intervals, so that tests on
// real time (ClickHouse) finish quickly; under synctest they cost nothing.
func fastConfig() chat.Config {
	return chat.Config{
		PollInterval:    50 * time.Millisecond,
		ChannelInterval: 20 * time.Millisecond,
		Lookback:        2 * time.Second,
		FlapInterval:    5 * time.Minute,
		Digest:          chat.DigestConfig{Cadence: chat.CadenceOff},
	}
}

// harness wires an incident service, a store, fake Slack and senders.
type harness struct {
	t       *testing.T
	store   chattest.Store
	svc     *incidents.Service
	slack   *slacktest.Fake
	catalog func() *catalog.Catalog
	cfg     chat.Config
	avail   chat.Availability
	hooks   map[string]string
	senders []*running
	seq     int
}

// running is a started sender.
type running struct {
	s      *chat.Sender
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

func newHarness(t *testing.T, store chattest.Store, fake *slacktest.Fake) *harness {
	t.Helper()
	h := &harness{t: t, store: store, slack: fake, catalog: testCatalogs(t), cfg: fastConfig()}
	for _, ch := range []string{"#operations", "#checkout", "#payments-ops", "#web-ops"} {
		fake.AddChannel(ch)
	}
	svc, err := incidents.NewService(incidents.Options{Store: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h.svc = svc
	return h
}

// memHarness runs f inside a synctest bubble with an in-memory store.
func memHarness(t *testing.T, f func(t *testing.T, h *harness)) {
	synctest.Test(t, func(t *testing.T) {
		fake := slacktest.New(token)
		h := newHarness(t, chattest.NewMem(nil), fake)
		defer h.stopAll()
		f(t, h)
	})
}

// chHarness runs f on real time with a ClickHouse test database and a
// fake Slack served over HTTP.
func chHarness(t *testing.T, f func(t *testing.T, h *harness)) {
	dsn := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := chstore.Open(ctx, chstore.Options{DSN: dsn, Logger: slog.New(slog.DiscardHandler), FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fake := slacktest.NewServer(t, token)
	h := newHarness(t, s, fake)
	defer h.stopAll()
	f(t, h)
}

// bothStores runs a scenario on the in-memory store under synctest and,
// when a test server is configured, on ClickHouse.
func bothStores(t *testing.T, f func(t *testing.T, h *harness)) {
	t.Run("mem", func(t *testing.T) { memHarness(t, f) })
	t.Run("clickhouse", func(t *testing.T) {
		if !chtest.Configured(t) {
			t.Skipf("integration test: no test server for %s=%s", chtest.EngineEnv, chtest.Engine(t))
		}
		chHarness(t, f)
	})
}

func (h *harness) options(holder string) chat.Options {
	return chat.Options{
		Config: h.cfg, Token: token, APIURL: h.slack.APIURL(), HTTPClient: h.slack.Client(),
		WebhookURLs: h.hooks, Events: h.store, Ledger: h.store, Leases: h.store,
		Catalog: h.catalog, Availability: h.avail, Incidents: h.store.(chat.IncidentLister),
		Holder: holder, LeaseTTL: 1500 * time.Millisecond, LeaseHeartbeat: 300 * time.Millisecond,
		IntentGrace: time.Second, Logger: testLogger(),
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("NINES_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// start runs a sender; holders sort by name, so "a" leads over "b".
func (h *harness) start(holder string, configure ...func(*chat.Options)) *running {
	h.t.Helper()
	o := h.options(holder)
	for _, c := range configure {
		c(&o)
	}
	r := &running{reg: prometheus.NewRegistry(), done: make(chan struct{})}
	o.Registerer = r.reg
	s, err := chat.New(o)
	if err != nil {
		h.t.Fatal(err)
	}
	r.s = s
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		if err := s.Run(ctx); err != nil {
			h.t.Errorf("sender %s: %v", holder, err)
		}
	}()
	h.senders = append(h.senders, r)
	return r
}

// stop stops the sender and waits for it.
func (r *running) stop() {
	r.cancel()
	<-r.done
}

func (h *harness) stopAll() {
	for _, r := range h.senders {
		r.stop()
	}
}

// metric returns the value of a metric with the given labels.
func (r *running) metric(name string, labels ...string) float64 {
	mfs, err := r.reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if labelValue(m, labels[i]) != labels[i+1] {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// waitFor polls cond (on the bubble's clock under synctest).
func (h *harness) waitFor(what string, timeout time.Duration, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out after %s waiting for %s\nslack calls:\n%s", timeout, what, h.callLog())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) callLog() string {
	var b strings.Builder
	for _, c := range h.slack.Calls() {
		fmt.Fprintf(&b, "  %s %s thread=%s ts=%s err=%s\n", c.Method, c.Channel, c.Thread, c.TS, c.Error)
	}
	return b.String()
}

// alertSpec describes one alert of a notification.
type alertSpec struct {
	name, service, severity string
	start, end              time.Time // end zero: firing
	instance                string
}

func (a alertSpec) alert() incidents.Alert {
	labels := map[string]string{"alertname": a.name, "service": a.service, "severity": a.severity}
	if a.instance != "" {
		labels["instance"] = a.instance
	}
	al := incidents.Alert{
		Fingerprint: fmt.Sprintf("%x", []byte(a.name+a.service+a.instance))[:16],
		Status:      incidents.AlertFiring, Labels: labels, StartsAt: a.start,
		Annotations:  map[string]string{"summary": a.name + " on " + a.service},
		GeneratorURL: "http://prometheus.example.com/graph?g0.expr=up",
	}
	if !a.end.IsZero() {
		al.Status, al.EndsAt = incidents.AlertResolved, a.end
	}
	return al
}

// notify sends one Alertmanager notification for a group.
func (h *harness) notify(group string, specs ...alertSpec) {
	h.t.Helper()
	n := incidents.Notification{Receiver: "nines", Status: incidents.AlertFiring, GroupKey: group, ExternalURL: "http://alertmanager.example.com"}
	for _, s := range specs {
		n.Alerts = append(n.Alerts, s.alert())
		if !s.end.IsZero() {
			n.Status = incidents.AlertResolved
		}
	}
	if err := h.svc.Ingest(context.Background(), n); err != nil {
		h.t.Fatal(err)
	}
}

// incidentOf returns the ID of the latest incident of a service.
func (h *harness) incidentOf(service string) string {
	h.t.Helper()
	incs, _, err := h.store.(chat.IncidentLister).List(context.Background(), incidents.Filter{Service: service, Limit: 1})
	if err != nil || len(incs) == 0 {
		h.t.Fatalf("no incident of %s (%v)", service, err)
	}
	return incs[0].ID
}

// shape describes a channel's messages for comparison: one line per
// top-level message (its metadata key and update count) and one per
// thread reply (its event kind or key).
func (h *harness) shape(channel string, kinds map[string]string) []string {
	var out []string
	for _, m := range h.slack.Messages(channel) {
		out = append(out, fmt.Sprintf("%s %s updates=%d", m.Via, keyName(m.EventID(), kinds), m.Updates()))
		for _, r := range m.Replies {
			out = append(out, "  reply "+keyName(r.EventID(), kinds))
		}
	}
	return out
}

func keyName(key string, kinds map[string]string) string {
	if k, ok := kinds[key]; ok {
		return k
	}
	if strings.HasPrefix(key, "flap:") {
		return "flap"
	}
	return key
}

// kinds maps the event IDs of incidents to their kinds.
func (h *harness) kinds(ids ...string) map[string]string {
	out := map[string]string{}
	for _, id := range ids {
		tl, err := h.store.(incidents.Reader).Timeline(context.Background(), id)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, e := range tl {
			out[e.ID] = string(e.Kind)
		}
	}
	return out
}

// idle waits until the sender leads, its queue is empty and Slack has
// seen no call for a second.
func (h *harness) idle(r *running) {
	h.t.Helper()
	var since time.Time
	last := -1
	h.waitFor("the sender to go idle", 30*time.Second, func() bool {
		n := len(h.slack.Calls())
		if r.metric("nines_chat_leader") != 1 || r.metric("nines_chat_queue_depth") != 0 || n != last {
			since, last = time.Now(), n
			return false
		}
		return time.Since(since) >= time.Second
	})
}

// fakeAvailability answers with fixed figures.
type fakeAvailability struct {
	mu   sync.Mutex
	figs map[string]map[string]chat.Figure // window → service → figure
	err  error
}

func (f *fakeAvailability) Figures(_ context.Context, window string) ([]chat.Figure, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	var out []chat.Figure
	for _, fig := range f.figs[window] {
		out = append(out, fig)
	}
	return out, nil
}

func (f *fakeAvailability) Figure(_ context.Context, service, window string) (chat.Figure, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return chat.Figure{}, f.err
	}
	fig, ok := f.figs[window][service]
	if !ok {
		return chat.Figure{}, fmt.Errorf("%w: service %q", fault.ErrNotFound, service)
	}
	return fig, nil
}
