// Package chattest helps test package chat and the stores behind it: Mem
// is an in-memory incident store with the chat sender's tables, and
// Contract is the test every implementation of the chat store passes.
package chattest

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// Store is everything the chat sender needs from a store, together with
// the incident store the lifecycle writes to.
type Store interface {
	incidents.Store
	chat.Events
	chat.Ledger
	chat.Leases
}

// ErrDown is returned by a Mem that was told to fail.
var ErrDown = errors.New("chattest: store down")

// Mem is an in-memory Store. Events are stamped with the time they are
// written, as the ClickHouse store stamps them with its flush time.
type Mem struct {
	now func() time.Time

	mu         sync.Mutex
	incs       map[string]*incidents.Incident
	events     []chat.StoredEvent
	eventIDs   map[string]bool
	messages   []chat.MessageRecord
	deliveries []chat.Delivery
	cursors    []chat.Cursor
	beats      map[string]map[string]time.Time
	down       bool
	writes     int
}

var (
	_ Store                  = (*Mem)(nil)
	_ chat.IncidentLister    = (*Mem)(nil)
	_ incidents.Reader       = (*Mem)(nil)
	_ incidents.OutageFinder = (*Mem)(nil)
)

// NewMem returns an empty store; now stamps events (time.Now if nil).
func NewMem(now func() time.Time) *Mem {
	if now == nil {
		now = time.Now
	}
	return &Mem{now: now, incs: map[string]*incidents.Incident{}, eventIDs: map[string]bool{}, beats: map[string]map[string]time.Time{}}
}

// Down makes every chat call fail (true) or work again (false).
func (m *Mem) Down(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

// Writes returns how many WriteChat calls succeeded.
func (m *Mem) Writes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.writes
}

// Deliveries returns every delivery row written, in order.
func (m *Mem) Deliveries() []chat.Delivery {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.deliveries)
}

// Latest implements incidents.Store.
func (m *Mem) Latest(_ context.Context, refs []incidents.GroupRef) (map[incidents.GroupRef]*incidents.Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[incidents.GroupRef]*incidents.Incident{}
	for _, inc := range m.incs {
		ref := incidents.GroupRef{GroupKey: inc.GroupKey, Service: inc.Service}
		if !slices.Contains(refs, ref) {
			continue
		}
		if cur := out[ref]; cur == nil || inc.StartedAt.After(cur.StartedAt) || (inc.StartedAt.Equal(cur.StartedAt) && inc.ID > cur.ID) {
			out[ref] = inc.Clone()
		}
	}
	return out, nil
}

// Get implements incidents.Store.
func (m *Mem) Get(_ context.Context, id string) (*incidents.Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inc, ok := m.incs[id]
	if !ok {
		return nil, fault.ErrNotFound
	}
	return inc.Clone(), nil
}

// Write implements incidents.Store.
func (m *Mem) Write(_ context.Context, changes []incidents.Change) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	at := m.now()
	for _, c := range changes {
		if inc := c.Incident; inc != nil {
			if cur, ok := m.incs[inc.ID]; !ok || inc.Version() >= cur.Version() {
				m.incs[inc.ID] = inc.Clone()
			}
		}
	}
	// Events after incidents, as the ClickHouse store writes them.
	for _, c := range changes {
		for _, e := range c.Events {
			if m.eventIDs[e.ID] {
				continue
			}
			m.eventIDs[e.ID] = true
			m.events = append(m.events, chat.StoredEvent{Event: e, InsertedAt: at})
		}
	}
	return nil
}

// List implements incidents.Reader and chat.IncidentLister (no paging).
func (m *Mem) List(_ context.Context, f incidents.Filter) ([]*incidents.Incident, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*incidents.Incident
	for _, inc := range m.incs {
		switch {
		case f.Service != "" && inc.Service != f.Service,
			f.State != "" && inc.State != f.State,
			f.Impact != nil && inc.Impact != *f.Impact,
			!f.Since.IsZero() && inc.StartedAt.Before(f.Since),
			!f.Until.IsZero() && !inc.StartedAt.Before(f.Until):
			continue
		}
		out = append(out, inc.Clone())
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.After(out[j].StartedAt)
		}
		return out[i].ID > out[j].ID
	})
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, "", nil
}

// Timeline implements incidents.Reader.
func (m *Mem) Timeline(_ context.Context, id string) ([]incidents.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []incidents.Event
	for _, e := range m.events {
		if e.IncidentID == id {
			out = append(out, e.Event)
		}
	}
	return out, nil
}

