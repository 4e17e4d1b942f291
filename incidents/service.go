package incidents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Options configure a Service.
type Options struct {
	Config Config
	Store  Store
	// Resolver maps labels to a service when no service label is set; it
	// is called on every alert, so it may follow catalog reloads.
	Resolver ServiceResolver
	// Upstream lists the services a service depends on, directly or
	// transitively, nearest first (the catalog's dependencies). When set
	// and the store can find open outages, a new incident on a service is
	// linked to an open outage upstream (caused_by).
	Upstream func(service string) []string
	// Observer, if set, is told about every stored change.
	Observer   Observer
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        Clock
	// CacheSize bounds how many groups' latest incidents stay in memory.
	CacheSize int
	// CacheBytes bounds the estimated bytes the groups held in memory
	// take (their incidents, alerts and bookkeeping); 0 means
	// DefaultCacheBytes. Groups no request is working on are dropped,
	// least recently used first, and read from the store again when
	// needed.
	CacheBytes int64
}

// OutageFinder knows how to find the outages of services that are open
// or were resolved at or after since (to the second: earlier ones may come
// too). Stores that implement it enable cascade linking.
type OutageFinder interface {
	Outages(ctx context.Context, services []string, since time.Time) ([]*Incident, error)
}

// Observer knows how to react to stored incident changes.
type Observer interface {
	Observe(ctx context.Context, changes []Change)
}

// Service applies notifications and people's actions to incidents. It
// serializes work per group in this process, keeps each group's latest
// incident in memory so repeated notifications cost no store round trip,
// and writes only what changed. It assumes it is the only writer of the
// incidents it holds: with several replicas, only the deriver holding the
// lease (package journal) runs one, and a new holder starts with Forget.
type Service struct {
	cfg      Config
	store    Store
	owners   AlertOwnerFinder // nil when the store cannot tell
	recent   RecentReader     // nil when the store cannot tell
	resolver ServiceResolver
	started  *startServices
	upstream func(string) []string
	observer Observer
	log      *slog.Logger
	now      Clock
	maxCache int
	maxBytes int64
	metrics  *serviceMetrics

	mu    sync.Mutex
	locks map[GroupRef]*refLock
	cache groupCache
	// prefetched holds the groups Prefetch read from the store that no
	// notification has settled yet (see plan).
	prefetched map[GroupRef]bool

	pendingMu sync.Mutex
	pending   []pendingLink // opened with no upstream outage found yet
}

// maxPendingLinks bounds the incidents LinkPending looks at again.
const maxPendingLinks = 10_000

// pendingLink is an incident opened while no outage upstream was found.
type pendingLink struct {
	id, service string
	startedAt   time.Time
}

type refLock struct {
	sync.Mutex
	users int
}

// entry is what the service remembers of one group.
type entry struct {
	inc *Incident // latest incident; nil when the group has none
	// closed holds the alert keys of the group's earlier incidents, so a
	// late copy of their alerts cannot land in the latest one.
	closed map[string]bool
	// earlier holds the group's earlier incidents that a late
	// notification may still change (see keepResolvedFor), oldest first.
	earlier []*Incident
	// actions are what people did to the incidents held, in order.
	actions []Action
	// reconciled holds the keys of alerts the reconciler resolved.
	reconciled map[string]bool
	// written holds the IDs of the timeline events already stored, with
	// their incidents' IDs.
	written map[string]string
	// top is the highest facts count written for the group's incidents.
	top uint32
}

type serviceMetrics struct {
	transitions *prometheus.CounterVec
	unchanged   prometheus.Counter
	lateCopies  prometheus.Counter
}

