package chtest

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ninesops/nines/incidents"
)

// RandomIncidents returns n random incidents of the services, for tests
// that compare figures across surfaces: each starts within [from, to), has
// one to three periods (flaps) ending by end at the latest, impact
// segments of mixed severities for about half of its periods, an
// acknowledgement or not, a caused_by link to an earlier one or not, and
// one in three is preceded by an older, open version of another impact
// whose segments must not weigh. IDs are prefix-0, prefix-1, …
func RandomIncidents(rng *rand.Rand, prefix string, services []string, n int, from, to, end time.Time) []incidents.Change {
	var (
		out []incidents.Change
		ids []string
	)
	span := int(to.Sub(from) / time.Second)
	for k := range n {
		id := fmt.Sprintf("%s-%d", prefix, k)
		inc := &incidents.Incident{
			ID: id, Service: services[rng.IntN(len(services))], GroupKey: "g-" + id, Title: id,
			Impact: incidents.Impact(rng.IntN(3)), State: incidents.StateResolved,
			Source: incidents.SourceAlertmanager, Facts: 10,
		}
		start := from.Add(time.Duration(rng.IntN(span)) * time.Second)
		for p := range 1 + rng.IntN(3) {
			if p > 0 {
				start = start.Add(time.Duration(1+rng.IntN(1800)) * time.Second)
			}
			stop := start.Add(time.Duration(1+rng.IntN(3*3600)) * time.Second)
			if stop.After(end) {
				stop = end
			}
			if !stop.After(start) {
				break
			}
			inc.Periods = append(inc.Periods, incidents.Period{Start: start, End: stop})
			if rng.IntN(2) == 0 {
				// Impact over time: the period at one impact, and a
				// stretch of another inside it.
				inc.Segments = append(inc.Segments, incidents.Segment{Start: start, End: stop, Impact: incidents.Impact(rng.IntN(3))})
				a := start.Add(time.Duration(rng.Int64N(int64(stop.Sub(start)/time.Second)+1)) * time.Second)
				b := a.Add(time.Duration(rng.Int64N(int64(stop.Sub(a)/time.Second)+1)) * time.Second)
				inc.Segments = append(inc.Segments, incidents.Segment{Start: a, End: b, Impact: incidents.Impact(rng.IntN(3))})
			}
			start = stop
		}
		if len(inc.Periods) == 0 {
			continue
		}
		inc.StartedAt, inc.ResolvedAt, inc.UpdatedAt = inc.Periods[0].Start, start, start
		if rng.IntN(2) == 0 {
			inc.AcknowledgedAt = inc.StartedAt.Add(time.Duration(rng.IntN(900)) * time.Second)
		}
		if len(ids) > 0 && rng.IntN(3) == 0 {
			inc.CausedBy = ids[rng.IntN(len(ids))]
		}
		ids = append(ids, id)
		if rng.IntN(3) == 0 {
			old := inc.Clone()
			old.Facts, old.Impact, old.State, old.ResolvedAt = 5, (inc.Impact+1)%3, incidents.StateFiring, time.Time{}
			old.Periods = []incidents.Period{{Start: inc.StartedAt}}
			old.Segments = []incidents.Segment{{Start: inc.StartedAt, Impact: incidents.ImpactOutage}}
			out = append(out, incidents.Change{Incident: old})
		}
		out = append(out, incidents.Change{Incident: inc})
	}
	return out
}
