package collector

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/incidents"
)

// Metric names the collector exports, for rules and dashboards.
const (
	MetricAvailability         = "nines_service_availability_ratio"
	MetricOwnAvailability      = "nines_service_own_availability_ratio"
	MetricSLOTarget            = "nines_service_slo_target_ratio"
	MetricErrorBudgetRemaining = "nines_service_error_budget_remaining_ratio"
	MetricDowntime             = "nines_service_downtime_seconds"
	MetricMTTR                 = "nines_service_mttr_seconds"
	MetricMTTA                 = "nines_service_mtta_seconds"
	MetricDeploymentFrequency  = "nines_service_deployment_frequency_per_day"
	MetricChangeFailureRate    = "nines_service_change_failure_ratio"
	MetricRollbackRate         = "nines_service_rollback_ratio"
	MetricTimeToRestore        = "nines_service_time_to_restore_seconds"
	MetricIncidentsOpen        = "nines_incidents_open"
	MetricIncidentsOpened      = "nines_incidents_opened_total"
	MetricIncidentFlaps        = "nines_incident_flaps_total"
	MetricUp                   = "nines_collector_up"
	MetricLastSuccess          = "nines_collector_last_success_timestamp_seconds"
	MetricDataAge              = "nines_collector_data_age_seconds"
)

// openStates are the states of open incidents, exported at zero too.
var openStates = []incidents.State{incidents.StateFiring, incidents.StateAcknowledged}

// family is one metric family of the figures: its description, and the
// order in which Prometheus sorts its series.
type family struct {
	desc *prometheus.Desc
	name string
	// order lists the variable labels' indexes by label name: the registry
	// sorts a family's series by label values in that order.
	order []int
}

func newFamily(name, help string, labels ...string) *family {
	order := make([]int, len(labels))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(labels[a], labels[b]) })
	return &family{desc: prometheus.NewDesc(name, help, labels, nil), name: name, order: order}
}

// descs describe the collector's own series (the refresh histogram and
// failure counter are instruments of their own).
type descs struct {
	availability, ownAvailability, sloTarget, budgetRemaining *family
	downtime, mttr, mtta                                      *family
	deployFrequency, changeFailureRate, timeToRestore         *family
	rollbackRate                                              *family
	open, opened, flaps                                       *family
	up, lastSuccess, dataAge                                  *prometheus.Desc
}

func newDescs() descs {
	win := []string{"service", "owner", "window"}
	return descs{
		availability: newFamily(MetricAvailability,
			"Share of the window's eligible time (outside maintenance) the service was available, downtime weighted by impact; 1 is fully available.",
			win...),
		ownAvailability: newFamily(MetricOwnAvailability,
			"Availability over the window not counting downtime caused by upstream services' incidents (caused_by links).",
			win...),
		sloTarget: newFamily(MetricSLOTarget,
			"The service's availability SLO target from the catalog (the default for uncatalogued services).",
			"service", "owner"),
		budgetRemaining: newFamily(MetricErrorBudgetRemaining,
			"Share of the window's error budget, (1 - SLO target) times its eligible time, not spent on downtime; negative once overspent.",
			win...),
		downtime: newFamily(MetricDowntime,
			"Time within the window, outside maintenance, during which the service had incidents of the impact open (union of their periods, unweighted).",
			"service", "owner", "window", "impact"),
		mttr: newFamily(MetricMTTR,
			"Mean firing time up to the window's end (periods only, gaps of reopened incidents excluded) of the incidents that started in the window, resolved or not; absent when there are none.",
			win...),
		mtta: newFamily(MetricMTTA,
			"Mean time from start to acknowledgement of the incidents that started in the window and were acknowledged before its end; absent when there are none.",
			win...),
		deployFrequency: newFamily(MetricDeploymentFrequency,
			"DORA deployment frequency: deploys completed in the window (succeeded, failed or rolled back) per day of the window, as GET /api/v1/dora computes it.",
			win...),
		changeFailureRate: newFamily(MetricChangeFailureRate,
			"DORA change failure rate: share of the window's deploys that failed, were rolled back, were marked as an incident's cause or were followed by a rollback within a day; absent without deploys.",
			win...),
		rollbackRate: newFamily(MetricRollbackRate,
			"DORA rollback rate: rollbacks recorded in the window per deploy completed in it, as GET /api/v1/dora computes it; absent without deploys.",
			win...),
		timeToRestore: newFamily(MetricTimeToRestore,
			"DORA time to restore: mean time from start to resolve of the incidents that started in the window and were resolved; absent when there are none.",
			win...),
		open: newFamily(MetricIncidentsOpen,
			"Incidents not resolved, by current impact and state, for services that have had incidents.",
			"service", "owner", "impact", "state"),
		opened: newFamily(MetricIncidentsOpened,
			"Incidents ever opened, by the impact they were opened with, counted in the store (so every replica agrees and restarts keep counting).",
			"service", "impact"),
		flaps: newFamily(MetricIncidentFlaps,
			"Times the service's incidents reopened after resolving (flaps), summed over all of its incidents in the store.",
			"service"),
		up: prometheus.NewDesc(MetricUp,
			"1 if the collector's last refresh of the exported figures succeeded, else 0.",
			nil, nil),
		lastSuccess: prometheus.NewDesc(MetricLastSuccess,
			"Start of the last successful refresh of the exported figures, in seconds since the Unix epoch; absent before the first.",
			nil, nil),
		dataAge: prometheus.NewDesc(MetricDataAge,
			"Age of the exported figures: time since the start of the refresh that computed them; absent before the first.",
			nil, nil),
	}
}

