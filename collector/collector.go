package collector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/incidents"
)

// Defaults for Options.
const (
	DefaultRefreshInterval = 30 * time.Second
	DefaultRefreshTimeout  = time.Minute
	DefaultScrapeTimeout   = 5 * time.Second
)

// DefaultWindows returns the windows exported unless configured: 1h, 24h,
// 7d and 30d.
func DefaultWindows() []string { return availability.DefaultWindows() }

// Figures knows how to compute every service's availability figures over a
// window. *availability.Service implements it.
type Figures interface {
	// ParseWindow reads a window name relative to now.
	ParseWindow(name string) (availability.Window, error)
	// All returns the figures of every catalogued service and of every
	// uncatalogued service that has incidents.
	All(ctx context.Context, w availability.Window, explain bool) ([]availability.Figure, error)
}

// IncidentCounter knows how to count every service's incidents at once.
// chstore implements it.
type IncidentCounter interface {
	// IncidentCounts returns the stored incidents (their latest versions)
	// counted by service, current impact, current state and the impact
	// they were opened with. Groups without incidents are absent.
	IncidentCounts(ctx context.Context) ([]IncidentCount, error)
}

// IncidentCount is the number of one service's incidents that have one
// current impact and state and were opened with one impact, and the sum of
// their flaps.
type IncidentCount struct {
	Service string
	// Impact and State are the incidents' current ones.
	Impact incidents.Impact
	State  incidents.State
	// OpenedImpact is the impact the incidents were opened with. It never
	// changes, so that counts by it only grow.
	OpenedImpact incidents.Impact
	// Incidents is how many incidents the group holds.
	Incidents int64
	// Flaps sums the group's incidents' flaps (reopenings).
	Flaps int64
}

// DORASource knows how to compute every service's delivery (DORA) figures
// over a window, as GET /api/v1/dora does. cmd/nines adapts
// *changes.Service.DORA to it.
type DORASource interface {
	DORA(ctx context.Context, w availability.Window) ([]DORAFigure, error)
}

// DORAFigure is one service's delivery figures over a window (the fields
// of changes.DORA the collector exports).
type DORAFigure struct {
	Service string
	// Owner is the service's squad from the catalog ("" if none).
	Owner string
	// DeploymentsPerDay is the deployment frequency: completed deploys
	// per day of the window.
	DeploymentsPerDay float64
	// ChangeFailureRate is failed deploys / deploys; nil without deploys.
	ChangeFailureRate *float64
	// RollbackRate is rollbacks / deploys; nil without deploys.
	RollbackRate *float64
	// TimeToRestoreSeconds is the mean time to restore of the incidents
	// that started in the window and were resolved; nil when none were.
	TimeToRestoreSeconds *float64
}

// Options configure a Collector.
type Options struct {
	// Figures computes availability figures (required), e.g.
	// *availability.Service.
	Figures Figures
	// Counts counts incidents (required), e.g. *chstore.Store.
	Counts IncidentCounter
	// DORA, if set, computes the delivery figures exported per window
	// (one more query per window and refresh).
	DORA DORASource
	// Windows are the windows exported, as availability.ParseWindow reads
	// them (default DefaultWindows). Each costs one query per refresh.
	Windows []string
	// RefreshInterval is how often Run recomputes the values
	// (DefaultRefreshInterval).
	RefreshInterval time.Duration
	// RefreshTimeout bounds one refresh (DefaultRefreshTimeout).
	RefreshTimeout time.Duration
	// ScrapeTimeout is the longest a scrape waits for the first refresh
	// (DefaultScrapeTimeout). Once there are values, scrapes never wait.
	ScrapeTimeout time.Duration
	// Registerer, if set, registers the Collector.
	Registerer prometheus.Registerer
	// Now is the clock (time.Now).
	Now func() time.Time
	// Logger defaults to discarding.
	Logger *slog.Logger
}