// NewService builds a Service.
func NewService(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("incidents: a store is required")
	}
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CacheSize <= 0 {
		o.CacheSize = 100_000
	}
	if o.CacheBytes <= 0 {
		o.CacheBytes = DefaultCacheBytes
	}
	reg := o.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	f := promauto.With(reg)
	s := &Service{
		cfg: o.Config, store: o.Store, resolver: o.Resolver, upstream: o.Upstream, observer: o.Observer,
		log: o.Logger, now: o.Now, maxCache: o.CacheSize, maxBytes: o.CacheBytes,
		metrics: &serviceMetrics{
			transitions: f.NewCounterVec(prometheus.CounterOpts{
				Name: "nines_incident_transitions_total",
				Help: "Incident lifecycle transitions made by this process, by transition.",
			}, []string{"transition"}),
			unchanged: f.NewCounter(prometheus.CounterOpts{
				Name: "nines_notifications_unchanged_total",
				Help: "Notifications that changed nothing (repeats and duplicates).",
			}),
			lateCopies: f.NewCounter(prometheus.CounterOpts{
				Name: "nines_alert_late_copies_total",
				Help: "Alerts of a group's earlier incident that arrived after a newer one opened, kept out of it.",
			}),
		},
		locks:   map[GroupRef]*refLock{},
		cache:   newGroupCache(),
		started: newStartServices(startServicesBytes),
	}
	if of, ok := o.Store.(AlertOwnerFinder); ok {
		s.owners = of
	}
	if rr, ok := o.Store.(RecentReader); ok {
		s.recent = rr
	}
	return s, nil
}

// Ingest applies one notification. It returns nil only once every change
// it caused is stored; a notification that changes nothing (a repeat or a
// duplicate) returns at once.
func (s *Service) Ingest(ctx context.Context, n Notification) error {
	now := s.now().UTC()
	if n.ReceivedAt.IsZero() {
		n.ReceivedAt = now
	}
	byRef := s.groups(&n)
	if err := s.apply(ctx, &n, byRef, nil, now); err != nil {
		return err
	}
	s.started.put(byRef)
	return nil
}

// groups sorts n's alerts by the group (and service) they belong to.
func (s *Service) groups(n *Notification) map[GroupRef][]Alert {
	byRef := map[GroupRef][]Alert{}
	for _, a := range n.Alerts {
		a.Impact = s.cfg.impact(a.Labels)
		gk := s.cfg.groupKey(n, a.Labels)
		svc, ok := s.started.get(gk, a)
		if !ok {
			svc = s.cfg.service(a.Labels, s.resolver)
		}
		ref := GroupRef{GroupKey: gk, Service: svc}
		byRef[ref] = append(byRef[ref], a)
	}
	return byRef
}

// Prefetch reads the groups of ns that the cache does not hold from the
// store, in one query: the deriver calls it with a page of notifications
// before it applies them side by side, each of which would otherwise wait
// for a lookup of its own.
func (s *Service) Prefetch(ctx context.Context, ns []Notification) error {
	var refs []GroupRef
	seen := map[GroupRef]bool{}
	for i := range ns {
		for ref := range s.groups(&ns[i]) {
			if !seen[ref] {
				seen[ref] = true
				refs = append(refs, ref)
			}
		}
	}
	if len(refs) == 0 {
		return nil
	}
	unlock := s.lock(refs)
	defer unlock()
	loaded, err := s.load(ctx, refs)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prefetched == nil {
		s.prefetched = map[GroupRef]bool{}
	}
	for ref := range loaded {
		s.prefetched[ref] = true
	}
	return nil
}

// apply derives again the groups of byRef with their new alerts (those of
// reconciled resolved by the reconciler) and stores what changed.
func (s *Service) apply(ctx context.Context, n *Notification, byRef map[GroupRef][]Alert, reconciled map[string]bool, now time.Time) error {
	refs := make([]GroupRef, 0, len(byRef))
	for r := range byRef {
		refs = append(refs, r)
	}
	unlock := s.lock(refs)
	defer unlock()

	loaded, err := s.load(ctx, refs)
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, r := range refs {
		// Read from the store by Prefetch: settled here, as if read now.
		if s.prefetched[r] {
			loaded[r] = true
			delete(s.prefetched, r)
		}
	}
	s.mu.Unlock()
	if err := s.closeLateCopies(ctx, refs, byRef); err != nil {
		return err
	}
	p := s.plan(refs, byRef, n, loaded, reconciled, now)
	if len(p.changes) == 0 {
		s.metrics.unchanged.Inc()
		return nil
	}
	for _, a := range s.linkUpstream(ctx, p.changes) {
		// A link is an action on the incident: derivations that follow
		// keep it, as they keep a person's.
		if e := p.next[a.ref]; e != nil {
			e.actions = append(slices.Clone(e.actions), a.Action)
		}
	}
	if err := s.store.Write(ctx, p.changes); err != nil {
		return fmt.Errorf("store notification %s: %w", n.GroupKey, err)
	}
	s.mu.Lock()
	for ref, e := range p.next {
		s.cache.put(ref, e)
	}
	s.mu.Unlock()
	s.count(p.changes)
	if s.observer != nil {
		s.observer.Observe(ctx, p.changes)
	}
	return nil
}

