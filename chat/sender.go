// The Sender and its loop. Delivery is a pipeline of stages, one file each,
// in the spirit of Alertmanager's notify/ stages:
//
//   who sends:  only the replica holding the lease (package lease; this
//               file's Run starts and stops leading as the lease flips);
//   events.go   reading events: tail the stored timeline, load what is known
//               of each incident, render its messages;
//   plan.go     planning: per channel, the most urgent action now;
//   deliver.go  delivery: record intents, make the Slack calls, record the
//               outcomes;
//   recover.go  recovery: finish an interrupted delivery by looking it up;
//   cursor.go   the cursor: where reading resumes, and writing results.

package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/lease"
)

// Sender defaults.
const (
	// DefaultIntentGrace is how long an intent written by another holder
	// (or before a restart) is left alone before it is looked up in
	// Slack: longer than any Slack call may take.
	DefaultIntentGrace = 30 * time.Second
	// DefaultMaxEventAge bounds the event times the tail reads (the
	// events table is partitioned by them): older events are not posted.
	DefaultMaxEventAge = 31 * 24 * time.Hour
	// callTimeout bounds one Slack call.
	callTimeout = 15 * time.Second
	// maxBackoff caps the wait after repeated transient errors.
	maxBackoff = 5 * time.Minute
	// cursorEvery is how often the cursor is written when it moves.
	cursorEvery = 10 * time.Second
	// digestCatchUp is how late a missed digest is still posted.
	digestCatchUp = time.Hour
	// budgetWindow is the window of the error budget shown on incidents.
	budgetWindow = "30d"
	// budgetCacheFor is how long a service's budget figure is reused.
	budgetCacheFor = time.Minute
	// cursorName names the sender's cursor.
	cursorName = "chat-sender"
	// leaseName names the sender's lease in the leases table.
	leaseName = "chat-sender"
)

// Options configure a Sender.
type Options struct {
	// Config is the chat section of the config file; New validates it.
	Config Config
	// Token is the bot token (xoxb-…). Without it only channels with an
	// incoming webhook are posted to.
	Token string
	// APIURL is Slack's Web API (DefaultAPIURL); a Slack-compatible or
	// test endpoint may stand in.
	APIURL string
	// HTTPClient makes the calls to Slack (a client with a 15s timeout).
	HTTPClient *http.Client
	// WebhookURLs maps channels to incoming-webhook URLs (see
	// Config.WebhookURLs).
	WebhookURLs map[string]string
	// Events, Ledger and Leases are the store (all three required;
	// *chstore.Store implements them).
	Events Events
	Ledger Ledger
	Leases Leases
	// Catalog returns the current service catalog (default: empty).
	Catalog func() *catalog.Catalog
	// Availability, if set, adds the error budget line to incidents and
	// enables the digest.
	Availability Availability
	// Incidents, if set, lists incidents for the digest.
	Incidents IncidentLister
	// DORA, if set, adds the week's delivery (DORA) figures to the
	// digest.
	DORA DORASource
	// Suspects, if set, adds the top suspect change to incident messages
	// ("what changed?").
	Suspects Suspects
	// BudgetWeight weighs an incident's downtime by impact, as the
	// availability figures do (default: outage 1, others 0).
	BudgetWeight func(incidents.Impact) float64
	// DashboardUID gives a service's Grafana dashboard UID, linked as
	// Config.GrafanaURL/d/<uid> (default "nines-svc-<service>", the UID
	// package dashboards generates for simple names).
	DashboardUID func(service string) string
	// ExternalURL is where people reach nines' pages (--web.external-url);
	// messages and the digest link to incident pages under it. Empty: no
	// such links.
	ExternalURL string
	// Holder identifies this replica in the lease (default: start time,
	// host name and a random suffix).
	Holder string
	// LeaseTTL and LeaseHeartbeat tune leadership (lease.DefaultTTL,
	// lease.DefaultHeartbeat).
	LeaseTTL       time.Duration
	LeaseHeartbeat time.Duration
	// IntentGrace: see DefaultIntentGrace.
	IntentGrace time.Duration
	// MaxEventAge: see DefaultMaxEventAge.
	MaxEventAge time.Duration
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	Now         func() time.Time
}

