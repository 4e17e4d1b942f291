package chstore

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/incidents"
)

var _ availability.Source = (*Store)(nil)

// Availability arithmetic in ClickHouse.
//
// One query answers a whole availability.Query for every service at once,
// and one more a daily series, without window functions and without
// loading incidents into Go:
//
//  1. Candidates: cityHash64 of the IDs of incidents any version of which
//     has a period overlapping [lo, hi) or still open. That superset of the
//     incidents whose latest version overlaps costs one pass over id and the
//     period arrays.
//  2. Collapse: the latest version of each candidate (its rows ordered by
//     version, LIMIT 1 BY id), filtering on the immutable id only, as
//     read.go does. The exact overlap test runs on the collapsed row.
//  3. The upstream incident's service is joined through caused_by (by
//     cityHash64, checking the ID, so that a collision cannot mislabel).
//  4. Per incident, its impact segments (or, without segments, its
//     periods at its one impact; open ones end now) are clamped to [lo, hi)
//     into pieces tagged with a class: impact + 3 for the service's own
//     incidents (caused_by empty), impact for caused ones. Scalars give the
//     counts, times to acknowledge and resolve, and the longest incident.
//  5. Pieces are gathered per service (and per upstream service), each
//     service's maintenance intervals (computed in Go from the catalog and
//     bound as arrays) are added as a class of their own, and one sweep per
//     group sorts the start and end events, keeps running counts with
//     arrayCumSum, and sums the gaps between consecutive events clipped to
//     each range (the window, the burn-rate ranges), weighted by the worst
//     impact open during the gap, zero inside maintenance.
//
// Events are UInt64 keys, t×16 + class×2 + (1 for an end), which sort fast
// (class 6 is maintenance, 7 a day boundary of the daily series). The
// running counts are packed into two Int64 words: A counts the open
// incidents of impact 0, 1 and 2 in 18-bit lanes at bits 0, 18 and 36 and
// the open maintenance intervals at bit 54; B counts the service's own
// incidents of impact 0, 1 and 2 the same way. Counts are never negative
// once every event of a timestamp is applied, and only the gap after the
// last of them has a length, so the literals in the SQL compare exactly:
// A ≥ 2^54 (18014398509481984) means maintenance, else A ≥ 2^36
// (68719476736) an outage is open, else A ≥ 2^18 (262144) a degradation,
// else A ≥ 1 an impact-none incident; A & 262143 and A & 68719214592 test
// the impact-0 and impact-1 lanes for the unions. That bounds a service to
// 2^18−1 incidents of one impact open at once.
//
// ClickHouse 18.16 quirks this works around, all measured:
//   - an IN (subquery) nested in FROM subqueries is executed again for
//     every level of nesting; GLOBAL IN is executed once;
//   - a subquery's column that the outer level uses only inside lambdas is
//     pruned, then "Unknown identifier": such levels name those columns in a
//     WHERE NOT ignore(…), which is always true;
//   - a SELECT allows one JOIN and one ARRAY JOIN, and an aggregate aliased
//     with its column's name (any(service) AS service) fails;
//   - per-row ARRAY JOIN of periods was several times slower than
//     gathering per-incident arrays with groupArrayArray.
//
// Current ClickHouse (26.7, chDB) refuses a subquery on either side of a
// JOIN without an alias (ALIAS_REQUIRED): every joined subquery has one.
// It may also evaluate both branches of an if() in a lambda, so a shift
// count is kept valid (0..63) for every event class, not just the chosen.
//
// The shifted array for the gaps is built with arrayResize(arrayPopFront),
// never by indexing a captured array in a lambda, and every value is bound
// by the driver (@name placeholders; strings are escaped), so service names
// may hold any character.
//
// Speed (BenchmarkAvailability, 1,000,000 incidents, 2,000 services, one
// year, 18.16): every service over 30 days costs about 10 times the server
// CPU of a plain scan that sums the same rows' period lengths per service.
// Steps 1 and 2 alone cost about 5 times: the candidates of a 30-day window
// sit in every granule (each service's recent incidents, in a table sorted
// by service), so collapsing them reads and hashes the ID and payload of
// all rows a second time. Step 3 reads every ID a third time. On 26.7
// (chDB) the query costs about the same CPU but 16–19 times a plain scan,
// which is twice as fast there; its FINAL is cheap (under 2 times a plain
// scan), so a collapse with FINAL would pay off on current servers only
// (README, Performance).

