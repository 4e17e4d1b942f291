package collector_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/collector"
	"github.com/ninesops/nines/collector/promtest"
	"github.com/ninesops/nines/incidents"
)

// scrape answers GET /metrics as nines does (promhttp over the registry)
// and returns the text exposition.
func scrape(t testing.TB, g prometheus.Gatherer) []byte {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true}).
		ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics = %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes()
}

// richCollector returns a refreshed collector whose output holds every
// metric it can export: all figures, open incidents, counters, a failed
// refresh and the refresh histogram.
func richCollector(t *testing.T, reg prometheus.Registerer) *collector.Collector {
	t.Helper()
	f := fig("checkout", "payments", "1h", 0.99)
	f.DowntimeByImpactSeconds = availability.ImpactSeconds{Outage: 36, Degraded: 10}
	f.MTTRSeconds, f.MTTASeconds = ptr(1800.0), ptr(60.0)
	figs := &fakeFigures{err: io.ErrUnexpectedEOF}
	c := newCollector(t, figs, &fakeCounts{counts: []collector.IncidentCount{
		{Service: "checkout", Impact: incidents.ImpactOutage, State: incidents.StateFiring, OpenedImpact: incidents.ImpactDegraded, Incidents: 1, Flaps: 2},
	}}, func(o *collector.Options) {
		o.Registerer = reg
		o.Windows = collector.DefaultWindows()
	})
	if err := c.Refresh(t.Context()); err == nil {
		t.Fatal("Refresh succeeded with a failing source")
	}
	figs.set(map[string][]availability.Figure{"1h": {f}, "24h": {f}, "7d": {f}, "30d": {f}}, nil)
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	return c
}

// TestPromtoolCheckMetrics pipes a scrape of the collector, next to the Go
// and process collectors nines serves as well, to `promtool check metrics`,
// which must find nothing to say.
func TestPromtoolCheckMetrics(t *testing.T) {
	t.Parallel()
	promtool := promtest.Promtool(t)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	richCollector(t, reg)
	body := scrape(t, reg)
	for _, name := range []string{collector.MetricAvailability, collector.MetricIncidentsOpened, "nines_collector_refresh_duration_seconds_bucket"} {
		if !bytes.Contains(body, []byte(name)) {
			t.Fatalf("scrape lacks %s:\n%s", name, body)
		}
	}

	cmd := exec.CommandContext(t.Context(), promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