// plan is what one notification changes.
type plan struct {
	changes []Change
	refs    []GroupRef // the refs that change
	next    map[GroupRef]*entry
}

// plan applies the alerts of each ref to its cached incident. Incidents
// loaded from the store in this call (loaded) are first settled against
// their alerts (an earlier writer may have stored alerts without the
// version they belong to).
func (s *Service) plan(refs []GroupRef, byRef map[GroupRef][]Alert, n *Notification, loaded map[GroupRef]bool, reconciled map[string]bool, now time.Time) plan {
	p := plan{next: map[GroupRef]*entry{}}
	for _, ref := range refs {
		e := s.cached(ref)
		cur := e.inc
		var chs []Change
		if cur != nil && loaded[ref] {
			m := cur.Clone()
			if events, changed := s.cfg.settle(m); changed {
				m.Facts++
				m.UpdatedAt = now
				chs = append(chs, Change{Incident: m, Events: events})
				cur = m
			}
		}
		derived, ne := s.rederive(e, cur, ref, n, byRef[ref], reconciled, loaded[ref], now)
		chs = append(chs, derived...)
		if len(chs) == 0 {
			continue
		}
		p.changes = append(p.changes, chs...)
		p.refs = append(p.refs, ref)
		if ne == nil {
			// Only the settled version changed.
			c := *e
			c.inc = cur
			ne = &c
		}
		p.next[ref] = ne
	}
	return p
}

// Acknowledge marks the incident as being worked on by actor.
func (s *Service) Acknowledge(ctx context.Context, id, actor string) (*Incident, error) {
	return s.Do(ctx, Command{Kind: CommandAcknowledge, Incident: id, Actor: actor, At: s.now().UTC()})
}

// Resolve closes the incident by hand.
func (s *Service) Resolve(ctx context.Context, id, actor string) (*Incident, error) {
	return s.Do(ctx, Command{Kind: CommandResolve, Incident: id, Actor: actor, At: s.now().UTC()})
}

// AddNote adds a note to the incident's timeline.
func (s *Service) AddNote(ctx context.Context, id, actor, text string) (*Incident, error) {
	return s.Do(ctx, Command{Kind: CommandNote, Incident: id, Actor: actor, Text: text, At: s.now().UTC()})
}

// ResolveStale resolves the incident's firing alerts named in ends (alert
// key, as Alert.Key, → end time) that Alertmanager no longer reports as
// active, on behalf of actor; the incident resolves when none is left
// firing. See Config.ResolveStale.
func (s *Service) ResolveStale(ctx context.Context, id string, ends map[string]time.Time, actor string) (*Incident, error) {
	return s.Do(ctx, Command{Kind: CommandResolveStale, Incident: id, Ends: ends, Actor: actor, At: s.now().UTC()})
}

// Open opens an incident by hand. Opening the same one twice (same key,
// service and start) returns the existing incident.
func (s *Service) Open(ctx context.Context, req OpenRequest) (*Incident, error) {
	return s.Do(ctx, Command{Kind: CommandOpen, Open: &req, Actor: req.Actor, At: s.now().UTC()})
}

// Link records by hand that the incident was caused by upstreamID.
func (s *Service) Link(ctx context.Context, id, upstreamID, actor string) (*Incident, error) {
	return s.Do(ctx, Command{Kind: CommandLink, Incident: id, Upstream: upstreamID, Actor: actor, At: s.now().UTC()})
}

// Unlink removes the incident's upstream cause by hand.
func (s *Service) Unlink(ctx context.Context, id, actor string) (*Incident, error) {
	return s.Do(ctx, Command{Kind: CommandUnlink, Incident: id, Actor: actor, At: s.now().UTC()})
}