// candidatesSQL selects the cityHash64 of candidate incident IDs.
const candidatesSQL = `SELECT cityHash64(id) FROM incidents
WHERE %[1]s arrayExists((s, e) -> toUInt32(s) < @hi AND (toUInt32(s) >= @lo OR toUInt32(e) = 0 OR toUInt32(e) > @lo),
    period_starts, period_ends)`

// collapsedSQL is the latest version of every candidate (latestVersions),
// with periods as UInt32 seconds and open periods ending now, and its
// pieces (qs, qe, qi): the impact segments stored with that very version
// (incident_segments), or, for a version without segments (opened by
// hand, or stored before segments existed), its periods at the incident's
// impact (rs, re, ri), less the periods people marked as not downtime (xf,
// xt: the version's excluded_from and excluded_to, a zero end meaning
// "until the incident ends"). filter is the service filter.
//
// The cut, per piece [s, e) of impact i: what is left of it starts at s or
// at the end of a mark inside it, at such a point that no mark covers,
// and runs to the next mark's start or e. Marks may overlap and come in
// any order. Incidents without marks (nearly all) cut nothing: their
// pieces are resized to none first (nc), since 18.16 computes both
// branches of an if().
func collapsedSQL(filter string) string {
	latest := latestVersions(`id, service AS svc, impact AS imp, caused_by AS cause,
    toUInt32(started_at) AS t0, toUInt32(acknowledged_at) AS ack0, toUInt32(resolved_at) AS res0,
    period_starts AS ps0, period_ends AS pe0, version AS ver,
    excluded_from AS xf0, excluded_to AS xt0, excluded_by AS xb0, excluded_reasons AS xr0, excluded_at_ms AS xa0`,
		filter+" cityHash64(id) GLOBAL IN ("+fmt.Sprintf(candidatesSQL, filter)+")")
	return `SELECT
    id, svc, imp, cause, t0, ack0, res0, ps, pe, rs, re, ri, xf, xt, xb, xr, xa,
    if(empty(xf), 0, length(rs)) AS nc,
    arrayReduce('groupArrayArray', arrayMap((s, e, i) ->
        arrayMap(c -> (c, least(e, arrayReduce('min', arrayConcat([e], arrayFilter(a -> a > c, xf)))), i),
            arrayFilter(c -> c < e AND NOT arrayExists((a, b) -> a <= c AND c < b, xf, xt),
                arrayDistinct(arrayConcat([s], arrayFilter(b -> b > s AND b < e, xt))))),
        arrayResize(rs, nc), arrayResize(re, nc), arrayResize(ri, nc))) AS cut,
    if(empty(xf), rs, arrayMap(p -> p.1, cut)) AS qs,
    if(empty(xf), re, arrayMap(p -> p.2, cut)) AS qe,
    if(empty(xf), ri, arrayMap(p -> p.3, cut)) AS qi
FROM
(
    SELECT
        id, svc, imp, cause, t0, ack0, res0,
        arrayMap(t -> toUInt32(t), ps0) AS ps,
        arrayMap(t -> if(toUInt32(t) = 0, toUInt32(@now), least(toUInt32(t), toUInt32(@now))), pe0) AS pe,
        if(empty(ss0), ps, arrayMap(t -> toUInt32(t), ss0)) AS rs,
        if(empty(ss0), pe, arrayMap(t -> if(toUInt32(t) = 0, toUInt32(@now), least(toUInt32(t), toUInt32(@now))), se0)) AS re,
        if(empty(ss0), arrayMap(t -> imp, ps0), si0) AS ri,
        arrayMap(t -> toUInt32(t), xf0) AS xf,
        arrayMap(t -> if(toUInt32(t) = 0, toUInt32(4294967295), toUInt32(t)), xt0) AS xt,
        xb0 AS xb, xr0 AS xr, xa0 AS xa
    FROM
` + "    (\n" + indentLines(latest, "        ") + "\n    ) AS latest" + `
    ANY LEFT JOIN
    (
        SELECT incident_id AS id, version AS ver, segment_starts AS ss0, segment_ends AS se0, segment_impacts AS si0
        FROM incident_segments
        WHERE ` + filter + ` cityHash64(incident_id) GLOBAL IN (` + fmt.Sprintf(candidatesSQL, filter) + `)
    ) AS segs USING (id, ver)
    WHERE NOT ignore(ss0, se0, si0)
)
WHERE NOT ignore(xf, xt, rs, re, ri)`
}

