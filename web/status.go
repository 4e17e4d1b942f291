package web

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/incidents"
)

// StatusView is the status page.
type StatusView struct {
	Groups    []StatusGroup `json:"groups"`
	GroupPage Pagination    `json:"group_page"`
	Days      int           `json:"days"`
	// AsOf is when the uptime figures and the daily bars were computed
	// (see Options.RefreshInterval); states and incidents are current.
	AsOf time.Time `json:"figures_as_of"`
}

// StatusGroup is a group of services on the status page: one of the
// catalog's status_page groups, or without that section the services of
// one system.
type StatusGroup struct {
	Name string `json:"name"`
	// Anchor is the group's HTML id.
	Anchor string `json:"-"`
	// State is operational, degraded or outage.
	State    string          `json:"state"`
	Services []StatusService `json:"services"`
	// Days is the group's worst service availability per day.
	Days      []StatusDay      `json:"days"`
	Incidents []StatusIncident `json:"incidents"`
}

// StatusService is a service's current state and 90-day uptime.
type StatusService struct {
	Name   string  `json:"name"`
	State  string  `json:"state"`
	Uptime float64 `json:"uptime"`
}

// StatusDay is one day's bar.
type StatusDay struct {
	Date         string  `json:"date"`
	Availability float64 `json:"availability"`
}

// StatusIncident is an incident as the public sees it.
type StatusIncident struct {
	Title     string     `json:"title"`
	Impact    string     `json:"impact"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"resolved_at"`
	// Labels are shown only for groups configured to show them.
	Labels map[string]string `json:"labels,omitempty"`
}

// statusServices is how many services a status page shows.
const statusServices = 50

// otherGroup holds the services without a system, last.
const otherGroup = "Other services"

// statusIncidents is how many incidents a group lists.
const statusIncidents = 10

func stateOf(im incidents.Impact, open bool) string {
	switch {
	case !open:
		return "operational"
	case im == incidents.ImpactOutage:
		return "outage"
	case im == incidents.ImpactDegraded:
		return "degraded"
	}
	return "operational"
}

