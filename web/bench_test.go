package web

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/incidents"
)

// benchFake is 2,000 services (50 squads, 40 systems, chains of
// dependencies) and 100,000 incidents over 90 days, 20 of them open.
func benchFake(b *testing.B) *fake {
	b.Helper()
	var y strings.Builder
	y.WriteString("services:\n")
	const services, total = 2000, 100_000
	for i := range services {
		fmt.Fprintf(&y, "  - {name: svc-%04d, owner: squad-%02d, tier: %d, system: system-%02d", i, i%50, 1+i%3, i%40)
		if i%10 != 0 {
			fmt.Fprintf(&y, ", dependencies: [svc-%04d]", i-1)
		}
		y.WriteString("}\n")
	}
	cat, err := catalog.Parse([]byte(y.String()), "catalog.yml")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	f := newFake(now, cat)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range total {
		start := now.Add(-time.Duration(rng.Int64N(int64(90 * 24 * time.Hour))))
		inc := &incidents.Incident{
			ID: fmt.Sprintf("inc-%020x", i), Service: fmt.Sprintf("svc-%04d", rng.IntN(services)),
			Title: fmt.Sprintf("Incident %d", i), Impact: incidents.Impact(rng.IntN(3)), State: incidents.StateResolved,
			StartedAt: start, ResolvedAt: start.Add(time.Duration(1+rng.IntN(120)) * time.Minute),
			Labels: map[string]string{"alertname": "A"},
		}
		inc.Alerts = []incidents.Alert{{Fingerprint: "f", Status: incidents.AlertResolved, Impact: inc.Impact, StartsAt: inc.StartedAt, EndsAt: inc.ResolvedAt, Labels: inc.Labels}}
		if i < 20 {
			inc.State, inc.ResolvedAt, inc.StartedAt = incidents.StateFiring, time.Time{}, now.Add(-time.Hour)
			inc.Alerts[0].Status, inc.Alerts[0].EndsAt, inc.Alerts[0].StartsAt = incidents.AlertFiring, time.Time{}, inc.StartedAt
		}
		f.add(inc)
	}
	f.index()
	return f
}

// BenchmarkPages renders each page over the in-memory fake of the read
// interfaces (benchFake), which answers like an indexed store whose
// availability figures are already computed (and kept, as nines serve
// keeps them; computed before the timing), so it
// measures nines' own server time: reading the answers, filtering, sorting and paginating,
// building the SVG and rendering the template. With ClickHouse behind them,
// pages add the store's queries (see README, "Pages"). A page fails if it
// takes 100 ms or more on average.
func BenchmarkPages(b *testing.B) {
	f := benchFake(b)
	// Figures over every service are kept, as nines serve keeps them.
	h := mux(newTestPages(f, Options{APIToken: testToken, RefreshInterval: time.Hour}))
	some := f.bySvc["svc-0001"][0].ID
	for _, path := range []string{"/", "/status"} { // computes the kept figures
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	for _, path := range []string{
		"/", "/?squad=squad-07&tier=2", "/?page=20", "/incidents/" + some, "/incidents/" + some + "/postmortem",
		"/services/svc-0001", "/squads/squad-07", "/status", "/status?page=2",
	} {
		b.Run(path, func(b *testing.B) {
			var worst time.Duration
			for b.Loop() {
				rec := httptest.NewRecorder()
				start := time.Now()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				worst = max(worst, time.Since(start))
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
				}
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
			if mean := b.Elapsed() / time.Duration(b.N); mean >= 100*time.Millisecond {
				b.Errorf("%s took %s on average, want under 100ms", path, mean)
			}
		})
	}
}
