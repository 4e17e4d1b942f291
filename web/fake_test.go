package web

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/incidents"
)

// fake is an in-memory stand-in for the store and the services the pages
// read: incidents indexed by service, figures computed from them (outage
// time only, no maintenance), changes and suspects by service. It is what
// the benchmark measures the pages against, so it indexes like a store
// would instead of scanning everything.
type fake struct {
	now       time.Time
	cat       *catalog.Catalog
	byID      map[string]*incidents.Incident
	bySvc     map[string][]*incidents.Incident // newest first
	all       []*incidents.Incident            // newest first
	open      []*incidents.Incident            // newest first
	figsMu    sync.Mutex
	figs      map[string][]availability.Figure // All's answers by window: a store answers in one query
	timelines map[string][]incidents.Event
	changes   []changes.Change
	suspects  map[string][]changes.Suspect
	acts      []string // mutations done, "ack inc-…"
	// hold, if set, keeps All from answering until it closes.
	hold chan struct{}
	// allCalls and dailyServices count All and DailyServices calls.
	allCalls, dailyServices atomic.Int64
}

func newFake(now time.Time, cat *catalog.Catalog) *fake {
	return &fake{now: now, cat: cat, byID: map[string]*incidents.Incident{}, bySvc: map[string][]*incidents.Incident{},
		timelines: map[string][]incidents.Event{}, suspects: map[string][]changes.Suspect{}}
}

func (f *fake) add(inc *incidents.Incident) {
	f.byID[inc.ID] = inc
	f.bySvc[inc.Service] = append(f.bySvc[inc.Service], inc)
}

// index sorts the incidents newest first; call after adding.
func (f *fake) index() {
	f.all = f.all[:0]
	for _, l := range f.bySvc {
		f.all = append(f.all, l...)
	}
	defer func() {
		f.open = f.open[:0]
		for _, inc := range f.all {
			if inc.State.Open() {
				f.open = append(f.open, inc)
			}
		}
		f.figs = map[string][]availability.Figure{}
	}()
	for _, l := range append([][]*incidents.Incident{f.all}, mapValues(f.bySvc)...) {
		slices.SortFunc(l, func(a, b *incidents.Incident) int {
			if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
				return c
			}
			return cmp.Compare(b.ID, a.ID)
		})
	}
}

func (f *fake) List(_ context.Context, fl incidents.Filter) ([]*incidents.Incident, string, error) {
	src := f.all
	switch {
	case fl.Service != "":
		src = f.bySvc[fl.Service]
	case fl.State.Open() && fl.State != "":
		src = f.open // a store's index on state
	}
	skip := fl.Cursor != ""
	var out []*incidents.Incident
	for _, inc := range src {
		if skip {
			skip = inc.ID != fl.Cursor
			continue
		}
		if fl.State != "" && inc.State != fl.State || !fl.Since.IsZero() && inc.StartedAt.Before(fl.Since) ||
			!fl.Until.IsZero() && !inc.StartedAt.Before(fl.Until) || fl.Impact != nil && inc.Impact != *fl.Impact {
			continue
		}
		if len(out) == fl.Limit {
			return out, out[len(out)-1].ID, nil
		}
		out = append(out, inc)
	}
	return out, "", nil
}

func (f *fake) RecentByService(ctx context.Context, services []string, since, until time.Time, perService int) (map[string][]*incidents.Incident, error) {
	out := map[string][]*incidents.Incident{}
	for _, svc := range services {
		list, _, err := f.List(ctx, incidents.Filter{Service: svc, Since: since, Until: until, Limit: perService})
		if err != nil {
			return nil, err
		}
		if len(list) > 0 {
			out[svc] = list
		}
	}
	return out, nil
}

