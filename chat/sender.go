package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/incidents"
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
	// LeaseTTL and LeaseHeartbeat tune leadership (DefaultLeaseTTL,
	// DefaultLeaseHeartbeat).
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
		o.Holder = newHolderID(o.Now())
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.LeaseHeartbeat <= 0 {
		o.LeaseHeartbeat = DefaultLeaseHeartbeat
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
	lease    *lease

	st      *state // the leader's state; nil while not leading
	budgets map[string]budgetEntry
	warned  map[string]bool
}

type budgetEntry struct {
	fig Figure
	ok  bool
	at  time.Time
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
		budgets: map[string]budgetEntry{}, warned: map[string]bool{},
	}
	if o.Availability != nil {
		s.digester = &digester{avail: o.Availability, incs: o.Incidents, catalog: o.Catalog, pageURL: s.pageURL}
	}
	s.lease = newLease(o.Leases, o.Holder, o.LeaseTTL, o.LeaseHeartbeat, o.Now, s.log, func(leader bool) {
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
	wg.Go(func() { s.lease.run(leaseCtx) })
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
		case <-s.lease.flip:
			t.Stop()
		case <-t.C:
		}
	}
}

// state is what the leader knows. It is rebuilt from the store whenever
// this replica becomes leader, so a replica that led before and lost the
// lease never acts on stale knowledge.
type state struct {
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

type evRec struct {
	ev       incidents.Event
	inserted time.Time
}

type incState struct {
	id      string
	inc     *incidents.Incident
	events  []*evRec // by (inserted, at, id)
	loaded  bool     // the ledger was read for it
	msg     rendered // the main message, interactive
	hookMsg rendered // the same for incoming webhooks
	hash    string
	first   time.Time // when the tail first saw it
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
	if !s.lease.leader() {
		s.stopLeading()
		return s.cfg.PollInterval
	}
	if s.st == nil {
		st, err := s.begin(ctx, now)
		if err != nil {
			s.storeFailed("load cursor", err)
			return s.cfg.PollInterval
		}
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

// begin starts leading: the cursor comes from the store, everything else
// is read again as events come in.
func (s *Sender) begin(ctx context.Context, now time.Time) (*state, error) {
	pos, ok, err := s.ledger.ChatCursor(ctx, cursorName)
	if err != nil {
		return nil, err
	}
	if !ok {
		// First run: start with what is happening now, and say so
		// durably at once, so that a lapse of the lease before the next
		// write does not move the start.
		pos = now
		if err := s.ledger.WriteChat(ctx, Records{Cursors: []Cursor{{Name: cursorName, Position: pos, At: now}}}); err != nil {
			return nil, err
		}
	}
	s.log.Info("chat sender leading", "cursor", pos.UTC().Format(time.RFC3339Nano))
	return &state{
		cursor: pos, maxSeen: pos, savedCursor: pos, savedAt: now,
		events: map[string]*evRec{}, incs: map[string]*incState{}, pairs: map[pairKey]*pairState{},
		byInc: map[string][]*pairState{}, ready: map[string]time.Time{}, fails: map[string]int{},
	}, nil
}

// poll reads the timeline from cursor − lookback, loads the ledger of
// incidents seen for the first time, and refreshes touched incidents.
func (s *Sender) poll(ctx context.Context, now time.Time) error {
	st := s.st
	since := st.cursor.Add(-s.cfg.Lookback)
	evs, err := s.events.ChatEventsSince(ctx, since, since.Add(-s.maxAge))
	if err != nil {
		return err
	}
	touched := map[string]bool{}
	for _, e := range evs {
		if _, ok := st.events[e.ID]; ok {
			continue
		}
		r := &evRec{ev: e.Event, inserted: e.InsertedAt}
		st.events[e.ID] = r
		is := st.incs[e.IncidentID]
		if is == nil {
			is = &incState{id: e.IncidentID, first: now}
			st.incs[e.IncidentID] = is
		}
		is.events = append(is.events, r)
		touched[e.IncidentID] = true
		if e.InsertedAt.After(st.maxSeen) {
			st.maxSeen = e.InsertedAt
		}
	}
	for id, is := range st.incs {
		if is.inc == nil || !is.loaded {
			touched[id] = true
		}
	}
	if len(touched) == 0 {
		return nil
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range touched {
			if !yield(id) {
				return
			}
		}
	})
	var load []string
	for _, id := range ids {
		is := st.incs[id]
		sort.SliceStable(is.events, func(i, j int) bool { return evLess(is.events[i], is.events[j]) })
		if !is.loaded {
			load = append(load, id)
		}
	}
	if len(load) > 0 {
		recs, err := s.ledger.LoadChat(ctx, load, s.holder)
		if err != nil {
			return err
		}
		s.merge(recs)
		for _, id := range load {
			st.incs[id].loaded = true
		}
	}
	incs, err := s.events.ChatIncidents(ctx, ids)
	if err != nil {
		return err
	}
	for _, id := range ids {
		is := st.incs[id]
		if inc := incs[id]; inc != nil {
			s.refresh(ctx, is, inc, now)
		} else if is.inc == nil && now.Sub(is.first) > s.cfg.Lookback {
			s.log.Warn("chat: events of an unknown incident, ignored", "incident", id)
			s.forget(is)
		}
	}
	return nil
}

// evLess orders events as they happened: by when they were stored, then
// by their own time, then in the order the lifecycle emits kinds within
// one change (the store does not keep it), then by ID.
func evLess(a, b *evRec) bool {
	if !a.inserted.Equal(b.inserted) {
		return a.inserted.Before(b.inserted)
	}
	if !a.ev.At.Equal(b.ev.At) {
		return a.ev.At.Before(b.ev.At)
	}
	if ra, rb := kindRank[a.ev.Kind], kindRank[b.ev.Kind]; ra != rb {
		return ra < rb
	}
	return a.ev.ID < b.ev.ID
}

// kindRank orders the kinds of one change.
var kindRank = map[incidents.EventKind]int{
	incidents.EventOpened: 0, incidents.EventReopened: 1, incidents.EventAlertFired: 2, incidents.EventTruncated: 3,
	incidents.EventImpactChanged: 4, incidents.EventLinked: 5, incidents.EventUnlinked: 6, incidents.EventAlertResolved: 7,
	incidents.EventAcknowledged: 8, incidents.EventNote: 9, incidents.EventResolved: 10,
}

// merge adds what the ledger knows about incidents to the state.
func (s *Sender) merge(r Records) {
	for _, m := range r.Messages {
		p := s.pair(m.IncidentID, m.Channel)
		rec := m
		p.msg = &rec
		s.api.learn(m.Channel, m.ChannelID)
	}
	for _, d := range r.Deliveries {
		if d.IncidentID == digestIncident {
			continue
		}
		p := s.pair(d.IncidentID, d.Channel)
		switch {
		case d.State.Final():
			p.done[d.Key] = true
			for _, c := range d.Covers {
				p.done[c] = true
			}
			if d.Kind == KindMain && d.State == StateFailed {
				p.failed = d.Error
			}
			if d.State == StateSent && (d.Kind == KindChurn || d.Kind == KindFlap) && d.At.After(p.lastChurn) {
				p.lastChurn = d.At
			}
		case d.State == StateIntent:
			dd := d
			p.intents[d.Key] = &intent{d: dd}
		}
	}
}

// pair returns the state of an incident in a channel, creating it.
func (s *Sender) pair(inc, ch string) *pairState {
	k := pairKey{inc, ch}
	p := s.st.pairs[k]
	if p == nil {
		p = &pairState{inc: inc, channel: ch, hook: s.hooks[ch], done: map[string]bool{}, intents: map[string]*intent{}}
		s.st.pairs[k] = p
		s.st.byInc[inc] = append(s.st.byInc[inc], p)
	}
	return p
}

// forget drops an incident from memory.
func (s *Sender) forget(is *incState) {
	for _, e := range is.events {
		delete(s.st.events, e.ev.ID)
	}
	for _, p := range s.st.byInc[is.id] {
		delete(s.st.pairs, pairKey{p.inc, p.channel})
	}
	delete(s.st.byInc, is.id)
	delete(s.st.incs, is.id)
}

// refresh renders an incident's main message from its latest version.
func (s *Sender) refresh(ctx context.Context, is *incState, inc *incidents.Incident, now time.Time) {
	is.inc = inc
	v := s.view(ctx, inc, now)
	v.Interactive = s.api.client != nil
	is.msg = renderIncident(v)
	is.hash = is.msg.hash()
	v.Interactive = false
	is.hookMsg = renderIncident(v)
}

// view gathers what the incident message shows besides the incident.
func (s *Sender) view(ctx context.Context, inc *incidents.Incident, now time.Time) incidentView {
	v := incidentView{Inc: inc, Runbook: inc.RunbookURL, Page: incidentPage(s.pageURL, inc.ID)}
	if svc, ok := s.catalog().Service(inc.Service); ok {
		v.Owner = svc.Owner
		if v.Runbook == "" {
			v.Runbook = svc.RunbookURL
		}
		v.Dashboard = svc.DashboardURL
	}
	if v.Dashboard == "" && s.cfg.GrafanaURL != "" {
		v.Dashboard = strings.TrimSuffix(s.cfg.GrafanaURL, "/") + "/d/" + s.dashUID(inc.Service)
	}
	v.Budget = s.budget(ctx, inc, now)
	if s.suspects != nil {
		hint, err := s.suspects.TopSuspect(ctx, inc.ID)
		if err != nil {
			s.log.Debug("chat: no suspect for the incident message", "incident", inc.ID, "err", err)
		}
		v.Suspect = hint
	}
	return v
}

// Suspects knows how to name the change most likely to have caused an
// incident, as one line for people ("" when there is none).
type Suspects interface {
	TopSuspect(ctx context.Context, incidentID string) (string, error)
}

// budget computes the share of the service's 30-day error budget the
// incident used: its weighted firing time within the window over the
// window's budget.
func (s *Sender) budget(ctx context.Context, inc *incidents.Incident, now time.Time) *budgetUse {
	w := s.weight(inc.Impact)
	if s.avail == nil || w <= 0 {
		return nil
	}
	e, ok := s.budgets[inc.Service]
	if !ok || now.Sub(e.at) > budgetCacheFor {
		fig, err := s.avail.Figure(ctx, inc.Service, budgetWindow)
		if err != nil {
			s.log.Debug("chat: no error budget for the incident message", "service", inc.Service, "err", err)
		}
		e = budgetEntry{fig: fig, ok: err == nil, at: now}
		s.budgets[inc.Service] = e
	}
	if !e.ok || e.fig.BudgetSeconds <= 0 {
		return nil
	}
	from := now.Add(-30 * 24 * time.Hour)
	down := 0.0
	for _, p := range inc.Periods {
		start, end := p.Start, p.End
		if end.IsZero() {
			end = now
		}
		if start.Before(from) {
			start = from
		}
		if end.After(start) {
			down += end.Sub(start).Seconds()
		}
	}
	return &budgetUse{Window: "30-day", Used: w * down / e.fig.BudgetSeconds, Left: e.fig.BudgetRemaining}
}

// Action kinds and priorities: within a channel, recoveries go first,
// then new incidents, then updates, then thread replies; so in a storm
// every incident is posted before any is updated, and an update carries
// all changes made meanwhile.
const (
	actRecover = iota
	actPost
	actUpdate
	actReply
	actFlap
	actDigest
)

type action struct {
	kind   int
	prio   int
	pair   *pairState
	is     *incState
	key    string
	dkind  string // delivery kind
	event  *evRec
	covers []string
	intent *intent
	digest *digestJob
	order  int
}

func (a *action) channel() string {
	if a.digest != nil {
		return a.digest.channel
	}
	return a.pair.channel
}

// needsIntent reports whether the action posts a new message and so
// must be recorded before the call.
func (a *action) needsIntent() bool {
	switch a.kind {
	case actPost, actReply, actFlap, actDigest:
		return a.intent == nil
	}
	return false
}

// plan picks, for each channel that may be written to now, its most
// urgent action. It also settles what needs no Slack call (events the
// main message covers, events of an incident whose message failed) and
// reports the queue metrics and the cursor.
func (s *Sender) plan(now time.Time) ([]*action, time.Time) {
	st := s.st
	var wake time.Time
	soon := func(t time.Time) {
		if t.After(now) && (wake.IsZero() || t.Before(wake)) {
			wake = t
		}
	}
	incs := make([]*incState, 0, len(st.incs))
	for _, is := range st.incs {
		incs = append(incs, is)
	}
	sort.Slice(incs, func(i, j int) bool {
		a, b := incs[i], incs[j]
		if len(a.events) > 0 && len(b.events) > 0 && !a.events[0].inserted.Equal(b.events[0].inserted) {
			return a.events[0].inserted.Before(b.events[0].inserted)
		}
		return a.id < b.id
	})
	best := map[string]*action{}
	order := 0
	consider := func(a *action) {
		a.order = order
		order++
		if b := best[a.channel()]; b == nil || a.prio < b.prio {
			best[a.channel()] = a
		}
	}
	depth := 0
	var oldest, minPending time.Time
	pendingAt := func(t time.Time) {
		if minPending.IsZero() || t.Before(minPending) {
			minPending = t
		}
	}
	for _, is := range incs {
		if is.inc == nil || !is.loaded {
			for _, e := range is.events {
				depth++
				pendingAt(e.inserted)
			}
			continue
		}
		for _, p := range s.pairsOf(is) {
			for _, a := range s.pairActions(is, p, now, soon) {
				consider(a)
			}
			if p.msg == nil && p.failed == "" {
				depth++
			}
			for _, e := range is.events {
				if !p.done[e.ev.ID] {
					depth++
					pendingAt(e.inserted)
				}
			}
		}
	}
	for _, j := range st.digestJobs {
		if a := s.digestAction(j, now, soon); a != nil {
			depth++
			consider(a)
		}
	}
	if !minPending.IsZero() {
		oldest = minPending
		st.cursor = minPending
	} else {
		st.cursor = st.maxSeen
	}
	s.metrics.queueDepth.Set(float64(depth))
	if oldest.IsZero() {
		s.metrics.queueAge.Set(0)
	} else {
		s.metrics.queueAge.Set(max(now.Sub(oldest).Seconds(), 0))
	}
	s.prune()

	var round []*action
	for ch, a := range best {
		if r := st.ready[ch]; r.After(now) {
			soon(r)
			continue
		}
		round = append(round, a)
	}
	sort.Slice(round, func(i, j int) bool { return round[i].order < round[j].order })
	return round, wake
}

// prune forgets incidents that are fully handled and older than the
// window the tail reads.
func (s *Sender) prune() {
	st := s.st
	horizon := st.cursor.Add(-s.cfg.Lookback)
	for _, is := range st.incs {
		if is.inc == nil || len(is.events) == 0 || !is.events[len(is.events)-1].inserted.Before(horizon) {
			continue
		}
		busy := false
		for _, p := range st.byInc[is.id] {
			if len(p.intents) > 0 || len(p.held) > 0 || (p.msg != nil && p.hook == "" && p.msg.Hash != is.hash) {
				busy = true
			}
			for _, e := range is.events {
				if !p.done[e.ev.ID] {
					busy = true
				}
			}
		}
		if !busy {
			s.forget(is)
		}
	}
}

// pairsOf returns the channels of an incident: where it is routed now and
// where it already has a message.
func (s *Sender) pairsOf(is *incState) []*pairState {
	var out []*pairState
	seen := map[string]bool{}
	for _, ch := range s.cfg.Route(is.inc, s.catalog().Channel(is.inc.Service)) {
		seen[ch] = true
		if s.hooks[ch] == "" && s.api.client == nil {
			if !s.warned[ch] {
				s.warned[ch] = true
				s.log.Warn("chat: no bot token and no webhook for channel; incidents are not posted there", "channel", ch)
			}
			continue
		}
		out = append(out, s.pair(is.id, ch))
	}
	for _, p := range s.st.byInc[is.id] {
		if !seen[p.channel] && (p.msg != nil || len(p.intents) > 0) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].channel < out[j].channel })
	return out
}