// indentLines prefixes every line of s with pad.
func indentLines(s, pad string) string {
	return pad + strings.ReplaceAll(s, "\n", "\n"+pad)
}

// downtimeSQL answers a Query. Verbs: %[1]s the service filter, %[2]s the
// collapsed incidents, %[3]s the ids aggregate, %[4]s the maintenance join,
// %[5]s the maintenance events, %[6]s extra sums for the recent ranges,
// %[7]s the maintenance column to carry (or nothing).
const downtimeSQL = `SELECT
    service, up, upstream,
    toInt64(n) AS incidents, toInt64(started) AS started, toInt64(acked) AS acked, toInt64(ack_seconds) AS ack_seconds,
    toInt64(resolved) AS resolved, toInt64(resolve_seconds) AS resolve_seconds, toInt64(longest) AS longest,
    ids, causes,
    toFloat64(arraySum(arrayMap((g, w) -> g * w, g0, we))) AS downtime,
    toFloat64(arraySum(arrayMap((g, w) -> g * w, g0, wo))) AS own_downtime,
    toInt64(arraySum(arrayMap((g, a) -> if(a >= 68719476736 AND a < 18014398509481984, g, 0), g0, ca))) AS union2,
    toInt64(arraySum(arrayMap((g, a) -> if(a < 18014398509481984 AND bitAnd(a, 68719214592) != 0, g, 0), g0, ca))) AS union1,
    toInt64(arraySum(arrayMap((g, a) -> if(a < 18014398509481984 AND bitAnd(a, 262143) != 0, g, 0), g0, ca))) AS union0,
    toInt64(arraySum(arrayMap((g, a) -> if(a >= 18014398509481984, g, 0), g0, ca))) AS maintenance,
    toInt64(arraySum(arrayMap((g, a) -> if(a >= 262144 AND a < 18014398509481984, g, 0), g0, ca))) AS failing
    %[6]s
FROM
(
    SELECT
        service, up, upstream, n, started, acked, ack_seconds, resolved, resolve_seconds, longest, ids, causes,
        arraySort(arrayConcat(
            arrayMap(p -> toUInt64(p.1) * 16 + p.3 * 2, pcs),
            arrayMap(p -> toUInt64(p.2) * 16 + p.3 * 2 + 1, pcs),
            %[5]s)) AS evs,
        arrayMap(x -> toInt64(intDiv(x, 16)), evs) AS ts,
        arrayResize(arrayPopFront(ts), length(ts)) AS nx,
        arrayMap(x -> intDiv(bitAnd(x, 15), 2), evs) AS cl,
        arrayMap(x -> 1 - 2 * toInt64(bitAnd(x, 1)), evs) AS sg,
        arrayCumSum(arrayMap((c, s) -> s * bitShiftLeft(toInt64(1), if(c = 6, 54, 18 * (c %% 3))), cl, sg)) AS ca,
        arrayCumSum(arrayMap((c, s) -> if(c >= 3 AND c <= 5, s * bitShiftLeft(toInt64(1), 18 * (least(greatest(c, 3), 5) - 3)), 0), cl, sg)) AS cb,
        arrayMap(a -> multiIf(a >= 18014398509481984, 0., a >= 68719476736, toFloat64(@w2), a >= 262144, toFloat64(@w1), a >= 1, toFloat64(@w0), 0.), ca) AS we,
        arrayMap((a, b) -> multiIf(a >= 18014398509481984, 0., b >= 68719476736, toFloat64(@w2), b >= 262144, toFloat64(@w1), b >= 1, toFloat64(@w0), 0.), ca, cb) AS wo,
        arrayMap((t, x) -> greatest(least(x, toInt64(@end)) - greatest(t, toInt64(@from)), 0), ts, nx) AS g0
    FROM
    (
        SELECT service, %[7]s v.1 AS up, v.2 AS upstream, v.3 AS pcs, v.4 AS causes,
            if(up = 0, n0, 0) AS n, if(up = 0, st0, 0) AS started, if(up = 0, ak0, 0) AS acked,
            if(up = 0, aks0, 0) AS ack_seconds, if(up = 0, rs0, 0) AS resolved, if(up = 0, rss0, 0) AS resolve_seconds,
            if(up = 0, lg0, 0) AS longest, if(up = 0, ids0, emptyArrayString()) AS ids
        FROM
        (
            SELECT service, %[7]s n0, st0, ak0, aks0, rs0, rss0, lg0, ids0,
                arrayConcat([(toUInt8(0), '', all_pcs, emptyArrayString())],
                    arrayMap(u -> (toUInt8(1), u.1, u.2, u.3), ups)) AS vs
            FROM
            (
                SELECT
                    gsvc AS service,
                    sum(n) AS n0, sum(st) AS st0, sum(ak) AS ak0, sum(aks) AS aks0, sum(rs) AS rs0, sum(rss) AS rss0,
                    max(lg) AS lg0,
                    groupArrayArray(ids) AS ids0,
                    groupArrayArray(pcs) AS all_pcs,
                    groupArrayIf((upstream, pcs, causes), caused = 1 AND notEmpty(causes)) AS ups
                FROM
                (
                    SELECT
                        any(service) AS gsvc, caused, any(up_service) AS upstream,
                        sum(hit) AS n, sum(st1) AS st, sum(ak1) AS ak, sum(aks1) AS aks,
                        sum(rs1) AS rs, sum(rss1) AS rss, max(lg1) AS lg,
                        %[3]s AS ids,
                        groupArrayArray(pcs1) AS pcs,
                        groupUniqArrayIf(cause, caused = 1 AND hit) AS causes
                    FROM
                    (
                        SELECT
                            id, service, cause, up_service, cause != '' AS caused,
                            toUInt8(least(greatest(imp, 0), 2) + if(cause = '', 3, 0)) AS cls,
                            arrayFilter(p -> p.2 > p.1,
                                arrayMap((s, e, i) -> (greatest(s, toUInt32(@lo)), least(e, toUInt32(@hi)),
                                    toUInt8(least(greatest(i, 0), 2) + if(cause = '', 3, 0))), qs, qe, qi)) AS pcs1,
                            arrayExists((s, e) -> s < @end AND (s >= @from OR e > @from), ps, pe) AS hit,
                            hit AND t0 >= @from AND t0 < @end AS st1,
                            st1 AND ack0 != 0 AND ack0 < @end AS ak1,
                            if(ak1, toInt64(greatest(ack0, t0)) - t0, 0) AS aks1,
                            st1 AS rs1,
                            if(st1, lg1, 0) AS rss1,
                            if(hit, arraySum(arrayMap((s, e) -> greatest(toInt64(least(e, @end)) - greatest(s, @from), 0), ps, pe)), 0) AS lg1
                        FROM
                        (
                            SELECT id, svc AS service, cause, if(up_id = cause, up_svc, '') AS up_service, imp, t0, ack0, res0, ps, pe, qs, qe, qi
                            FROM
                            (
                                SELECT *, if(cause = '', toUInt64(0), cityHash64(cause)) AS cause_h
                                FROM
                                (
                                    ` + "%[2]s" + `
                                )
                            ) AS cands
                            ANY LEFT JOIN
                            (
                                SELECT cityHash64(id) AS cause_h, any(id) AS up_id, any(service) AS up_svc
                                FROM incidents
                                WHERE cityHash64(id) GLOBAL IN
                                    (SELECT cityHash64(caused_by) FROM incidents WHERE %[1]s caused_by != '')
                                GROUP BY cause_h
                            ) AS upstreams USING cause_h
                        )
                        WHERE NOT ignore(cls)
                    )
                    GROUP BY service, caused, up_service
                )
                GROUP BY gsvc
            ) AS svcs
            %[4]s
        )
        ARRAY JOIN vs AS v
    )
)`

