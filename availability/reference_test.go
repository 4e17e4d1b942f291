package availability_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/incidents"
)

// The reference implementation: the package documentation's definitions
// applied second by second, as plainly as possible, to compare the SQL
// against. It shares no code with the Source or with computeFigure.

type refIncident struct {
	id, service, causedBy string
	impact                incidents.Impact
	periods               [][2]int64 // Unix seconds; end 0 while open
	// segments, when set, give the impact over time instead of impact:
	// start, end (0 while open) and impact.
	segments      [][3]int64
	ack, resolved int64 // 0 when unset
	// excluded are the periods marked as not downtime: start, end (0:
	// until the incident ends).
	excluded [][2]int64
}

// excludedAt reports whether second t lies in a period of inc marked as
// not downtime.
func (inc refIncident) excludedAt(t int64) bool {
	for _, x := range inc.excluded {
		if t >= x[0] && (x[1] == 0 || t < x[1]) {
			return true
		}
	}
	return false
}

// impactsAt returns the impacts inc has open at second t: its segments'
// when it has segments, else its impact during its periods.
func (w *refWorld) impactsAt(inc refIncident, t int64) []int {
	var out []int
	if inc.excludedAt(t) {
		return nil // marked as not downtime
	}
	if len(inc.segments) > 0 {
		for _, sg := range inc.segments {
			if t >= sg[0] && t < w.periodEnd([2]int64{sg[0], sg[1]}) {
				out = append(out, int(sg[2]))
			}
		}
		return out
	}
	for _, p := range inc.periods {
		if t >= p[0] && t < w.periodEnd(p) {
			out = append(out, int(inc.impact))
		}
	}
	return out
}

type refWorld struct {
	incidents []refIncident
	byID      map[string]refIncident
	maint     map[string][][2]int64
	now       int64
	weights   [3]float64
}

// periodEnd is where a period stops counting: its end, or now while open,
// never after now.
func (w *refWorld) periodEnd(p [2]int64) int64 {
	if p[1] == 0 || p[1] > w.now {
		return w.now
	}
	return p[1]
}

func (w *refWorld) inMaintenance(service string, t int64) bool {
	for _, m := range w.maint[service] {
		if t >= m[0] && t < m[1] {
			return true
		}
	}
	return false
}

// worstAt returns the worst impact open at second t among incs, or -1.
func (w *refWorld) worstAt(incs []refIncident, t int64) int {
	worst := -1
	for _, inc := range incs {
		for _, k := range w.impactsAt(inc, t) {
			worst = max(worst, k)
		}
	}
	return worst
}

// downtime is the weighted downtime of incs over [from, to), outside the
// service's maintenance.
func (w *refWorld) downtime(service string, incs []refIncident, from, to int64) float64 {
	var sum float64
	for t := from; t < to; t++ {
		if w.inMaintenance(service, t) {
			continue
		}
		if k := w.worstAt(incs, t); k >= 0 {
			sum += w.weights[k]
		}
	}
	return sum
}

func (w *refWorld) overlaps(inc refIncident, from, to int64) bool {
	for _, p := range inc.periods {
		if p[0] < to && (p[0] >= from || w.periodEnd(p) > from) {
			return true
		}
	}
	return false
}

// refFigure is what the reference expects of a Figure.
type refFigure struct {
	downtime, own    float64
	union            availability.ImpactSeconds
	maintenance      int64
	failing          int64 // unweighted time with an outage or degraded open
	incidents        int
	started          int
	ackSum, ackN     int64
	resolveSum, resN int64
	longest          int64
	recent           [2]float64 // 1h, 24h
	recentMaint      [2]int64
	ids              []string
	upstream         map[string]refUpstream
	marks            []refMark
}

// refMark is what the explanation says of a mark.
type refMark struct {
	id       string
	from, to int64
	removed  float64
}

type refUpstream struct {
	ids      []string
	downtime float64
}