// isChurn reports whether an event is alert churn, which a flapping
// incident produces in bursts and which is throttled.
func isChurn(e incidents.Event) bool {
	switch e.Kind {
	case incidents.EventAlertFired, incidents.EventAlertResolved, incidents.EventReopened:
		return true
	case incidents.EventResolved, incidents.EventImpactChanged:
		return e.Actor == incidents.ActorAlertmanager
	}
	return false
}

// webhookEvent reports whether an incoming-webhook channel gets a post
// for the event: it cannot be threaded or updated, so it hears only of
// resolves and reopens.
func webhookEvent(e incidents.Event) bool {
	return e.Kind == incidents.EventResolved || e.Kind == incidents.EventReopened
}

// pairActions returns what an incident needs in one channel, most urgent
// first, settling on the way what needs no Slack call.
func (s *Sender) pairActions(is *incState, p *pairState, now time.Time, soon func(time.Time)) []*action {
	if p.failed != "" {
		for _, e := range is.events {
			if !p.done[e.ev.ID] {
				s.settleLocal(p, e.ev.ID, StateFailed, "the incident's message failed: "+p.failed, now)
			}
		}
		p.held = nil
		return nil
	}
	if len(p.intents) > 0 {
		var it *intent
		for _, x := range p.intents {
			if it == nil || x.d.At.Before(it.d.At) || (x.d.At.Equal(it.d.At) && x.d.Key < it.d.Key) {
				it = x
			}
		}
		if it.lookup || !now.Before(it.d.At.Add(s.grace)) {
			return []*action{{kind: actRecover, prio: 0, pair: p, is: is, key: it.d.Key, dkind: it.d.Kind, intent: it}}
		}
		soon(it.d.At.Add(s.grace))
		return nil
	}
	if p.msg == nil {
		var covers []string
		for _, e := range is.events {
			if !p.done[e.ev.ID] {
				covers = append(covers, e.ev.ID)
			}
		}
		return []*action{{kind: actPost, prio: 1, pair: p, is: is, key: KindMain, dkind: KindMain, covers: covers}}
	}
	var out []*action
	interval := s.cfg.FlapInterval
	held := map[string]bool{}
	for _, id := range p.held {
		held[id] = true
	}
	for _, e := range is.events {
		id := e.ev.ID
		if p.done[id] || held[id] {
			continue
		}
		if e.ev.Kind == incidents.EventOpened || (p.hook != "" && !webhookEvent(e.ev)) {
			s.settleLocal(p, id, StateCovered, "", now)
			continue
		}
		kind := KindReply
		if isChurn(e.ev) {
			kind = KindChurn
			allowed := len(p.held) == 0 && (interval <= 0 || p.lastChurn.IsZero() ||
				!now.Before(p.lastChurn.Add(interval)) || e.inserted.Equal(p.churnBatch))
			if !allowed {
				p.held = append(p.held, id)
				held[id] = true
				continue
			}
		}
		out = append(out, &action{kind: actReply, prio: 3, pair: p, is: is, key: id, dkind: kind, event: e})
		break
	}
	if len(out) == 0 && len(p.held) > 0 {
		due := p.lastChurn.Add(interval)
		if !now.Before(due) {
			out = append(out, &action{kind: actFlap, prio: 3, pair: p, is: is, key: "flap:" + p.held[0], dkind: KindFlap, covers: slices.Clone(p.held)})
		} else {
			soon(due)
		}
	}
	if p.hook == "" && p.msg.Hash != is.hash {
		out = append(out, &action{kind: actUpdate, prio: 2, pair: p, is: is})
	}
	return out
}

