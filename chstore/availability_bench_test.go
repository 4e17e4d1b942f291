package chstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
)

// Benchmark data: benchIncidents incidents over benchServices services and
// one year up to benchNow.
const (
	benchIncidents = 1_000_000
	benchServices  = 2_000
)

var benchNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// benchLoad fills the incidents table with INSERT … SELECT from numbers():
// each incident fires 1 minute to 2 hours (one in a hundred 40 hours), a
// quarter of them twice; impacts are spread evenly; one in twenty is
// caused by the previous incident (another service); one in 500 of the
// last three days' is still open; four in five were acknowledged.
func benchLoad(ctx context.Context, conn clickhouse.Conn, n, services int, now time.Time) error {
	const q = `INSERT INTO incidents (id, service, group_key, title, impact, state, source, opened_at, started_at,
    acknowledged_at, acknowledged_by, resolved_at, resolved_by, flaps, truncated_alerts, labels, annotations,
    runbook_url, generator_url, external_url, caused_by, period_starts, period_ends, alert_count, alerts_firing,
    facts, updated_at, version)
SELECT
    concat('inc-', lower(hex(cityHash64(number)))) AS id,
    concat('svc-', toString(number %% %[2]d)) AS service,
    concat('group-', toString(number %% 10000)) AS group_key,
    'benchmark incident' AS title,
    toInt8(cityHash64(number, 1) %% 3) AS impact,
    if(open, 'firing', 'resolved') AS state,
    'alertmanager' AS source,
    toDateTime(start) AS opened_at,
    toDateTime(start) AS started_at,
    toDateTime(if(cityHash64(number, 2) %% 5 = 0, 0, start + 30 + cityHash64(number, 3) %% 600)) AS acknowledged_at,
    '' AS acknowledged_by,
    toDateTime(if(open, 0, last_end)) AS resolved_at,
    '' AS resolved_by,
    toUInt32(0) AS flaps, toUInt32(0) AS truncated_alerts, '{}' AS labels, '{}' AS annotations,
    '' AS runbook_url, '' AS generator_url, '' AS external_url,
    if(cityHash64(number, 4) %% 20 = 0 AND number > 0, concat('inc-', lower(hex(cityHash64(number - 1)))), '') AS caused_by,
    arrayMap(t -> toDateTime(t), if(two, [start, start + d1 + gap], [start])) AS period_starts,
    arrayMap(t -> toDateTime(t), if(open, if(two, [start + d1, 0], [0]), if(two, [start + d1, last_end], [last_end]))) AS period_ends,
    toUInt32(1) AS alert_count, toUInt32(open) AS alerts_firing, toUInt32(1) AS facts,
    toDateTime(if(open, start, last_end)) AS updated_at,
    toUInt64(1) AS version
FROM
(
    SELECT
        number,
        toUInt32(%[3]d - 365 * 86400 + cityHash64(number, 5) %% (365 * 86400)) AS start,
        toUInt32((60 + cityHash64(number, 6) %% 7140) * if(cityHash64(number, 7) %% 100 = 0, 20, 1)) AS d1,
        toUInt32(60 + cityHash64(number, 8) %% 3600) AS gap,
        toUInt32(60 + cityHash64(number, 9) %% 3600) AS d2,
        cityHash64(number, 10) %% 4 = 0 AS two,
        toUInt32(start + d1 + if(two, gap + d2, 0)) AS last_end,
        start > %[3]d - 3 * 86400 AND cityHash64(number, 11) %% 500 = 0 AS open
    FROM numbers(%[1]d)
)`
	return conn.Exec(ctx, fmt.Sprintf(q, n, services, now.Unix()))
}

// benchMaintenance gives one service in ten a weekly hour of maintenance.
func benchMaintenance(services int, from, to time.Time) map[string][]catalog.Interval {
	out := map[string][]catalog.Interval{}
	for i := 0; i < services; i += 10 {
		w := catalog.Window{Schedule: catalog.ScheduleWeekly, Days: []time.Weekday{time.Sunday}, Hour: 3, Duration: time.Hour}
		out[fmt.Sprintf("svc-%d", i)] = w.Intervals(from, to)
	}
	return out
}

// plainScan is the reference for speed: read and group the same rows over
// the same window, summing clamped period lengths without merging them.
const plainScan = `SELECT service, sum(arraySum(arrayMap((s, e) ->
        greatest(toInt64(least(if(toUInt32(e) = 0, @now, toUInt32(e)), @end)) - greatest(toUInt32(s), @from), 0),
        period_starts, period_ends))) AS seconds
FROM incidents
WHERE arrayExists((s, e) -> toUInt32(s) < @end AND (toUInt32(s) >= @from OR toUInt32(e) = 0 OR toUInt32(e) > @from),
    period_starts, period_ends)
GROUP BY service`