func (o *Options) validate() error {
	if o.Figures == nil {
		return errors.New("collector: Figures are required")
	}
	if o.Counts == nil {
		return errors.New("collector: an IncidentCounter is required")
	}
	if len(o.Windows) == 0 {
		o.Windows = DefaultWindows()
	}
	windows, err := NormalizeWindows(o.Windows)
	if err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	o.Windows = windows
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"refresh interval", &o.RefreshInterval, DefaultRefreshInterval},
		{"refresh timeout", &o.RefreshTimeout, DefaultRefreshTimeout},
		{"scrape timeout", &o.ScrapeTimeout, DefaultScrapeTimeout},
	} {
		switch {
		case *d.v < 0:
			return fmt.Errorf("collector: %s must not be negative, got %s", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// NormalizeWindows checks window names as availability.ParseWindow reads
// them and returns them as they appear in the window label (trimmed,
// lowercase). Duplicates are an error.
func NormalizeWindows(names []string) ([]string, error) {
	now := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]string, 0, len(names))
	seen := map[string]bool{}
	for _, name := range names {
		w, err := availability.ParseWindow(name, now, time.UTC)
		if err != nil {
			return nil, fmt.Errorf("window %q: %w", name, err)
		}
		if seen[w.Name] {
			return nil, fmt.Errorf("window %q given twice", w.Name)
		}
		seen[w.Name] = true
		out = append(out, w.Name)
	}
	return out, nil
}

// Collector implements prometheus.Collector over nines' figures and
// incident counts: it serves the values of the last successful refresh.
type Collector struct {
	figures        Figures
	counts         IncidentCounter
	dora           DORASource
	windows        []string
	interval       time.Duration
	refreshTimeout time.Duration
	scrapeTimeout  time.Duration
	now            func() time.Time
	log            *slog.Logger
	d              descs
	duration       prometheus.Histogram
	failures       prometheus.Counter

	mu       sync.Mutex
	cache    *cache // the last good values; nil until a refresh succeeds
	up       bool   // the last refresh succeeded
	inflight *flight
	runCtx   context.Context // Run's context while it runs, else nil
}

// cache is what a successful refresh computed.
type cache struct {
	metrics []prometheus.Metric
	at      time.Time // when the refresh started
}

// flight is one refresh in progress; done closes when it ends.
type flight struct {
	done chan struct{}
	err  error
}

// New builds a Collector and, if opts.Registerer is set, registers it.
// Nothing is computed until Run or Refresh.
func New(opts Options) (*Collector, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c := &Collector{
		figures:        opts.Figures,
		counts:         opts.Counts,
		dora:           opts.DORA,
		windows:        opts.Windows,
		interval:       opts.RefreshInterval,
		refreshTimeout: opts.RefreshTimeout,
		scrapeTimeout:  opts.ScrapeTimeout,
		now:            opts.Now,
		log:            opts.Logger.With("component", "collector"),
		d:              newDescs(),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:                            "nines_collector_refresh_duration_seconds",
			Help:                            "Time to recompute the exported figures and incident counts from the store, successful or not.",
			Buckets:                         []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  100,
			NativeHistogramMinResetDuration: time.Hour,
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "nines_collector_refresh_failures_total",
			Help: "Refreshes of the exported figures that failed; the last good values are served meanwhile.",
		}),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("collector: register metrics: %w", err)
		}
	}
	return c, nil
}

// Windows returns the exported windows, as they appear in the window label.
func (c *Collector) Windows() []string { return append([]string(nil), c.windows...) }

// Run refreshes the values at once and then every refresh interval, until
// ctx ends; it returns nil then, once no refresh is running. Failed
// refreshes are logged and reported by nines_collector_up. A refresh that
// outlasts the interval delays the next one rather than overlapping it.
func (c *Collector) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.runCtx != nil {
		c.mu.Unlock()
		return errors.New("collector: already running")
	}
	c.runCtx = ctx
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.runCtx = nil
		f := c.inflight
		c.mu.Unlock()
		if f != nil {
			<-f.done
		}
	}()

	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		_ = c.Refresh(ctx) // logged, and reported by nines_collector_up
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Refresh recomputes the values now, or joins the refresh in progress, and
// waits for it or for ctx. The refresh itself is bounded by the refresh
// timeout (and ends with Run's context), not by ctx.
func (c *Collector) Refresh(ctx context.Context) error {
	c.mu.Lock()
	f := c.startLocked()
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return fmt.Errorf("collector: wait for refresh: %w", ctx.Err())
	}
}