// A sweep's values are @name placeholders in its text: the store binds
// them (sweepParams.args), and DashboardQueries writes SQL expressions in
// their place (inline), so that the API and the dashboards run one query.
//
// @lo, @hi bound the pieces and maintenance kept; @from, @end the window;
// @now ends open periods; @w0, @w1, @w2 are the weights of impact none,
// degraded and outage; @services lists the services (only with a filter);
// @ms, @mst, @ml, @mp, @mn are parallel arrays of runs of maintenance
// intervals (service, start, length, step, count; only with maintenance,
// see maintenanceRuns); @r<i>_from, @r<i>_to bound the i-th
// burn-rate range; @days and @ndays are the day boundaries of a daily
// series.

// sweepParams are the values every sweep binds.
type sweepParams struct {
	lo, hi, from, end, now uint32
	weights                availability.ImpactWeights
	services               []string
}

func (p sweepParams) args() []any {
	args := []any{
		clickhouse.Named("lo", p.lo), clickhouse.Named("hi", p.hi),
		clickhouse.Named("from", p.from), clickhouse.Named("end", p.end), clickhouse.Named("now", p.now),
		clickhouse.Named("w0", p.weights.Weight(incidents.ImpactNone)),
		clickhouse.Named("w1", p.weights.Weight(incidents.ImpactDegraded)),
		clickhouse.Named("w2", p.weights.Weight(incidents.ImpactOutage)),
	}
	if p.services != nil {
		args = append(args, clickhouse.Named("services", inList(p.services)))
	}
	return args
}