// Outages implements incidents.OutageFinder.
func (m *Mem) Outages(_ context.Context, services []string, since time.Time) ([]*incidents.Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*incidents.Incident
	for _, inc := range m.incs {
		if slices.Contains(services, inc.Service) && (inc.State.Open() || !inc.ResolvedAt.Before(since)) && inc.Impact == incidents.ImpactOutage {
			out = append(out, inc.Clone())
		}
	}
	return out, nil
}

// ChatEventsSince implements chat.Events.
func (m *Mem) ChatEventsSince(_ context.Context, since, notBefore time.Time) ([]chat.StoredEvent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, ErrDown
	}
	var out []chat.StoredEvent
	for _, e := range m.events {
		if !e.InsertedAt.Before(since) && !e.At.Before(notBefore) {
			out = append(out, e)
		}
	}
	return out, nil
}

// ChatIncidents implements chat.Events.
func (m *Mem) ChatIncidents(_ context.Context, ids []string) (map[string]*incidents.Incident, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, ErrDown
	}
	out := map[string]*incidents.Incident{}
	for _, id := range ids {
		if inc, ok := m.incs[id]; ok {
			out[id] = inc.Clone()
		}
	}
	return out, nil
}

// LoadChat implements chat.Ledger.
func (m *Mem) LoadChat(_ context.Context, ids []string, self string) (chat.Records, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return chat.Records{}, ErrDown
	}
	var out chat.Records
	type mk struct{ inc, ch string }
	msgs := map[mk]chat.MessageRecord{}
	for _, r := range m.messages {
		k := mk{r.IncidentID, r.Channel}
		if cur, ok := msgs[k]; slices.Contains(ids, r.IncidentID) && (!ok || !r.At.Before(cur.At)) {
			msgs[k] = r
		}
	}
	for _, r := range msgs {
		out.Messages = append(out.Messages, r)
	}
	type dk struct{ inc, ch, key string }
	latest := map[dk]chat.Delivery{}
	foreign := map[dk]time.Time{}
	for _, d := range m.deliveries {
		if !slices.Contains(ids, d.IncidentID) {
			continue
		}
		k := dk{d.IncidentID, d.Channel, d.Key}
		if cur, ok := latest[k]; !ok || rank(d) > rank(cur) || (rank(d) == rank(cur) && !d.At.Before(cur.At)) {
			latest[k] = d
		}
		if d.State == chat.StateIntent && d.Holder != self && d.At.After(foreign[k]) {
			foreign[k] = d.At
		}
	}
	for k, d := range latest {
		d.ForeignIntentAt = foreign[k]
		d.Covers = slices.Clone(d.Covers)
		out.Deliveries = append(out.Deliveries, d)
	}
	sort.Slice(out.Deliveries, func(i, j int) bool {
		a, b := out.Deliveries[i], out.Deliveries[j]
		if a.IncidentID != b.IncidentID {
			return a.IncidentID < b.IncidentID
		}
		if a.Channel != b.Channel {
			return a.Channel < b.Channel
		}
		return a.Key < b.Key
	})
	return out, nil
}

func rank(d chat.Delivery) int {
	if d.State.Final() {
		return 2
	}
	return 1
}

// WriteChat implements chat.Ledger.
func (m *Mem) WriteChat(_ context.Context, r chat.Records) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return ErrDown
	}
	m.messages = append(m.messages, r.Messages...)
	for _, d := range r.Deliveries {
		d.Covers = slices.Clone(d.Covers)
		d.ForeignIntentAt = time.Time{}
		m.deliveries = append(m.deliveries, d)
	}
	m.cursors = append(m.cursors, r.Cursors...)
	m.writes++
	return nil
}

// ChatCursor implements chat.Ledger.
func (m *Mem) ChatCursor(_ context.Context, name string) (time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return time.Time{}, false, ErrDown
	}
	var best *chat.Cursor
	for i, c := range m.cursors {
		if c.Name == name && (best == nil || !c.At.Before(best.At)) {
			best = &m.cursors[i]
		}
	}
	if best == nil {
		return time.Time{}, false, nil
	}
	return best.Position, true, nil
}

// Heartbeat implements chat.Leases.
func (m *Mem) Heartbeat(_ context.Context, name, holder string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return ErrDown
	}
	if m.beats[name] == nil {
		m.beats[name] = map[string]time.Time{}
	}
	if at.After(m.beats[name][holder]) {
		m.beats[name][holder] = at
	}
	return nil
}

// LeaseHolders implements chat.Leases.
func (m *Mem) LeaseHolders(_ context.Context, name string, since time.Time) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return nil, ErrDown
	}
	var out []string
	for h, at := range m.beats[name] {
		if !at.Before(since) {
			out = append(out, h)
		}
	}
	sort.Strings(out)
	return out, nil
}