func (w *refWorld) figure(service string, from, to int64) refFigure {
	end := min(to, w.now)
	var mine, own []refIncident
	for _, inc := range w.incidents {
		if inc.service == service {
			mine = append(mine, inc)
			if inc.causedBy == "" {
				own = append(own, inc)
			}
		}
	}
	f := refFigure{upstream: map[string]refUpstream{}}
	f.downtime = w.downtime(service, mine, from, end)
	f.own = w.downtime(service, own, from, end)
	for t := from; t < end; t++ {
		if w.inMaintenance(service, t) {
			f.maintenance++
			continue
		}
		var open [3]bool
		for _, inc := range mine {
			for _, k := range w.impactsAt(inc, t) {
				open[k] = true
			}
		}
		f.union.None += b2i(open[0])
		f.union.Degraded += b2i(open[1])
		f.union.Outage += b2i(open[2])
		f.failing += b2i(open[1] || open[2])
	}
	for i, d := range []int64{3600, 86400} {
		// Burn rates are of the window's end.
		f.recent[i] = w.downtime(service, mine, end-d, end)
		for t := end - d; t < end; t++ {
			if w.inMaintenance(service, t) {
				f.recentMaint[i]++
			}
		}
	}
	causes := map[string][]refIncident{}
	causeIDs := map[string][]string{}
	for _, inc := range mine {
		if !w.overlaps(inc, from, end) {
			continue
		}
		f.incidents++
		f.ids = append(f.ids, inc.id)
		unmarked := inc
		unmarked.excluded = nil
		for _, x := range inc.excluded {
			m := refMark{id: inc.id, from: x[0], to: x[1]}
			for t := max(from, x[0]); t < end && (x[1] == 0 || t < x[1]); t++ {
				if k := w.worstAt([]refIncident{unmarked}, t); k >= 0 && !w.inMaintenance(service, t) {
					m.removed += w.weights[k]
				}
			}
			f.marks = append(f.marks, m)
		}
		var length int64
		for _, p := range inc.periods {
			length += max(0, min(w.periodEnd(p), end)-max(p[0], from))
		}
		f.longest = max(f.longest, length)
		if start := inc.periods[0][0]; start >= from && start < end {
			f.started++
			if inc.ack != 0 && inc.ack < end {
				f.ackN++
				f.ackSum += max(inc.ack, start) - start
			}
			// MTTR: firing time up to the window's end, gaps excluded,
			// resolved by then or not.
			f.resN++
			f.resolveSum += length
		}
		if inc.causedBy != "" {
			up := w.byID[inc.causedBy].service // "" for a missing upstream incident
			causes[up] = append(causes[up], inc)
			if !slices.Contains(causeIDs[up], inc.causedBy) {
				causeIDs[up] = append(causeIDs[up], inc.causedBy)
			}
		}
	}
	for up, incs := range causes {
		slices.Sort(causeIDs[up])
		f.upstream[up] = refUpstream{ids: causeIDs[up], downtime: w.downtime(service, incs, from, end)}
	}
	slices.Sort(f.ids)
	return f
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// check compares a Figure with the reference, to the second.
func (r refFigure) check(t *testing.T, f availability.Figure, slo float64, windowSec int64) {
	t.Helper()
	fail := func(what string, got, want any) {
		t.Helper()
		t.Errorf("%s: %s = %v, want %v", f.Service, what, got, want)
	}
	near := func(what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			fail(what, got, want)
		}
	}
	eligible := float64(windowSec - r.maintenance)
	near("downtime", f.DowntimeSeconds, r.downtime)
	near("own downtime", f.OwnDowntimeSeconds, r.own)
	if eligible > 0 {
		near("availability", f.Availability, 1-r.downtime/eligible)
		near("own availability", f.OwnAvailability, 1-r.own/eligible)
	}
	if f.DowntimeByImpactSeconds != r.union {
		fail("downtime by impact", f.DowntimeByImpactSeconds, r.union)
	}
	if f.MaintenanceSeconds != r.maintenance {
		fail("maintenance", f.MaintenanceSeconds, r.maintenance)
	}
	if f.WindowSeconds != windowSec {
		fail("window seconds", f.WindowSeconds, windowSec)
	}
	if f.Incidents != r.incidents {
		fail("incidents", f.Incidents, r.incidents)
	}
	if f.LongestIncidentSeconds != r.longest {
		fail("longest", f.LongestIncidentSeconds, r.longest)
	}
	mean := func(what string, got *float64, sum, n int64) {
		t.Helper()
		switch {
		case n == 0 && got != nil:
			fail(what, *got, "null")
		case n > 0 && got == nil:
			fail(what, "null", float64(sum)/float64(n))
		case n > 0:
			near(what, *got, float64(sum)/float64(n))
		}
	}
	mean("mtta", f.MTTASeconds, r.ackSum, r.ackN)
	mean("mttr", f.MTTRSeconds, r.resolveSum, r.resN)
	switch {
	case r.started == 0 && f.MTBFSeconds != nil:
		fail("mtbf", *f.MTBFSeconds, "null")
	case r.started > 0 && f.MTBFSeconds == nil:
		fail("mtbf", "null", r.started)
	case r.started > 0:
		near("mtbf", *f.MTBFSeconds, (eligible-float64(r.failing))/float64(r.started))
	}
	near("budget", f.ErrorBudgetSeconds, (1-slo)*math.Max(eligible, 0))
	near("budget remaining seconds", f.ErrorBudgetRemainingSeconds, (1-slo)*math.Max(eligible, 0)-r.downtime)
	for i, got := range []float64{f.BurnRate1h, f.BurnRate24h} {
		d := []float64{3600, 86400}[i]
		if el := d - float64(r.recentMaint[i]); el > 0 {
			near(fmt.Sprintf("burn rate %d", i), got, r.recent[i]/el/(1-slo))
		}
	}
	if !slices.Equal(f.IncidentIDs, r.ids) {
		fail("incident ids", f.IncidentIDs, r.ids)
	}
	if len(f.NotDowntime) != len(r.marks) {
		fail("not downtime", f.NotDowntime, r.marks)
	} else {
		for _, m := range r.marks {
			found := false
			for _, n := range f.NotDowntime {
				to := int64(0)
				if n.To != nil {
					to = n.To.Unix()
				}
				if n.IncidentID == m.id && n.From.Unix() == m.from && to == m.to && n.By == "alice" && n.Reason != "" {
					found = true
					near(fmt.Sprintf("seconds removed by the mark %d-%d on %s", m.from, m.to, m.id), n.RemovedSeconds, m.removed)
				}
			}
			if !found {
				fail("not downtime", f.NotDowntime, m)
			}
		}
	}
	if len(f.Upstream) != len(r.upstream) {
		fail("upstream", f.Upstream, r.upstream)
		return
	}
	for _, u := range f.Upstream {
		want, ok := r.upstream[u.Service]
		if !ok || !slices.Equal(u.IncidentIDs, want.ids) {
			fail("upstream "+u.Service, u, want)
			continue
		}
		near("upstream "+u.Service+" downtime", u.DowntimeSeconds, want.downtime)
	}
}

