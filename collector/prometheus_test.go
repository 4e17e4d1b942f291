package collector_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/collector"
	"github.com/ninesops/nines/collector/promtest"
)

// TestAcceptancePrometheus: a real Prometheus (Debian's prometheus
// package) scrapes the collector over HTTP while Run refreshes it, and
// querying nines_service_availability_ratio through its API gives exactly
// the figures the source computes, float for float. (The same over the
// ClickHouse store and availability.Service is
// TestCollectorPrometheusOnStore in chstore.)
func TestAcceptancePrometheus(t *testing.T) {
	t.Parallel()
	promtest.Prometheus(t) // skip early without it

	// Values that do not survive a careless float round trip.
	figs := map[string][]availability.Figure{}
	for i, w := range collector.DefaultWindows() {
		figs[w] = []availability.Figure{
			fig("checkout", "payments", w, 1-36.0/3600/float64(i+1)),
			fig("search", "discovery", w, 0.1+0.2),
			fig("uncatalogued", "", w, 2.0/3),
		}
	}
	source := &fakeFigures{figs: figs}
	reg := prometheus.NewRegistry()
	c, err := collector.New(collector.Options{Figures: source, Counts: &fakeCounts{}, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	t.Cleanup(srv.Close)
	base := promtest.Start(t, strings.TrimPrefix(srv.URL, "http://"))

	// What the source computes directly, window by window.
	want := map[string]availability.Figure{} // service/window
	for _, name := range collector.DefaultWindows() {
		w, err := source.ParseWindow(name)
		if err != nil {
			t.Fatal(err)
		}
		all, err := source.All(t.Context(), w, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range all {
			want[f.Service+"/"+name] = f
		}
	}
	got := promtest.Await(t, base, collector.MetricAvailability, len(want))
	if len(got) != len(want) {
		t.Errorf("Prometheus has %d availability series, want %d", len(got), len(want))
	}
	for _, s := range got {
		key := s.Metric["service"] + "/" + s.Metric["window"]
		f, ok := want[key]
		switch {
		case !ok:
			t.Errorf("Prometheus has an unexpected series %v", s.Metric)
		case s.Value != f.Availability:
			t.Errorf("%s: Prometheus has %v, the source computed %v", key, s.Value, f.Availability)
		case s.Metric["owner"] != f.Owner || s.Metric["job"] != "nines":
			t.Errorf("series %v: want owner %q and job nines", s.Metric, f.Owner)
		}
	}
	if up := promtest.Query(t, base, `up{job="nines"}`); len(up) != 1 || up[0].Value != 1 {
		t.Errorf("up = %v, want one target up", up)
	}
	if up := promtest.Query(t, base, collector.MetricUp); len(up) != 1 || up[0].Value != 1 {
		t.Errorf("%s = %v, want 1", collector.MetricUp, up)
	}
}
