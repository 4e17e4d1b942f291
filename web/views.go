package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/incidents"
)

// HistoryDays is how many days the daily bars of the service and status
// pages show.
const HistoryDays = 90

// maxOpen bounds how many open incidents a page reads.
const maxOpen = 1000

// IncidentRow is an incident in a list.
type IncidentRow struct {
	ID        string     `json:"id"`
	Service   string     `json:"service"`
	Owner     string     `json:"owner"`
	Title     string     `json:"title"`
	Impact    string     `json:"impact"`
	State     string     `json:"state"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"resolved_at"`
	// DurationSeconds runs up to now while the incident is open.
	DurationSeconds int64 `json:"duration_seconds"`
}

// Pagination tells a list's page and its neighbours (0: none).
type Pagination struct {
	Page  int `json:"page"`
	Pages int `json:"pages"`
	Total int `json:"total"`
	// Query keeps the list's filters in the links to other pages
	// ("squad=x&"), empty or ending in "&".
	Query template.URL `json:"-"`
}

// paginate cuts s to page (1-based) of size n.
func paginate[T any](s []T, page, n int) ([]T, Pagination) {
	pages := max((len(s)+n-1)/n, 1)
	page = min(max(page, 1), pages)
	lo := min((page-1)*n, len(s))
	hi := min(lo+n, len(s))
	return s[lo:hi], Pagination{Page: page, Pages: pages, Total: len(s)}
}

func (p *Pages) row(inc *incidents.Incident, cat *catalog.Catalog, now time.Time) IncidentRow {
	r := IncidentRow{
		ID: inc.ID, Service: inc.Service, Title: inc.Title, Impact: inc.Impact.String(),
		State: string(inc.State), StartedAt: inc.StartedAt.UTC(),
	}
	if sv, ok := cat.Service(inc.Service); ok {
		r.Owner = sv.Owner
	}
	end := now
	if !inc.ResolvedAt.IsZero() {
		t := inc.ResolvedAt.UTC()
		r.EndedAt, end = &t, t
	}
	r.DurationSeconds = int64(end.Sub(inc.StartedAt) / time.Second)
	return r
}