// startLocked starts a refresh unless one is in progress, and returns it.
// c.mu must be held.
func (c *Collector) startLocked() *flight {
	if c.inflight != nil {
		return c.inflight
	}
	parent := c.runCtx
	if parent == nil {
		parent = context.Background()
	}
	f := &flight{done: make(chan struct{})}
	c.inflight = f
	start := c.now()
	go func() {
		ctx, cancel := context.WithTimeout(parent, c.refreshTimeout)
		f.err = c.refresh(ctx, parent, start)
		cancel()
		c.mu.Lock()
		c.inflight = nil
		c.mu.Unlock()
		close(f.done)
	}()
	return f
}

// refresh computes the values and, on success, puts them in service. A
// refresh cut short because parent (Run's context) ended is no failure:
// nines is shutting down, the store is fine.
func (c *Collector) refresh(ctx, parent context.Context, start time.Time) error {
	metrics, err := c.compute(ctx)
	if err != nil && parent.Err() != nil {
		return fmt.Errorf("collector: refresh: %w", parent.Err())
	}
	c.duration.Observe(c.now().Sub(start).Seconds())
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.up = false
		c.failures.Inc()
		err = fmt.Errorf("collector: refresh: %w", err)
		log := c.log
		if c.cache != nil {
			log = log.With("serving_values_of", c.cache.at.UTC().Format(time.RFC3339))
		}
		log.Warn("refresh failed; serving the last good values", "err", err)
		return err
	}
	c.up = true
	c.cache = &cache{metrics: metrics, at: start}
	return nil
}

// compute queries the figures of every window and the incident counts.
// The queries run one after the other: a refresh is background work, and
// the store answers each for all services at once.
func (c *Collector) compute(ctx context.Context) ([]prometheus.Metric, error) {
	figs := make([][]availability.Figure, len(c.windows))
	dora := make([][]DORAFigure, len(c.windows))
	for i, name := range c.windows {
		w, err := c.figures.ParseWindow(name)
		if err != nil {
			return nil, fmt.Errorf("window %s: %w", name, err)
		}
		if figs[i], err = c.figures.All(ctx, w, false); err != nil {
			return nil, fmt.Errorf("figures over %s: %w", name, err)
		}
		if c.dora == nil {
			continue
		}
		if dora[i], err = c.dora.DORA(ctx, w); err != nil {
			return nil, fmt.Errorf("dora figures over %s: %w", name, err)
		}
	}
	counts, err := c.counts.IncidentCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("incident counts: %w", err)
	}
	metrics, errs := c.d.build(c.windows, figs, dora, counts)
	if len(errs) > 0 {
		// A value the exposition cannot carry (say, a service name that
		// is not UTF-8) costs its series, not the refresh.
		c.log.Warn("left series out", "count", len(errs), "err", errors.Join(errs...))
	}
	return metrics, nil
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.d.describe(ch)
	c.duration.Describe(ch)
	c.failures.Describe(ch)
}

// Collect implements prometheus.Collector: it sends the cached values and
// the collector's own health. It waits for a refresh only while nothing
// has been computed yet, and never longer than the scrape timeout.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.awaitFresh()
	c.mu.Lock()
	cur, up := c.cache, c.up
	c.mu.Unlock()

	ch <- gauge(c.d.up, boolValue(up))
	if cur != nil {
		ch <- gauge(c.d.lastSuccess, float64(cur.at.UnixNano())/1e9)
		ch <- gauge(c.d.dataAge, max(c.now().Sub(cur.at).Seconds(), 0))
		for _, m := range cur.metrics {
			ch <- m
		}
	}
	c.duration.Collect(ch)
	c.failures.Collect(ch)
}

// awaitFresh waits for the refresh in progress, at most the scrape
// timeout, while nothing has been computed yet (just after start). Once
// there are values a scrape never waits: the last values, with their age,
// beat a slow or failed scrape.
func (c *Collector) awaitFresh() {
	c.mu.Lock()
	f := c.inflight
	if c.cache != nil {
		f = nil
	}
	c.mu.Unlock()
	if f == nil {
		return
	}
	t := time.NewTimer(c.scrapeTimeout)
	defer t.Stop()
	select {
	case <-f.done:
	case <-t.C:
		c.log.Debug("scrape deadline reached before the first refresh ended", "timeout", c.scrapeTimeout)
	}
}

func gauge(d *prometheus.Desc, v float64) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, v)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ParseWindowList splits a comma-separated list of windows, for flags.
func ParseWindowList(s string) ([]string, error) {
	var out []string
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no window given")
	}
	return NormalizeWindows(out)
}