// settleLocal records a delivery that needs no Slack call.
func (s *Sender) settleLocal(p *pairState, key string, state DeliveryState, reason string, now time.Time) {
	p.done[key] = true
	s.st.buf.Deliveries = append(s.st.buf.Deliveries, Delivery{
		IncidentID: p.inc, Channel: p.channel, Key: key, Kind: KindReply, State: state,
		Error: reason, Holder: s.holder, At: now,
	})
}

// execute writes the round's intents, checks that no other replica is
// sending the same messages, and makes the calls.
func (s *Sender) execute(ctx context.Context, round []*action, now time.Time) {
	st := s.st
	rows := st.buf
	var fresh []*action
	for _, a := range round {
		if !a.needsIntent() {
			continue
		}
		d := Delivery{IncidentID: a.incidentID(), Channel: a.channel(), Key: a.key, Kind: a.dkind, State: StateIntent,
			Covers: a.covers, Holder: s.holder, At: now}
		if a.kind == actPost {
			d.Hash = a.is.hash
		}
		rows.Deliveries = append(rows.Deliveries, d)
		a.intent = &intent{d: d}
		fresh = append(fresh, a)
	}
	if rows.len() > 0 {
		if err := s.ledger.WriteChat(ctx, rows); err != nil {
			s.storeFailed("write intents", err)
			st.storeWait = now.Add(s.cfg.PollInterval)
			return
		}
		st.buf = Records{}
	}
	for _, a := range fresh {
		a.registerIntent()
	}
	if len(fresh) > 0 {
		deferred, err := s.claim(ctx, fresh, now)
		if err != nil {
			// Unsure whether another replica is sending: leave the
			// intents; they are looked up after the grace period.
			s.storeFailed("check intents", err)
			st.storeWait = now.Add(s.cfg.PollInterval)
			return
		}
		round = slices.DeleteFunc(round, func(a *action) bool { return deferred[a] })
	}
	for _, a := range round {
		if !s.lease.leader() {
			return // fenced: the intents are looked up by whoever leads next
		}
		s.perform(ctx, a, s.now())
	}
}

