package collector_test

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/collector"
	"github.com/ninesops/nines/incidents"
)

// Help texts, so that expected expositions stay readable.
const (
	helpAvailability = "# HELP nines_service_availability_ratio Share of the window's eligible time (outside maintenance) the service was available, downtime weighted by impact; 1 is fully available.\n# TYPE nines_service_availability_ratio gauge\n"
	helpOwn          = "# HELP nines_service_own_availability_ratio Availability over the window not counting downtime caused by upstream services' incidents (caused_by links).\n# TYPE nines_service_own_availability_ratio gauge\n"
	helpBudget       = "# HELP nines_service_error_budget_remaining_ratio Share of the window's error budget, (1 - SLO target) times its eligible time, not spent on downtime; negative once overspent.\n# TYPE nines_service_error_budget_remaining_ratio gauge\n"
	helpDowntime     = "# HELP nines_service_downtime_seconds Time within the window, outside maintenance, during which the service had incidents of the impact open (union of their periods, unweighted).\n# TYPE nines_service_downtime_seconds gauge\n"
	helpMTTR         = "# HELP nines_service_mttr_seconds Mean firing time up to the window's end (periods only, gaps of reopened incidents excluded) of the incidents that started in the window, resolved or not; absent when there are none.\n# TYPE nines_service_mttr_seconds gauge\n"
	helpMTTA         = "# HELP nines_service_mtta_seconds Mean time from start to acknowledgement of the incidents that started in the window and were acknowledged before its end; absent when there are none.\n# TYPE nines_service_mtta_seconds gauge\n"
	helpSLO          = "# HELP nines_service_slo_target_ratio The service's availability SLO target from the catalog (the default for uncatalogued services).\n# TYPE nines_service_slo_target_ratio gauge\n"
	helpOpen         = "# HELP nines_incidents_open Incidents not resolved, by current impact and state, for services that have had incidents.\n# TYPE nines_incidents_open gauge\n"
	helpOpened       = "# HELP nines_incidents_opened_total Incidents ever opened, by the impact they were opened with, counted in the store (so every replica agrees and restarts keep counting).\n# TYPE nines_incidents_opened_total counter\n"
	helpFlaps        = "# HELP nines_incident_flaps_total Times the service's incidents reopened after resolving (flaps), summed over all of its incidents in the store.\n# TYPE nines_incident_flaps_total counter\n"
	helpUp           = "# HELP nines_collector_up 1 if the collector's last refresh of the exported figures succeeded, else 0.\n# TYPE nines_collector_up gauge\n"
	helpAge          = "# HELP nines_collector_data_age_seconds Age of the exported figures: time since the start of the refresh that computed them; absent before the first.\n# TYPE nines_collector_data_age_seconds gauge\n"
	helpLastSuccess  = "# HELP nines_collector_last_success_timestamp_seconds Start of the last successful refresh of the exported figures, in seconds since the Unix epoch; absent before the first.\n# TYPE nines_collector_last_success_timestamp_seconds gauge\n"
	helpFailures     = "# HELP nines_collector_refresh_failures_total Refreshes of the exported figures that failed; the last good values are served meanwhile.\n# TYPE nines_collector_refresh_failures_total counter\n"
)

