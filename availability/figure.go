package availability

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/incidents"
)

// Figure is one service's availability over one window. Ratios are between
// 0 and 1 (error_budget_remaining may go negative); durations are seconds.
// See the package documentation for every definition.
type Figure struct {
	Service                     string         `json:"service"`
	Owner                       string         `json:"owner"`
	Catalogued                  bool           `json:"catalogued"`
	Window                      string         `json:"window"`
	From                        time.Time      `json:"from"`
	To                          time.Time      `json:"to"`
	WindowSeconds               int64          `json:"window_seconds"`
	Availability                float64        `json:"availability"`
	OwnAvailability             float64        `json:"own_availability"`
	DowntimeSeconds             float64        `json:"downtime_seconds"`
	DowntimeByImpactSeconds     ImpactSeconds  `json:"downtime_by_impact_seconds"`
	OwnDowntimeSeconds          float64        `json:"own_downtime_seconds"`
	MaintenanceSeconds          int64          `json:"maintenance_seconds"`
	Incidents                   int            `json:"incidents"`
	MTTASeconds                 *float64       `json:"mtta_seconds"`
	MTTRSeconds                 *float64       `json:"mttr_seconds"`
	MTBFSeconds                 *float64       `json:"mtbf_seconds"`
	LongestIncidentSeconds      int64          `json:"longest_incident_seconds"`
	SLOTarget                   float64        `json:"slo_target"`
	ErrorBudgetSeconds          float64        `json:"error_budget_seconds"`
	ErrorBudgetConsumedSeconds  float64        `json:"error_budget_consumed_seconds"`
	ErrorBudgetRemaining        float64        `json:"error_budget_remaining"`
	ErrorBudgetRemainingSeconds float64        `json:"error_budget_remaining_seconds"`
	BurnRate1h                  float64        `json:"burn_rate_1h"`
	BurnRate24h                 float64        `json:"burn_rate_24h"`
	Upstream                    []UpstreamCost `json:"upstream"`
	// IncidentIDs are the incidents overlapping the window, only when an
	// explanation was asked for (and there are some).
	IncidentIDs []string `json:"incident_ids,omitempty"`
	// NotDowntime lists the periods of those incidents marked as not
	// downtime, only when an explanation was asked for (and there are
	// some).
	NotDowntime []NotDowntime `json:"not_downtime,omitempty"`
}

// ImpactSeconds is unweighted downtime per impact.
type ImpactSeconds struct {
	Outage   int64 `json:"outage"`
	Degraded int64 `json:"degraded"`
	None     int64 `json:"none"`
}

// UpstreamCost is the downtime an upstream service's incidents caused.
type UpstreamCost struct {
	Service         string   `json:"service"`
	IncidentIDs     []string `json:"incident_ids"`
	DowntimeSeconds float64  `json:"downtime_seconds"`
}

// Day is one calendar day of a daily series.
type Day struct {
	Date               string    `json:"date"` // 2006-01-02 in the catalog's time zone
	From               time.Time `json:"from"`
	To                 time.Time `json:"to"`
	WindowSeconds      int64     `json:"window_seconds"` // 82800 or 90000 across DST changes; less today
	Availability       float64   `json:"availability"`
	DowntimeSeconds    float64   `json:"downtime_seconds"`
	MaintenanceSeconds int64     `json:"maintenance_seconds"`
	Incidents          int       `json:"incidents"`
}

// Nines returns −log10(1 − a): 3 for 99.9%, +Inf for 100%.
func Nines(a float64) float64 {
	if a >= 1 {
		return math.Inf(1)
	}
	if a <= 0 {
		return 0
	}
	return -math.Log10(1 - a)
}

// figureInput is everything one figure is computed from.
type figureInput struct {
	raw        Raw
	service    string
	owner      string
	catalogued bool
	slo        float64
	window     Window
	end        time.Time // min(window.To, now), at least window.From
	// maintenance is the maintenance seconds in [window.From, end).
	maintenance int64
	// recent are the lengths and maintenance seconds of the burn-rate
	// ranges, in Query.Recent's order.
	recent      []time.Duration
	recentMaint []int64
	explain     bool
	// maint and weights explain the marks (explainMarks).
	maint   []catalog.Interval
	weights ImpactWeights
}

// ratio returns 1 − down/eligible, within [0, 1], and 1 without eligible
// time.
func ratio(down float64, eligible int64) float64 {
	if eligible <= 0 {
		return 1
	}
	return min(max(1-down/float64(eligible), 0), 1)
}