func (a *action) incidentID() string {
	if a.digest != nil {
		return digestIncident
	}
	return a.pair.inc
}

func (a *action) registerIntent() {
	if a.digest != nil {
		a.digest.intent = a.intent
		return
	}
	a.pair.intents[a.key] = a.intent
}

// claim reads the intents back: a delivery another holder also intends to
// make (a brief double leadership) is left to the look-up after the grace
// period rather than sent twice.
func (s *Sender) claim(ctx context.Context, fresh []*action, now time.Time) (map[*action]bool, error) {
	ids := map[string]bool{}
	for _, a := range fresh {
		ids[a.incidentID()] = true
	}
	recs, err := s.ledger.LoadChat(ctx, slices.Sorted(func(yield func(string) bool) {
		for id := range ids {
			if !yield(id) {
				return
			}
		}
	}), s.holder)
	if err != nil {
		return nil, err
	}
	type dkey struct{ inc, ch, key string }
	foreign := map[dkey]bool{}
	for _, d := range recs.Deliveries {
		if !d.ForeignIntentAt.IsZero() && now.Sub(d.ForeignIntentAt) < s.grace && !d.State.Final() {
			foreign[dkey{d.IncidentID, d.Channel, d.Key}] = true
		}
	}
	out := map[*action]bool{}
	for _, a := range fresh {
		if foreign[dkey{a.incidentID(), a.channel(), a.key}] {
			s.log.Warn("chat: another replica intends the same message; looking it up later instead", "incident", a.incidentID(), "channel", a.channel(), "key", a.key)
			out[a] = true
		}
	}
	return out, nil
}