// BenchmarkAvailability loads 1,000,000 incidents over 2,000 services and
// one year, then times every service over 30 days (with the 1h and 24h
// burn-rate ranges and maintenance for one service in ten), one service's
// daily series for a year, and the plain scan, and reports the ratios to
// the plain scan. Run it with make bench-availability.
func BenchmarkAvailability(b *testing.B) {
	dsn := chtest.Database(b)
	ctx := context.Background()
	store, err := chstore.Open(ctx, chstore.Options{DSN: dsn, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		b.Fatal(err)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if err := benchLoad(ctx, conn, benchIncidents, benchServices, benchNow); err != nil {
		b.Fatalf("load: %v", err)
	}
	b.Logf("loaded %d incidents over %d services in %s", benchIncidents, benchServices, time.Since(start).Round(time.Millisecond))

	from := benchNow.Add(-30 * 24 * time.Hour)
	query := availability.Query{
		From: from, To: benchNow, Now: benchNow, Recent: []time.Duration{time.Hour, 24 * time.Hour},
		Maintenance: benchMaintenance(benchServices, from.Add(-24*time.Hour), benchNow),
	}
	var days []catalog.Interval
	for d := benchNow.Truncate(24*time.Hour).AddDate(0, 0, -365); d.Before(benchNow); d = d.AddDate(0, 0, 1) {
		days = append(days, catalog.Interval{Start: d, End: minTime(d.AddDate(0, 0, 1), benchNow)})
	}
	daily := availability.DailyQuery{
		Service: "svc-10", Days: days, Now: benchNow,
		Maintenance: benchMaintenance(benchServices, days[0].Start, benchNow)["svc-10"],
	}
	scanArgs := []any{
		clickhouse.Named("from", uint32(from.Unix())), clickhouse.Named("end", uint32(benchNow.Unix())),
		clickhouse.Named("now", uint32(benchNow.Unix())),
	}

	// Wall time on a shared machine is noisy; the server's own CPU time
	// per query is not (the server is private to the test).
	timings := map[string]time.Duration{}
	cpus := map[string]float64{}
	run := func(name string, f func() error) {
		b.Run(name, func(b *testing.B) {
			cpu0, err := serverCPU(ctx, conn)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
			cpu1, err := serverCPU(ctx, conn)
			if err != nil {
				b.Fatal(err)
			}
			timings[name] = b.Elapsed() / time.Duration(b.N)
			cpus[name] = (cpu1 - cpu0) / float64(b.N)
			b.ReportMetric(cpus[name], "server-cpu-ms/op")
			if scan := timings["plain-scan-30d"]; scan > 0 && name != "plain-scan-30d" {
				b.ReportMetric(float64(timings[name])/float64(scan), "x-plain-scan")
				b.ReportMetric(cpus[name]/cpus["plain-scan-30d"], "cpu-x-plain-scan")
			}
		})
	}
	scanQuery := func(q string) func() error {
		return func() error {
			rows, err := conn.Query(ctx, q, scanArgs...)
			if err != nil {
				return err
			}
			defer rows.Close()
			n := 0
			for rows.Next() {
				n++
			}
			if n != benchServices {
				return fmt.Errorf("plain scan: %d services, want %d", n, benchServices)
			}
			return rows.Err()
		}
	}
	run("plain-scan-30d", scanQuery(plainScan))
	// The same scan collapsing versions with FINAL: what a version-specific
	// collapse would cost (slow on 18.16, parallel on current releases).
	run("final-scan-30d", scanQuery(strings.Replace(plainScan, "FROM incidents", "FROM incidents FINAL", 1)))
	// The first two steps of the availability query alone: the window's
	// candidates with their versions collapsed (ORDER BY … LIMIT 1 BY id).
	run("collapse-30d", func() error {
		var n, svcs, imp, causes, ts, ps, pe uint64
		return conn.QueryRow(ctx, chstore.CollapseSQL(), clickhouse.Named("lo", uint32(from.Unix())),
			clickhouse.Named("hi", uint32(benchNow.Unix())), clickhouse.Named("now", uint32(benchNow.Unix()))).Scan(&n, &svcs, &imp, &causes, &ts, &ps, &pe)
	})
	run("all-services-30d", func() error {
		raws, err := store.Downtime(ctx, query)
		if err == nil && len(raws) != benchServices {
			err = fmt.Errorf("all services: %d, want %d", len(raws), benchServices)
		}
		return err
	})
	run("daily-1-service-365d", func() error {
		_, err := store.Daily(ctx, daily)
		return err
	})
	if scan := timings["plain-scan-30d"]; scan > 0 {
		b.Logf("server CPU per op: plain scan %.0f ms, FINAL scan %.0f ms (%.2f×), collapse %.0f ms (%.2f×), all services 30d %.0f ms (%.2f×), daily 365d %.0f ms (%.2f×)",
			cpus["plain-scan-30d"], cpus["final-scan-30d"], cpus["final-scan-30d"]/cpus["plain-scan-30d"],
			cpus["collapse-30d"], cpus["collapse-30d"]/cpus["plain-scan-30d"],
			cpus["all-services-30d"], cpus["all-services-30d"]/cpus["plain-scan-30d"],
			cpus["daily-1-service-365d"], cpus["daily-1-service-365d"]/cpus["plain-scan-30d"])
		b.Logf("plain scan %s, all services 30d %s (%.2f×), daily 365d %s (%.2f×)",
			scan, timings["all-services-30d"], float64(timings["all-services-30d"])/float64(scan),
			timings["daily-1-service-365d"], float64(timings["daily-1-service-365d"])/float64(scan))
	}
}

// serverCPU returns the CPU time, in milliseconds, the server has used
// since it started (its own threads' virtual CPU time).
func serverCPU(ctx context.Context, conn clickhouse.Conn) (float64, error) {
	var us uint64
	err := conn.QueryRow(ctx, "SELECT sum(value) FROM system.events WHERE event IN ('UserTimeMicroseconds', 'SystemTimeMicroseconds')").Scan(&us)
	if err != nil {
		return 0, fmt.Errorf("server cpu: %w", err)
	}
	return float64(us) / 1000, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