// serviceFilter is the condition on @services, or nothing.
func serviceFilter(filtered bool) string {
	if !filtered {
		return ""
	}
	return "service IN @services AND"
}

// maintenanceSQL returns the join, the event expression and the column to
// carry of a sweep with maintenance (@ms, @mst, @ml, @mp, @mn: runs of
// intervals, see maintenanceRuns), or their neutral forms without. The
// join writes each run's intervals out and clamps them to [@lo, @hi).
func maintenanceSQL(with bool) (join, events, carry string) {
	if !with {
		return "", "emptyArrayUInt64()", ""
	}
	join = `ANY LEFT JOIN
            (
                SELECT service, groupArray((s, e)) AS maint
                FROM
                (
                    SELECT service, greatest(toUInt32(s0 + k * p0), toUInt32(@lo)) AS s, least(toUInt32(s0 + k * p0 + l0), toUInt32(@hi)) AS e
                    FROM
                    (
                        SELECT service, s0, l0, p0, arrayJoin(range(toUInt32(n0))) AS k
                        FROM system.one
                        ARRAY JOIN @ms AS service, @mst AS s0, @ml AS l0, @mp AS p0, @mn AS n0
                    )
                )
                WHERE s < e
                GROUP BY service
            ) AS maints USING service`
	events = `arrayMap(m -> toUInt64(m.1) * 16 + 12, maint), arrayMap(m -> toUInt64(m.2) * 16 + 13, maint)`
	return join, events, "maint,"
}

// maintenanceRuns are the maintenance intervals of a sweep as parallel
// arrays of runs (catalog.Runs), in Unix seconds: the run of service
// services[i] has count[i] intervals of length[i] seconds, the k-th
// starting at start[i] + k×step[i]. A daily window over a year is a few
// runs, so that the SQL holding them (the dashboards write them into
// their text) stays short.
type maintenanceRuns struct {
	services                   []string
	start, length, step, count []uint32
}

// maintenanceRows returns the runs of the per-service maintenance
// intervals of the services (nil: all) that overlap [lo, hi), in service
// order.
func maintenanceRows(maint map[string][]catalog.Interval, services []string, lo, hi uint32) maintenanceRuns {
	var out maintenanceRuns
	for _, svc := range slices.Sorted(maps.Keys(maint)) {
		if services != nil && !slices.Contains(services, svc) {
			continue
		}
		var ivs []catalog.Interval
		for _, iv := range maint[svc] {
			if s, e := unix(iv.Start), unix(iv.End); s < hi && e > lo && s < e {
				ivs = append(ivs, catalog.Interval{Start: time.Unix(int64(s), 0), End: time.Unix(int64(e), 0)})
			}
		}
		for _, r := range catalog.Runs(ivs) {
			out.services = append(out.services, svc)
			out.start = append(out.start, unix(r.Start))
			out.length = append(out.length, uint32(r.Length/time.Second))
			out.step = append(out.step, uint32(r.Step/time.Second))
			out.count = append(out.count, uint32(r.Count))
		}
	}
	return out
}

func (m maintenanceRuns) empty() bool { return len(m.services) == 0 }

// args binds the runs, if any.
func (m maintenanceRuns) args() []any {
	if m.empty() {
		return nil
	}
	return []any{
		clickhouse.Named("ms", m.services), clickhouse.Named("mst", m.start), clickhouse.Named("ml", m.length),
		clickhouse.Named("mp", m.step), clickhouse.Named("mn", m.count),
	}
}

// span is [start, end) in Unix seconds.
type span struct{ start, end uint32 }

