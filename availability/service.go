package availability

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/fault"
)

// Burn-rate ranges, which end where the window does (at now for the
// windows that end now).
var recentRanges = []time.Duration{time.Hour, 24 * time.Hour}

// MaxDays bounds a daily series.
const MaxDays = 1000

// Options configure a Service.
type Options struct {
	// Source sums up incidents (required).
	Source Source
	// Catalog returns the current service catalog (required), e.g.
	// (*catalog.Watcher).Current.
	Catalog func() *catalog.Catalog
	// Config holds the impact weights and default windows; it is
	// validated (and defaulted) by New.
	Config Config
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger defaults to discarding.
	Logger *slog.Logger
}

func (o *Options) validate() error {
	if o.Source == nil {
		return errors.New("availability: a Source is required")
	}
	if o.Catalog == nil {
		return errors.New("availability: a Catalog is required")
	}
	if err := o.Config.Validate(); err != nil {
		return fmt.Errorf("availability: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Service computes availability figures from a Source and the catalog.
type Service struct {
	src     Source
	catalog func() *catalog.Catalog
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
}

// New builds a Service.
func New(opts Options) (*Service, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	return &Service{src: opts.Source, catalog: opts.Catalog, cfg: opts.Config, now: opts.Now, log: opts.Logger}, nil
}

// Config returns the validated configuration.
func (s *Service) Config() Config { return s.cfg }

// Location returns the current catalog's time zone, in which calendar
// windows and days are meant.
func (s *Service) Location() *time.Location { return s.current().Location() }

// Now returns the Service's current time, in whole seconds.
func (s *Service) Now() time.Time { return s.now().Truncate(time.Second).UTC() }

// ParseWindow parses a window relative to now in the catalog's time zone.
func (s *Service) ParseWindow(name string) (Window, error) {
	return ParseWindow(name, s.Now(), s.Location())
}

func (s *Service) current() *catalog.Catalog {
	if c := s.catalog(); c != nil {
		return c
	}
	return catalog.Empty(catalog.DefaultSLOTarget)
}

// All returns the figures of every catalogued service and of every
// uncatalogued service that has incidents, worst first (lowest
// availability, then least error budget left, then name).
func (s *Service) All(ctx context.Context, w Window, explain bool) ([]Figure, error) {
	cat := s.current()
	seen, err := s.src.SeenServices(ctx)
	if err != nil {
		return nil, fmt.Errorf("availability: %w", err)
	}
	names := cat.Uncatalogued(seen)
	for _, svc := range cat.Services() {
		names = append(names, svc.Name)
	}
	figs, err := s.figures(ctx, cat, names, nil, w, explain)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(figs, compareFigures)
	return figs, nil
}

// Service returns one service's figures. A service neither catalogued nor
// ever seen in incidents is an error wrapping fault.ErrNotFound.
func (s *Service) Service(ctx context.Context, name string, w Window, explain bool) (Figure, error) {
	cat := s.current()
	if err := s.checkKnown(ctx, cat, name); err != nil {
		return Figure{}, err
	}
	figs, err := s.figures(ctx, cat, []string{name}, []string{name}, w, explain)
	if err != nil {
		return Figure{}, err
	}
	return figs[0], nil
}

func (s *Service) checkKnown(ctx context.Context, cat *catalog.Catalog, name string) error {
	if _, ok := cat.Service(name); ok {
		return nil
	}
	seen, err := s.src.SeenServices(ctx)
	if err != nil {
		return fmt.Errorf("availability of %q: %w", name, err)
	}
	if !slices.Contains(seen, name) {
		return fmt.Errorf("%w: service %q is neither in the catalog nor in any incident", fault.ErrNotFound, name)
	}
	return nil
}

// figures computes the figures of names over w; filter limits the query
// (nil: every service).
func (s *Service) figures(ctx context.Context, cat *catalog.Catalog, names, filter []string, w Window, explain bool) ([]Figure, error) {
	now := s.Now()
	end := minTime(w.To, now)
	if end.Before(w.From) {
		end = w.From
	}
	// Maintenance over the window and the burn-rate ranges.
	lo, hi := minTime(w.From, end.Add(-slices.Max(recentRanges))), end
	maint := map[string][]catalog.Interval{}
	for _, name := range names {
		if ivs := catalog.WholeSeconds(cat.Maintenance(name, lo, hi)); len(ivs) > 0 {
			maint[name] = ivs
		}
	}
	raws, err := s.src.Downtime(ctx, Query{
		From: w.From, To: end, Now: now, Recent: recentRanges, Weights: s.cfg.ImpactWeights,
		Services: filter, Maintenance: maint, Explain: explain,
	})
	if err != nil {
		return nil, fmt.Errorf("availability over %s: %w", w, err)
	}
	byName := make(map[string]Raw, len(raws))
	for _, r := range raws {
		byName[r.Service] = r
	}
	out := make([]Figure, 0, len(names))
	for _, name := range names {
		in := figureInput{
			raw: byName[name], service: name, slo: cat.SLOTarget(name),
			window: w, end: end, maintenance: overlapSeconds(maint[name], w.From, end),
			recent: recentRanges, explain: explain, maint: maint[name], weights: s.cfg.ImpactWeights,
		}
		if svc, ok := cat.Service(name); ok {
			in.owner, in.catalogued = svc.Owner, true
		}
		for _, d := range recentRanges {
			in.recentMaint = append(in.recentMaint, overlapSeconds(maint[name], end.Add(-d), end))
		}
		out = append(out, computeFigure(in))
	}
	return out, nil
}

// Daily returns a service's figures per calendar day of the catalog's time
// zone, from the day of from to the day of to, both included (their dates
// are read in their own location). Days that have not started are left
// out; today counts up to now.
func (s *Service) Daily(ctx context.Context, name string, from, to time.Time) ([]Day, error) {
	cat := s.current()
	loc := cat.Location()
	now := s.Now()
	days, err := dayIntervals(loc, from, to, now)
	if err != nil {
		return nil, err
	}
	if err := s.checkKnown(ctx, cat, name); err != nil {
		return nil, err
	}
	if len(days) == 0 {
		return []Day{}, nil
	}
	maint := catalog.WholeSeconds(cat.Maintenance(name, days[0].Start, days[len(days)-1].End))
	raws, err := s.src.Daily(ctx, DailyQuery{
		Service: name, Days: days, Now: now, Weights: s.cfg.ImpactWeights, Maintenance: maint,
	})
	if err != nil {
		return nil, fmt.Errorf("daily availability of %q: %w", name, err)
	}
	return toDays(days, loc, raws, maint), nil
}

// ServiceInfo is a service as the catalog (or, for uncatalogued services,
// the incidents) knows it.
type ServiceInfo struct {
	Name         string   `json:"name"`
	Catalogued   bool     `json:"catalogued"`
	Owner        string   `json:"owner"`
	Tier         int      `json:"tier"`
	SLOTarget    float64  `json:"slo_target"`
	Channel      string   `json:"channel"`
	System       string   `json:"system"`
	Description  string   `json:"description"`
	Dependencies []string `json:"dependencies"`
	DashboardURL string   `json:"dashboard_url,omitempty"`
	RunbookURL   string   `json:"runbook_url,omitempty"`
}

// Services lists every catalogued service and every uncatalogued one that
// has incidents, sorted by name.
func (s *Service) Services(ctx context.Context) ([]ServiceInfo, error) {
	cat := s.current()
	seen, err := s.src.SeenServices(ctx)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var out []ServiceInfo
	for _, svc := range cat.Services() {
		out = append(out, infoOf(cat, svc))
	}
	for _, name := range cat.Uncatalogued(seen) {
		out = append(out, ServiceInfo{Name: name, SLOTarget: cat.DefaultSLO(), Dependencies: []string{}})
	}
	slices.SortFunc(out, func(a, b ServiceInfo) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out, nil
}

// Info returns one service's catalog entry, or an error wrapping
// fault.ErrNotFound.
func (s *Service) Info(ctx context.Context, name string) (ServiceInfo, error) {
	cat := s.current()
	if svc, ok := cat.Service(name); ok {
		return infoOf(cat, svc), nil
	}
	if err := s.checkKnown(ctx, cat, name); err != nil {
		return ServiceInfo{}, err
	}
	return ServiceInfo{Name: name, SLOTarget: cat.DefaultSLO(), Dependencies: []string{}}, nil
}

func infoOf(cat *catalog.Catalog, svc catalog.Service) ServiceInfo {
	return ServiceInfo{
		Name: svc.Name, Catalogued: true, Owner: svc.Owner, Tier: svc.Tier, SLOTarget: svc.SLOTarget,
		Channel: cat.Channel(svc.Name), System: svc.System, Description: svc.Description,
		Dependencies: nonNil(cat.Dependencies(svc.Name)), DashboardURL: svc.DashboardURL, RunbookURL: svc.RunbookURL,
	}
}
