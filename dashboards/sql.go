package dashboards

import (
	"fmt"
	"strconv"
	"strings"
)

// The SQL below is written for ClickHouse 18.16 and current releases alike
// (the tests run it on both): no WITH subqueries, no window functions, one
// JOIN per SELECT with an alias on both sides (current releases refuse a
// joined subquery without one), no toStartOfInterval (so none of the
// plugin's $__timeInterval/$__timeGroup macros: buckets are
// intDiv(…, $__interval_s) * $__interval_s), and every mutable column of
// `incidents` collapsed by chstore's query (Queries.Incidents) before it is
// filtered. The figures are the API's own queries (Queries.Figures, Daily).
// Timestamps are handled as UInt32 seconds, which sidesteps DateTime time
// zone mismatches.

// Time bounds of a panel, in seconds. The end of the window never lies
// after now: time that has not happened yet is neither up nor down.
const (
	fromSeconds   = "toUInt32($__fromTime)"
	toSeconds     = "least(toUInt32($__toTime), toUInt32(now()))"
	windowSeconds = "greatest(1, toInt64(" + toSeconds + ") - toInt64(" + fromSeconds + "))"
	// spanSeconds is the window's length as the API counts it (0 for a
	// window that has not begun).
	spanSeconds = "greatest(0, toInt64(" + toSeconds + ") - toInt64(" + fromSeconds + "))"
)

// condOutage is the condition on the collapsed incident column impact
// of an outage.
const condOutage = "impact = 2"

// measure is one kind of downtime: the union of the firing periods of the
// incidents that match cond. Its totals are called <kind>_seconds.
type measure struct {
	kind string
	cond string
}

// sqlString quotes s as a ClickHouse string literal.
func sqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// formatFloat writes f as a SQL number literal.
func formatFloat(f float64) string {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// indent indents every line of s by n spaces.
func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

// sub wraps a query as a FROM subquery.
func sub(q string) string {
	return "(\n" + indent(q, 4) + "\n)"
}

// periods is one row per firing period of the latest version of each
// incident of the services matching serviceCond, clamped to the panel's
// window: p_from and p_to in seconds; a period still open (end 0) ends now.
func (b *builder) periods(serviceCond string) string {
	return `SELECT
    service,
    id,
    impact,
    caused_by,
    greatest(toUInt32(p_start), ` + fromSeconds + `) AS p_from,
    least(if(toUInt32(p_end) = 0, toUInt32(now()), toUInt32(p_end)), ` + toSeconds + `) AS p_to
FROM
` + sub(b.opts.Queries.Incidents(serviceCond+" AND opened_at <= $__toTime")) + `
ARRAY JOIN
    period_starts AS p_start,
    period_ends AS p_end
WHERE p_to > p_from`
}

// segments turns periods (rows of service, impact, caused_by, p_from, p_to)
// into the union of each service's periods, per measure: rows of service,
// kind and a segment [seg_from, seg_to). Segments of one service and kind
// never overlap, so their lengths add up to the downtime.
//
// The union is the array recipe that needs no window functions: each
// period becomes a +1 event at its start and a −1 event at its end; sorted,
// their running sum is the number of periods open after each event, and
// the gaps between consecutive events where that number is positive are
// the union. The next event's time comes from arrayPopFront(arrayPushBack(ts, 0)) (of
// the same length as ts, even when empty) rather than from indexing inside
// a lambda, which copies the array per element.
func segments(periodSource string, ms []measure) string {
	var evs, kinds []string
	for _, m := range ms {
		evs = append(evs, fmt.Sprintf(
			"arraySort(arrayConcat(groupArrayIf(tuple(p_from, toInt32(1)), %s), groupArrayIf(tuple(p_to, toInt32(-1)), %s))) AS ev_%s",
			m.cond, m.cond, m.kind))
		kinds = append(kinds, fmt.Sprintf("tuple(%s, ev_%s)", sqlString(m.kind), m.kind))
	}
	events := "SELECT\n    service,\n    " + strings.Join(evs, ",\n    ") + "\nFROM\n" + sub(periodSource) + "\nGROUP BY service"
	perKind := "SELECT\n    service,\n    arrayJoin([" + strings.Join(kinds, ", ") + "]) AS kind_events\nFROM\n" + sub(events)
	return `SELECT
    service,
    kind,
    seg_from,
    seg_to
FROM
` + sub(`SELECT
    service,
    tupleElement(kind_events, 1) AS kind,
    tupleElement(kind_events, 2) AS events,
    arrayMap(e -> tupleElement(e, 1), events) AS ts,
    arrayPopFront(arrayPushBack(ts, toUInt32(0))) AS ts_next,
    arrayCumSum(arrayMap(e -> tupleElement(e, 2), events)) AS open_count,
    arrayFilter((a, b, n) -> n > 0 AND b > a, ts, ts_next, open_count) AS seg_froms,
    arrayFilter((b, a, n) -> n > 0 AND b > a, ts_next, ts, open_count) AS seg_tos
FROM
`+sub(perKind)) + `
ARRAY JOIN
    seg_froms AS seg_from,
    seg_tos AS seg_to`
}

// bucketsOf spreads segments over time buckets of width seconds (an
// expression): for each segment, one row per bucket it touches, with the
// bucket's start and the seconds of the segment inside it.
func bucketsOf(segmentSource, width string) string {
	return `SELECT
    service,
    kind,
    bucket,
    least(toUInt64(seg_to), bucket + ` + width + `) - greatest(toUInt64(seg_from), bucket) AS seconds
FROM
` + sub(`SELECT
    service,
    kind,
    seg_from,
    seg_to,
    arrayJoin(arrayMap(k -> toUInt64((intDiv(seg_from, `+width+`) + k) * `+width+`), range(toUInt32(intDiv(seg_to - 1, `+width+`) - intDiv(seg_from, `+width+`) + 1)))) AS bucket
FROM
`+sub(segmentSource))
}