func unix(t time.Time) uint32 {
	u := t.Unix()
	switch {
	case u < 0:
		return 0
	case u > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(u)
}

// downtimeText renders downtimeSQL, its values left as placeholders: with
// a service filter or not, recent burn-rate ranges, maintenance or not,
// and the IDs of the incidents when explain is set. Each recent range i
// adds the columns recent<i> (weighted downtime) and recent_maint<i>
// (maintenance seconds).
func downtimeText(filtered bool, recent int, maint, explain bool) string {
	var sums strings.Builder
	for i := range recent {
		fmt.Fprintf(&sums, `,
    toFloat64(arraySum(arrayMap((t, x, w) -> greatest(least(x, toInt64(@r%[1]d_to)) - greatest(t, toInt64(@r%[1]d_from)), 0) * w, ts, nx, we))) AS recent%[1]d,
    toInt64(arraySum(arrayMap((t, x, a) -> if(a >= 18014398509481984, greatest(least(x, toInt64(@r%[1]d_to)) - greatest(t, toInt64(@r%[1]d_from)), 0), 0), ts, nx, ca))) AS recent_maint%[1]d`, i)
	}
	join, events, carry := maintenanceSQL(maint)
	ids := "emptyArrayString()"
	if explain {
		ids = "groupArrayIf(id, hit)"
	}
	filter := serviceFilter(filtered)
	return fmt.Sprintf(downtimeSQL, filter, collapsedSQL(filter), ids, join, events, sums.String(), carry)
}

// downtimeQuery renders downtimeSQL and its arguments for q. The
// burn-rate ranges end where the window does.
func downtimeQuery(q availability.Query) (string, []any) {
	now := unix(q.Now)
	p := sweepParams{from: unix(q.From), now: now, weights: q.Weights, services: q.Services}
	p.end = max(min(unix(q.To), now), p.from)
	p.lo, p.hi = p.from, p.end
	var args []any
	for i, d := range q.Recent {
		start := unix(time.Unix(int64(p.end), 0).Add(-d))
		p.lo = min(p.lo, start)
		args = append(args, clickhouse.Named(fmt.Sprintf("r%d_from", i), start), clickhouse.Named(fmt.Sprintf("r%d_to", i), p.end))
	}
	mr := maintenanceRows(q.Maintenance, q.Services, p.lo, p.hi)
	args = append(args, mr.args()...)
	query := downtimeText(q.Services != nil, len(q.Recent), !mr.empty(), q.Explain)
	return query, append(p.args(), args...)
}

// Downtime implements availability.Source: one query for every service
// (or q.Services) over the window and the recent ranges.
func (s *Store) Downtime(ctx context.Context, q availability.Query) ([]availability.Raw, error) {
	if q.Services != nil && len(q.Services) == 0 {
		return nil, nil
	}
	const op = "query_availability"
	query, args := downtimeQuery(q)
	s.metrics.op(op)
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, s.fail(ctx, op, err, "query availability")
	}
	defer rows.Close()
	byService := map[string]*availability.Raw{}
	for rows.Next() {
		var (
			service, upstream string
			up                uint8
			n, st, ak, aks    int64
			rs, rss, lg       int64
			ids, causes       []string
			down, own         float64
			union             availability.Seconds
			maint, failing    int64
			rec               = make([]float64, len(q.Recent))
			recMaint          = make([]int64, len(q.Recent))
		)
		dest := []any{&service, &up, &upstream, &n, &st, &ak, &aks, &rs, &rss, &lg, &ids, &causes,
			&down, &own, &union[2], &union[1], &union[0], &maint, &failing}
		for i := range rec {
			dest = append(dest, &rec[i], &recMaint[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, s.fail(ctx, op, err, "read availability")
		}
		r := byService[service]
		if r == nil {
			r = &availability.Raw{Service: service, Recent: make([]float64, len(q.Recent))}
			byService[service] = r
		}
		if up == 1 {
			r.Upstream = append(r.Upstream, availability.RawUpstream{
				Service: upstream, IncidentIDs: slices.Sorted(slices.Values(causes)), Downtime: down,
			})
			continue
		}
		r.Downtime, r.OwnDowntime, r.Union, r.Recent = down, own, union, rec
		r.Incidents, r.Started, r.Acked, r.Resolved = int(n), int(st), int(ak), int(rs)
		r.AckSeconds, r.ResolveSeconds, r.LongestSeconds, r.FailingSeconds = aks, rss, lg, failing
		if q.Explain {
			r.IncidentIDs = slices.Sorted(slices.Values(ids))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "read availability")
	}
	if q.Explain {
		if err := s.marks(ctx, q, byService); err != nil {
			return nil, err
		}
	}
	out := make([]availability.Raw, 0, len(byService))
	for _, name := range slices.Sorted(maps.Keys(byService)) {
		r := byService[name]
		slices.SortFunc(r.Upstream, func(a, b availability.RawUpstream) int { return strings.Compare(a.Service, b.Service) })
		out = append(out, *r)
	}
	return out, nil
}

// marksSQL lists, for an explanation, the incidents overlapping the window
// [@from, @end) that have periods marked as not downtime: the marks, and
// the incident's pieces before the cut, clamped to the window (the same
// collapse as downtimeSQL's, %[2]s, filtered by %[1]s). availability weighs
// the part of the pieces inside each mark.
const marksSQL = `SELECT svc, id, xf, xt, xb, xr, xa,
    arrayMap(p -> p.1, raw) AS raw_s, arrayMap(p -> p.2, raw) AS raw_e, arrayMap(p -> p.3, raw) AS raw_i
FROM
(
    SELECT svc, id, xf, xt, xb, xr, xa,
        arrayFilter(p -> p.2 > p.1,
            arrayMap((s, e, i) -> (greatest(s, toUInt32(@from)), least(e, toUInt32(@end)), i), rs, re, ri)) AS raw
    FROM
    (
        ` + "%[2]s" + `
    )
    WHERE notEmpty(xf) AND arrayExists((s, e) -> s < @end AND (s >= @from OR e > @from), ps, pe)
)
ORDER BY svc, id`

// marks reads the marks of marksSQL into each service's Raw.
func (s *Store) marks(ctx context.Context, q availability.Query, byService map[string]*availability.Raw) error {
	const op = "query_availability_marks"
	_, args := downtimeQuery(q)
	filter := serviceFilter(q.Services != nil)
	query := fmt.Sprintf(marksSQL, filter, collapsedSQL(filter))
	s.metrics.op(op)
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return s.fail(ctx, op, err, "query marks")
	}
	defer rows.Close()
	for rows.Next() {
		var (
			service, id string
			xf, xt      []uint32
			xb, xr      []string
			xa          []int64
			rawS, rawE  []uint32
			rawI        []int8
		)
		if err := rows.Scan(&service, &id, &xf, &xt, &xb, &xr, &xa, &rawS, &rawE, &rawI); err != nil {
			return s.fail(ctx, op, err, "read marks")
		}
		r := byService[service]
		if r == nil {
			continue // an incident the window's figures do not count
		}
		pieces := make([]incidents.Segment, 0, len(rawS))
		for i := range min(len(rawS), len(rawE), len(rawI)) {
			pieces = append(pieces, incidents.Segment{Start: time.Unix(int64(rawS[i]), 0).UTC(),
				End: time.Unix(int64(rawE[i]), 0).UTC(), Impact: incidents.Impact(rawI[i])})
		}
		for k := range min(len(xf), len(xt), len(xb), len(xr), len(xa)) {
			m := availability.RawMark{Incident: id, Pieces: pieces, Exclusion: incidents.Exclusion{
				From: time.Unix(int64(xf[k]), 0).UTC(), By: xb[k], Reason: xr[k], At: time.UnixMilli(xa[k]).UTC()}}
			if xt[k] != math.MaxUint32 {
				m.To = time.Unix(int64(xt[k]), 0).UTC()
			}
			r.Marks = append(r.Marks, m)
		}
	}
	if err := rows.Err(); err != nil {
		return s.fail(ctx, op, err, "read marks")
	}
	return nil
}

// dailySQL answers a DailyQuery for one service (or a ManyDailyQuery,
// a row per service and day): the sweep of downtimeSQL
// over the whole span, with the day boundaries (@days, n+1 of them) as
// events of class 7 that split gaps, so that every gap lies in one day,
// whose index is the running count of boundaries passed. Incidents count
// on every day one of their periods overlaps. Verbs: %[1]s the service
// filter, %[2]s the collapsed incidents, %[4]s the maintenance join, %[5]s
// the maintenance events, %[7]s the maintenance column to carry.
const dailySQL = `SELECT service, toUInt32(x.1) AS day, toFloat64(sum(x.2)) AS downtime, toInt64(sum(x.3)) AS incidents
FROM
(
    SELECT
        service,
        arrayConcat(
            arrayMap((d, g, w) -> (d, g * w, toUInt32(0)), di, gp, we),
            arrayMap(d -> (d, 0., toUInt32(1)), inc_days)) AS xs
    FROM
    (
        SELECT
            service, inc_days,
            arraySort(arrayConcat(
                arrayMap(p -> toUInt64(p.1) * 16 + p.3 * 2, pcs),
                arrayMap(p -> toUInt64(p.2) * 16 + p.3 * 2 + 1, pcs),
                arrayMap(b -> toUInt64(b) * 16 + 14, @days),
                %[5]s)) AS evs,
            arrayMap(x -> toInt64(intDiv(x, 16)), evs) AS ts,
            arrayResize(arrayPopFront(ts), length(ts)) AS nx,
            arrayMap(x -> intDiv(bitAnd(x, 15), 2), evs) AS cl,
            arrayMap(x -> 1 - 2 * toInt64(bitAnd(x, 1)), evs) AS sg,
            arrayMap(c -> toUInt32(c = 7), cl) AS bd,
            arrayMap(c -> toUInt32(greatest(c, 1) - 1), arrayCumSum(bd)) AS di,
            arrayCumSum(arrayMap((c, s) -> if(c = 7, 0, s * bitShiftLeft(toInt64(1), if(c = 6, 54, 18 * (c %% 3)))), cl, sg)) AS ca,
            arrayMap(a -> multiIf(a >= 18014398509481984, 0., a >= 68719476736, toFloat64(@w2), a >= 262144, toFloat64(@w1), a >= 1, toFloat64(@w0), 0.), ca) AS we,
            arrayMap((t, x) -> greatest(x - t, 0), ts, nx) AS gp
        FROM
        (
            SELECT service, %[7]s pcs, inc_days
            FROM
            (
            SELECT service, groupArrayArray(pcs1) AS pcs, groupArrayArray(days1) AS inc_days
            FROM
            (
                SELECT
                    service,
                    toUInt8(least(greatest(imp, 0), 2)) AS cls,
                    arrayFilter(p -> p.2 > p.1,
                        arrayMap((s, e, i) -> (greatest(s, toUInt32(@lo)), least(e, toUInt32(@hi)), toUInt8(least(greatest(i, 0), 2))),
                            qs, qe, qi)) AS pcs1,
                    arrayDistinct(arrayReduce('groupArrayArray', arrayMap((s, e) ->
                        if(s < @hi AND (s >= @lo OR e > @lo),
                            arrayMap(i -> toUInt64(arrayCount(b -> b <= greatest(s, toUInt32(@lo)), @days) - 1 + i),
                                range(toUInt64(arrayCount(b -> b <= greatest(greatest(s, toUInt32(@lo)), least(e, toUInt32(@hi)) - 1), @days)
                                    - arrayCount(b -> b <= greatest(s, toUInt32(@lo)), @days) + 1))),
                            emptyArrayUInt64()), ps, pe))) AS days1
                FROM
                (
                    SELECT id, svc AS service, imp, ps, pe, qs, qe, qi
                    FROM
                    (
                        ` + "%[2]s" + `
                    )
                )
                WHERE NOT ignore(cls)
            )
            GROUP BY service
            ) AS svcs
            %[4]s
        )
    )
)
ARRAY JOIN xs AS x
WHERE day < @ndays
GROUP BY service, day
HAVING downtime > 0 OR incidents > 0`

// dailyText renders dailySQL for the services of @services, with
// maintenance or not, its values left as placeholders (@days, @ndays and
// those of every sweep but @from and @end, which are the first and last
// boundary).
func dailyText(maint bool) string {
	join, events, carry := maintenanceSQL(maint)
	filter := serviceFilter(true)
	return fmt.Sprintf(dailySQL, filter, collapsedSQL(filter), "", join, events, "", carry)
}

// Daily implements availability.Source: DailyServices for one service.
func (s *Store) Daily(ctx context.Context, q availability.DailyQuery) ([]availability.RawDay, error) {
	byService, err := s.DailyServices(ctx, availability.ManyDailyQuery{
		Services: []string{q.Service}, Days: q.Days, Now: q.Now, Weights: q.Weights,
		Maintenance: map[string][]catalog.Interval{q.Service: q.Maintenance},
	})
	return byService[q.Service], err
}

// SeenServices implements availability.Source: every service that has
// incidents.
func (s *Store) SeenServices(ctx context.Context) ([]string, error) {
	const op = "query_services"
	s.metrics.op(op)
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT service FROM incidents")
	if err != nil {
		return nil, s.fail(ctx, op, err, "list services")
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, s.fail(ctx, op, err, "list services")
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "list services")
	}
	return out, nil
}