// openIncidents returns the open incidents, worst impact first, then the
// oldest first.
func (p *Pages) openIncidents(ctx context.Context) ([]*incidents.Incident, error) {
	states := []incidents.State{incidents.StateFiring, incidents.StateAcknowledged}
	byState := make([][]*incidents.Incident, len(states))
	err := forEach(ctx, len(states), len(states), func(ctx context.Context, i int) (err error) {
		byState[i], err = incidents.ListUpTo(ctx, p.o.Incidents.List, incidents.Filter{State: states[i]}, maxOpen)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := slices.Concat(byState...)
	slices.SortFunc(out, func(a, b *incidents.Incident) int {
		if c := cmp.Compare(b.Impact, a.Impact); c != 0 {
			return c
		}
		if c := a.StartedAt.Compare(b.StartedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// windows returns the default windows, parsed.
func (p *Pages) windows() ([]availability.Window, error) {
	var out []availability.Window
	for _, name := range p.o.Availability.Config().Windows {
		w, err := p.o.Availability.ParseWindow(name)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// primaryWindow is the window lists are sorted by: 30d if it is a
// default window, else the longest default window.
func primaryWindow(ws []availability.Window) int {
	best := 0
	for i, w := range ws {
		if w.String() == availability.DefaultWindow {
			return i
		}
		if w.Duration() > ws[best].Duration() {
			best = i
		}
	}
	return best
}

// primary returns the index of the window lists are sorted by among the
// default windows.
func (p *Pages) primary() (int, error) {
	ws, err := p.windows()
	if err != nil {
		return 0, err
	}
	return primaryWindow(ws), nil
}

// ServiceRow is a service's figures over the default windows.
type ServiceRow struct {
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	Tier      int       `json:"tier"`
	SLOTarget float64   `json:"slo_target"`
	Figures   []FigCell `json:"figures"`
	// Open is the worst impact of its open incidents, "" when none.
	Open string `json:"open,omitempty"`
}

// FigCell is one window's availability and error budget left.
type FigCell struct {
	Window               string  `json:"window"`
	Availability         float64 `json:"availability"`
	ErrorBudgetRemaining float64 `json:"error_budget_remaining"`
}

// windowFigures are every service's figures over each default window,
// worst first (Availability.All).
type windowFigures struct {
	names []string
	figs  [][]availability.Figure
	prim  int // the window lists are sorted by (primaryWindow)
}

func (p *Pages) loadWindowFigures(ctx context.Context, _ *catalog.Catalog) (windowFigures, error) {
	ws, err := p.windows()
	if err != nil {
		return windowFigures{}, err
	}
	out := windowFigures{names: make([]string, len(ws)), figs: make([][]availability.Figure, len(ws)), prim: primaryWindow(ws)}
	for i, w := range ws {
		out.names[i] = w.String()
		if out.figs[i], err = p.o.Availability.All(ctx, w, false); err != nil {
			return windowFigures{}, err
		}
	}
	return out, nil
}

// serviceRows returns every service's figures over the default windows
// and when they were computed, worst first by the primary window, keeping
// those keep accepts.
func (p *Pages) serviceRows(ctx context.Context, cat *catalog.Catalog, keep func(name string) bool) ([]ServiceRow, []string, time.Time, error) {
	tiers := map[string]int{}
	for _, sv := range cat.Services() {
		tiers[sv.Name] = sv.Tier
	}
	wf, asOf, err := p.windowFigures.get(ctx, cat)
	if err != nil {
		return nil, nil, asOf, err
	}
	ws := wf.names
	byName := map[string]*ServiceRow{}
	var order []string
	prim := wf.prim
	for i, figs := range wf.figs {
		for _, f := range figs {
			if !keep(f.Service) {
				continue
			}
			r := byName[f.Service]
			if r == nil {
				r = &ServiceRow{Name: f.Service, Owner: f.Owner, SLOTarget: f.SLOTarget, Figures: make([]FigCell, len(ws))}
				r.Tier = tiers[f.Service]
				byName[f.Service] = r
			}
			r.Figures[i] = FigCell{Window: ws[i], Availability: f.Availability, ErrorBudgetRemaining: f.ErrorBudgetRemaining}
			if i == prim {
				order = append(order, f.Service) // All sorts worst first
			}
		}
	}
	out := make([]ServiceRow, 0, len(order))
	for _, name := range order {
		out = append(out, *byName[name])
	}
	return out, ws, asOf.UTC(), nil
}

// OverviewView is the overview page: open incidents, then services worst
// first, filtered by squad and tier.
type OverviewView struct {
	Squad        string        `json:"squad,omitempty"`
	Tier         int           `json:"tier,omitempty"`
	Squads       []string      `json:"-"`
	Tiers        []int         `json:"-"`
	Open         []IncidentRow `json:"open_incidents"`
	Windows      []string      `json:"windows"`
	Services     []ServiceRow  `json:"services"`
	ServicesPage Pagination    `json:"services_page"`
	// AsOf is when the services' figures were computed (see
	// Options.RefreshInterval); open incidents are current.
	AsOf time.Time `json:"figures_as_of"`
}

func (p *Pages) overview(ctx context.Context, squad string, tier, page int) (OverviewView, error) {
	cat := p.o.Catalog()
	now := p.o.Now()
	v := OverviewView{Squad: squad, Tier: tier, Open: []IncidentRow{}}
	for _, sq := range cat.Squads() {
		v.Squads = append(v.Squads, sq.Name)
	}
	tiers := map[int]bool{}
	svcs := map[string]catalog.Service{}
	for _, sv := range cat.Services() {
		svcs[sv.Name] = sv
		if sv.Tier > 0 {
			tiers[sv.Tier] = true
		}
	}
	v.Tiers = slices.Sorted(mapKeys(tiers))
	keep := func(name string) bool {
		sv := svcs[name]
		return (squad == "" || sv.Owner == squad) && (tier == 0 || sv.Tier == tier)
	}
	open, err := p.openIncidents(ctx)
	if err != nil {
		return v, err
	}
	for _, inc := range open {
		if keep(inc.Service) {
			v.Open = append(v.Open, p.row(inc, cat, now))
		}
	}
	rows, names, asOf, err := p.serviceRows(ctx, cat, keep)
	if err != nil {
		return v, err
	}
	v.AsOf = asOf
	markOpen(rows, open)
	v.Windows = names
	v.Services, v.ServicesPage = paginate(rows, page, p.o.PageSize)
	q := url.Values{}
	if squad != "" {
		q.Set("squad", squad)
	}
	if tier != 0 {
		q.Set("tier", strconv.Itoa(tier))
	}
	if len(q) > 0 {
		v.ServicesPage.Query = template.URL(q.Encode() + "&")
	}
	return v, nil
}

// worstOpen maps each service with open incidents to their worst impact.
func worstOpen(open []*incidents.Incident) map[string]incidents.Impact {
	worst := map[string]incidents.Impact{}
	for _, inc := range open {
		if cur, ok := worst[inc.Service]; !ok || inc.Impact > cur {
			worst[inc.Service] = inc.Impact
		}
	}
	return worst
}

func markOpen(rows []ServiceRow, open []*incidents.Incident) {
	worst := worstOpen(open)
	for i := range rows {
		if im, ok := worst[rows[i].Name]; ok {
			rows[i].Open = im.String()
		}
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Segment is a stretch of an incident at one impact.
type Segment struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Impact string    `json:"impact"`
	impact incidents.Impact
}

// Seconds is the segment's length in whole seconds.
func (s Segment) Seconds() int64 { return int64(s.End.Sub(s.Start) / time.Second) }

// impactSegments splits an incident into stretches of the worst impact
// of the alerts firing at each instant (for incidents without alerts, its
// firing periods at its own impact). Open ends run to now.
func impactSegments(inc *incidents.Incident, now time.Time) []Segment {
	type span struct {
		s, e time.Time
		im   incidents.Impact
	}
	var spans []span
	endOr := func(t time.Time) time.Time {
		if t.IsZero() || t.After(now) {
			return now
		}
		return t
	}
	for _, a := range inc.Alerts {
		end := a.EndsAt
		if a.Status == incidents.AlertFiring {
			end = time.Time{}
		}
		spans = append(spans, span{a.StartsAt, endOr(end), a.Impact})
	}
	if len(spans) == 0 {
		for _, pe := range inc.Periods {
			spans = append(spans, span{pe.Start, endOr(pe.End), inc.Impact})
		}
	}
	var cuts []time.Time
	for _, sp := range spans {
		cuts = append(cuts, sp.s, sp.e)
	}
	slices.SortFunc(cuts, time.Time.Compare)
	cuts = slices.CompactFunc(cuts, time.Time.Equal)
	var out []Segment
	for i := 0; i+1 < len(cuts); i++ {
		a, b := cuts[i], cuts[i+1]
		worst, any := incidents.ImpactNone, false
		for _, sp := range spans {
			if !sp.s.After(a) && !sp.e.Before(b) {
				worst, any = max(worst, sp.im), true
			}
		}
		if !any {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End.Equal(a) && out[n-1].impact == worst {
			out[n-1].End = b
			continue
		}
		out = append(out, Segment{Start: a.UTC(), End: b.UTC(), Impact: worst.String(), impact: worst})
	}
	return out
}

// Link is a labelled URL.
type Link struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}

// IncidentView is the incident page.
type IncidentView struct {
	Incident   incidents.IncidentJSON `json:"incident"`
	Owner      string                 `json:"owner"`
	Segments   []Segment              `json:"segments"`
	Suspects   []changes.Suspect      `json:"suspects"`
	Upstream   *IncidentRow           `json:"upstream,omitempty"`
	Downstream []IncidentRow          `json:"downstream"`
	Links      []Link                 `json:"links"`
	From, To   time.Time              `json:"-"`
}

func (p *Pages) incident(ctx context.Context, id string) (IncidentView, error) {
	var v IncidentView
	cat := p.o.Catalog()
	now := p.o.Now()
	// Everything the page shows is read at once; what depends on the
	// incident follows reading it.
	var (
		inc    *incidents.Incident
		getErr error
		tl     []incidents.Event
		up     *incidents.Incident
		down   []*incidents.Incident
		chat   string
	)
	err := together(ctx,
		func(ctx context.Context) error {
			if inc, getErr = p.o.Incidents.Get(ctx, id); getErr != nil {
				return getErr
			}
			return together(ctx,
				func(ctx context.Context) error {
					if inc.CausedBy != "" {
						up, _ = p.o.Incidents.Get(ctx, inc.CausedBy) // gone: not shown
					}
					return nil
				},
				func(ctx context.Context) (err error) {
					down, err = p.downstreamIncidents(ctx, cat, inc)
					return err
				},
			)
		},
		func(ctx context.Context) (err error) {
			tl, err = p.o.Incidents.Timeline(ctx, id)
			return err
		},
		func(ctx context.Context) (err error) {
			v.Suspects, err = p.o.Changes.Suspects(ctx, id)
			return err
		},
		func(ctx context.Context) error {
			if p.o.SlackThread == nil {
				return nil
			}
			// The page is worth more than the link: a failure only costs it.
			u, err := p.o.SlackThread(ctx, id)
			if err != nil {
				p.o.Logger.Warn("page: no Slack thread link", "incident", id, "err", err)
			}
			chat = u
			return nil
		},
	)
	if getErr != nil && !errors.Is(getErr, context.Canceled) {
		// An unknown incident is that, whatever else failed. (Its
		// suspects may say so first, and cancel the read of it.)
		return v, getErr
	}
	if err != nil {
		return v, err
	}
	v.Incident = incidents.ToJSON(inc, tl)
	v.Incident.Timeline = nonNilSlice(incidents.OwnTimeline(inc, tl))
	if sv, ok := cat.Service(inc.Service); ok {
		v.Owner = sv.Owner
	}
	v.Segments = impactSegments(inc, now)
	v.From, v.To = inc.StartedAt, now
	if !inc.ResolvedAt.IsZero() {
		v.To = inc.ResolvedAt
	}
	if len(v.Segments) > 0 {
		v.From = minT(v.From, v.Segments[0].Start)
		v.To = maxT(v.To, v.Segments[len(v.Segments)-1].End)
	}
	v.Suspects = nonNilSlice(v.Suspects)
	if up != nil {
		r := p.row(up, cat, now)
		v.Upstream = &r
	}
	for _, d := range down {
		v.Downstream = append(v.Downstream, p.row(d, cat, now))
	}
	v.Downstream = nonNilSlice(v.Downstream)
	v.Links = p.incidentLinks(inc)
	if chat != "" {
		v.Links = append(v.Links, Link{"Slack thread", chat})
	}
	return v, nil
}

// downstreamIncidents finds the incidents linked to inc as their upstream
// cause, among the incidents of the services that depend on its service.
func (p *Pages) downstreamIncidents(ctx context.Context, cat *catalog.Catalog, inc *incidents.Incident) ([]*incidents.Incident, error) {
	var deps []string
	for _, sv := range cat.Services() {
		if slices.Contains(cat.Upstream(sv.Name), inc.Service) {
			deps = append(deps, sv.Name)
		}
	}
	var until time.Time
	if !inc.ResolvedAt.IsZero() {
		until = inc.ResolvedAt.Add(time.Second)
	}
	var out []*incidents.Incident
	for lo := 0; lo < len(deps); lo += maxOpen {
		byService, err := p.o.Incidents.RecentByService(ctx, deps[lo:min(lo+maxOpen, len(deps))], inc.StartedAt.Add(-time.Minute), until, 100)
		if err != nil {
			return nil, err
		}
		for _, list := range byService {
			for _, d := range list {
				if d.CausedBy == inc.ID {
					out = append(out, d)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b *incidents.Incident) int {
		return cmp.Or(a.StartedAt.Compare(b.StartedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func (p *Pages) incidentLinks(inc *incidents.Incident) []Link {
	var out []Link
	if inc.ExternalURL != "" {
		out = append(out, Link{"Alertmanager", inc.ExternalURL})
	}
	if inc.GeneratorURL != "" {
		out = append(out, Link{"Source", inc.GeneratorURL})
	}
	if inc.RunbookURL != "" {
		out = append(out, Link{"Runbook", inc.RunbookURL})
	}
	if u := p.o.DashboardURL(inc.Service); u != "" {
		out = append(out, Link{"Grafana dashboard", u})
	}
	return nonNilSlice(out)
}

// ServiceView is the service page.
type ServiceView struct {
	availability.ServiceInfo
	Downstream []string              `json:"downstream"`
	Figures    []availability.Figure `json:"figures"`
	Days       []availability.Day    `json:"days"`
	Incidents  []IncidentRow         `json:"incidents"`
	NextCursor string                `json:"next_cursor,omitempty"`
	Changes    []changes.Change      `json:"changes"`
	Dashboard  string                `json:"dashboard_url,omitempty"`
	From, To   time.Time             `json:"-"`
	// Spans are the incidents of the last HistoryDays days, for the
	// time axis the changes share.
	Spans []IncidentRow `json:"-"`
	// Explained lists, per window, the incidents behind its figure.
	Explained []Explanation `json:"explained"`
	// AsOf is when the figures and daily bars were computed (see
	// Options.RefreshInterval); the lists are current.
	AsOf time.Time `json:"figures_as_of"`
}

// Explanation is what the incidents of one window cost.
type Explanation struct {
	Window string     `json:"window"`
	Items  []CostItem `json:"incidents"`
}

// CostItem is one incident's time inside a window, and that time weighed
// by its impact. Overlapping incidents each count here; the figure counts
// overlaps once.
type CostItem struct {
	ID              string  `json:"id"`
	Title           string  `json:"title"`
	Impact          string  `json:"impact"`
	Seconds         int64   `json:"seconds_in_window"`
	WeightedSeconds float64 `json:"weighted_seconds"`
}

func (p *Pages) service(ctx context.Context, name, cursor string) (ServiceView, error) {
	var v ServiceView
	info, err := p.o.Availability.Info(ctx, name)
	if err != nil {
		return v, err
	}
	cat := p.o.Catalog()
	now := p.o.Now()
	v.ServiceInfo = info
	v.Downstream = []string{}
	for _, sv := range cat.Services() {
		if slices.Contains(cat.Dependencies(sv.Name), name) {
			v.Downstream = append(v.Downstream, sv.Name)
		}
	}
	v.To = now
	v.From = now.Add(-HistoryDays * 24 * time.Hour)
	// The figures and the daily bars come from those computed for every
	// service at once (Options.RefreshInterval); the lists are read
	// together.
	var (
		list, spans []*incidents.Incident
		next        string
	)
	err = together(ctx,
		func(ctx context.Context) (err error) {
			v.Figures, v.AsOf, err = p.serviceFigures(ctx, cat, name)
			return err
		},
		func(ctx context.Context) (err error) {
			v.Days, err = p.serviceDays(ctx, cat, name)
			return err
		},
		func(ctx context.Context) (err error) {
			list, next, err = p.o.Incidents.List(ctx, incidents.Filter{Service: name, Limit: p.o.PageSize, Cursor: cursor})
			return err
		},
		func(ctx context.Context) (err error) {
			spans, err = incidents.ListUpTo(ctx, p.o.Incidents.List, incidents.Filter{Service: name, Since: v.From}, 1000)
			return err
		},
		func(ctx context.Context) (err error) {
			v.Changes, err = p.o.Changes.List(ctx, changes.Query{Services: []string{name}, From: v.From, Limit: 200})
			return err
		},
	)
	if err != nil {
		return v, err
	}
	v.NextCursor = next
	v.Incidents = []IncidentRow{}
	for _, inc := range list {
		v.Incidents = append(v.Incidents, p.row(inc, cat, now))
	}
	for _, inc := range spans {
		v.Spans = append(v.Spans, p.row(inc, cat, now))
	}
	v.Changes = nonNilSlice(v.Changes)
	v.Dashboard = p.o.DashboardURL(name)
	for i := range v.Figures {
		v.Figures[i].IncidentIDs = overlapping(spans, v.Figures[i].From, minT(v.Figures[i].To, v.AsOf), now)
	}
	v.Explained = p.explain(v.Figures, spans, now)
	return v, nil
}

// serviceFigures returns a service's figures over the default windows,
// from those computed for every service when they are kept, and when they
// were computed.
func (p *Pages) serviceFigures(ctx context.Context, cat *catalog.Catalog, name string) ([]availability.Figure, time.Time, error) {
	if p.o.RefreshInterval <= 0 { // nothing kept: this service's alone
		asOf := p.o.Now()
		ws, err := p.windows()
		if err != nil {
			return nil, asOf, err
		}
		out := make([]availability.Figure, len(ws))
		for i, w := range ws {
			if out[i], err = p.o.Availability.Service(ctx, name, w, false); err != nil {
				return nil, asOf, err
			}
		}
		return out, asOf.UTC(), nil
	}
	wf, asOf, err := p.windowFigures.get(ctx, cat)
	if err != nil {
		return nil, asOf, err
	}
	out := make([]availability.Figure, len(wf.names))
	for i, figs := range wf.figs {
		j := slices.IndexFunc(figs, func(f availability.Figure) bool { return f.Service == name })
		if j < 0 {
			// Not among them (an incident of a new service since):
			// computed alone.
			w, err := p.o.Availability.ParseWindow(wf.names[i])
			if err != nil {
				return nil, asOf, err
			}
			if out[i], err = p.o.Availability.Service(ctx, name, w, false); err != nil {
				return nil, asOf, err
			}
			continue
		}
		out[i] = figs[j]
	}
	return out, asOf.UTC(), nil
}

// serviceDays returns a service's last HistoryDays days, from those
// computed for every catalogued service when they are kept.
func (p *Pages) serviceDays(ctx context.Context, cat *catalog.Catalog, name string) ([]availability.Day, error) {
	if _, ok := cat.Service(name); ok && p.o.RefreshInterval > 0 {
		sf, _, err := p.statusFigures.get(ctx, cat)
		if err != nil {
			return nil, err
		}
		if days, ok := sf.days[name]; ok {
			return days, nil
		}
	}
	from, to := p.historyDays(cat)
	return p.o.Availability.Daily(ctx, name, from, to)
}

// overlapping returns the IDs of the incidents with a period (without
// periods, their time from start to resolution) overlapping [from, to),
// sorted: the incidents a figure over that window counts. Open periods
// run to now.
func overlapping(incs []*incidents.Incident, from, to, now time.Time) []string {
	var out []string
	for _, inc := range incs {
		periods := inc.Periods
		if len(periods) == 0 {
			periods = []incidents.Period{{Start: inc.StartedAt, End: inc.ResolvedAt}}
		}
		for _, pe := range periods {
			end := pe.End
			if end.IsZero() {
				end = now
			}
			if pe.Start.Before(to) && end.After(from) {
				out = append(out, inc.ID)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// explain lists the incidents behind each figure with their time in its
// window, from the incidents of the last HistoryDays days (older ones
// appear by ID alone).
func (p *Pages) explain(figs []availability.Figure, incs []*incidents.Incident, now time.Time) []Explanation {
	byID := make(map[string]*incidents.Incident, len(incs))
	for _, inc := range incs {
		byID[inc.ID] = inc
	}
	weights := p.o.Availability.Config().ImpactWeights
	out := make([]Explanation, 0, len(figs))
	for _, f := range figs {
		e := Explanation{Window: f.Window, Items: []CostItem{}}
		end := minT(f.To, now)
		for _, id := range f.IncidentIDs {
			inc, ok := byID[id]
			if !ok {
				e.Items = append(e.Items, CostItem{ID: id})
				continue
			}
			it := CostItem{ID: id, Title: inc.Title, Impact: inc.Impact.String()}
			for _, s := range impactSegments(inc, now) {
				if lo, hi := maxT(s.Start, f.From), minT(s.End, end); lo.Before(hi) {
					d := int64(hi.Sub(lo) / time.Second)
					it.Seconds += d
					it.WeightedSeconds += weights.Weight(s.impact) * float64(d)
				}
			}
			e.Items = append(e.Items, it)
		}
		slices.SortFunc(e.Items, func(a, b CostItem) int {
			return cmp.Or(cmp.Compare(b.WeightedSeconds, a.WeightedSeconds), cmp.Compare(b.Seconds, a.Seconds), cmp.Compare(a.ID, b.ID))
		})
		out = append(out, e)
	}
	return out
}

// historyDays returns the first and the last of the last HistoryDays
// days, today included, in the catalog's time zone.
func (p *Pages) historyDays(cat *catalog.Catalog) (from, to time.Time) {
	loc := cat.Location()
	to = p.o.Now().In(loc)
	return time.Date(to.Year(), to.Month(), to.Day()-(HistoryDays-1), 0, 0, 0, 0, loc), to
}

// SquadView is the squad page: its services and their open incidents.
type SquadView struct {
	Name     string        `json:"name"`
	Channel  string        `json:"channel"`
	Windows  []string      `json:"windows"`
	Services []ServiceRow  `json:"services"`
	Open     []IncidentRow `json:"open_incidents"`
	// AsOf is when the services' figures were computed.
	AsOf time.Time `json:"figures_as_of"`
}

func (p *Pages) squad(ctx context.Context, name string) (SquadView, error) {
	cat := p.o.Catalog()
	v := SquadView{Name: name, Open: []IncidentRow{}}
	owned := map[string]bool{}
	for _, sv := range cat.Services() {
		if sv.Owner == name {
			owned[sv.Name] = true
		}
	}
	sq, ok := cat.Squad(name)
	if !ok && len(owned) == 0 {
		return v, fmt.Errorf("%w: squad %q owns no service in the catalog", incidents.ErrNotFound, name)
	}
	v.Channel = sq.Channel
	rows, names, asOf, err := p.serviceRows(ctx, cat, func(s string) bool { return owned[s] })
	if err != nil {
		return v, err
	}
	v.AsOf = asOf
	open, err := p.openIncidents(ctx)
	if err != nil {
		return v, err
	}
	markOpen(rows, open)
	v.Services, v.Windows = nonNilSlice(rows), names
	now := p.o.Now()
	for _, inc := range open {
		if owned[inc.Service] {
			v.Open = append(v.Open, p.row(inc, cat, now))
		}
	}
	return v, nil
}

func nonNilSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func minT(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxT(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
