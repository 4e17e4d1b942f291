package incidents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
}

// OutageFinder knows how to find the open outages of services. Stores
// that implement it enable cascade linking.
type OutageFinder interface {
	OpenOutages(ctx context.Context, services []string) ([]*Incident, error)
}

// Observer knows how to react to stored incident changes.
type Observer interface {
	Observe(ctx context.Context, changes []Change)
}

// Service applies notifications and people's actions to incidents. It
// serializes work per group in this process, keeps each group's latest
// incident in memory so repeated notifications cost no store round trip,
// and writes only what changed.
type Service struct {
	cfg      Config
	store    Store
	resolver ServiceResolver
	upstream func(string) []string
	observer Observer
	log      *slog.Logger
	now      Clock
	maxCache int
	metrics  *serviceMetrics

	mu    sync.Mutex
	locks map[GroupRef]*refLock
	cache map[GroupRef]*entry
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
}

type serviceMetrics struct {
	transitions *prometheus.CounterVec
	unchanged   prometheus.Counter
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
	reg := o.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	f := promauto.With(reg)
	return &Service{
		cfg: o.Config, store: o.Store, resolver: o.Resolver, upstream: o.Upstream, observer: o.Observer,
		log: o.Logger, now: o.Now, maxCache: o.CacheSize,
		metrics: &serviceMetrics{
			transitions: f.NewCounterVec(prometheus.CounterOpts{
				Name: "nines_incident_transitions_total",
				Help: "Incident lifecycle transitions made by this process, by transition.",
			}, []string{"transition"}),
			unchanged: f.NewCounter(prometheus.CounterOpts{
				Name: "nines_notifications_unchanged_total",
				Help: "Notifications that changed nothing (repeats and duplicates).",
			}),
		},
		locks: map[GroupRef]*refLock{},
		cache: map[GroupRef]*entry{},
	}, nil
}

// Ingest applies one notification. It returns nil only once every change
// it caused is stored; a notification that changes nothing (a repeat or a
// duplicate) returns at once.
func (s *Service) Ingest(ctx context.Context, n Notification) error {
	now := s.now().UTC()
	if n.ReceivedAt.IsZero() {
		n.ReceivedAt = now
	}
	byRef := map[GroupRef][]Alert{}
	for _, a := range n.Alerts {
		a.Impact = s.cfg.impact(a.Labels)
		ref := GroupRef{GroupKey: s.cfg.groupKey(&n, a.Labels), Service: s.cfg.service(a.Labels, s.resolver)}
		byRef[ref] = append(byRef[ref], a)
	}
	refs := make([]GroupRef, 0, len(byRef))
	for r := range byRef {
		refs = append(refs, r)
	}
	unlock := s.lock(refs)
	defer unlock()

	if err := s.load(ctx, refs); err != nil {
		return err
	}
	var changes []Change
	next := map[GroupRef]*entry{}
	for _, ref := range refs {
		e := s.cached(ref)
		chs := s.cfg.step(e.inc, ref, &n, byRef[ref], e.closed, now)
		if len(chs) == 0 {
			continue
		}
		changes = append(changes, chs...)
		latest := chs[len(chs)-1].Incident
		ne := &entry{inc: latest, closed: e.closed}
		if e.inc != nil && e.inc.ID != latest.ID {
			ne.closed = make(map[string]bool, len(e.closed)+len(e.inc.Alerts))
			for k := range e.closed {
				ne.closed[k] = true
			}
			for _, a := range e.inc.Alerts {
				ne.closed[a.Key()] = true
			}
		}
		next[ref] = ne
	}
	if len(changes) == 0 {
		s.metrics.unchanged.Inc()
		return nil
	}
	s.linkUpstream(ctx, changes)
	if err := s.store.Write(ctx, changes); err != nil {
		return fmt.Errorf("store notification %s: %w", n.GroupKey, err)
	}
	s.mu.Lock()
	for ref, e := range next {
		s.cache[ref] = e
	}
	s.mu.Unlock()
	s.count(changes)
	if s.observer != nil {
		s.observer.Observe(ctx, changes)
	}
	return nil
}

// Acknowledge marks the incident as being worked on by actor.
func (s *Service) Acknowledge(ctx context.Context, id, actor string) (*Incident, error) {
	return s.modify(ctx, id, func(inc *Incident, now time.Time) (Change, error) {
		return Acknowledge(inc, actor, now)
	})
}

// Resolve closes the incident by hand.
func (s *Service) Resolve(ctx context.Context, id, actor string) (*Incident, error) {
	return s.modify(ctx, id, func(inc *Incident, now time.Time) (Change, error) {
		return Resolve(inc, actor, now)
	})
}

// AddNote adds a note to the incident's timeline.
func (s *Service) AddNote(ctx context.Context, id, actor, text string) (*Incident, error) {
	return s.modify(ctx, id, func(inc *Incident, now time.Time) (Change, error) {
		return Note(inc, actor, text, now)
	})
}

// Open opens an incident by hand. Opening the same one twice (same key,
// service and start) returns the existing incident.
func (s *Service) Open(ctx context.Context, req OpenRequest) (*Incident, error) {
	ch, err := Open(req, s.now().UTC())
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

// Link records by hand that the incident was caused by upstreamID.
func (s *Service) Link(ctx context.Context, id, upstreamID, actor string) (*Incident, error) {
	up, err := s.store.Get(ctx, upstreamID)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: caused_by: no incident %q", ErrInvalid, upstreamID)
	} else if err != nil {
		return nil, err
	}
	return s.modify(ctx, id, func(inc *Incident, now time.Time) (Change, error) {
		return Link(inc, up, actor, now)
	})
}

