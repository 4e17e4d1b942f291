package incidents

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Replicas sharing a store.
//
// Each Service keeps every group's latest incident in memory and writes
// whole incident versions; the store keeps the version with the highest
// Version() (more facts, then the later update). Two replicas on one store
// would lose each other's changes if nothing else were done: a replica
// whose memory lacks an acknowledgement made on the other can write a
// version with more facts that drops it. When the store implements
// VersionReader, the Service prevents that in two steps:
//
//  1. Before writing alert-driven changes, it checks that the groups it
//     holds in memory are still what the store holds (Heads, one query for
//     all concurrent notifications); a group another replica changed is
//     read again and the notification applied to that.
//  2. After every write, it reads back the stored versions of the incidents
//     it wrote (Versions, one query for all concurrent writes). A version
//     it has not seen means the writes raced: it reads that version, merges
//     it with its own (Config.join) and, unless the highest stored version
//     already holds the result, writes the result above every stored
//     version, then checks again. Each writer checks after each of its own
//     writes, so the last check made sees every version, and once every
//     writer has checked, the winning version holds all of their changes.
//
// Alerts and timeline events need no merging: they are stored per
// occurrence and per deterministic event ID, so every replica's rows add
// up. Only the incident row (state, acknowledgement, resolve, periods) is
// one replica's view, and that is what is merged.

// VersionReader knows how to read the versions of incidents that replicas
// sharing a store wrote. A Store that implements it makes a Service keep
// its memory coherent with other replicas and merge concurrent writes.
type VersionReader interface {
	// Heads returns, for each ref, the ID and highest stored version of its
	// latest incident; refs without incidents are absent.
	Heads(ctx context.Context, refs []GroupRef) (map[GroupRef]Head, error)
	// Versions returns, for each incident (keyed by ID), its highest
	// distinct stored versions, highest first: at least the top sixteen.
	Versions(ctx context.Context, keys []IncidentKey) (map[string][]StoredVersion, error)
	// GetVersions returns incidents as stored at exactly the versions
	// asked for, each with every alert stored for it by any replica.
	// Versions no longer stored (collapsed by the store) are absent.
	GetVersions(ctx context.Context, keys []VersionKey) (map[VersionKey]*Incident, error)
}

// VersionKey names one stored version of an incident.
type VersionKey struct {
	IncidentKey
	Version uint64
}

// AlertOwnerFinder knows which incidents of a group hold alert
// occurrences. A Service whose store implements it keeps late copies of an
// earlier incident's alerts out of the group's newer incident even when it
// never saw the earlier one: after a restart, or when another replica
// handled it.
type AlertOwnerFinder interface {
	// AlertOwners returns, by ref and alert key (Alert.Key), the ID of the
	// ref's incident that holds each occurrence asked for; occurrences no
	// incident holds are absent.
	AlertOwners(ctx context.Context, want map[GroupRef][]Alert) (map[GroupRef]map[string]string, error)
}