// Do applies a person's action, taken at c.At, and returns the incident
// it leaves. An invalid transition is an error wrapping ErrConflict.
func (s *Service) Do(ctx context.Context, c Command) (*Incident, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	at := c.At.UTC()
	switch c.Kind {
	case CommandAcknowledge:
		return s.modify(ctx, c.Incident, at, func(inc *Incident) (Change, error) { return Acknowledge(inc, c.Actor, at) })
	case CommandResolve:
		return s.modify(ctx, c.Incident, at, func(inc *Incident) (Change, error) { return Resolve(inc, c.Actor, at) })
	case CommandNote:
		return s.modify(ctx, c.Incident, at, func(inc *Incident) (Change, error) { return Note(inc, c.Actor, c.Text, at) })
	case CommandUnlink:
		return s.modify(ctx, c.Incident, at, func(inc *Incident) (Change, error) { return Unlink(inc, c.Actor, at) })
	case CommandNotDowntime:
		return s.modify(ctx, c.Incident, at, func(inc *Incident) (Change, error) { return MarkNotDowntime(inc, c.notDowntimeRequest(), at) })
	case CommandWithdrawNotDowntime:
		return s.modify(ctx, c.Incident, at, func(inc *Incident) (Change, error) {
			return WithdrawNotDowntime(inc, *c.Mark, c.Actor, c.Text, at)
		})
	case CommandAnnotate:
		return s.modify(ctx, c.Incident, at, func(inc *Incident) (Change, error) { return Annotate(inc, c.Event, c.Actor, c.Text, at) })
	case CommandLink:
		up, err := s.store.Get(ctx, c.Upstream)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: caused_by: no incident %q", ErrInvalid, c.Upstream)
		} else if err != nil {
			return nil, err
		}
		return s.modify(ctx, c.Incident, at, func(inc *Incident) (Change, error) { return Link(inc, up, c.Actor, at) })
	case CommandOpen:
		return s.open(ctx, *c.Open, at)
	case CommandResolveStale:
		return s.resolveStale(ctx, c.Incident, c.Ends, c.Actor, at)
	case CommandSync:
		return nil, nil
	case CommandForget:
		s.Forget()
		return nil, nil
	}
	return nil, fmt.Errorf("%w: command kind %q", ErrInvalid, c.Kind)
}

func (s *Service) resolveStale(ctx context.Context, id string, ends map[string]time.Time, actor string, now time.Time) (*Incident, error) {
	old := func() (*Incident, error) {
		return s.modify(ctx, id, now, func(inc *Incident) (Change, error) {
			return s.cfg.ResolveStale(inc, ends, actor, now)
		})
	}
	inc, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if inc.Source != SourceAlertmanager || actor != ActorReconciler {
		return old()
	}
	ref := GroupRef{GroupKey: inc.GroupKey, Service: inc.Service}
	var alerts []Alert
	reconciled := map[string]bool{}
	for _, a := range inc.Alerts {
		end, ok := ends[a.Key()]
		if !ok || a.Status != AlertFiring {
			continue
		}
		a.Status, a.EndsAt = AlertResolved, latest(end, a.StartsAt).UTC()
		alerts = append(alerts, a)
		reconciled[a.Key()] = true
	}
	if len(alerts) == 0 {
		return old()
	}
	n := &Notification{GroupKey: inc.GroupKey, Status: AlertResolved, Alerts: alerts, ReceivedAt: now}
	if err := s.apply(ctx, n, map[GroupRef][]Alert{ref: alerts}, reconciled, now); err != nil {
		return nil, err
	}
	e := s.cached(ref)
	for _, held := range append(append([]*Incident(nil), e.earlier...), e.inc) {
		if held != nil && held.ID == id {
			return held, nil
		}
	}
	return s.store.Get(ctx, id)
}