// perform makes one action's Slack calls and records the outcome.
func (s *Sender) perform(ctx context.Context, a *action, now time.Time) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	switch a.kind {
	case actPost, actReply, actFlap, actDigest:
		chID, ts, err := s.send(cctx, a)
		s.settle(a, chID, ts, err, now)
	case actUpdate:
		p, is := a.pair, a.is
		err := s.api.update(cctx, p.msg.ChannelID, p.msg.TS, is.msg)
		s.written(p.channel, err, now)
		if err == nil || classify(err).result == resultPermanent {
			if err != nil {
				s.log.Warn("chat: Slack refused to update the incident message; it stays as it is", "incident", p.inc, "channel", p.channel, "err", err)
			}
			p.msg.Hash = is.hash
			p.msg.At = now
			s.st.buf.Messages = append(s.st.buf.Messages, *p.msg)
		}
	case actRecover:
		s.recover(cctx, a, now)
	}
}

// send posts the action's message and returns where it landed.
func (s *Sender) send(ctx context.Context, a *action) (chID, ts string, err error) {
	if j := a.digest; j != nil {
		if j.hook != "" {
			return "", "", s.api.webhook(ctx, j.hook, j.msg)
		}
		return s.api.post(ctx, j.channel, "", j.msg, deliveryMeta{Key: j.key, IncidentID: digestIncident})
	}
	p, is := a.pair, a.is
	meta := deliveryMeta{Key: a.key, IncidentID: p.inc}
	var msg rendered
	switch a.kind {
	case actPost:
		if p.hook != "" {
			return "", "", s.api.webhook(ctx, p.hook, is.hookMsg)
		}
		return s.api.post(ctx, p.channel, "", is.msg, meta)
	case actReply:
		msg = renderEvent(is.inc, a.event.ev)
		if p.hook != "" {
			return "", "", s.api.webhook(ctx, p.hook, standalone(is.inc, msg))
		}
	case actFlap:
		var evs []incidents.Event
		for _, id := range a.covers {
			if e := s.st.events[id]; e != nil {
				evs = append(evs, e.ev)
			}
		}
		msg = renderFlap(is.inc, evs, s.cfg.FlapInterval)
		if p.hook != "" {
			return "", "", s.api.webhook(ctx, p.hook, standalone(is.inc, msg))
		}
	}
	return s.api.post(ctx, p.msg.ChannelID, p.msg.TS, msg, meta)
}