// closeLateCopies looks up the alerts of refs that are unknown to the
// ref's cached incident and started before it: late copies of an earlier
// incident's alerts, or alerts of this one that started earlier but
// arrived later. The store tells which: those an earlier incident holds
// join the ref's closed set, so that the lifecycle leaves them out.
func (s *Service) closeLateCopies(ctx context.Context, refs []GroupRef, byRef map[GroupRef][]Alert) error {
	if s.owners == nil {
		return nil
	}
	want := map[GroupRef][]Alert{}
	for _, ref := range refs {
		e := s.cached(ref)
		if e.inc == nil || e.inc.StartedAt.IsZero() {
			continue
		}
		known := make(map[string]bool, len(e.inc.Alerts))
		for _, a := range e.inc.Alerts {
			known[a.Key()] = true
		}
		for _, a := range byRef[ref] {
			if k := a.Key(); !known[k] && !e.closed[k] && a.StartsAt.Before(e.inc.StartedAt) {
				want[ref] = append(want[ref], a)
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	got, err := s.owners.AlertOwners(ctx, want)
	if err != nil {
		return fmt.Errorf("look up earlier incidents: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ref, owners := range got {
		e := s.cache.at(ref)
		if e == nil || e.inc == nil {
			continue
		}
		var closed map[string]bool
		for k, id := range owners {
			if id == e.inc.ID {
				continue
			}
			if closed == nil {
				closed = make(map[string]bool, len(e.closed)+len(owners))
				maps.Copy(closed, e.closed)
			}
			closed[k] = true
		}
		if closed != nil {
			ne := *e
			ne.closed = closed
			s.cache.put(ref, &ne)
			s.metrics.lateCopies.Add(float64(len(closed) - len(e.closed)))
		}
	}
	return nil
}

// Head is a group's latest incident as stored.
type Head struct {
	ID      string
	Version uint64
}

// IncidentKey names a stored incident: its service leads the store's sort
// key, so lookups by service and ID are cheap.
type IncidentKey struct {
	Service string
	ID      string
}

// StoredVersion is one stored version of an incident. Variants counts the
// different incident rows stored with that version number: more than one
// when two replicas wrote different states in the same millisecond with
// the same number of facts.
type StoredVersion struct {
	Version  uint64
	Variants int
}

// maxMergeRounds bounds the merge-and-check rounds of one write; racing
// writers settle in one or two.
const maxMergeRounds = 8

// replicaCheckTimeout bounds one coalesced Heads or Versions query.
const replicaCheckTimeout = 10 * time.Second

// staleRefs returns the refs, among refs, whose cached incident is not
// what the store holds as their latest.
func (s *Service) staleRefs(ctx context.Context, refs []GroupRef) ([]GroupRef, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	heads, err := s.heads.get(ctx, refs)
	if err != nil {
		return nil, fmt.Errorf("check incidents against the store: %w", err)
	}
	var stale []GroupRef
	for _, r := range refs {
		e := s.cached(r)
		h, ok := heads[r]
		switch {
		case !ok && e.inc == nil:
		case ok && e.inc != nil && h.ID == e.inc.ID && (h.Version == e.inc.Version() || e.known[h.Version]):
		default:
			stale = append(stale, r)
		}
	}
	return stale, nil
}

// reload reads refs from the store again. When a ref's latest incident is
// not the one cached, the cached one's alerts join the closed set, so that
// late copies of them stay out of the newer incident.
func (s *Service) reload(ctx context.Context, refs []GroupRef) error {
	got, err := s.store.Latest(ctx, refs)
	if err != nil {
		return fmt.Errorf("reload incidents: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range refs {
		old := s.cache.at(r)
		ne := newEntry(got[r])
		if old != nil {
			ne.closed = old.closed
			ne.reconciled = old.reconciled
			ne.actions = append(append([]Action(nil), old.actions...), ne.actions...)
			if old.inc != nil && ne.inc != nil && old.inc.ID != ne.inc.ID {
				ne.closed = make(map[string]bool, len(old.closed)+len(old.inc.Alerts))
				maps.Copy(ne.closed, old.closed)
				for _, a := range old.inc.Alerts {
					ne.closed[a.Key()] = true
				}
			}
		}
		s.cache.put(r, ne)
	}
	s.metrics.reloads.Add(float64(len(refs)))
	return nil
}

// settled is what settleWrites leaves an incident at: the version this
// process should remember and the stored versions whose content it holds.
type settled struct {
	inc   *Incident
	known map[uint64]bool
}

// settleWrites checks, after written was stored, whether other replicas
// stored versions of the same incidents that this process has not seen,
// and merges them (see the comment at the top of this file). known[i]
// holds the stored versions whose content written[i] includes (those of
// the incident it was derived from); for an incident written more than
// once, the first counts. It returns the merge changes it wrote and, by
// incident ID, what to remember.
//
// A version is merged whatever its rank: versions are ordered by facts and
// time, not by what they were derived from, so a concurrent version that
// ranks below ours may still hold what ours lacks (an acknowledgement).
// The loop ends once the highest stored version holds everything this
// process has seen: each writer checks after each of its own writes, so
// the last check, whoever makes it, sees every version written before it.
func (s *Service) settleWrites(ctx context.Context, written []Change, known []map[uint64]bool, now time.Time) ([]Change, map[string]settled, error) {
	if s.replicas == nil || len(written) == 0 {
		return nil, nil, nil
	}
	type track struct {
		key   IncidentKey
		ours  *Incident
		mine  map[uint64]bool // versions this call wrote
		known map[uint64]bool // versions whose content ours holds
	}
	tracks := map[string]*track{}
	var order []string
	for i, ch := range written {
		inc := ch.Incident
		if inc == nil {
			continue
		}
		tr := tracks[inc.ID]
		if tr == nil {
			tr = &track{key: IncidentKey{Service: inc.Service, ID: inc.ID}, mine: map[uint64]bool{}, known: map[uint64]bool{}}
			maps.Copy(tr.known, known[i])
			tracks[inc.ID] = tr
			order = append(order, inc.ID)
		}
		tr.ours = inc
		tr.mine[inc.Version()] = true
		tr.known[inc.Version()] = true
	}
	final := map[string]settled{}
	var merged []Change
	for round := 0; len(tracks) > 0; round++ {
		if round == maxMergeRounds {
			s.metrics.mergeGiveUps.Inc()
			return merged, final, fmt.Errorf("%w: incidents %v still change under concurrent writes after %d merges", ErrUnavailable, slices.Collect(maps.Keys(tracks)), round)
		}
		keys := make([]IncidentKey, 0, len(tracks))
		for _, id := range order {
			if tr := tracks[id]; tr != nil {
				keys = append(keys, tr.key)
			}
		}
		stored, err := s.versions.get(ctx, keys)
		if err != nil {
			return merged, final, fmt.Errorf("read back incident versions: %w", err)
		}
		// Read every version not seen yet, of all incidents, at once.
		var unseen []VersionKey
		for _, id := range order {
			if tr := tracks[id]; tr != nil {
				for _, v := range stored[tr.key] {
					if !tr.mine[v.Version] && !tr.known[v.Version] {
						unseen = append(unseen, VersionKey{IncidentKey: tr.key, Version: v.Version})
					}
				}
			}
		}
		var others map[VersionKey]*Incident
		if len(unseen) > 0 {
			if others, err = s.others.get(ctx, unseen); err != nil {
				return merged, final, fmt.Errorf("read concurrent incident versions: %w", err)
			}
		}
		var out []Change
		for _, id := range order {
			tr := tracks[id]
			if tr == nil {
				continue
			}
			vs := stored[tr.key]
			var top uint64
			if len(vs) > 0 {
				top = vs[0].Version
			}
			m, winner := tr.ours, (*Incident)(nil)
			if top == tr.ours.Version() {
				winner = tr.ours
			}
			var (
				events []Event
				read   bool
				clash  bool
			)
			for _, v := range vs {
				if tr.mine[v.Version] {
					clash = clash || (v.Version == tr.ours.Version() && v.Variants > 1)
					continue
				}
				if tr.known[v.Version] {
					continue
				}
				theirs := others[VersionKey{IncidentKey: tr.key, Version: v.Version}]
				if theirs == nil {
					continue // collapsed by the store in the meantime
				}
				ch := s.cfg.join(m, theirs, now)
				s.log.Debug("concurrent write", "incident", id, "ours", tr.ours.Version(), "theirs", v.Version,
					"state", ch.Incident.State, "acknowledged_by", ch.Incident.AcknowledgedBy)
				m = ch.Incident
				events = append(events, ch.Events...)
				tr.known[v.Version] = true
				read = true
				if v.Version == top {
					winner = theirs
				}
			}
			// Versions collapsed away need no remembering.
			for v := range tr.known {
				if !tr.mine[v] && !slices.ContainsFunc(vs, func(sv StoredVersion) bool { return sv.Version == v }) {
					delete(tr.known, v)
				}
			}
			if !clash && (!read || (winner != nil && sameState(m, winner))) {
				// The highest version holds everything seen here.
				keep := tr.ours
				if winner != nil {
					keep = winner
				}
				if read {
					keep = keep.Clone()
					keep.Alerts = m.Alerts
				}
				final[id] = settled{inc: keep, known: tr.known}
				delete(tracks, id)
				continue
			}
			// Write what was seen here above every stored version. When two
			// replicas stored different states under one version number
			// (clash), this also sets ours apart.
			w := m.Clone()
			w.Facts = max(w.Facts, uint32(top>>VersionTimeBits)) + 1
			w.UpdatedAt = latest(now, tr.ours.UpdatedAt.Add(time.Duration(1+rand.IntN(64))*time.Millisecond))
			s.metrics.merges.Inc()
			out = append(out, Change{Incident: w, Events: dedupeEvents(events)})
			tr.ours = w
			tr.mine[w.Version()] = true
			tr.known[w.Version()] = true
			final[id] = settled{inc: w, known: tr.known}
		}
		if len(out) == 0 {
			continue
		}
		if err := s.store.Write(ctx, out); err != nil {
			return merged, final, fmt.Errorf("store merged incidents: %w", err)
		}
		merged = append(merged, out...)
	}
	return merged, final, nil
}

func dedupeEvents(events []Event) []Event {
	seen := map[string]bool{}
	var out []Event
	for _, e := range events {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	return out
}

// coalescer merges concurrent lookups into few store queries: a lookup
// that arrives while a query runs joins the next one, which starts when
// the running one ends. Under load about one query is in flight; at rest a
// lookup runs at once, without waiting for company.
type coalescer[K comparable, V any] struct {
	fetch   func(context.Context, []K) (map[K]V, error)
	timeout time.Duration

	mu   sync.Mutex
	next *lookup[K, V] // gathering keys for the next query
	busy bool          // a query is running
}

type lookup[K comparable, V any] struct {
	keys map[K]struct{}
	done chan struct{}
	res  map[K]V
	err  error
}

func newCoalescer[K comparable, V any](timeout time.Duration, fetch func(context.Context, []K) (map[K]V, error)) *coalescer[K, V] {
	return &coalescer[K, V]{fetch: fetch, timeout: timeout}
}

// get returns the values of keys; absent keys have none.
func (c *coalescer[K, V]) get(ctx context.Context, keys []K) (map[K]V, error) {
	c.mu.Lock()
	if c.next == nil {
		c.next = &lookup[K, V]{keys: map[K]struct{}{}, done: make(chan struct{})}
	}
	l := c.next
	for _, k := range keys {
		l.keys[k] = struct{}{}
	}
	lead := !c.busy
	if lead {
		c.busy, c.next = true, nil
	}
	c.mu.Unlock()
	if lead {
		c.run(ctx, l)
	}
	select {
	case <-l.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if l.err != nil {
		return nil, l.err
	}
	out := make(map[K]V, len(keys))
	for _, k := range keys {
		if v, ok := l.res[k]; ok {
			out[k] = v
		}
	}
	return out, nil
}

// run queries l, then hands the lookup that gathered meanwhile, if any, to
// a goroutine of its own so that l's caller can go on.
func (c *coalescer[K, V]) run(ctx context.Context, l *lookup[K, V]) {
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	l.res, l.err = c.fetch(qctx, slices.Collect(maps.Keys(l.keys)))
	cancel()
	close(l.done)
	c.mu.Lock()
	next := c.next
	if next == nil {
		c.busy = false
	} else {
		c.next = nil
	}
	c.mu.Unlock()
	if next != nil {
		go c.run(ctx, next)
	}
}