// statusGroups returns the groups of the status page: the catalog's
// status_page section, else one group per system (services without one
// last, as otherGroup), each sorted by name, showing titles as
// Options.StatusTitles says and never labels.
func (p *Pages) statusGroups(cat *catalog.Catalog) []catalog.StatusGroup {
	if gs, ok := cat.StatusPage(); ok {
		return gs
	}
	bySystem := map[string][]string{}
	for _, sv := range cat.Services() {
		g := sv.System
		if g == "" {
			g = otherGroup
		}
		bySystem[g] = append(bySystem[g], sv.Name)
	}
	names := slices.SortedFunc(maps.Keys(bySystem), func(a, b string) int {
		return cmp.Or(cmp.Compare(boolInt(a == otherGroup), boolInt(b == otherGroup)), cmp.Compare(a, b))
	})
	out := make([]catalog.StatusGroup, 0, len(names))
	for _, g := range names {
		out = append(out, catalog.StatusGroup{Name: g, Services: bySystem[g], ShowTitles: p.o.StatusTitles})
	}
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// statusFigures is what the status page shows of every catalogued
// service, computed for all of them at once: its uptime over HistoryDays
// days and its daily availability.
type statusFigures struct {
	uptime map[string]float64
	days   map[string][]availability.Day
}

func (p *Pages) loadStatusFigures(ctx context.Context, cat *catalog.Catalog) (statusFigures, error) {
	win, err := p.o.Availability.ParseWindow(strconv.Itoa(HistoryDays) + "d")
	if err != nil {
		return statusFigures{}, err
	}
	figs, err := p.o.Availability.All(ctx, win, false)
	if err != nil {
		return statusFigures{}, err
	}
	out := statusFigures{uptime: make(map[string]float64, len(figs))}
	for _, f := range figs {
		out.uptime[f.Service] = f.Availability
	}
	var names []string
	for _, sv := range cat.Services() {
		names = append(names, sv.Name)
	}
	from, to := p.historyDays(cat)
	out.days, err = p.o.Availability.DailyServices(ctx, names, from, to)
	return out, err
}

func (p *Pages) status(ctx context.Context, page int) (StatusView, error) {
	cat := p.o.Catalog()
	v := StatusView{Days: HistoryDays}
	groups := p.statusGroups(cat)
	// Services in group order, a page at a time.
	type member struct{ group, service int }
	var members []member
	for gi, g := range groups {
		for si := range g.Services {
			members = append(members, member{gi, si})
		}
	}
	members, v.GroupPage = paginate(members, page, statusServices)
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = groups[m.group].Services[m.service]
	}
	since := p.o.Now().Add(-HistoryDays * 24 * time.Hour)
	var (
		figs   statusFigures
		asOf   time.Time
		open   []*incidents.Incident
		recent map[string][]*incidents.Incident
	)
	err := together(ctx,
		func(ctx context.Context) (err error) {
			figs, asOf, err = p.statusFigures.get(ctx, cat)
			return err
		},
		func(ctx context.Context) (err error) {
			open, err = p.openIncidents(ctx)
			return err
		},
		func(ctx context.Context) (err error) {
			recent, err = p.o.Incidents.RecentByService(ctx, names, since, time.Time{}, statusIncidents)
			return err
		},
	)
	if err != nil {
		return v, err
	}
	v.AsOf = asOf.UTC()
	worst := worstOpen(open)
	rank := map[string]int{"operational": 0, "degraded": 1, "outage": 2}
	var grp *StatusGroup
	for _, m := range members {
		def := groups[m.group]
		if grp == nil || grp.Anchor != "g-"+strconv.Itoa(m.group) {
			v.Groups = append(v.Groups, StatusGroup{Name: def.Name, Anchor: "g-" + strconv.Itoa(m.group), State: "operational", Incidents: []StatusIncident{}})
			grp = &v.Groups[len(v.Groups)-1]
		}
		name := def.Services[m.service]
		im, isOpen := worst[name]
		st := stateOf(im, isOpen)
		if rank[st] > rank[grp.State] {
			grp.State = st
		}
		uptime, ok := figs.uptime[name]
		if !ok {
			uptime = 1
		}
		grp.Services = append(grp.Services, StatusService{Name: name, State: st, Uptime: uptime})
		for i, d := range figs.days[name] {
			if i >= len(grp.Days) {
				grp.Days = append(grp.Days, StatusDay{Date: d.Date, Availability: d.Availability})
			} else if d.Availability < grp.Days[i].Availability {
				grp.Days[i].Availability = d.Availability
			}
		}
		for _, inc := range recent[name] {
			if inc.Impact != incidents.ImpactNone {
				grp.Incidents = append(grp.Incidents, p.publicIncident(inc, def))
			}
		}
	}
	for i := range v.Groups {
		g := &v.Groups[i]
		slices.SortFunc(g.Incidents, func(a, b StatusIncident) int { return b.StartedAt.Compare(a.StartedAt) })
		g.Incidents = g.Incidents[:min(len(g.Incidents), statusIncidents)]
	}
	v.Groups = nonNilSlice(v.Groups)
	return v, nil
}

// publicIncident shows an incident without labels or internal details:
// its public_title annotation, else its own title when the group shows
// titles, else its impact and service; its labels only when the group
// shows them.
func (p *Pages) publicIncident(inc *incidents.Incident, g catalog.StatusGroup) StatusIncident {
	title := inc.Annotations["public_title"]
	if title == "" && g.ShowTitles {
		title = inc.Title
	}
	if title == "" {
		title = map[incidents.Impact]string{incidents.ImpactOutage: "Outage", incidents.ImpactDegraded: "Degraded performance"}[inc.Impact] + " of " + inc.Service
	}
	s := StatusIncident{Title: title, Impact: inc.Impact.String(), StartedAt: inc.StartedAt.UTC()}
	if !inc.ResolvedAt.IsZero() {
		t := inc.ResolvedAt.UTC()
		s.EndedAt = &t
	}
	if g.ShowLabels && len(inc.Labels) > 0 {
		s.Labels = maps.Clone(inc.Labels)
	}
	return s
}

// forEach calls f for 0 ≤ i < n, at most workers at a time, and returns
// the first error (the others' contexts are canceled then). An error that
// says a context ended counts only when no call failed otherwise: the
// others' cancellations must not hide the failure that caused them (an
// unknown incident is a 404, not a request that "ended").
func forEach(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	ended := func(err error) bool {
		return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	}
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					mu.Lock()
					if first == nil || (ended(first) && !ended(err)) {
						first = err
					}
					mu.Unlock()
					cancel(err)
				}
			}
		})
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(ctx)
}

// together runs fs at once and returns the first error (the others' contexts
// are canceled then).
func together(ctx context.Context, fs ...func(ctx context.Context) error) error {
	return forEach(ctx, len(fs), len(fs), func(ctx context.Context, i int) error { return fs[i](ctx) })
}
