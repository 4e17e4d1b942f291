package collector_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/collector"
	"github.com/ninesops/nines/incidents"
)

// benchSources returns fakes for services × the default windows: every
// service has downtime, half have MTTA and MTTR, a quarter have incidents
// (some of them open).
func benchSources(services int) (*fakeFigures, *fakeCounts) {
	figs := map[string][]availability.Figure{}
	var counts []collector.IncidentCount
	for i := range services {
		name := fmt.Sprintf("service-%04d", i)
		owner := fmt.Sprintf("squad-%02d", i%40)
		for _, w := range collector.DefaultWindows() {
			f := fig(name, owner, w, 0.999123456789)
			f.OwnAvailability, f.ErrorBudgetRemaining = 0.99954321, 0.123456789
			f.DowntimeByImpactSeconds = availability.ImpactSeconds{Outage: int64(i), Degraded: int64(2 * i)}
			if i%2 == 0 {
				f.MTTASeconds, f.MTTRSeconds = ptr(123.5), ptr(4567.25)
			}
			figs[w] = append(figs[w], f)
		}
		if i%4 == 0 {
			counts = append(counts,
				collector.IncidentCount{Service: name, Impact: incidents.ImpactOutage, State: incidents.StateResolved, OpenedImpact: incidents.ImpactOutage, Incidents: int64(i), Flaps: 3},
				collector.IncidentCount{Service: name, Impact: incidents.ImpactDegraded, State: incidents.StateFiring, OpenedImpact: incidents.ImpactDegraded, Incidents: 1},
			)
		}
	}
	return &fakeFigures{figs: figs}, &fakeCounts{counts: counts}
}

// BenchmarkCollect measures one scrape of /metrics as nines serves it
// (gathering the cached values, sorting, text encoding) with 2,000
// services × 4 windows, and reports the bytes and series served.
func BenchmarkCollect(b *testing.B) {
	figs, counts := benchSources(2000)
	reg := prometheus.NewRegistry()
	c, err := collector.New(collector.Options{Figures: figs, Counts: counts, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Refresh(b.Context()); err != nil {
		b.Fatal(err)
	}
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	var size, series int
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /metrics = %d", rec.Code)
		}
		size = rec.Body.Len()
		series = bytes.Count(rec.Body.Bytes(), []byte("\nnines_"))
	}
	b.ReportMetric(float64(size), "bytes/scrape")
	b.ReportMetric(float64(series), "series/scrape")
}

// BenchmarkRefresh measures the collector's side of one refresh with
// 2,000 services × 4 windows: turning figures and counts into cached
// metrics (the store's queries excluded).
func BenchmarkRefresh(b *testing.B) {
	figs, counts := benchSources(2000)
	c, err := collector.New(collector.Options{Figures: figs, Counts: counts})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := c.Refresh(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