// newCollector builds a collector over the fakes, on its own registry.
func newCollector(t *testing.T, figs *fakeFigures, counts *fakeCounts, configure ...func(*collector.Options)) *collector.Collector {
	t.Helper()
	opts := collector.Options{
		Figures: figs, Counts: counts, Windows: []string{"1h"},
		Registerer: prometheus.NewPedanticRegistry(), Logger: slog.New(slog.DiscardHandler),
	}
	for _, f := range configure {
		f(&opts)
	}
	c, err := collector.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestCollect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		windows []string
		figs    map[string][]availability.Figure
		counts  []collector.IncidentCount
		metrics []string // compared
		want    string
	}{
		{
			name:    "every figure of every window",
			windows: []string{"1h", "30D"},
			figs: map[string][]availability.Figure{
				"1h": {func() availability.Figure {
					f := fig("checkout", "payments", "1h", 0.99)
					f.OwnAvailability, f.ErrorBudgetRemaining, f.SLOTarget = 0.995, -9, 0.999
					f.DowntimeByImpactSeconds = availability.ImpactSeconds{Outage: 36, Degraded: 120, None: 5}
					f.MTTRSeconds, f.MTTASeconds = ptr(1800.0), ptr(90.5)
					return f
				}()},
				"30d": {fig("checkout", "payments", "30d", 0.9999)},
			},
			metrics: []string{
				collector.MetricAvailability, collector.MetricOwnAvailability, collector.MetricErrorBudgetRemaining,
				collector.MetricDowntime, collector.MetricMTTR, collector.MetricMTTA, collector.MetricSLOTarget,
			},
			want: helpAvailability +
				`nines_service_availability_ratio{owner="payments",service="checkout",window="1h"} 0.99` + "\n" +
				`nines_service_availability_ratio{owner="payments",service="checkout",window="30d"} 0.9999` + "\n" +
				helpOwn +
				`nines_service_own_availability_ratio{owner="payments",service="checkout",window="1h"} 0.995` + "\n" +
				`nines_service_own_availability_ratio{owner="payments",service="checkout",window="30d"} 0.9999` + "\n" +
				helpBudget +
				`nines_service_error_budget_remaining_ratio{owner="payments",service="checkout",window="1h"} -9` + "\n" +
				`nines_service_error_budget_remaining_ratio{owner="payments",service="checkout",window="30d"} 1` + "\n" +
				helpDowntime +
				`nines_service_downtime_seconds{impact="degraded",owner="payments",service="checkout",window="1h"} 120` + "\n" +
				`nines_service_downtime_seconds{impact="degraded",owner="payments",service="checkout",window="30d"} 0` + "\n" +
				`nines_service_downtime_seconds{impact="none",owner="payments",service="checkout",window="1h"} 5` + "\n" +
				`nines_service_downtime_seconds{impact="none",owner="payments",service="checkout",window="30d"} 0` + "\n" +
				`nines_service_downtime_seconds{impact="outage",owner="payments",service="checkout",window="1h"} 36` + "\n" +
				`nines_service_downtime_seconds{impact="outage",owner="payments",service="checkout",window="30d"} 0` + "\n" +
				helpMTTR +
				`nines_service_mttr_seconds{owner="payments",service="checkout",window="1h"} 1800` + "\n" +
				helpMTTA +
				`nines_service_mtta_seconds{owner="payments",service="checkout",window="1h"} 90.5` + "\n" +
				helpSLO +
				`nines_service_slo_target_ratio{owner="payments",service="checkout"} 0.999` + "\n",
		},
		{
			name: "undefined values are left out",
			figs: map[string][]availability.Figure{"1h": {func() availability.Figure {
				f := fig("ghost", "", "1h", 1)
				f.ErrorBudgetRemaining = math.Inf(-1)
				f.OwnAvailability = math.NaN()
				return f
			}()}},
			metrics: []string{collector.MetricAvailability, collector.MetricOwnAvailability, collector.MetricErrorBudgetRemaining, collector.MetricMTTR, collector.MetricMTTA},
			want: helpAvailability +
				`nines_service_availability_ratio{owner="",service="ghost",window="1h"} 1` + "\n",
		},
		{
			name: "a service repeated in a window counts once",
			figs: map[string][]availability.Figure{"1h": {
				fig("checkout", "payments", "1h", 0.5),
				fig("checkout", "payments", "1h", 0.7),
			}},
			metrics: []string{collector.MetricAvailability},
			want: helpAvailability +
				`nines_service_availability_ratio{owner="payments",service="checkout",window="1h"} 0.5` + "\n",
		},
		{
			name: "incident counts",
			figs: map[string][]availability.Figure{"1h": {fig("checkout", "payments", "1h", 1), fig("quiet", "web", "1h", 1)}},
			counts: []collector.IncidentCount{
				// Opened degraded, now outages: one firing, one acknowledged.
				{Service: "checkout", Impact: incidents.ImpactOutage, State: incidents.StateFiring, OpenedImpact: incidents.ImpactDegraded, Incidents: 1, Flaps: 2},
				{Service: "checkout", Impact: incidents.ImpactOutage, State: incidents.StateAcknowledged, OpenedImpact: incidents.ImpactDegraded, Incidents: 1},
				// Resolved ones count as opened, not as open.
				{Service: "checkout", Impact: incidents.ImpactOutage, State: incidents.StateResolved, OpenedImpact: incidents.ImpactOutage, Incidents: 40, Flaps: 3},
				// Stored impacts beyond the known ones are clamped.
				{Service: "checkout", Impact: 9, State: incidents.StateResolved, OpenedImpact: -1, Incidents: 2},
				// Seen in the store after the figures were computed: no owner.
				{Service: "newcomer", Impact: incidents.ImpactNone, State: incidents.StateFiring, OpenedImpact: incidents.ImpactNone, Incidents: 1},
			},
			metrics: []string{collector.MetricIncidentsOpen, collector.MetricIncidentsOpened, collector.MetricIncidentFlaps},
			want: helpFlaps +
				`nines_incident_flaps_total{service="checkout"} 5` + "\n" +
				`nines_incident_flaps_total{service="newcomer"} 0` + "\n" +
				`nines_incident_flaps_total{service="quiet"} 0` + "\n" +
				helpOpen +
				`nines_incidents_open{impact="degraded",owner="",service="newcomer",state="acknowledged"} 0` + "\n" +
				`nines_incidents_open{impact="degraded",owner="",service="newcomer",state="firing"} 0` + "\n" +
				`nines_incidents_open{impact="degraded",owner="payments",service="checkout",state="acknowledged"} 0` + "\n" +
				`nines_incidents_open{impact="degraded",owner="payments",service="checkout",state="firing"} 0` + "\n" +
				`nines_incidents_open{impact="none",owner="",service="newcomer",state="acknowledged"} 0` + "\n" +
				`nines_incidents_open{impact="none",owner="",service="newcomer",state="firing"} 1` + "\n" +
				`nines_incidents_open{impact="none",owner="payments",service="checkout",state="acknowledged"} 0` + "\n" +
				`nines_incidents_open{impact="none",owner="payments",service="checkout",state="firing"} 0` + "\n" +
				`nines_incidents_open{impact="outage",owner="",service="newcomer",state="acknowledged"} 0` + "\n" +
				`nines_incidents_open{impact="outage",owner="",service="newcomer",state="firing"} 0` + "\n" +
				`nines_incidents_open{impact="outage",owner="payments",service="checkout",state="acknowledged"} 1` + "\n" +
				`nines_incidents_open{impact="outage",owner="payments",service="checkout",state="firing"} 1` + "\n" +
				helpOpened +
				`nines_incidents_opened_total{impact="degraded",service="checkout"} 2` + "\n" +
				`nines_incidents_opened_total{impact="degraded",service="newcomer"} 0` + "\n" +
				`nines_incidents_opened_total{impact="degraded",service="quiet"} 0` + "\n" +
				`nines_incidents_opened_total{impact="none",service="checkout"} 2` + "\n" +
				`nines_incidents_opened_total{impact="none",service="newcomer"} 1` + "\n" +
				`nines_incidents_opened_total{impact="none",service="quiet"} 0` + "\n" +
				`nines_incidents_opened_total{impact="outage",service="checkout"} 40` + "\n" +
				`nines_incidents_opened_total{impact="outage",service="newcomer"} 0` + "\n" +
				`nines_incidents_opened_total{impact="outage",service="quiet"} 0` + "\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			figs := &fakeFigures{figs: tc.figs}
			c := newCollector(t, figs, &fakeCounts{counts: tc.counts}, func(o *collector.Options) {
				if tc.windows != nil {
					o.Windows = tc.windows
				}
			})
			if err := c.Refresh(t.Context()); err != nil {
				t.Fatalf("Refresh: %v", err)
			}
			if err := testutil.CollectAndCompare(c, strings.NewReader(tc.want), tc.metrics...); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	t.Parallel()
	ok := func(o *collector.Options) {}
	tests := []struct {
		name      string
		configure func(*collector.Options)
		want      string
	}{
		{"no figures", func(o *collector.Options) { o.Figures = nil }, "Figures are required"},
		{"no counts", func(o *collector.Options) { o.Counts = nil }, "IncidentCounter is required"},
		{"unknown window", func(o *collector.Options) { o.Windows = []string{"1h", "fortnight"} }, `window "fortnight"`},
		{"duplicate window", func(o *collector.Options) { o.Windows = []string{"1h", " 1H"} }, `window "1h" given twice`},
		{"negative interval", func(o *collector.Options) { o.RefreshInterval = -time.Second }, "refresh interval must not be negative"},
		{"registered twice", func(o *collector.Options) {
			reg := prometheus.NewRegistry()
			first := *o
			first.Registerer = reg
			if _, err := collector.New(first); err != nil {
				t.Fatal(err)
			}
			o.Registerer = reg
		}, "register metrics"},
		{"fine", ok, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := collector.Options{Figures: &fakeFigures{}, Counts: &fakeCounts{}}
			tc.configure(&opts)
			_, err := collector.New(opts)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCollectBeforeFirstRefresh(t *testing.T) {
	t.Parallel()
	c := newCollector(t, &fakeFigures{}, &fakeCounts{})
	want := helpUp + "nines_collector_up 0\n" + helpFailures + "nines_collector_refresh_failures_total 0\n"
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), collector.MetricUp, collector.MetricDataAge,
		collector.MetricLastSuccess, collector.MetricAvailability, "nines_collector_refresh_failures_total"); err != nil {
		t.Error(err)
	}
}

// TestStoreDown: while the store fails, refreshes fail, nines_collector_up
// is 0 and the last good values are served, their age growing; once the
// store is back the next refresh serves new values.
func TestStoreDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		figs := &fakeFigures{figs: map[string][]availability.Figure{"1h": {fig("checkout", "payments", "1h", 0.99)}}}
		counts := &fakeCounts{}
		c := newCollector(t, figs, counts)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()

		check := func(up, failures int, availability string, age time.Duration) {
			t.Helper()
			want := helpAvailability + `nines_service_availability_ratio{owner="payments",service="checkout",window="1h"} ` + availability + "\n" +
				helpUp + "nines_collector_up " + itoa(up) + "\n" +
				helpFailures + "nines_collector_refresh_failures_total " + itoa(failures) + "\n" +
				helpAge + "nines_collector_data_age_seconds " + itoa(int(age/time.Second)) + "\n"
			if err := testutil.CollectAndCompare(c, strings.NewReader(want),
				collector.MetricAvailability, collector.MetricUp, collector.MetricDataAge, "nines_collector_refresh_failures_total"); err != nil {
				t.Error(err)
			}
		}
		synctest.Wait() // the first refresh
		check(1, 0, "0.99", 0)

		figs.set(nil, errors.New("dial tcp 127.0.0.1:9000: connect: connection refused"))
		time.Sleep(collector.DefaultRefreshInterval)
		synctest.Wait()
		check(0, 1, "0.99", 30*time.Second)

		time.Sleep(45 * time.Second) // one more failure, at 60s
		synctest.Wait()
		check(0, 2, "0.99", 75*time.Second)

		counts.mu.Lock()
		counts.err = errors.New("counts fail too")
		counts.mu.Unlock()
		figs.set(map[string][]availability.Figure{"1h": {fig("checkout", "payments", "1h", 0.5)}}, nil)
		time.Sleep(15 * time.Second) // at 90s: figures work, counts do not
		synctest.Wait()
		check(0, 3, "0.99", 90*time.Second)

		counts.mu.Lock()
		counts.err = nil
		counts.mu.Unlock()
		time.Sleep(30 * time.Second) // at 120s: back
		synctest.Wait()
		check(1, 3, "0.5", 0)

		want := helpLastSuccess + "nines_collector_last_success_timestamp_seconds " +
			ftoa(float64(start.Add(120*time.Second).UnixNano())/1e9) + "\n"
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), collector.MetricLastSuccess); err != nil {
			t.Error(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// TestScrapeDeadline: a scrape waits for the first refresh at most the
// scrape timeout, and never waits once there are values, however slow the
// store; a refresh that hangs fails at the refresh timeout.
func TestScrapeDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		figs := &fakeFigures{figs: map[string][]availability.Figure{"1h": {fig("checkout", "payments", "1h", 0.99)}}}
		slow := make(chan struct{})
		figs.setBlock(slow)
		c := newCollector(t, figs, &fakeCounts{}, func(o *collector.Options) {
			o.ScrapeTimeout = 5 * time.Second
			o.RefreshTimeout = 50 * time.Second
		})
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(c)
		scrape := func() (time.Duration, string) {
			t.Helper()
			start := time.Now()
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatalf("Gather: %v", err)
			}
			var names []string
			for _, mf := range mfs {
				names = append(names, mf.GetName())
			}
			return time.Since(start), strings.Join(names, " ")
		}

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		synctest.Wait() // the first refresh hangs in the store

		took, names := scrape()
		if took != 5*time.Second {
			t.Errorf("first scrape took %s, want the scrape timeout, 5s", took)
		}
		if want := "nines_collector_refresh_duration_seconds nines_collector_refresh_failures_total nines_collector_up"; names != want {
			t.Errorf("first scrape gathered %s, want %s", names, want)
		}

		close(slow) // the store answers
		synctest.Wait()
		if took, names := scrape(); took != 0 || !strings.Contains(names, collector.MetricAvailability) {
			t.Errorf("scrape after the first refresh took %s and gathered %s, want at once with figures", took, names)
		}

		figs.setBlock(make(chan struct{})) // the store hangs from now on
		time.Sleep(collector.DefaultRefreshInterval)
		synctest.Wait() // Run's second refresh hangs
		if took, names := scrape(); took != 0 || !strings.Contains(names, collector.MetricAvailability) {
			t.Errorf("scrape during a hanging refresh took %s and gathered %s, want at once with the last values", took, names)
		}
		if err := testutil.CollectAndCompare(c, strings.NewReader(helpUp+"nines_collector_up 1\n"), collector.MetricUp); err != nil {
			t.Error(err)
		}
		time.Sleep(50 * time.Second) // the refresh timeout ends it at 80s
		synctest.Wait()
		want := helpUp + "nines_collector_up 0\n" + helpAge + "nines_collector_data_age_seconds 85\n"
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), collector.MetricUp, collector.MetricDataAge); err != nil {
			t.Error(err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// TestRefreshesDoNotOverlap: concurrent refreshes join the one in
// progress, so the store sees one query per window.
func TestRefreshesDoNotOverlap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		figs := &fakeFigures{}
		release := make(chan struct{})
		figs.setBlock(release)
		c := newCollector(t, figs, &fakeCounts{})
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				if err := c.Refresh(t.Context()); err != nil {
					t.Errorf("Refresh: %v", err)
				}
			})
		}
		synctest.Wait()
		close(release)
		wg.Wait()
		if n := figs.callCount(); n != 1 {
			t.Errorf("5 concurrent refreshes queried the figures %d times, want 1", n)
		}
	})
}

// TestRunStops: Run returns nil when its context ends, after cancelling
// the refresh in progress (which is no failure of the store), and cannot
// run twice at once.
func TestRunStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		figs := &fakeFigures{}
		figs.setBlock(make(chan struct{})) // never answers
		c := newCollector(t, figs, &fakeCounts{})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		synctest.Wait()
		if err := c.Run(t.Context()); err == nil || !strings.Contains(err.Error(), "already running") {
			t.Errorf("second Run = %v, want already running", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		want := helpFailures + "nines_collector_refresh_failures_total 0\n"
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), "nines_collector_refresh_failures_total"); err != nil {
			t.Error(err)
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
