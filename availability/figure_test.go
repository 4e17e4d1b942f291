package availability

import (
	"math"
	"testing"
	"time"

	"github.com/ninesops/nines/catalog"
)

func TestComputeFigure(t *testing.T) {
	t.Parallel()
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	day := Window{Name: "day", From: from, To: from.Add(24 * time.Hour)}
	tests := []struct {
		name  string
		in    figureInput
		check func(t *testing.T, f Figure)
	}{
		{
			name: "no incidents: 100%, full budget, no times",
			in:   figureInput{service: "a", slo: 0.999, window: day, end: day.To, recent: recentRanges, recentMaint: []int64{0, 0}},
			check: func(t *testing.T, f Figure) {
				want(t, "availability", f.Availability, 1)
				want(t, "budget", f.ErrorBudgetSeconds, 86.4)
				want(t, "remaining", f.ErrorBudgetRemaining, 1)
				if f.MTTASeconds != nil || f.MTTRSeconds != nil || f.MTBFSeconds != nil {
					t.Errorf("times should be null: %v %v %v", f.MTTASeconds, f.MTTRSeconds, f.MTBFSeconds)
				}
				if f.Upstream == nil {
					t.Error("upstream should be an empty list, not null")
				}
			},
		},
		{
			name: "budget overspent, burn rates, MTBF",
			in: figureInput{
				service: "a", slo: 0.99, window: day, end: day.To, maintenance: 3600,
				raw: Raw{
					Downtime: 1200, OwnDowntime: 300, Recent: []float64{360, 1200},
					Incidents: 3, Started: 2, Acked: 2, AckSeconds: 300, Resolved: 1, ResolveSeconds: 900, LongestSeconds: 1000,
					FailingSeconds: 4000,
					Upstream:       []RawUpstream{{Service: "b", Downtime: 100}, {Service: "c", Downtime: 800}, {Service: "a2", Downtime: 100}},
				},
				recent: recentRanges, recentMaint: []int64{0, 3600},
			},
			check: func(t *testing.T, f Figure) {
				eligible := 86400.0 - 3600
				want(t, "availability", f.Availability, 1-1200/eligible)
				want(t, "own", f.OwnAvailability, 1-300/eligible)
				want(t, "budget", f.ErrorBudgetSeconds, 0.01*eligible)
				want(t, "remaining seconds", f.ErrorBudgetRemainingSeconds, 0.01*eligible-1200)
				want(t, "remaining", f.ErrorBudgetRemaining, (0.01*eligible-1200)/(0.01*eligible))
				want(t, "burn 1h", f.BurnRate1h, 360.0/3600/0.01)
				want(t, "burn 24h", f.BurnRate24h, 1200/eligible/0.01)
				want(t, "mtta", *f.MTTASeconds, 150)
				want(t, "mttr", *f.MTTRSeconds, 900)
				// Unweighted failing time, not the weighted downtime.
				want(t, "mtbf", *f.MTBFSeconds, (eligible-4000)/2)
				if got := []string{f.Upstream[0].Service, f.Upstream[1].Service, f.Upstream[2].Service}; got[0] != "c" || got[1] != "a2" || got[2] != "b" {
					t.Errorf("upstream order %v, want c, a2, b", got)
				}
				if f.WindowSeconds != 86400 || f.MaintenanceSeconds != 3600 || f.LongestIncidentSeconds != 1000 {
					t.Errorf("seconds: %+v", f)
				}
			},
		},
		{
			name: "window in the future counts nothing",
			in:   figureInput{service: "a", slo: 0.999, window: day, end: day.From, recent: recentRanges, recentMaint: []int64{0, 0}},
			check: func(t *testing.T, f Figure) {
				want(t, "availability", f.Availability, 1)
				want(t, "budget", f.ErrorBudgetSeconds, 0)
				want(t, "remaining", f.ErrorBudgetRemaining, 1)
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.check(t, computeFigure(tc.in))
		})
	}
}

func TestFigureOrderAndNines(t *testing.T) {
	t.Parallel()
	if got := Nines(0.999); math.Abs(got-3) > 1e-9 {
		t.Errorf("Nines(0.999) = %v", got)
	}
	if !math.IsInf(Nines(1), 1) || Nines(0) != 0 {
		t.Error("Nines(1) should be +Inf and Nines(0) 0")
	}
	a := Figure{Service: "b", Availability: 0.9, ErrorBudgetRemaining: 0.5}
	b := Figure{Service: "a", Availability: 0.9, ErrorBudgetRemaining: -1}
	c := Figure{Service: "c", Availability: 0.5}
	d := Figure{Service: "a", Availability: 0.9, ErrorBudgetRemaining: 0.5}
	for _, tc := range []struct {
		x, y Figure
		want int
	}{{c, a, -1}, {b, a, -1}, {d, a, -1}, {a, a, 0}} {
		if got := compareFigures(tc.x, tc.y); got != tc.want {
			t.Errorf("compare(%s, %s) = %d, want %d", tc.x.Service, tc.y.Service, got, tc.want)
		}
	}
}

func TestFigureHelpers(t *testing.T) {
	t.Parallel()
	at := func(h int) time.Time { return time.Date(2026, 11, 1, h, 0, 0, 0, time.UTC) }
	ivs := []catalog.Interval{{Start: at(1), End: at(3)}, {Start: at(5), End: at(6)}}
	if got := overlapSeconds(ivs, at(2), at(6)); got != 2*3600 {
		t.Errorf("overlapSeconds = %d", got)
	}
	got := catalog.WholeSeconds([]catalog.Interval{
		{Start: at(1).Add(300 * time.Millisecond), End: at(2).Add(900 * time.Millisecond)},
		{Start: at(2).Add(400 * time.Millisecond), End: at(3)},
		{Start: at(4), End: at(4).Add(200 * time.Millisecond)},
	})
	if len(got) != 1 || !got[0].Start.Equal(at(1)) || !got[0].End.Equal(at(3)) {
		t.Errorf("WholeSeconds = %v", got)
	}
}

func want(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}