func (d descs) describe(ch chan<- *prometheus.Desc) {
	for _, f := range []*family{
		d.availability, d.ownAvailability, d.sloTarget, d.budgetRemaining,
		d.downtime, d.mttr, d.mtta, d.deployFrequency, d.changeFailureRate, d.rollbackRate, d.timeToRestore, d.open, d.opened, d.flaps,
	} {
		ch <- f.desc
	}
	ch <- d.up
	ch <- d.lastSuccess
	ch <- d.dataAge
}

// builder collects metrics, and the errors of those it cannot make.
type builder struct {
	series []series
	errs   []error
}

// series is one built metric with what it sorts by.
type series struct {
	f *family
	// key joins the label values in label name order with NULs, which
	// sorts as the values do (but for values holding NULs: the order only
	// saves the registry work, it need not be exact).
	key    string
	metric prometheus.Metric
}

func (b *builder) add(f *family, t prometheus.ValueType, v float64, labels ...string) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return // undefined: the series is left out
	}
	m, err := prometheus.NewConstMetric(f.desc, t, v, labels...)
	if err != nil {
		b.errs = append(b.errs, fmt.Errorf("%s %q: %w", f.name, labels, err))
		return
	}
	var key strings.Builder
	for i, j := range f.order {
		if i > 0 {
			key.WriteByte(0)
		}
		key.WriteString(labels[j])
	}
	b.series = append(b.series, series{f: f, key: key.String(), metric: m})
}

// metrics returns the built metrics in the order the registry sorts them
// (by family, then label values in label name order). The registry sorts
// every scrape; given sorted input its sort is a linear pass, which keeps
// scrapes of thousands of services cheap.
func (b *builder) metrics() []prometheus.Metric {
	slices.SortFunc(b.series, func(x, y series) int {
		if c := strings.Compare(x.f.name, y.f.name); c != 0 {
			return c
		}
		return strings.Compare(x.key, y.key)
	})
	out := make([]prometheus.Metric, len(b.series))
	for i, s := range b.series {
		out[i] = s.metric
	}
	return out
}

// clampImpact maps stored impacts outside the known ones to the nearest, as
// the availability arithmetic does, so that two values never share a label.
func clampImpact(i incidents.Impact) incidents.Impact {
	return min(max(i, incidents.ImpactNone), incidents.ImpactOutage)
}