// Unlink removes the incident's upstream cause by hand.
func (s *Service) Unlink(ctx context.Context, id, actor string) (*Incident, error) {
	return s.modify(ctx, id, func(inc *Incident, now time.Time) (Change, error) {
		return Unlink(inc, actor, now)
	})
}

// linkUpstream links incidents that these changes open to an outage open
// upstream at that moment: the nearest dependency first, then the
// earliest outage. A failed lookup only costs the link, never the write.
func (s *Service) linkUpstream(ctx context.Context, changes []Change) {
	finder, ok := s.store.(OutageFinder)
	if !ok || s.upstream == nil {
		return
	}
	for i := range changes {
		inc := changes[i].Incident
		if inc.CausedBy != "" || len(changes[i].Events) == 0 || changes[i].Events[0].Kind != EventOpened {
			continue
		}
		ups := s.upstream(inc.Service)
		if len(ups) == 0 {
			continue
		}
		open, err := finder.OpenOutages(ctx, ups)
		if err != nil {
			s.log.Warn("cascade lookup failed", "incident", inc.ID, "err", err)
			continue
		}
		if up := nearestOutage(open, ups, inc.StartedAt); up != nil {
			inc.CausedBy = up.ID
			inc.Facts++
			changes[i].Events = append(changes[i].Events, Event{
				ID: EventID(inc.ID, string(EventLinked), up.ID), IncidentID: inc.ID, At: inc.StartedAt,
				Kind: EventLinked, Actor: "nines",
				Text: fmt.Sprintf("Caused by %s: %s on %s (open upstream outage)", up.ID, up.Title, up.Service),
			})
		}
	}
}

// nearestOutage picks, among open outages that started no later than at,
// the one on the nearest upstream service (order of ups), earliest first.
func nearestOutage(open []*Incident, ups []string, at time.Time) *Incident {
	rank := make(map[string]int, len(ups))
	for i, u := range ups {
		rank[u] = i
	}
	var best *Incident
	for _, o := range open {
		r, ok := rank[o.Service]
		if !ok || o.Impact != ImpactOutage || !o.State.Open() || o.StartedAt.After(at) {
			continue
		}
		if best == nil || r < rank[best.Service] || (r == rank[best.Service] && o.StartedAt.Before(best.StartedAt)) {
			best = o
		}
	}
	return best
}

// modify applies a person's action to an incident under its group's lock.
func (s *Service) modify(ctx context.Context, id string, f func(*Incident, time.Time) (Change, error)) (*Incident, error) {
	inc, err := s.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	ref := GroupRef{GroupKey: inc.GroupKey, Service: inc.Service}
	unlock := s.lock([]GroupRef{ref})
	defer unlock()
	// This process may have changed it since; the cache holds the latest.
	if e := s.cached(ref); e != nil && e.inc != nil && e.inc.ID == id && e.inc.Facts >= inc.Facts {
		inc = e.inc
	}
	ch, err := f(inc, s.now().UTC())
	if err != nil {
		return nil, err
	}
	if err := s.store.Write(ctx, []Change{ch}); err != nil {
		return nil, fmt.Errorf("store incident %s: %w", id, err)
	}
	s.mu.Lock()
	if e := s.cache[ref]; e != nil && e.inc != nil && e.inc.ID == id {
		s.cache[ref] = &entry{inc: ch.Incident, closed: e.closed}
	}
	s.mu.Unlock()
	s.count([]Change{ch})
	if s.observer != nil {
		s.observer.Observe(ctx, []Change{ch})
	}
	return ch.Incident, nil
}

// load fills the cache for refs it does not hold.
func (s *Service) load(ctx context.Context, refs []GroupRef) error {
	var missing []GroupRef
	s.mu.Lock()
	for _, r := range refs {
		if _, ok := s.cache[r]; !ok {
			missing = append(missing, r)
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	got, err := s.store.Latest(ctx, missing)
	if err != nil {
		return fmt.Errorf("load incidents: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evict(len(missing))
	for _, r := range missing {
		s.cache[r] = &entry{inc: got[r]}
	}
	return nil
}

func (s *Service) cached(ref GroupRef) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.cache[ref]; ok {
		return e
	}
	return &entry{}
}

// evict makes room for n entries, dropping groups whose latest incident
// is resolved and past its reopen window first. Must hold s.mu. A dropped
// group is simply read from the store again when it next fires.
func (s *Service) evict(n int) {
	if len(s.cache)+n <= s.maxCache {
		return
	}
	cutoff := s.now().Add(-s.cfg.ReopenWindow)
	for r, e := range s.cache {
		if e.inc == nil || (e.inc.State == StateResolved && e.inc.ResolvedAt.Before(cutoff)) {
			delete(s.cache, r)
		}
	}
	for r, e := range s.cache {
		if len(s.cache)+n <= s.maxCache {
			return
		}
		if _, locked := s.locks[r]; !locked && e.inc != nil && !e.inc.State.Open() {
			delete(s.cache, r)
		}
	}
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