// TestFiguresRandomized generates many incident sets (overlapping periods
// of every impact, open incidents, flaps, acknowledgements, cascades,
// maintenance), stores them in the real ClickHouse, and requires the SQL
// figures to equal the reference to the second. NINES_TEST_SEED replays a
// seed.
func TestFiguresRandomized(t *testing.T) {
	store := openStore(t)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("NINES_TEST_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("NINES_TEST_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay with NINES_TEST_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	const scenarios = 30
	type scenario struct {
		world    *refWorld
		services []string
		from, to int64
		weights  availability.ImpactWeights
	}
	var (
		all      []scenario
		stored   []*incidents.Incident
		catYAML  strings.Builder
		seq      int
		allWorld = &refWorld{byID: map[string]refIncident{}, maint: map[string][][2]int64{}}
	)
	catYAML.WriteString("services:\n")
	for n := range scenarios {
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 3*n).Unix()
		sc := scenario{from: base, to: base + 6*3600}
		// now: before, inside or after the window.
		now := base + int64(rng.IntN(10*3600)) + 1800
		sc.world = &refWorld{byID: map[string]refIncident{}, maint: map[string][][2]int64{}, now: now}
		deg, none := []float64{0, 0.3, 0.5, 1}[rng.IntN(4)], []float64{0, 0.1}[rng.IntN(2)]
		sc.weights = availability.ImpactWeights{Degraded: &deg, None: &none}
		sc.world.weights = [3]float64{none, deg, 1}
		for s := range 4 {
			name := fmt.Sprintf("r%d-s%d", n, s)
			if s == 3 {
				name = fmt.Sprintf(`r%d 'odd' "name"; DROP TABLE incidents; --\`, n) // uncatalogued
			} else {
				fmt.Fprintf(&catYAML, "  - name: %s\n    owner: team-%d\n", name, s)
				if k := rng.IntN(3); k > 0 {
					catYAML.WriteString("    maintenance:\n")
					for range k {
						start := base - 3600 + int64(rng.IntN(9*3600))
						end := start + int64(60+rng.IntN(2*3600))
						fmt.Fprintf(&catYAML, "      - start: %q\n        end: %q\n",
							time.Unix(start, 0).UTC().Format(time.RFC3339), time.Unix(end, 0).UTC().Format(time.RFC3339))
						sc.world.maint[name] = append(sc.world.maint[name], [2]int64{start, end})
					}
				}
			}
			sc.services = append(sc.services, name)
		}
		for _, name := range sc.services {
			for range rng.IntN(7) {
				seq++
				inc := refIncident{id: fmt.Sprintf("inc-%d-%d", n, seq), service: name, impact: incidents.Impact(rng.IntN(3))}
				start := base - 3*3600 + int64(rng.IntN(12*3600))
				for p := range 1 + rng.IntN(3) {
					if p > 0 {
						start += int64(rng.IntN(1800))
					}
					end := start + int64(rng.IntN(3*3600))
					inc.periods = append(inc.periods, [2]int64{start, end})
					start = end
				}
				last := &inc.periods[len(inc.periods)-1]
				if rng.IntN(5) == 0 {
					last[1] = 0 // still open
				} else {
					inc.resolved = last[1]
				}
				if rng.IntN(2) == 0 {
					// Impact over time, as derived from alerts of mixed
					// severities: a segment over each whole period and a few
					// shorter ones of other impacts inside it.
					for _, p := range inc.periods {
						inc.segments = append(inc.segments, [3]int64{p[0], p[1], int64(rng.IntN(3))})
						for range rng.IntN(3) {
							end := p[1]
							if end == 0 {
								end = p[0] + 4*3600
							}
							a := p[0] + rng.Int64N(end-p[0]+1)
							b := a + rng.Int64N(end-a+1)
							if rng.IntN(4) == 0 && p[1] == 0 {
								b = 0 // open with its period
							}
							inc.segments = append(inc.segments, [3]int64{a, b, int64(rng.IntN(3))})
						}
					}
				}
				if rng.IntN(2) == 0 {
					inc.ack = inc.periods[0][0] + int64(rng.IntN(1200))
				}
				if rng.IntN(3) == 0 {
					// Marked as not downtime: one or two periods, which
					// may overlap, and sometimes until the incident ends.
					for range 1 + rng.IntN(2) {
						a := inc.periods[0][0] - 600 + int64(rng.IntN(4*3600))
						b := a + 60 + int64(rng.IntN(2*3600))
						if rng.IntN(4) == 0 {
							b = 0
						}
						inc.excluded = append(inc.excluded, [2]int64{a, b})
					}
				}
				sc.world.incidents = append(sc.world.incidents, inc)
			}
		}
		// Cascades: link some incidents to another service's incident, or to
		// one that is not stored.
		for i := range sc.world.incidents {
			inc := &sc.world.incidents[i]
			switch r := rng.IntN(6); {
			case r == 0:
				inc.causedBy = "inc-missing-" + inc.id
			case r <= 2:
				up := sc.world.incidents[rng.IntN(len(sc.world.incidents))]
				if up.service != inc.service {
					inc.causedBy = up.id
				}
			}
		}
		for _, inc := range sc.world.incidents {
			sc.world.byID[inc.id] = inc
			allWorld.byID[inc.id] = inc
			stored = append(stored, toIncidents(inc, rng, sc.world.now)...)
		}
		all = append(all, sc)
	}
	write(t, store, stored...)
	cat := parseCatalog(t, catYAML.String())

	for n, sc := range all {
		svc := newService(t, store, cat, availability.Config{ImpactWeights: sc.weights}, time.Unix(sc.world.now, 0))
		w, err := availability.WindowBetween(time.Unix(sc.from, 0), time.Unix(sc.to, 0))
		if err != nil {
			t.Fatal(err)
		}
		figs, err := svc.All(context.Background(), w, true)
		if err != nil {
			t.Fatalf("scenario %d: %v", n, err)
		}
		got := map[string]availability.Figure{}
		for _, f := range figs {
			got[f.Service] = f
		}
		end := min(sc.to, sc.world.now)
		windowSec := max(end-sc.from, 0)
		seen := map[string]bool{}
		for _, inc := range sc.world.incidents {
			seen[inc.service] = true
		}
		known := func(name string) bool { _, ok := cat.Service(name); return ok || seen[name] }
		for _, name := range sc.services {
			f, ok := got[name]
			if !known(name) {
				if ok {
					t.Errorf("scenario %d: figure for %q, which is neither catalogued nor seen", n, name)
				}
				continue
			}
			if !ok {
				t.Errorf("scenario %d: no figure for %q", n, name)
				continue
			}
			// Upstream services resolve through every stored incident.
			world := *sc.world
			world.byID = allWorld.byID
			world.figure(name, sc.from, sc.to).check(t, f, cat.SLOTarget(name), windowSec)
		}
		// The daily series of one service over three days.
		name := sc.services[rng.IntN(len(sc.services))]
		if !known(name) {
			name = sc.services[0]
		}
		day0 := time.Unix(sc.from, 0).UTC().AddDate(0, 0, -1)
		days, err := svc.Daily(context.Background(), name, day0, day0.AddDate(0, 0, 2))
		if err != nil {
			t.Fatalf("scenario %d daily: %v", n, err)
		}
		for _, d := range days {
			from, to := d.From.Unix(), d.To.Unix()
			world := *sc.world
			world.byID = allWorld.byID
			r := world.figure(name, from, to)
			if math.Abs(d.DowntimeSeconds-r.downtime) > 1e-6 || d.Incidents != r.incidents || d.MaintenanceSeconds != r.maintenance {
				t.Errorf("scenario %d %q day %s: %+v, want downtime %v incidents %d maintenance %d",
					n, name, d.Date, d, r.downtime, r.incidents, r.maintenance)
			}
		}
		if t.Failed() {
			t.Fatalf("scenario %d failed (seed %d)", n, seed)
		}
	}
}

// toIncidents converts a reference incident to what the store keeps. One in
// three also gets an older version written first: open, with another impact
// and cause, which the newer version must override.
func toIncidents(r refIncident, rng *rand.Rand, now int64) []*incidents.Incident {
	inc := &incidents.Incident{
		ID: r.id, Service: r.service, GroupKey: "g-" + r.id, Title: r.id, Impact: r.impact,
		State: incidents.StateFiring, Source: incidents.SourceManual, CausedBy: r.causedBy,
		StartedAt: time.Unix(r.periods[0][0], 0).UTC(), Facts: 10, UpdatedAt: time.Unix(now, 0).UTC(),
	}
	for _, p := range r.periods {
		per := incidents.Period{Start: time.Unix(p[0], 0).UTC()}
		if p[1] != 0 {
			per.End = time.Unix(p[1], 0).UTC()
		}
		inc.Periods = append(inc.Periods, per)
	}
	if r.ack != 0 {
		inc.AcknowledgedAt = time.Unix(r.ack, 0).UTC()
	}
	if r.resolved != 0 {
		inc.State, inc.ResolvedAt = incidents.StateResolved, time.Unix(r.resolved, 0).UTC()
	}
	for _, sg := range r.segments {
		seg := incidents.Segment{Start: time.Unix(sg[0], 0).UTC(), Impact: incidents.Impact(sg[2])}
		if sg[1] != 0 {
			seg.End = time.Unix(sg[1], 0).UTC()
		}
		inc.Segments = append(inc.Segments, seg)
	}
	for i, x := range r.excluded {
		ex := incidents.Exclusion{From: time.Unix(x[0], 0).UTC(), By: "alice", Reason: fmt.Sprintf("false positive %d", i),
			At: time.UnixMilli(now*1000 + int64(i)).UTC()}
		if x[1] != 0 {
			ex.To = time.Unix(x[1], 0).UTC()
		}
		inc.Excluded = append(inc.Excluded, ex)
	}
	if rng.IntN(3) != 0 {
		return []*incidents.Incident{inc}
	}
	old := inc.Clone()
	old.Facts = 5
	old.Impact = (r.impact + 1) % 3
	old.CausedBy = "inc-older-cause"
	old.State, old.ResolvedAt, old.AcknowledgedAt = incidents.StateFiring, time.Time{}, time.Time{}
	old.Periods = []incidents.Period{{Start: inc.Periods[0].Start}}
	// Segments of an older version never weigh.
	old.Segments = []incidents.Segment{{Start: inc.Periods[0].Start, Impact: incidents.ImpactOutage}}
	// Nor do its marks: the newer version has other marks, or none.
	old.Excluded = []incidents.Exclusion{{From: inc.Periods[0].Start, By: "bob", Reason: "withdrawn"}}
	return []*incidents.Incident{old, inc}
}