func (s *Service) open(ctx context.Context, req OpenRequest, now time.Time) (*Incident, error) {
	ch, err := Open(req, now)
	if err != nil {
		return nil, err
	}
	if existing, err := s.store.Get(ctx, ch.Incident.ID); err == nil {
		return existing, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if err := s.store.Write(ctx, []Change{ch}); err != nil {
		return nil, fmt.Errorf("store incident %s: %w", ch.Incident.ID, err)
	}
	s.count([]Change{ch})
	if s.observer != nil {
		s.observer.Observe(ctx, []Change{ch})
	}
	return ch.Incident, nil
}

// groupAction is an action taken on an incident of a group.
type groupAction struct {
	Action
	ref GroupRef
}

// linkUpstream links incidents that these changes open to an outage open
// upstream at that moment: the nearest dependency first, then the
// earliest outage. A failed lookup only costs the link, never the write.
// It returns the links made, as actions.
func (s *Service) linkUpstream(ctx context.Context, changes []Change) []groupAction {
	finder, ok := s.store.(OutageFinder)
	if !ok || s.upstream == nil {
		return nil
	}
	var linked []groupAction
	for i := range changes {
		inc := changes[i].Incident
		if inc.CausedBy != "" || len(changes[i].Events) == 0 || changes[i].Events[0].Kind != EventOpened {
			continue
		}
		ups := s.upstream(inc.Service)
		if len(ups) == 0 {
			continue
		}
		open, err := finder.Outages(ctx, ups, inc.StartedAt)
		if err != nil {
			s.log.Warn("cascade lookup failed", "incident", inc.ID, "err", err)
			continue
		}
		up := nearestOutage(open, ups, inc.StartedAt)
		if up == nil {
			s.pendingMu.Lock()
			if len(s.pending) < maxPendingLinks {
				s.pending = append(s.pending, pendingLink{id: inc.ID, service: inc.Service, startedAt: inc.StartedAt})
			}
			s.pendingMu.Unlock()
		}
		if up != nil {
			inc.CausedBy = up.ID
			inc.Facts++
			changes[i].Events = append(changes[i].Events, Event{
				ID: EventID(inc.ID, string(EventLinked), up.ID), IncidentID: inc.ID, At: inc.StartedAt,
				Kind: EventLinked, Actor: "nines",
				Text: fmt.Sprintf("Caused by %s: %s on %s (open upstream outage)", up.ID, up.Title, up.Service),
			})
			linked = append(linked, groupAction{
				Action: Action{Kind: EventLinked, Incident: inc.ID, Actor: "nines", At: inc.StartedAt, CausedBy: up.ID},
				ref:    GroupRef{GroupKey: inc.GroupKey, Service: inc.Service},
			})
		}
	}
	return linked
}

// LinkPending links the incidents opened since its last call while no
// outage was open upstream to one that is now known to have been open at
// their start: the deriver applies many notifications at once, and an
// upstream outage among them may be stored just after the incident
// downstream looked for it. The deriver calls it after each batch; the
// link is the same action linkUpstream takes. A failed lookup only costs
// the link.
func (s *Service) LinkPending(ctx context.Context) {
	s.pendingMu.Lock()
	ps := s.pending
	s.pending = nil
	s.pendingMu.Unlock()
	finder, ok := s.store.(OutageFinder)
	if !ok || s.upstream == nil || len(ps) == 0 {
		return
	}
	var all []string
	seen := map[string]bool{}
	since := ps[0].startedAt
	for _, p := range ps {
		if p.startedAt.Before(since) {
			since = p.startedAt
		}
		for _, u := range s.upstream(p.service) {
			if !seen[u] {
				seen[u] = true
				all = append(all, u)
			}
		}
	}
	open, err := finder.Outages(ctx, all, since)
	if err != nil {
		s.log.Warn("cascade lookup failed", "incidents", len(ps), "err", err)
		return
	}
	for _, p := range ps {
		up := nearestOutage(open, s.upstream(p.service), p.startedAt)
		if up == nil || up.ID == p.id {
			continue
		}
		_, err := s.modify(ctx, p.id, p.startedAt, func(inc *Incident) (Change, error) {
			if inc.CausedBy != "" {
				return Change{}, fmt.Errorf("%w: already linked", ErrConflict)
			}
			ch, err := Link(inc, up, "nines", p.startedAt)
			if err == nil {
				ch.Events[0].Text += " (open upstream outage)"
			}
			return ch, err
		})
		if err != nil && !errors.Is(err, ErrConflict) {
			s.log.Warn("cascade link failed", "incident", p.id, "upstream", up.ID, "err", err)
		}
	}
}

// nearestOutage picks, among the outages that were open at at (started no
// later, and not resolved by then, whatever has happened since), the one on
// the nearest upstream service (order of ups), earliest first. What
// happened after at does not count, so that the link does not depend on
// the order in which the deriver applies notifications.
func nearestOutage(open []*Incident, ups []string, at time.Time) *Incident {
	rank := make(map[string]int, len(ups))
	for i, u := range ups {
		rank[u] = i
	}
	var best *Incident
	for _, o := range open {
		r, ok := rank[o.Service]
		if !ok || o.Impact != ImpactOutage || o.StartedAt.After(at) || (!o.State.Open() && !o.ResolvedAt.After(at)) {
			continue
		}
		if best == nil || r < rank[best.Service] || (r == rank[best.Service] && o.StartedAt.Before(best.StartedAt)) {
			best = o
		}
	}
	return best
}

// modify applies a person's action, taken at now, to an incident under
// its group's lock.
func (s *Service) modify(ctx context.Context, id string, now time.Time, f func(*Incident) (Change, error)) (*Incident, error) {
	inc, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	withSegments(inc)
	ref := GroupRef{GroupKey: inc.GroupKey, Service: inc.Service}
	unlock := s.lock([]GroupRef{ref})
	defer unlock()
	// This process may have changed it since; the cache holds the latest.
	if e := s.cached(ref); e != nil && e.inc != nil && e.inc.ID == id && e.inc.Facts >= inc.Facts {
		inc = e.inc
	} else if e != nil {
		for _, held := range e.earlier {
			if held.ID == id && held.Facts >= inc.Facts {
				inc = held
			}
		}
	}
	ch, err := f(inc)
	if err != nil {
		return nil, err
	}
	if err := s.store.Write(ctx, []Change{ch}); err != nil {
		return nil, fmt.Errorf("store incident %s: %w", id, err)
	}
	out := ch.Incident
	s.mu.Lock()
	if e := s.cache.at(ref); e != nil && e.inc != nil && e.inc.ID == id {
		ne := *e
		ne.inc, ne.top = out, max(e.top, out.Facts)
		if a, ok := actionOf(ch); ok {
			ne.actions = append(append([]Action(nil), e.actions...), a)
		}
		s.cache.put(ref, &ne)
	} else if e != nil {
		// An earlier incident of the group, held beside the latest.
		for i, inc := range e.earlier {
			if inc.ID == id {
				ne := *e
				ne.top = max(e.top, out.Facts)
				ne.earlier = append([]*Incident(nil), e.earlier...)
				ne.earlier[i] = out
				if a, ok := actionOf(ch); ok {
					ne.actions = append(append([]Action(nil), e.actions...), a)
				}
				s.cache.put(ref, &ne)
			}
		}
	}
	s.mu.Unlock()
	s.count([]Change{ch})
	if s.observer != nil {
		s.observer.Observe(ctx, []Change{ch})
	}
	return out, nil
}

// Forget drops every group held in memory: they are read from the store
// again when next needed. A deriver that starts leading calls it, since
// another may have changed them meanwhile.
func (s *Service) Forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cache = newGroupCache()
	s.prefetched = nil
}

