package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/gorilla/mux"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/collector"
	"github.com/ninesops/nines/web"
)

// The pages' data set: pageServices services (50 squads, 40 systems,
// chains of dependencies) and pageIncidents incidents over the last
// HistoryDays days, a few of them open.
const (
	pageServices  = 2_000
	pageIncidents = 100_000
)

// pageCatalog is the catalog of the pages' data set.
func pageCatalog(tb testing.TB) *catalog.Catalog {
	tb.Helper()
	var y strings.Builder
	y.WriteString("services:\n")
	for i := range pageServices {
		fmt.Fprintf(&y, "  - {name: svc-%04d, owner: squad-%02d, tier: %d, system: system-%02d", i, i%50, 1+i%3, i%40)
		if i%10 != 0 {
			fmt.Fprintf(&y, ", dependencies: [svc-%04d]", i-1)
		}
		y.WriteString("}\n")
	}
	cat, err := catalog.Parse([]byte(y.String()), "catalog.yml")
	if err != nil {
		tb.Fatal(err)
	}
	return cat
}

// loadPageIncidents fills the incidents table with INSERT … SELECT from
// numbers(): incident i belongs to svc-(i mod 2000), fires 1 to 120
// minutes (a quarter of them twice) at a random time of the last 90 days,
// with an even spread of impacts; one in twenty was caused by the one
// before it; one in 5,000 of the last day's is still open.
func loadPageIncidents(ctx context.Context, conn clickhouse.Conn, now time.Time) error {
	const q = `INSERT INTO incidents (id, service, group_key, title, impact, state, source, opened_at, started_at,
    acknowledged_at, acknowledged_by, resolved_at, resolved_by, flaps, truncated_alerts, labels, annotations,
    runbook_url, generator_url, external_url, caused_by, period_starts, period_ends, alert_count, alerts_firing,
    facts, updated_at, version)
SELECT
    concat('inc-', substring(lower(hex(MD5(toString(number)))), 1, 20)) AS id,
    concat('svc-', substring(toString(10000 + number %% %[2]d), 2)) AS service,
    concat('group-', toString(number %% 10000)) AS group_key,
    concat('Incident ', toString(number)) AS title,
    toInt8(cityHash64(number, 1) %% 3) AS impact,
    if(open, 'firing', 'resolved') AS state,
    'alertmanager' AS source,
    toDateTime(start) AS opened_at,
    toDateTime(start) AS started_at,
    toDateTime(if(cityHash64(number, 2) %% 5 = 0, 0, start + 30 + cityHash64(number, 3) %% 600)) AS acknowledged_at,
    '' AS acknowledged_by,
    toDateTime(if(open, 0, last_end)) AS resolved_at,
    '' AS resolved_by,
    toUInt32(0) AS flaps, toUInt32(0) AS truncated_alerts, '{"alertname":"A","pod":"internal"}' AS labels, '{}' AS annotations,
    '' AS runbook_url, '' AS generator_url, '' AS external_url,
    if(cityHash64(number, 4) %% 20 = 0 AND number > 0, concat('inc-', substring(lower(hex(MD5(toString(number - 1)))), 1, 20)), '') AS caused_by,
    arrayMap(t -> toDateTime(t), if(two, [start, start + d1 + gap], [start])) AS period_starts,
    arrayMap(t -> toDateTime(t), if(open, if(two, [start + d1, 0], [0]), if(two, [start + d1, last_end], [last_end]))) AS period_ends,
    toUInt32(1) AS alert_count, toUInt32(open) AS alerts_firing, toUInt32(1) AS facts,
    toDateTime(if(open, start, last_end)) AS updated_at,
    toUInt64(1) AS version
FROM
(
    SELECT
        number,
        toUInt32(%[3]d - 90 * 86400 + cityHash64(number, 5) %% (90 * 86400 - 4 * 3600)) AS start,
        toUInt32(60 + cityHash64(number, 6) %% 3540) AS d1,
        toUInt32(60 + cityHash64(number, 8) %% 1800) AS gap,
        toUInt32(60 + cityHash64(number, 9) %% 1800) AS d2,
        cityHash64(number, 10) %% 4 = 0 AS two,
        toUInt32(start + d1 + if(two, gap + d2, 0)) AS last_end,
        start > %[3]d - 86400 AND cityHash64(number, 11) %% 50 = 0 AS open
    FROM numbers(%[1]d)
)`
	return conn.Exec(ctx, fmt.Sprintf(q, pageIncidents, pageServices, now.Unix()))
}

// pagePlainScan is the reference for speed: read every incident of the
// last 90 days and sum its periods' lengths per service, without
// collapsing versions or merging periods.
const pagePlainScan = `SELECT service, sum(arraySum(arrayMap((s, e) ->
        toInt64(if(toUInt32(e) = 0, @now, toUInt32(e))) - toUInt32(s), period_starts, period_ends))) AS seconds
FROM incidents
WHERE started_at >= toDateTime(@from)
GROUP BY service`