// settle records the outcome of a post.
func (s *Sender) settle(a *action, chID, ts string, err error, now time.Time) {
	st := s.st
	ch := a.channel()
	s.written(ch, err, now)
	if err == nil {
		s.sent(a, chID, ts, now)
		return
	}
	ce := classify(err)
	switch {
	case ce.result != resultPermanent && ce.uncertain:
		a.intent.lookup = true
	case ce.result != resultPermanent:
		// Slack answered that it did not post (a rate limit): plan
		// the delivery afresh.
		s.dropIntent(a)
	default:
		s.log.Warn("chat: Slack refused a message for good", "incident", a.incidentID(), "channel", ch, "key", a.key, "err", err)
		st.buf.Deliveries = append(st.buf.Deliveries, Delivery{IncidentID: a.incidentID(), Channel: ch, Key: a.key, Kind: a.dkind,
			State: StateFailed, Covers: a.covers, Error: ce.code, Holder: s.holder, At: now})
		if j := a.digest; j != nil {
			j.done, j.intent = true, nil
			return
		}
		p := a.pair
		delete(p.intents, a.key)
		p.done[a.key] = true
		for _, c := range a.covers {
			p.done[c] = true
		}
		if a.dkind == KindMain {
			p.failed = ce.code
		}
		if a.dkind == KindFlap {
			p.held = nil
		}
	}
}