// computeFigure applies the definitions of the package documentation. It
// is pure: the integer sums come from the Source.
func computeFigure(in figureInput) Figure {
	r := in.raw
	windowSec := int64(in.end.Sub(in.window.From) / time.Second)
	eligible := windowSec - in.maintenance
	down, own := r.Downtime, r.OwnDowntime
	f := Figure{
		Service:         in.service,
		Owner:           in.owner,
		Catalogued:      in.catalogued,
		Window:          in.window.String(),
		From:            in.window.From.UTC(),
		To:              in.window.To.UTC(),
		WindowSeconds:   windowSec,
		Availability:    ratio(down, eligible),
		OwnAvailability: ratio(own, eligible),
		DowntimeSeconds: down,
		DowntimeByImpactSeconds: ImpactSeconds{
			Outage:   r.Union.Of(incidents.ImpactOutage),
			Degraded: r.Union.Of(incidents.ImpactDegraded),
			None:     r.Union.Of(incidents.ImpactNone),
		},
		OwnDowntimeSeconds:         own,
		MaintenanceSeconds:         in.maintenance,
		Incidents:                  r.Incidents,
		LongestIncidentSeconds:     r.LongestSeconds,
		SLOTarget:                  in.slo,
		ErrorBudgetSeconds:         (1 - in.slo) * float64(max(eligible, 0)),
		ErrorBudgetConsumedSeconds: down,
		Upstream:                   []UpstreamCost{},
	}
	if r.Acked > 0 {
		f.MTTASeconds = ptr(float64(r.AckSeconds) / float64(r.Acked))
	}
	if r.Resolved > 0 {
		f.MTTRSeconds = ptr(float64(r.ResolveSeconds) / float64(r.Resolved))
	}
	if r.Started > 0 {
		f.MTBFSeconds = ptr(float64(eligible-r.FailingSeconds) / float64(r.Started))
	}
	f.ErrorBudgetRemainingSeconds = f.ErrorBudgetSeconds - down
	switch {
	case f.ErrorBudgetSeconds > 0:
		f.ErrorBudgetRemaining = f.ErrorBudgetRemainingSeconds / f.ErrorBudgetSeconds
	case down > 0:
		f.ErrorBudgetRemaining = math.Inf(-1) // cannot happen: downtime needs eligible time
	default:
		f.ErrorBudgetRemaining = 1
	}
	for i, d := range in.recent {
		var recent float64
		if i < len(r.Recent) {
			recent = r.Recent[i]
		}
		rate := burnRate(recent, int64(d/time.Second)-in.recentMaint[i], in.slo)
		switch d {
		case time.Hour:
			f.BurnRate1h = rate
		case 24 * time.Hour:
			f.BurnRate24h = rate
		}
	}
	for _, u := range r.Upstream {
		f.Upstream = append(f.Upstream, UpstreamCost{
			Service:         u.Service,
			IncidentIDs:     nonNil(u.IncidentIDs),
			DowntimeSeconds: u.Downtime,
		})
	}
	slices.SortFunc(f.Upstream, func(a, b UpstreamCost) int {
		if a.DowntimeSeconds != b.DowntimeSeconds {
			if a.DowntimeSeconds > b.DowntimeSeconds {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Service, b.Service)
	})
	if in.explain {
		f.IncidentIDs = slices.Sorted(slices.Values(r.IncidentIDs))
		if len(r.Marks) > 0 {
			f.NotDowntime = explainMarks(r.Marks, in.maint, in.weights)
		}
	}
	return f
}

// burnRate is the error budget's consumption rate over a range: the share
// of eligible time lost, relative to the share the SLO allows.
func burnRate(down float64, eligible int64, slo float64) float64 {
	if eligible <= 0 || slo >= 1 {
		return 0
	}
	return down / float64(eligible) / (1 - slo)
}

// compareFigures orders figures worst first: lowest availability, then
// least error budget left, then name.
func compareFigures(a, b Figure) int {
	switch {
	case a.Availability != b.Availability:
		if a.Availability < b.Availability {
			return -1
		}
		return 1
	case a.ErrorBudgetRemaining != b.ErrorBudgetRemaining:
		if a.ErrorBudgetRemaining < b.ErrorBudgetRemaining {
			return -1
		}
		return 1
	}
	return strings.Compare(a.Service, b.Service)
}

// computeDay applies the definitions to one day of a daily series.
func computeDay(iv catalog.Interval, loc *time.Location, raw RawDay, maintenance int64) Day {
	length := int64(iv.Duration() / time.Second)
	down := raw.Downtime
	return Day{
		Date:               iv.Start.In(loc).Format(time.DateOnly),
		From:               iv.Start.UTC(),
		To:                 iv.End.UTC(),
		WindowSeconds:      length,
		Availability:       ratio(down, length-maintenance),
		DowntimeSeconds:    down,
		MaintenanceSeconds: maintenance,
		Incidents:          raw.Incidents,
	}
}

// overlapSeconds returns how much of [from, to) the sorted, merged
// intervals cover.
func overlapSeconds(ivs []catalog.Interval, from, to time.Time) int64 {
	var sum time.Duration
	for _, iv := range ivs {
		s, e := maxTime(iv.Start, from), minTime(iv.End, to)
		if s.Before(e) {
			sum += e.Sub(s)
		}
	}
	return int64(sum / time.Second)
}

func ptr[T any](v T) *T { return &v }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