// BenchmarkPagesOnClickHouse renders each page with pageServices services
// and pageIncidents incidents in the test ClickHouse (NINES_TEST_ENGINE
// picks 18.16 or current ClickHouse), through nines' own routes and the
// real store, and reports each page's server time (the handler's wall
// time), its worst single rendering, and its ratio to a plain scan of the
// incidents table run after each rendering. The figures of every service are
// computed once before (and logged): pages reuse them for the refresh
// interval, refreshing them in the background. Run it with make
// bench-pages (and make bench-pages-chdb). A page fails at 100 ms on
// average.
func BenchmarkPagesOnClickHouse(b *testing.B) {
	ctx := context.Background()
	dsn := chtest.Database(b)
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	now := time.Now().UTC().Truncate(time.Second)
	start := time.Now()
	if err := loadPageIncidents(ctx, conn, now); err != nil {
		b.Fatalf("load: %v", err)
	}
	b.Logf("loaded %d incidents over %d services in %s", pageIncidents, pageServices, time.Since(start).Round(time.Millisecond))

	store, err := chstore.Open(ctx, chstore.Options{DSN: dsn, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	cat := pageCatalog(b)
	current := func() *catalog.Catalog { return cat }
	avail, err := availability.New(availability.Options{Source: store, Catalog: current})
	if err != nil {
		b.Fatal(err)
	}
	chg, err := changes.New(changes.Options{Store: store, Incidents: store, Catalog: current})
	if err != nil {
		b.Fatal(err)
	}
	pages, err := web.New(web.Options{
		Incidents: store, Availability: avail, Changes: chg, Catalog: current,
		RefreshInterval: collector.DefaultRefreshInterval,
	})
	if err != nil {
		b.Fatal(err)
	}
	r := mux.NewRouter()
	r.Use(pathValues)
	pageRoutesOn(r, pages)

	var some string
	if err := conn.QueryRow(ctx, "SELECT any(id) FROM incidents WHERE service = 'svc-0001' AND caused_by = ''").Scan(&some); err != nil {
		b.Fatal(err)
	}
	scanArgs := []any{clickhouse.Named("now", uint32(now.Unix())), clickhouse.Named("from", uint32(now.Add(-web.HistoryDays*24*time.Hour).Unix()))}
	plainScan := func() error {
		rows, err := conn.Query(ctx, pagePlainScan, scanArgs...)
		if err != nil {
			return err
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			n++
		}
		if n != pageServices {
			return fmt.Errorf("plain scan: %d services, want %d", n, pageServices)
		}
		return rows.Err()
	}
	// Each rendering is followed by a plain scan, timed apart, so that the
	// ratio compares the two under the same load.
	timings, scans := map[string]time.Duration{}, map[string]time.Duration{}
	bench := func(name string, f func() error) {
		b.Run(name, func(b *testing.B) {
			var worst, page, scan time.Duration
			for b.Loop() {
				t0 := time.Now()
				if err := f(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := plainScan(); err != nil {
					b.Fatal(err)
				}
				worst, page, scan = max(worst, t1.Sub(t0)), page+t1.Sub(t0), scan+time.Since(t1)
			}
			timings[name], scans[name] = page/time.Duration(b.N), scan/time.Duration(b.N)
			b.ReportMetric(float64(timings[name].Microseconds())/1000, "page-ms")
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
			b.ReportMetric(float64(page)/float64(scan), "x-plain-scan")
		})
	}
	paths := []string{
		"/", "/?squad=squad-07&tier=2", "/?page=20", "/incidents/" + some, "/incidents/" + some + "/postmortem",
		"/services/svc-0001", "/squads/squad-07", "/status", "/status?page=20",
	}
	get := func(path string) error {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			return fmt.Errorf("%s: %d %s", path, rec.Code, rec.Body)
		}
		return nil
	}
	// The first page computes the figures of every service (the default
	// windows, the status page's 90 days): what a refresh costs in the
	// background afterwards.
	for _, path := range []string{"/", "/status"} {
		t0 := time.Now()
		if err := get(path); err != nil {
			b.Fatal(err)
		}
		b.Logf("first %s, computing the figures of every service: %s", path, time.Since(t0).Round(time.Millisecond))
	}
	for _, path := range paths {
		bench(path, func() error { return get(path) })
	}
	var lines []string
	for _, path := range paths {
		lines = append(lines, fmt.Sprintf("%s %.1f ms (%.2f× the scan, %.1f ms beside it)", path,
			float64(timings[path].Microseconds())/1000, float64(timings[path])/float64(scans[path]), float64(scans[path].Microseconds())/1000))
		if timings[path] >= 100*time.Millisecond {
			b.Errorf("%s took %s on average, want under 100ms", path, timings[path])
		}
	}
	b.Logf("pages, each beside a plain scan of 90 days: %s", strings.Join(lines, "; "))
}