// load fills the cache for refs it does not hold, and returns those it
// read from the store.
func (s *Service) load(ctx context.Context, refs []GroupRef) (map[GroupRef]bool, error) {
	loaded := map[GroupRef]bool{}
	var missing []GroupRef
	s.mu.Lock()
	for _, r := range refs {
		if _, ok := s.cache.slots[r]; !ok {
			missing = append(missing, r)
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return loaded, nil
	}
	got, err := s.loadRecent(ctx, missing)
	if err != nil {
		return nil, fmt.Errorf("load incidents: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evict(len(missing))
	for _, r := range missing {
		s.cache.put(r, newEntry(got[r]...))
		loaded[r] = true
	}
	return loaded, nil
}

// loadRecent reads refs' recent incidents, newest first: all of those the
// store keeps (RecentReader), or only the latest.
func (s *Service) loadRecent(ctx context.Context, refs []GroupRef) (map[GroupRef][]*Incident, error) {
	if s.recent != nil {
		return s.recent.Recent(ctx, refs)
	}
	latest, err := s.store.Latest(ctx, refs)
	if err != nil {
		return nil, err
	}
	out := make(map[GroupRef][]*Incident, len(latest))
	for r, inc := range latest {
		if inc != nil {
			out[r] = []*Incident{inc}
		}
	}
	return out, nil
}

// newEntry remembers a group's incidents as read from the store, newest
// first: the latest, and beside it the earlier ones a late notification
// may still change, as rederive keeps them. The alerts of the others join
// the closed set. Incidents a merge emptied are left out.
func newEntry(recent ...*Incident) *entry {
	var live []*Incident
	for _, inc := range recent {
		if inc != nil && (len(inc.Periods) > 0 || inc.Source != SourceAlertmanager) {
			live = append(live, inc)
		}
	}
	if len(live) == 0 {
		return &entry{}
	}
	latest := live[0]
	withSegments(latest)
	e := &entry{inc: latest, actions: restoredActions(latest)}
	for _, inc := range slices.Backward(live[1:]) {
		if inc.Source == SourceAlertmanager && (inc.State.Open() || !inc.ResolvedAt.Add(keepResolvedFor).Before(latest.StartedAt)) {
			withSegments(inc)
			e.earlier = append(e.earlier, inc)
			e.actions = append(e.actions, restoredActions(inc)...)
			continue
		}
		if e.closed == nil {
			e.closed = map[string]bool{}
		}
		for _, a := range inc.Alerts {
			e.closed[a.Key()] = true
		}
	}
	for _, inc := range live {
		e.top = max(e.top, inc.Facts)
	}
	return e
}

// withSegments fills in the impact segments of an incident read from the
// store, which does not read them back: they follow from its alerts and
// periods. Incidents opened by hand have none.
func withSegments(inc *Incident) {
	if len(inc.Segments) == 0 && inc.Source == SourceAlertmanager {
		inc.Segments = SegmentsOf(inc.Alerts, inc.Periods)
	}
}

func (s *Service) cached(ref GroupRef) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.cache.get(ref); ok {
		return e
	}
	return &entry{}
}

// evict makes room for n entries and keeps the cache within its byte
// budget. Must hold s.mu. Beyond the count, it drops groups whose latest
// incident is resolved and past its reopen window first, then closed
// ones, least recently used first; beyond the bytes, any group no request
// is working on, least recently used first, down to 9/10 of the budget
// (so that eviction is not paid on every request). A dropped group is
// simply read from the store again when it next fires, as after a
// restart.
func (s *Service) evict(n int) {
	c := &s.cache
	if c.len()+n <= s.maxCache && c.bytes <= s.maxBytes {
		return
	}
	if c.len()+n > s.maxCache {
		cutoff := s.now().Add(-s.cfg.ReopenWindow)
		for r, sl := range c.slots {
			if e := sl.e; e.inc == nil || (e.inc.State == StateResolved && e.inc.ResolvedAt.Before(cutoff)) {
				c.del(r)
			}
		}
		c.shrink(func(r GroupRef, e *entry) bool {
			_, locked := s.locks[r]
			return !locked && e.inc != nil && !e.inc.State.Open()
		}, func() bool { return c.len()+n <= s.maxCache })
	}
	if c.bytes > s.maxBytes {
		c.shrink(func(r GroupRef, _ *entry) bool {
			_, locked := s.locks[r]
			return !locked
		}, func() bool { return c.bytes <= s.maxBytes-s.maxBytes/10 })
	}
}

// CacheBytes is the estimated size of the groups held in memory, in
// bytes (at most Options.CacheBytes once no request is in flight).
func (s *Service) CacheBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache.bytes
}

// lock takes the per-group locks of refs in a fixed order.
func (s *Service) lock(refs []GroupRef) (unlock func()) {
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].GroupKey != refs[j].GroupKey {
			return refs[i].GroupKey < refs[j].GroupKey
		}
		return refs[i].Service < refs[j].Service
	})
	held := make([]*refLock, 0, len(refs))
	for _, r := range refs {
		s.mu.Lock()
		l := s.locks[r]
		if l == nil {
			l = &refLock{}
			s.locks[r] = l
		}
		l.users++
		s.mu.Unlock()
		l.Lock()
		held = append(held, l)
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, l := range held {
			l.Unlock()
			if l.users--; l.users == 0 {
				delete(s.locks, refs[i])
			}
		}
		// What these refs' work added may now be dropped.
		s.evict(0)
	}
}

func (s *Service) count(changes []Change) {
	for _, ch := range changes {
		for _, ev := range ch.Events {
			switch ev.Kind {
			case EventOpened, EventReopened, EventResolved, EventAcknowledged:
				s.metrics.transitions.WithLabelValues(string(ev.Kind)).Inc()
			}
		}
	}
}
