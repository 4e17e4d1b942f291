package availability_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/ninesops/nines/answer"
	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

// openStore returns a store on a fresh, migrated test database.
func openStore(t testing.TB) *chstore.Store {
	t.Helper()
	return chtest.Open(t, chtest.Database(t), func(o *chstore.Options) { o.FlushInterval = time.Millisecond })
}

// write stores incidents, each as one version.
func write(t testing.TB, s *chstore.Store, incs ...*incidents.Incident) {
	t.Helper()
	changes := make([]incidents.Change, len(incs))
	for i, inc := range incs {
		changes[i] = incidents.Change{Incident: inc}
	}
	if err := s.Write(context.Background(), changes); err != nil {
		t.Fatalf("write incidents: %v", err)
	}
}

// incident builds a stored incident: started at its first period, resolved
// at its last period's end unless that is open.
func incident(id, service string, impact incidents.Impact, periods ...incidents.Period) *incidents.Incident {
	inc := &incidents.Incident{
		ID: id, Service: service, GroupKey: "g-" + id, Title: id, Impact: impact, State: incidents.StateFiring,
		Source: incidents.SourceManual, StartedAt: periods[0].Start, Periods: periods, Facts: 1,
	}
	last := periods[len(periods)-1].End
	inc.UpdatedAt = periods[len(periods)-1].Start
	if !last.IsZero() {
		inc.State, inc.ResolvedAt, inc.UpdatedAt = incidents.StateResolved, last, last
	}
	return inc
}

func period(start, end time.Time) incidents.Period { return incidents.Period{Start: start, End: end} }

func parseCatalog(t testing.TB, yaml string) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Parse([]byte(yaml), "catalog.yml")
	if err != nil {
		t.Fatalf("catalog: %v", err)
	}
	return c
}