// dropIntent forgets an intent known not to have been posted, so that
// the delivery is planned afresh (with a new intent).
func (s *Sender) dropIntent(a *action) {
	if j := a.digest; j != nil {
		j.intent = nil
		return
	}
	delete(a.pair.intents, a.key)
}

// sent records a message that exists in Slack.
func (s *Sender) sent(a *action, chID, ts string, now time.Time) {
	st := s.st
	covers := a.covers
	st.buf.Deliveries = append(st.buf.Deliveries, Delivery{IncidentID: a.incidentID(), Channel: a.channel(), Key: a.key, Kind: a.dkind,
		State: StateSent, TS: ts, Covers: covers, Holder: s.holder, At: now})
	if j := a.digest; j != nil {
		j.done, j.intent = true, nil
		return
	}
	p := a.pair
	delete(p.intents, a.key)
	p.done[a.key] = true
	for _, c := range covers {
		p.done[c] = true
	}
	switch a.dkind {
	case KindMain:
		hash := a.is.hash
		if a.kind == actRecover {
			// Found, not written now: it shows what its intent said
			// (or, if unknown, gets updated).
			hash = a.intent.d.Hash
		}
		p.msg = &MessageRecord{IncidentID: p.inc, Channel: p.channel, ChannelID: chID, TS: ts, Hash: hash, At: now}
		st.buf.Messages = append(st.buf.Messages, *p.msg)
	case KindChurn:
		p.lastChurn = now
		if a.event != nil {
			p.churnBatch = a.event.inserted
		}
	case KindFlap:
		p.lastChurn = now
		p.held = slices.DeleteFunc(p.held, func(id string) bool { return slices.Contains(covers, id) })
	}
}

