package availability

import (
	"context"
	"time"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/incidents"
)

// Source knows how to sum up stored incidents into the integer seconds and
// counts that figures are made of, for many services at once.
// chstore implements it.
type Source interface {
	// Downtime returns one Raw per service that has an incident
	// overlapping the window or one of the recent ranges; services
	// without any may be absent (or present with zeros).
	Downtime(ctx context.Context, q Query) ([]Raw, error)
	// Daily returns one RawDay per day of q.Days that has downtime or
	// incidents; other days may be absent.
	Daily(ctx context.Context, q DailyQuery) ([]RawDay, error)
	// SeenServices returns every service that has incidents, in any order.
	SeenServices(ctx context.Context) ([]string, error)
}

// Query asks a Source for the figures of a window. Times are whole seconds.
type Query struct {
	// From and To bound the window [From, To); To is at most Now.
	From, To time.Time
	// Now is when open periods end.
	Now time.Time
	// Recent asks for the weighted downtime over [end-d, end) for each d
	// as well (Raw.Recent), for burn rates, where end is min(To, Now): the
	// burn rates of a past window are those of its end.
	Recent []time.Duration
	// Weights weigh downtime by the worst impact open.
	Weights ImpactWeights
	// Services limits the answer to these services; nil means all.
	Services []string
	// Maintenance holds each service's maintenance intervals (sorted,
	// merged, whole seconds) over at least the window and the recent
	// ranges. Time inside them is left out of every sum but
	// LongestSeconds. Services absent have none.
	Maintenance map[string][]catalog.Interval
	// Explain asks for the IDs of the incidents overlapping the window and
	// the periods marked as not downtime (Raw.Marks).
	Explain bool
}

// Seconds holds a number of seconds per impact, indexed by incidents.Impact.
type Seconds [3]int64

// Of returns the seconds of one impact.
func (s Seconds) Of(i incidents.Impact) int64 {
	if i < 0 || int(i) >= len(s) {
		return 0
	}
	return s[i]
}

// Raw is one service's sums over a Query's window, outside maintenance
// unless said otherwise.
type Raw struct {
	Service string
	// Downtime is the weighted downtime in seconds: the sum over instants
	// of the weight of the worst impact among the open incidents.
	Downtime float64
	// OwnDowntime is Downtime over incidents without caused_by.
	OwnDowntime float64
	// Union holds, per impact, the length in seconds of the union of the
	// periods of the incidents of that impact.
	Union Seconds
	// Recent holds Downtime over [end-d, end) for each Query.Recent d.
	Recent []float64
	// Incidents is the number of incidents overlapping the window.
	Incidents int
	// Started counts those that started in the window; Acked counts those
	// of them acknowledged and AckSeconds sums their times from start to
	// acknowledgement. Resolved counts those that started in the window
	// too, and ResolveSeconds sums their firing time up to the window's end
	// (their periods, not the gaps between them, clamped to the window).
	Started, Acked, Resolved   int
	AckSeconds, ResolveSeconds int64
	// FailingSeconds is the time with an outage or degraded incident open,
	// unweighted, outside maintenance.
	FailingSeconds int64
	// LongestSeconds is the largest firing time in the window of one
	// incident, maintenance included.
	LongestSeconds int64
	// IncidentIDs are the incidents overlapping the window, sorted; only
	// when Query.Explain is set.
	IncidentIDs []string
	// Upstream holds the downtime caused by other services' incidents.
	Upstream []RawUpstream
	// Marks are the periods marked as not downtime on the incidents
	// overlapping the window; only when Query.Explain is set.
	Marks []RawMark
}

// RawMark is a period people marked as not downtime on one incident
// (incidents.Exclusion), with what the incident weighed within the window
// before any mark was left out.
type RawMark struct {
	Incident string
	incidents.Exclusion
	// Pieces are the incident's impact segments (or its periods at its
	// impact) clamped to the window, marks not left out: Figure's
	// explanation weighs the part inside the mark.
	Pieces []incidents.Segment
}

// RawUpstream is the part of a service's downtime caused by one upstream
// service's incidents.
type RawUpstream struct {
	// Service is the upstream service; empty when the upstream incident is
	// not in the store.
	Service string
	// IncidentIDs are the upstream incidents, sorted.
	IncidentIDs []string
	// Downtime is Raw.Downtime over the incidents they caused.
	Downtime float64
}

// DailyQuery asks a Source for one service's downtime per day.
type DailyQuery struct {
	Service string
	// Days are consecutive, sorted, non-empty intervals (calendar days, the
	// last one clamped to Now).
	Days []catalog.Interval
	Now  time.Time
	// Weights weigh downtime by the worst impact open.
	Weights ImpactWeights
	// Maintenance holds the service's maintenance intervals over the days,
	// sorted, merged, whole seconds.
	Maintenance []catalog.Interval
}

// RawDay is one day's sums.
type RawDay struct {
	// Index is the day's index in DailyQuery.Days.
	Index int
	// Downtime is as in Raw, over the day.
	Downtime float64
	// Incidents is the number of incidents overlapping the day.
	Incidents int
}