func newService(t testing.TB, src availability.Source, cat *catalog.Catalog, cfg availability.Config, now time.Time) *availability.Service {
	t.Helper()
	svc, err := availability.New(availability.Options{
		Source: src, Catalog: func() *catalog.Catalog { return cat }, Config: cfg,
		Now: func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func approx(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func ptrValue(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

// TestFiguresHandComputed checks figures against answers worked out by hand,
// on the real ClickHouse. Every case has services of its own in one
// database; times are on 2026-11-10 (UTC) unless said otherwise.
func TestFiguresHandComputed(t *testing.T) {
	store := openStore(t)
	day := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	open := time.Time{}
	cat := parseCatalog(t, `
defaults:
  slo_target: 99.9
services:
  - name: maint
    owner: ops
    slo_target: 99
    maintenance:
      - start: "2026-11-10T10:30:00Z"
        end: "2026-11-10T11:30:00Z"
  - name: quiet
    owner: ops
  - name: db
    owner: data
  - name: api
    owner: web
    dependencies: [db]
`)
	caused := incident("api-1", "api", incidents.ImpactOutage, period(at(10, 10), at(10, 40)))
	caused.CausedBy = "db-1"
	acked := incident("edge-1", "edge", incidents.ImpactOutage, period(at(23, 30), at(24, 30)))
	acked.AcknowledgedAt = at(23, 35)
	write(t, store,
		// overlapping and nested: union 10:00–12:00.
		incident("nest-1", "nest", incidents.ImpactOutage, period(at(10, 0), at(11, 0))),
		incident("nest-2", "nest", incidents.ImpactOutage, period(at(10, 30), at(12, 0))),
		incident("nest-3", "nest", incidents.ImpactOutage, period(at(10, 40), at(10, 50))),
		// crossing both edges of the day: 1h in (00:00–01:00) and 30m in (23:30–24:00).
		incident("edge-0", "edge", incidents.ImpactOutage, period(at(-1, 0), at(1, 0))),
		acked,
		// open since 22:00, now is 23:00.
		incident("open-1", "open", incidents.ImpactOutage, period(at(22, 0), open)),
		// outage 10:00–11:00 with maintenance 10:30–11:30: 30 minutes count.
		incident("maint-1", "maint", incidents.ImpactOutage, period(at(10, 0), at(11, 0))),
		// degraded 08:00–10:00 and outage 09:00–09:30.
		incident("deg-1", "degraded", incidents.ImpactDegraded, period(at(8, 0), at(10, 0))),
		incident("deg-2", "degraded", incidents.ImpactOutage, period(at(9, 0), at(9, 30))),
		// flapping incident with two periods, and a no-impact incident.
		incident("flap-1", "flap", incidents.ImpactOutage, period(at(1, 0), at(1, 10)), period(at(2, 0), at(2, 20))),
		incident("flap-2", "flap", incidents.ImpactNone, period(at(3, 0), at(4, 0))),
		// cascade: db's outage caused api's; api also has one of its own.
		incident("db-1", "db", incidents.ImpactOutage, period(at(10, 0), at(11, 0))),
		caused,
		incident("api-2", "api", incidents.ImpactOutage, period(at(12, 0), at(12, 10))),
		// One incident of a group with a warning alert 12:00–13:00 and a
		// critical one 12:10–12:20: its impact over time (segments), not
		// its one impact field (degraded here), decides.
		func() *incidents.Incident {
			inc := incident("mixed-1", "mixed", incidents.ImpactDegraded, period(at(12, 0), at(13, 0)))
			inc.Segments = []incidents.Segment{
				{Start: at(12, 0), End: at(13, 0), Impact: incidents.ImpactDegraded},
				{Start: at(12, 10), End: at(12, 20), Impact: incidents.ImpactOutage},
			}
			return inc
		}(),
	)

	now := at(23, 0)
	w, err := availability.WindowBetween(day, day.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	const elapsed = 23 * 3600.0 // the window runs to now, 23:00
	tests := []struct {
		name    string
		service string
		cfg     availability.Config
		check   func(t *testing.T, f availability.Figure)
	}{
		{
			name: "overlapping and nested incidents count once", service: "nest",
			check: func(t *testing.T, f availability.Figure) {
				approx(t, "downtime", f.DowntimeSeconds, 7200)
				approx(t, "availability", f.Availability, 1-7200/elapsed)
				approx(t, "mttr", ptrValue(f.MTTRSeconds), (3600+5400+600)/3.0)
				approx(t, "mtbf", ptrValue(f.MTBFSeconds), (elapsed-7200)/3)
				if f.Incidents != 3 || f.LongestIncidentSeconds != 5400 || f.DowntimeByImpactSeconds.Outage != 7200 {
					t.Errorf("incidents %d, longest %d, outage %d", f.Incidents, f.LongestIncidentSeconds, f.DowntimeByImpactSeconds.Outage)
				}
				if f.MTTASeconds != nil {
					t.Errorf("mtta %v, want null: nothing acknowledged", *f.MTTASeconds)
				}
				if !slices.Equal(f.IncidentIDs, []string{"nest-1", "nest-2", "nest-3"}) {
					t.Errorf("incident ids %v", f.IncidentIDs)
				}
			},
		},
		{
			name: "incidents crossing the window's edges are clamped", service: "edge",
			check: func(t *testing.T, f availability.Figure) {
				// Now is 23:00: edge-1 (23:30) has not started yet.
				approx(t, "downtime", f.DowntimeSeconds, 3600)
				if f.Incidents != 1 || f.LongestIncidentSeconds != 3600 || f.MTTRSeconds != nil {
					t.Errorf("incidents %d, longest %d, mttr %v: edge-0 started before the window", f.Incidents, f.LongestIncidentSeconds, f.MTTRSeconds)
				}
			},
		},
		{
			name: "open incidents count up to now", service: "open",
			check: func(t *testing.T, f availability.Figure) {
				approx(t, "downtime", f.DowntimeSeconds, 3600)
				approx(t, "availability", f.Availability, 1-3600/elapsed)
				approx(t, "burn 1h", f.BurnRate1h, 1/0.001)
				approx(t, "burn 24h", f.BurnRate24h, 3600.0/86400/0.001)
				// Still firing at the window's end (now): its firing time so
				// far.
				approx(t, "mttr", ptrValue(f.MTTRSeconds), 3600)
				if f.WindowSeconds != int64(elapsed) {
					t.Errorf("window %d", f.WindowSeconds)
				}
			},
		},
		{
			name: "maintenance is neither downtime nor window time", service: "maint",
			check: func(t *testing.T, f availability.Figure) {
				eligible := elapsed - 3600
				approx(t, "downtime", f.DowntimeSeconds, 1800)
				approx(t, "availability", f.Availability, 1-1800/eligible)
				approx(t, "budget", f.ErrorBudgetSeconds, 0.01*eligible)
				approx(t, "remaining", f.ErrorBudgetRemaining, 1-1800/(0.01*eligible))
				if f.MaintenanceSeconds != 3600 || f.LongestIncidentSeconds != 3600 || f.SLOTarget != 0.99 || f.Owner != "ops" || !f.Catalogued {
					t.Errorf("figure %+v", f)
				}
			},
		},
		{
			name: "degraded weighs nothing by default", service: "degraded",
			check: func(t *testing.T, f availability.Figure) {
				approx(t, "downtime", f.DowntimeSeconds, 1800)
				// MTBF: time between failures of any outage or degraded
				// incident (08:00-10:00), whatever the weights.
				approx(t, "mtbf", ptrValue(f.MTBFSeconds), (elapsed-7200)/2)
				if f.DowntimeByImpactSeconds != (availability.ImpactSeconds{Outage: 1800, Degraded: 7200}) {
					t.Errorf("by impact %+v", f.DowntimeByImpactSeconds)
				}
			},
		},
		{
			name: "degraded weighted 0.3, the worst impact wins", service: "degraded",
			cfg: availability.Config{ImpactWeights: availability.ImpactWeights{Degraded: ptr(0.3)}},
			check: func(t *testing.T, f availability.Figure) {
				// degraded alone 08:00–09:00 and 09:30–10:00, outage 09:00–09:30.
				approx(t, "downtime", f.DowntimeSeconds, 0.3*5400+1800)
				approx(t, "availability", f.Availability, 1-(0.3*5400+1800)/elapsed)
			},
		},
		{
			name: "warning 12:00-13:00 with critical 12:10-12:20 is 600 s of outage", service: "mixed",
			cfg: availability.Config{ImpactWeights: availability.ImpactWeights{Degraded: ptr(0.3)}},
			check: func(t *testing.T, f availability.Figure) {
				approx(t, "downtime", f.DowntimeSeconds, 600+0.3*3000)
				if f.DowntimeByImpactSeconds != (availability.ImpactSeconds{Outage: 600, Degraded: 3600}) || f.Incidents != 1 {
					t.Errorf("incidents %d, by impact %+v", f.Incidents, f.DowntimeByImpactSeconds)
				}
			},
		},
		{
			name: "flaps count their periods; impact none weighs nothing but counts", service: "flap",
			cfg: availability.Config{ImpactWeights: availability.ImpactWeights{None: ptr(0.5)}},
			check: func(t *testing.T, f availability.Figure) {
				approx(t, "downtime", f.DowntimeSeconds, 1800+0.5*3600)
				if f.Incidents != 2 || f.LongestIncidentSeconds != 3600 || f.DowntimeByImpactSeconds.None != 3600 {
					t.Errorf("incidents %d longest %d by impact %+v", f.Incidents, f.LongestIncidentSeconds, f.DowntimeByImpactSeconds)
				}
				// flap-1 fired 01:00-01:10 and 02:00-02:20: 30 minutes, not
				// the 80 from its start to its resolve.
				approx(t, "mttr", ptrValue(f.MTTRSeconds), (1800+3600)/2.0)
			},
		},
		{
			name: "a service without incidents is 100%", service: "quiet",
			check: func(t *testing.T, f availability.Figure) {
				approx(t, "availability", f.Availability, 1)
				approx(t, "remaining", f.ErrorBudgetRemaining, 1)
				approx(t, "budget", f.ErrorBudgetSeconds, 0.001*elapsed)
				if f.Incidents != 0 || f.MTTRSeconds != nil || f.MTBFSeconds != nil || len(f.IncidentIDs) != 0 {
					t.Errorf("figure %+v", f)
				}
			},
		},
		{
			name: "caused incidents count as experienced, not own", service: "api",
			check: func(t *testing.T, f availability.Figure) {
				approx(t, "experienced", f.DowntimeSeconds, 2400)
				approx(t, "own", f.OwnDowntimeSeconds, 600)
				approx(t, "own availability", f.OwnAvailability, 1-600/elapsed)
				if len(f.Upstream) != 1 || f.Upstream[0].Service != "db" || f.Upstream[0].DowntimeSeconds != 1800 ||
					!slices.Equal(f.Upstream[0].IncidentIDs, []string{"db-1"}) {
					t.Errorf("upstream %+v", f.Upstream)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := newService(t, store, cat, tc.cfg, now)
			f, err := svc.Service(context.Background(), tc.service, w, true)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, f)
		})
	}

	// A past window's figures do not depend on when they are asked: edge-1
	// (23:30, resolved at 00:30 the next day) counts its firing time up to
	// the window's end in MTTR, asked before it was resolved or after; the
	// burn rates are of the window's end.
	t.Run("a past window's figures never change", func(t *testing.T) {
		for _, asked := range []time.Time{at(24, 10), at(36, 0)} {
			svc := newService(t, store, cat, availability.Config{}, asked)
			f, err := svc.Service(context.Background(), "edge", w, false)
			if err != nil {
				t.Fatal(err)
			}
			approx(t, fmt.Sprintf("mttr asked at %v", asked), ptrValue(f.MTTRSeconds), 1800)
			approx(t, fmt.Sprintf("burn 1h asked at %v", asked), f.BurnRate1h, 1800.0/3600/0.001)
		}
		// nest was down 10:00-12:00: over 00:00-11:00, the last hour of the
		// window burns at 1,000 times the rate, whatever now is.
		morning, err := availability.WindowBetween(day, at(11, 0))
		if err != nil {
			t.Fatal(err)
		}
		f, err := newService(t, store, cat, availability.Config{}, now).Service(context.Background(), "nest", morning, false)
		if err != nil {
			t.Fatal(err)
		}
		approx(t, "burn 1h at the window's end", f.BurnRate1h, 1000)
		approx(t, "burn 24h at the window's end", f.BurnRate24h, 3600.0/86400/0.001)
	})

	t.Run("all services, worst first, uncatalogued included", func(t *testing.T) {
		svc := newService(t, store, cat, availability.Config{}, now)
		figs, err := svc.All(context.Background(), w, false)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range figs {
			names = append(names, f.Service)
			if f.IncidentIDs != nil {
				t.Errorf("%s: incident ids without explain", f.Service)
			}
		}
		// nest 2h down; db, edge and open 1h each (tied: by name); api 40m;
		// maint 30m of less eligible time; degraded and flap 30m (tied);
		// mixed 10m.
		wantNames := []string{"nest", "db", "edge", "open", "api", "maint", "degraded", "flap", "mixed", "quiet"}
		if !slices.Equal(names, wantNames) {
			t.Errorf("order %v, want %v", names, wantNames)
		}
	})

	t.Run("unknown service", func(t *testing.T) {
		svc := newService(t, store, cat, availability.Config{}, now)
		_, err := svc.Service(context.Background(), "nope", w, false)
		if answer.StatusOf(err) != 404 {
			t.Errorf("error %v, want 404", err)
		}
	})
}

// TestFiguresCalendarWindows checks whole calendar months of 28 to 31 days
// and a daily series across daylight saving changes in Europe/Stockholm.
func TestFiguresCalendarWindows(t *testing.T) {
	store := openStore(t)
	sthlm, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		t.Fatal(err)
	}
	local := func(y int, m time.Month, d, h int) time.Time { return time.Date(y, m, d, h, 0, 0, 0, sthlm) }
	cat := parseCatalog(t, `
defaults:
  timezone: Europe/Stockholm
services:
  - name: cal
    owner: sre
`)
	write(t, store,
		// One hour of outage in each month.
		incident("feb", "cal", incidents.ImpactOutage, period(local(2026, 2, 10, 12), local(2026, 2, 10, 13))),
		incident("mar", "cal", incidents.ImpactOutage, period(local(2026, 3, 10, 12), local(2026, 3, 10, 13))),
		incident("apr", "cal", incidents.ImpactOutage, period(local(2026, 4, 10, 12), local(2026, 4, 10, 13))),
		incident("jan", "cal", incidents.ImpactOutage, period(local(2026, 1, 10, 12), local(2026, 1, 10, 13))),
		// Across the spring change: local 01:00–04:00 on 29 March is two hours.
		incident("spring", "cal", incidents.ImpactOutage, period(local(2026, 3, 29, 1), local(2026, 3, 29, 4))),
		// All of 25 October, which has 25 hours, and two hours into the 26th.
		incident("autumn", "cal", incidents.ImpactOutage, period(local(2026, 10, 25, 0), local(2026, 10, 26, 2))),
	)
	months := []struct {
		now  time.Time
		days int
		down float64
	}{
		{local(2026, 2, 3, 0), 31, 3600},       // January
		{local(2026, 3, 3, 0), 28, 3600},       // February
		{local(2026, 4, 3, 0), 31, 3 * 3600},   // March: 23-hour day, 31×24−1 hours
		{local(2026, 5, 3, 0), 30, 3600},       // April
		{local(2026, 11, 3, 0), 31, 27 * 3600}, // October: 25-hour day, then 2h on the 26th
	}
	for _, m := range months {
		svc := newService(t, store, cat, availability.Config{}, m.now)
		w, err := svc.ParseWindow("previous-month")
		if err != nil {
			t.Fatal(err)
		}
		f, err := svc.Service(context.Background(), "cal", w, false)
		if err != nil {
			t.Fatal(err)
		}
		length := float64(m.days * 86400)
		switch w.From.In(sthlm).Month() {
		case time.March:
			length -= 3600
		case time.October:
			length += 3600
		}
		if float64(f.WindowSeconds) != length {
			t.Errorf("%s: window %ds, want %v", w.From.In(sthlm).Month(), f.WindowSeconds, length)
		}
		approx(t, w.From.In(sthlm).Month().String()+" downtime", f.DowntimeSeconds, m.down)
		approx(t, w.From.In(sthlm).Month().String()+" availability", f.Availability, 1-m.down/length)
	}

	t.Run("daily series across DST", func(t *testing.T) {
		svc := newService(t, store, cat, availability.Config{}, local(2026, 11, 1, 0))
		days, err := svc.Daily(context.Background(), "cal", local(2026, 3, 28, 0), local(2026, 3, 30, 0))
		if err != nil {
			t.Fatal(err)
		}
		wantDays := []availability.Day{
			{Date: "2026-03-28", WindowSeconds: 86400, Availability: 1},
			{Date: "2026-03-29", WindowSeconds: 82800, DowntimeSeconds: 7200, Availability: 1 - 7200.0/82800, Incidents: 1},
			{Date: "2026-03-30", WindowSeconds: 86400, Availability: 1},
		}
		compareDays(t, days, wantDays)

		days, err = svc.Daily(context.Background(), "cal", local(2026, 10, 25, 0), local(2026, 10, 26, 0))
		if err != nil {
			t.Fatal(err)
		}
		compareDays(t, days, []availability.Day{
			{Date: "2026-10-25", WindowSeconds: 90000, DowntimeSeconds: 90000, Availability: 0, Incidents: 1},
			{Date: "2026-10-26", WindowSeconds: 86400, DowntimeSeconds: 7200, Availability: 1 - 7200.0/86400, Incidents: 1},
		})
	})
}

func compareDays(t *testing.T, got, want []availability.Day) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d days, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Date != w.Date || g.WindowSeconds != w.WindowSeconds || g.Incidents != w.Incidents ||
			math.Abs(g.DowntimeSeconds-w.DowntimeSeconds) > 1e-6 || math.Abs(g.Availability-w.Availability) > 1e-9 {
			t.Errorf("day %d = %+v, want %+v", i, g, w)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestManualResolveKeepsDowntime: issue 15's case through the incident
// service and ClickHouse. The alert fired 17:08-18:32, someone resolved
// the incident by hand at 17:13 and Alertmanager kept notifying until the
// alert resolved: the downtime is the alert's 84 minutes, not 5.
func TestManualResolveKeepsDowntime(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	day := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute) }
	now := at(17, 8)
	svc, err := incidents.NewService(incidents.Options{Store: store, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	alert := func(end time.Time) incidents.Notification {
		a := incidents.Alert{
			Fingerprint: "fp", Status: incidents.AlertFiring, StartsAt: at(17, 8),
			Labels: map[string]string{"alertname": "TargetDown", "service": "api", "severity": "critical"},
		}
		st := incidents.AlertFiring
		if !end.IsZero() {
			a.Status, a.EndsAt, st = incidents.AlertResolved, end, incidents.AlertResolved
		}
		return incidents.Notification{Receiver: "nines", Status: st, GroupKey: "g", Alerts: []incidents.Alert{a}, ReceivedAt: now}
	}
	if err := svc.Ingest(ctx, alert(time.Time{})); err != nil {
		t.Fatal(err)
	}
	list, _, err := store.List(ctx, incidents.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("incidents %+v, %v", list, err)
	}
	now = at(17, 13)
	if _, err := svc.Resolve(ctx, list[0].ID, "alice"); err != nil {
		t.Fatal(err)
	}
	w, err := availability.WindowBetween(at(16, 0), at(20, 0))
	if err != nil {
		t.Fatal(err)
	}
	cat := parseCatalog(t, "services:\n  - name: api\n")
	figure := func(asked time.Time) availability.Figure {
		t.Helper()
		f, err := newService(t, store, cat, availability.Config{}, asked).Service(ctx, "api", w, false)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	// Still firing at 18:00, resolved by hand or not: 52 minutes so far.
	approx(t, "downtime at 18:00, resolved by hand at 17:13", figure(at(18, 0)).DowntimeSeconds, 52*60)
	for _, step := range []struct {
		at time.Time
		n  incidents.Notification
	}{{at(17, 20), alert(time.Time{})}, {at(18, 32), alert(at(18, 32))}} {
		now = step.at
		step.n.ReceivedAt = now
		if err := svc.Ingest(ctx, step.n); err != nil {
			t.Fatal(err)
		}
	}
	f := figure(at(20, 0))
	approx(t, "downtime", f.DowntimeSeconds, 84*60)
	approx(t, "availability", f.Availability, 1-84.0/240)
	if f.Incidents != 1 {
		t.Errorf("incidents %d, want 1: a firing notification after the resolve does not reopen it", f.Incidents)
	}
}