// written paces a channel after a call: one write per ChannelInterval,
// Retry-After after a rate limit, exponential backoff after transient
// errors.
func (s *Sender) written(ch string, err error, now time.Time) {
	st := s.st
	if err == nil {
		st.fails[ch] = 0
		st.ready[ch] = now.Add(s.cfg.ChannelInterval)
		return
	}
	ce := classify(err)
	switch ce.result {
	case resultRateLimited:
		st.ready[ch] = now.Add(max(ce.wait, s.cfg.ChannelInterval))
		s.log.Info("chat: rate limited by Slack", "channel", ch, "retry_after", ce.wait.String())
	case resultRetry:
		st.fails[ch]++
		wait := backoff(st.fails[ch])
		st.ready[ch] = now.Add(wait)
		s.log.Warn("chat: Slack call failed, retrying", "channel", ch, "in", wait.String(), "err", err)
	default:
		st.fails[ch] = 0
		st.ready[ch] = now.Add(s.cfg.ChannelInterval)
	}
}

// backoff is 1s, 2s, 4s, … up to maxBackoff.
func backoff(n int) time.Duration {
	d := time.Second
	for i := 1; i < n && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// recover finishes an intent: the message is looked up in Slack by its
// metadata and recorded when found; when it is not there, the delivery is
// planned afresh.
func (s *Sender) recover(ctx context.Context, a *action, now time.Time) {
	it := a.intent
	hook := ""
	if a.digest != nil {
		hook = a.digest.hook
	} else {
		hook = a.pair.hook
	}
	if hook != "" {
		// Incoming webhooks cannot be looked up: at least once.
		s.dropIntent(a)
		return
	}
	var chID, thread string
	if a.dkind == KindMain || a.dkind == KindDigest {
		id, err := s.api.channelID(ctx, a.channel())
		if err != nil {
			if classify(err).result != resultPermanent {
				s.written(a.channel(), err, now)
				return
			}
			s.log.Warn("chat: cannot look up an interrupted post (channel ID unknown); sending it again", "channel", a.channel(), "err", err)
			s.dropIntent(a)
			return
		}
		chID = id
	} else {
		p := a.pair
		if p.msg == nil {
			s.dropIntent(a)
			return
		}
		chID, thread = p.msg.ChannelID, p.msg.TS
	}
	ts, err := s.api.find(ctx, chID, thread, it.d.At.Add(-time.Minute), deliveryMeta{Key: it.d.Key, IncidentID: a.incidentID()})
	s.written(a.channel(), err, now)
	if err != nil {
		if classify(err).result == resultPermanent {
			s.log.Warn("chat: cannot look up an interrupted post; sending it again", "channel", a.channel(), "err", err)
			s.dropIntent(a)
		}
		return
	}
	if ts == "" {
		s.dropIntent(a)
		return
	}
	s.log.Info("chat: interrupted post found in Slack", "incident", a.incidentID(), "channel", a.channel(), "key", it.d.Key)
	a.covers = it.d.Covers
	s.sent(a, chID, ts, now)
}

// flush writes the buffered results.
func (s *Sender) flush(ctx context.Context) error {
	st := s.st
	if st == nil || st.buf.len() == 0 {
		return nil
	}
	if err := s.ledger.WriteChat(ctx, st.buf); err != nil {
		return err
	}
	st.buf = Records{}
	return nil
}

// saveCursor buffers the cursor when it moved, at most every cursorEvery
// (or now, when force is set).
func (s *Sender) saveCursor(now time.Time, force bool) {
	st := s.st
	if st == nil || st.cursor.Equal(st.savedCursor) || (!force && now.Sub(st.savedAt) < cursorEvery) {
		return
	}
	st.buf.Cursors = append(st.buf.Cursors, Cursor{Name: cursorName, Position: st.cursor, At: now})
	st.savedCursor, st.savedAt = st.cursor, now
}