func (o *Options) validate() error {
	if o.Events == nil || o.Ledger == nil || o.Leases == nil {
		return errors.New("chat: Events, Ledger and Leases are required")
	}
	if err := o.Config.Validate(); err != nil {
		return err
	}
	if o.Token == "" && len(o.WebhookURLs) == 0 {
		return errors.New("chat: a Slack bot token or incoming webhooks are required")
	}
	if o.Catalog == nil {
		empty := catalog.Empty(catalog.DefaultSLOTarget)
		o.Catalog = func() *catalog.Catalog { return empty }
	}
	if o.BudgetWeight == nil {
		o.BudgetWeight = defaultWeight
	}
	if o.DashboardUID == nil {
		o.DashboardUID = func(s string) string { return "nines-svc-" + s }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Holder == "" {
		o.Holder = lease.NewHolderID(o.Now())
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = lease.DefaultTTL
	}
	if o.LeaseHeartbeat <= 0 {
		o.LeaseHeartbeat = lease.DefaultHeartbeat
	}
	if o.LeaseTTL < 4*o.LeaseHeartbeat {
		// The leader stops 2 heartbeats before the TTL: keep it at
		// least 2 heartbeats of slack so that a slow check does not
		// interrupt it.
		return fmt.Errorf("chat: lease TTL %s must be at least four heartbeats (%s)", o.LeaseTTL, o.LeaseHeartbeat)
	}
	if o.IntentGrace <= 0 {
		o.IntentGrace = DefaultIntentGrace
	}
	if o.MaxEventAge <= 0 {
		o.MaxEventAge = DefaultMaxEventAge
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func defaultWeight(i incidents.Impact) float64 {
	if i == incidents.ImpactOutage {
		return 1
	}
	return 0
}

// Sender posts incidents to Slack and keeps their messages current. Every
// replica runs one; only the lease holder sends (see README.md). It reads
// the incident timeline from the store, so intake never waits for Slack.
type Sender struct {
	cfg      Config
	api      *slackAPI
	hooks    map[string]string
	events   Events
	ledger   Ledger
	catalog  func() *catalog.Catalog
	avail    Availability
	suspects Suspects
	digester *digester
	weight   func(incidents.Impact) float64
	dashUID  func(string) string
	pageURL  string // ExternalURL without its trailing slash
	holder   string
	grace    time.Duration
	maxAge   time.Duration
	log      *slog.Logger
	metrics  *metrics
	now      func() time.Time
	lease    *lease.Lease

	st      *state                // the leader's state; nil while not leading
	notSent map[deliveryRef]int64 // own intents never acted on: their times (ms)
	budgets map[string]budgetEntry
	warned  map[string]bool
}

// New builds a Sender.
func New(o Options) (*Sender, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	m := newMetrics(o.Registerer)
	s := &Sender{
		cfg: o.Config, api: newSlackAPI(o.Token, o.APIURL, o.HTTPClient, m), hooks: o.WebhookURLs,
		events: o.Events, ledger: o.Ledger, catalog: o.Catalog, avail: o.Availability, suspects: o.Suspects,
		weight: o.BudgetWeight, dashUID: o.DashboardUID, pageURL: strings.TrimSuffix(o.ExternalURL, "/"), holder: o.Holder, grace: o.IntentGrace,
		maxAge: o.MaxEventAge, log: o.Logger.With("component", "chat", "holder", o.Holder), metrics: m, now: o.Now,
		budgets: map[string]budgetEntry{}, warned: map[string]bool{}, notSent: map[deliveryRef]int64{},
	}
	if o.Availability != nil {
		s.digester = &digester{avail: o.Availability, incs: o.Incidents, dora: o.DORA, catalog: o.Catalog, pageURL: s.pageURL}
	}
	s.lease = lease.New(o.Leases, leaseName, o.Holder, o.LeaseTTL, o.LeaseHeartbeat, o.Now, s.log, func(leader bool) {
		if leader {
			m.leader.Set(1)
			s.log.Info("chat lease acquired: this replica sends to Slack")
		} else {
			m.leader.Set(0)
			s.log.Info("chat lease not held: another replica sends to Slack")
		}
	})
	return s, nil
}

// CheckAuth asks Slack who the bot token belongs to (auth.test), to
// report a bad token at startup rather than at the first incident. It
// returns "bot in workspace", or "" when there is no token.
func (s *Sender) CheckAuth(ctx context.Context) (string, error) {
	if s.api.client == nil {
		return "", nil
	}
	who, err := s.api.authTest(ctx)
	if err != nil {
		return "", fmt.Errorf("slack auth.test: %w", err)
	}
	return who, nil
}

// Holder returns this replica's lease holder ID.
func (s *Sender) Holder() string { return s.holder }

// Run heartbeats the lease and, while this replica holds it, sends. It
// returns when ctx ends, after writing what it has sent.
func (s *Sender) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	leaseCtx, stopLease := context.WithCancel(ctx)
	wg.Go(func() { s.lease.Run(leaseCtx) })
	defer func() {
		stopLease()
		wg.Wait()
		s.metrics.leader.Set(0)
		s.metrics.queueDepth.Set(0)
		s.metrics.queueAge.Set(0)
	}()
	for {
		if ctx.Err() != nil {
			s.stopLeading()
			return nil
		}
		wait := s.step(ctx)
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-s.lease.Flip():
			t.Stop()
		case <-t.C:
		}
	}
}

// state is what the leader knows. It is rebuilt from the store whenever
// this replica becomes leader, so a replica that led before and lost the
// lease never acts on stale knowledge.
type state struct {
	term        uint64    // the lease term it belongs to
	cursor      time.Time // events stored before cursor − lookback are handled
	maxSeen     time.Time
	savedCursor time.Time
	savedAt     time.Time
	nextPoll    time.Time
	storeWait   time.Time // after a failed store call, wait until then

	events map[string]*evRec
	incs   map[string]*incState
	pairs  map[pairKey]*pairState
	byInc  map[string][]*pairState // the pairs of each incident
	ready  map[string]time.Time    // channel → next write allowed
	fails  map[string]int          // channel → consecutive transient errors
	buf    Records                 // results not yet written

	digestDue  time.Time
	digestJobs []*digestJob
}

type pairKey struct{ inc, ch string }

// pairState is one incident in one channel.
type pairState struct {
	inc, channel string
	hook         string // incoming-webhook URL when the channel has no bot
	msg          *MessageRecord
	failed       string // the main message failed for good: Slack's reason
	done         map[string]bool
	intents      map[string]*intent
	lastChurn    time.Time // last alert-change reply or flap summary
	churnBatch   time.Time // the stored time of the change last replied to
	held         []string  // alert changes held for a flap summary
}

// intent is an unfinished delivery: maybe posted, to be looked up.
type intent struct {
	d Delivery
	// lookup: this replica's own call ended without an answer, so there
	// is no other call to wait for: look it up now rather than after the
	// grace period.
	lookup bool
	// fresh: written by this replica in the current round.
	fresh bool
}

type digestJob struct {
	key, channel, hook string
	msg                rendered
	done               bool
	intent             *intent
}

func (s *Sender) stopLeading() {
	if s.st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.saveCursor(s.now(), true)
	if err := s.flush(ctx); err != nil {
		s.log.Warn("chat: could not store the last results; the next leader looks them up in Slack", "err", err)
	}
	s.st = nil
	s.metrics.queueDepth.Set(0)
	s.metrics.queueAge.Set(0)
}

// step does one round of work and says how long to wait before the next.
func (s *Sender) step(ctx context.Context) time.Duration {
	now := s.now()
	term, _, ok := s.lease.Fence()
	if !ok {
		s.stopLeading()
		return s.cfg.PollInterval
	}
	if s.st != nil && s.st.term != term {
		// The lease lapsed since this state was built: another
		// replica may have led and sent meanwhile.
		s.stopLeading()
	}
	if s.st == nil {
		st, err := s.begin(ctx, now)
		if err != nil {
			s.storeFailed("load cursor", err)
			return s.cfg.PollInterval
		}
		st.term = term
		s.st = st
	}
	st := s.st
	if now.Before(st.storeWait) {
		return st.storeWait.Sub(now)
	}
	if !now.Before(st.nextPoll) {
		st.nextPoll = now.Add(s.cfg.PollInterval)
		if err := s.poll(ctx, now); err != nil {
			s.storeFailed("read events", err)
			st.storeWait = now.Add(s.cfg.PollInterval)
			return s.cfg.PollInterval
		}
	}
	s.prepareDigest(ctx, now)
	round, wake := s.plan(now)
	s.saveCursor(now, false)
	if len(round) > 0 {
		s.execute(ctx, round, now)
		return 0
	}
	if st.buf.len() > 0 {
		if err := s.flush(ctx); err != nil {
			s.storeFailed("write results", err)
			st.storeWait = now.Add(s.cfg.PollInterval)
		}
	}
	next := st.nextPoll
	if !wake.IsZero() && wake.Before(next) {
		next = wake
	}
	return max(next.Sub(now), time.Millisecond)
}

func (s *Sender) storeFailed(what string, err error) {
	s.metrics.ledgerFails.Inc()
	s.log.Warn("chat: store unavailable, sending waits", "op", what, "err", err)
}
