package availability

import (
	"slices"
	"time"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/incidents"
)

// NotDowntime explains one period marked as not downtime: who marked
// which period of which incident, why, and how many seconds of that
// incident's weighted downtime within the window it removed.
type NotDowntime struct {
	IncidentID string     `json:"incident_id"`
	From       time.Time  `json:"from"`
	To         *time.Time `json:"to"` // null: until the incident ends
	By         string     `json:"by"`
	Reason     string     `json:"reason"`
	MarkedAt   time.Time  `json:"marked_at"`
	// RemovedSeconds is the incident's weighted downtime inside the mark,
	// within the window and outside maintenance: what the mark took off
	// that incident. The service's downtime_seconds falls by less where
	// another incident was down at the same time.
	RemovedSeconds float64 `json:"removed_seconds"`
}

// explainMarks turns a service's marks into explanations, in the order
// they were marked.
func explainMarks(marks []RawMark, maint []catalog.Interval, w ImpactWeights) []NotDowntime {
	out := make([]NotDowntime, 0, len(marks))
	for _, m := range marks {
		n := NotDowntime{IncidentID: m.Incident, From: m.From.UTC(), By: m.By, Reason: m.Reason, MarkedAt: m.At.UTC(),
			RemovedSeconds: removedSeconds(m.Pieces, m.From, m.To, maint, w)}
		if !m.To.IsZero() {
			to := m.To.UTC()
			n.To = &to
		}
		out = append(out, n)
	}
	slices.SortStableFunc(out, func(a, b NotDowntime) int {
		if c := a.MarkedAt.Compare(b.MarkedAt); c != 0 {
			return c
		}
		return a.From.Compare(b.From)
	})
	return out
}

// removedSeconds weighs the pieces of one incident inside [from, to) (a
// zero to: no end) as downtime is weighed: at each instant outside
// maintenance, the weight of the worst impact open then.
func removedSeconds(pieces []incidents.Segment, from, to time.Time, maint []catalog.Interval, w ImpactWeights) float64 {
	var in []incidents.Segment
	var bounds []time.Time
	for _, p := range pieces {
		s, e := maxTime(p.Start, from), p.End
		if !to.IsZero() {
			e = minTime(e, to)
		}
		if s.Before(e) {
			in = append(in, incidents.Segment{Start: s, End: e, Impact: p.Impact})
			bounds = append(bounds, s, e)
		}
	}
	for _, iv := range maint {
		bounds = append(bounds, iv.Start, iv.End)
	}
	slices.SortFunc(bounds, func(a, b time.Time) int { return a.Compare(b) })
	bounds = slices.CompactFunc(bounds, func(a, b time.Time) bool { return a.Equal(b) })
	var sum float64
	for i := 0; i+1 < len(bounds); i++ {
		s, e := bounds[i], bounds[i+1]
		if overlapSeconds(maint, s, e) > 0 {
			continue // maintenance bounds are among the bounds: all or nothing
		}
		if worst := incidents.WorstAt(in, s); worst >= 0 {
			sum += e.Sub(s).Seconds() * w.Weight(worst)
		}
	}
	return sum
}