func mapValues[K comparable, V any](m map[K]V) []V {
	var out []V
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func (f *fake) Get(_ context.Context, id string) (*incidents.Incident, error) {
	if inc, ok := f.byID[id]; ok {
		return inc, nil
	}
	return nil, fmt.Errorf("%w: incident %s", incidents.ErrNotFound, id)
}

func (f *fake) Timeline(ctx context.Context, id string) ([]incidents.Event, error) {
	if _, err := f.Get(ctx, id); err != nil {
		return nil, err
	}
	return f.timelines[id], nil
}

func (f *fake) Acknowledge(_ context.Context, id, actor string) (*incidents.Incident, error) {
	f.acts = append(f.acts, "ack "+id+" "+actor)
	return f.byID[id], nil
}

func (f *fake) Resolve(_ context.Context, id, actor string) (*incidents.Incident, error) {
	f.acts = append(f.acts, "resolve "+id+" "+actor)
	return f.byID[id], nil
}

func (f *fake) AddNote(_ context.Context, id, actor, text string) (*incidents.Incident, error) {
	f.acts = append(f.acts, "note "+id+" "+actor+" "+text)
	return f.byID[id], nil
}

func (f *fake) ListChanges(q changes.Query) []changes.Change {
	var out []changes.Change
	for _, c := range f.changes {
		if (len(q.Services) == 0 || slices.Contains(q.Services, c.Service)) && (q.From.IsZero() || !c.At.Before(q.From)) {
			out = append(out, c)
		}
	}
	return out
}

// fakeChanges implements Changes over the fake.
type fakeChanges struct{ f *fake }

func (c fakeChanges) List(_ context.Context, q changes.Query) ([]changes.Change, error) {
	return c.f.ListChanges(q), nil
}

func (c fakeChanges) Suspects(_ context.Context, id string) ([]changes.Suspect, error) {
	return c.f.suspects[id], nil
}

// fakeAvail implements Availability over the fake: downtime is the
// outage time of a service's incidents inside the window.
type fakeAvail struct{ f *fake }

func (a fakeAvail) Config() availability.Config {
	one := 1.0
	return availability.Config{Windows: []string{"24h", "7d", "30d"}, ImpactWeights: availability.ImpactWeights{Outage: &one}}
}

func (a fakeAvail) ParseWindow(name string) (availability.Window, error) {
	return availability.ParseWindow(name, a.f.now, time.UTC)
}

func (a fakeAvail) figure(name string, w availability.Window) availability.Figure {
	end := minT(w.To, a.f.now)
	win := end.Sub(w.From).Seconds()
	var down float64
	var ids []string
	n := 0
	for _, inc := range a.f.bySvc[name] {
		if inc.StartedAt.After(end) {
			continue
		}
		stop := inc.ResolvedAt
		if stop.IsZero() {
			stop = a.f.now
		}
		if stop.Before(w.From) {
			break // newest first: the rest ended earlier (near enough for a fake)
		}
		n++
		ids = append(ids, inc.ID)
		if inc.Impact == incidents.ImpactOutage {
			down += minT(stop, end).Sub(maxT(inc.StartedAt, w.From)).Seconds()
		}
	}
	slo := a.f.cat.SLOTarget(name)
	sv, _ := a.f.cat.Service(name)
	budget := (1 - slo) * win
	return availability.Figure{
		Service: name, Owner: sv.Owner, Catalogued: true, Window: w.String(), From: w.From, To: w.To,
		WindowSeconds: int64(win), Availability: 1 - down/win, OwnAvailability: 1 - down/win, DowntimeSeconds: down,
		Incidents: n, SLOTarget: slo, ErrorBudgetSeconds: budget, ErrorBudgetConsumedSeconds: down,
		ErrorBudgetRemaining: (budget - down) / budget, ErrorBudgetRemainingSeconds: budget - down,
		Upstream: []availability.UpstreamCost{}, IncidentIDs: ids,
	}
}

func (a fakeAvail) All(ctx context.Context, w availability.Window, _ bool) ([]availability.Figure, error) {
	a.f.allCalls.Add(1)
	if a.f.hold != nil {
		select {
		case <-a.f.hold:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	a.f.figsMu.Lock()
	defer a.f.figsMu.Unlock()
	if figs, ok := a.f.figs[w.String()]; ok && a.f.figs != nil {
		return slices.Clone(figs), nil
	}
	var out []availability.Figure
	for _, sv := range a.f.cat.Services() {
		out = append(out, a.figure(sv.Name, w))
	}
	slices.SortFunc(out, func(x, y availability.Figure) int {
		if c := cmp.Compare(x.Availability, y.Availability); c != 0 {
			return c
		}
		return cmp.Compare(x.Service, y.Service)
	})
	if a.f.figs != nil {
		a.f.figs[w.String()] = slices.Clone(out)
	}
	return out, nil
}

func (a fakeAvail) Service(_ context.Context, name string, w availability.Window, _ bool) (availability.Figure, error) {
	if _, ok := a.f.cat.Service(name); !ok {
		return availability.Figure{}, fmt.Errorf("%w: service %q", incidents.ErrNotFound, name)
	}
	return a.figure(name, w), nil
}

func (a fakeAvail) Daily(_ context.Context, name string, from, to time.Time) ([]availability.Day, error) {
	var out []availability.Day
	for d := from; !d.After(to) && d.Before(a.f.now); d = d.AddDate(0, 0, 1) {
		out = append(out, availability.Day{Date: d.Format(time.DateOnly), From: d, To: d.AddDate(0, 0, 1), WindowSeconds: 86400, Availability: 1})
	}
	if len(out) == 0 {
		return out, nil
	}
	// One pass over the service's incidents, as a store's GROUP BY day.
	for _, inc := range a.f.bySvc[name] {
		stop := inc.ResolvedAt
		if stop.IsZero() {
			stop = a.f.now
		}
		for i := range out {
			d := &out[i]
			if inc.StartedAt.Before(d.To) && stop.After(d.From) {
				d.Incidents++
				if inc.Impact == incidents.ImpactOutage {
					d.DowntimeSeconds += minT(stop, d.To).Sub(maxT(inc.StartedAt, d.From)).Seconds()
					d.Availability = 1 - d.DowntimeSeconds/86400
				}
			}
		}
	}
	return out, nil
}

func (a fakeAvail) DailyServices(ctx context.Context, names []string, from, to time.Time) (map[string][]availability.Day, error) {
	a.f.dailyServices.Add(1)
	out := map[string][]availability.Day{}
	for _, name := range names {
		d, err := a.Daily(ctx, name, from, to)
		if err != nil {
			return nil, err
		}
		out[name] = d
	}
	return out, nil
}

func (a fakeAvail) Info(_ context.Context, name string) (availability.ServiceInfo, error) {
	sv, ok := a.f.cat.Service(name)
	if !ok {
		return availability.ServiceInfo{}, fmt.Errorf("%w: service %q", incidents.ErrNotFound, name)
	}
	return availability.ServiceInfo{Name: sv.Name, Catalogued: true, Owner: sv.Owner, Tier: sv.Tier, SLOTarget: sv.SLOTarget,
		System: sv.System, Dependencies: nonNilSlice(a.f.cat.Dependencies(name))}, nil
}

// newTestPages builds pages over the fake.
func newTestPages(f *fake, o Options) *Pages {
	o.Incidents, o.Availability, o.Changes, o.Mutator = f, fakeAvail{f}, fakeChanges{f}, f
	o.Catalog = func() *catalog.Catalog { return f.cat }
	o.Now = func() time.Time { return f.now }
	p, err := New(o)
	if err != nil {
		panic(err)
	}
	return p
}