// build turns one refresh's figures (figs[i] and dora[i] over windows[i])
// and incident counts into metrics. Each series appears once even if the inputs repeat a
// service, since a duplicate would fail the whole scrape.
func (d descs) build(windows []string, figs [][]availability.Figure, dora [][]DORAFigure, counts []IncidentCount) ([]prometheus.Metric, []error) {
	var b builder
	type service struct {
		owner string
		slo   float64
	}
	services := map[string]service{}
	for i, window := range windows {
		done := map[string]bool{}
		for _, f := range figs[i] {
			if done[f.Service] {
				continue
			}
			done[f.Service] = true
			if _, ok := services[f.Service]; !ok {
				services[f.Service] = service{owner: f.Owner, slo: f.SLOTarget}
			}
			l := []string{f.Service, f.Owner, window}
			b.add(d.availability, prometheus.GaugeValue, f.Availability, l...)
			b.add(d.ownAvailability, prometheus.GaugeValue, f.OwnAvailability, l...)
			b.add(d.budgetRemaining, prometheus.GaugeValue, f.ErrorBudgetRemaining, l...)
			for _, x := range []struct {
				impact  incidents.Impact
				seconds int64
			}{
				{incidents.ImpactOutage, f.DowntimeByImpactSeconds.Outage},
				{incidents.ImpactDegraded, f.DowntimeByImpactSeconds.Degraded},
				{incidents.ImpactNone, f.DowntimeByImpactSeconds.None},
			} {
				b.add(d.downtime, prometheus.GaugeValue, float64(x.seconds), f.Service, f.Owner, window, x.impact.String())
			}
			if f.MTTRSeconds != nil {
				b.add(d.mttr, prometheus.GaugeValue, *f.MTTRSeconds, l...)
			}
			if f.MTTASeconds != nil {
				b.add(d.mtta, prometheus.GaugeValue, *f.MTTASeconds, l...)
			}
		}
	}
	for i, window := range windows {
		done := map[string]bool{}
		for _, f := range dora[i] {
			if done[f.Service] {
				continue
			}
			done[f.Service] = true
			l := []string{f.Service, f.Owner, window}
			b.add(d.deployFrequency, prometheus.GaugeValue, f.DeploymentsPerDay, l...)
			if f.ChangeFailureRate != nil {
				b.add(d.changeFailureRate, prometheus.GaugeValue, *f.ChangeFailureRate, l...)
			}
			if f.RollbackRate != nil {
				b.add(d.rollbackRate, prometheus.GaugeValue, *f.RollbackRate, l...)
			}
			if f.TimeToRestoreSeconds != nil {
				b.add(d.timeToRestore, prometheus.GaugeValue, *f.TimeToRestoreSeconds, l...)
			}
		}
	}
	for name, s := range services {
		b.add(d.sloTarget, prometheus.GaugeValue, s.slo, name, s.owner)
	}

	type openKey struct {
		service string
		impact  incidents.Impact
		state   incidents.State
	}
	type openedKey struct {
		service string
		impact  incidents.Impact
	}
	var (
		open          = map[openKey]int64{}
		opened        = map[openedKey]int64{}
		flaps         = map[string]int64{}
		states        = map[openKey]bool{} // open states beyond openStates
		withIncidents = map[string]bool{}
	)
	for _, c := range counts {
		withIncidents[c.Service] = true
		opened[openedKey{c.Service, clampImpact(c.OpenedImpact)}] += c.Incidents
		flaps[c.Service] += c.Flaps
		if c.State.Open() {
			k := openKey{c.Service, clampImpact(c.Impact), c.State}
			open[k] += c.Incidents
			if !slices.Contains(openStates, c.State) {
				states[k] = true
			}
		}
	}
	// Open incidents: every impact and open state of every service that
	// has had incidents, zeros included, so that a resolved incident shows
	// as a drop to 0 rather than a vanishing series.
	for name := range withIncidents {
		owner := services[name].owner
		for _, impact := range incidents.Impacts {
			for _, state := range openStates {
				b.add(d.open, prometheus.GaugeValue, float64(open[openKey{name, impact, state}]),
					name, owner, impact.String(), string(state))
			}
		}
	}
	for k := range states {
		b.add(d.open, prometheus.GaugeValue, float64(open[k]), k.service, services[k.service].owner, k.impact.String(), string(k.state))
	}
	// Counters: every known service, zeros included, so that increase()
	// sees a service's first incident.
	known := make(map[string]bool, len(services)+len(withIncidents))
	for name := range services {
		known[name] = true
	}
	for name := range withIncidents {
		known[name] = true
	}
	for name := range known {
		for _, impact := range incidents.Impacts {
			b.add(d.opened, prometheus.CounterValue, float64(opened[openedKey{name, impact}]), name, impact.String())
		}
		b.add(d.flaps, prometheus.CounterValue, float64(flaps[name]), name)
	}
	return b.metrics(), b.errs
}
