package dashboards

import (
	"fmt"
	"strings"
)

// The SQL of each ClickHouse panel. Every query filters services with
// serviceCond, which the service variable fills: a list on the overview and
// squad dashboards, a constant on a service's dashboard.

const serviceCond = "service IN (${service:singlequote})"

// servicesSQL lists services with their catalog data: service, owner,
// tier, slo_target, dashboard_uid, squad_uid. With uncatalogued (or an
// empty catalog) it adds the services that have incidents but are not in
// the catalog, with the default SLO target and no owner.
func (b *builder) servicesSQL(uncatalogued bool) string {
	var parts []string
	var names []string
	if len(b.services) > 0 {
		var tuples []string
		for _, s := range b.services {
			names = append(names, sqlString(s.Name))
			tuples = append(tuples, fmt.Sprintf("(%s, %s, %d, %s, %s, %s)",
				sqlString(s.Name), sqlString(s.Owner), s.Tier, formatFloat(s.SLOTarget), sqlString(s.uid), sqlString(s.squadUID)))
		}
		parts = append(parts, `SELECT
    tupleElement(s, 1) AS service,
    tupleElement(s, 2) AS owner,
    toUInt32(tupleElement(s, 3)) AS tier,
    toFloat64(tupleElement(s, 4)) AS slo_target,
    tupleElement(s, 5) AS dashboard_uid,
    tupleElement(s, 6) AS squad_uid
FROM
(
    SELECT arrayJoin([
        `+strings.Join(tuples, ",\n        ")+`
    ]) AS s
)`)
	}
	if uncatalogued || len(b.services) == 0 {
		where := "opened_at <= $__toTime"
		if len(names) > 0 {
			where = "service NOT IN (" + strings.Join(names, ", ") + ") AND " + where
		}
		parts = append(parts, `SELECT
    service,
    '' AS owner,
    toUInt32(0) AS tier,
    toFloat64(`+formatFloat(b.defaultSLO)+`) AS slo_target,
    '' AS dashboard_uid,
    '' AS squad_uid
FROM incidents
WHERE `+where+`
GROUP BY service`)
	}
	return strings.Join(parts, "\nUNION ALL\n")
}

// downtimeByServiceSQL is the outage time of each selected service per
// interval, in long format (time, service, value) that the plugin turns
// into one series per service.
func (b *builder) downtimeByServiceSQL() string {
	ms := []measure{{"outage", condOutage}}
	return `SELECT
    toDateTime(bucket) AS time,
    service,
    sum(seconds) AS outage_seconds
FROM
` + sub(bucketsOf(segments(b.periods(serviceCond), ms), "$__interval_s")) + `
GROUP BY time, service
ORDER BY time, service`
}

// incidentsOpenedSQL counts the incidents that started in each interval,
// by impact.
func (b *builder) incidentsOpenedSQL() string {
	return `SELECT
    toDateTime(intDiv(toUInt32(started_at), $__interval_s) * $__interval_s) AS time,
    countIf(impact = 2) AS outage,
    countIf(impact = 1) AS degraded,
    countIf(impact = 0) AS no_impact
FROM
` + sub(b.opts.Queries.Incidents(serviceCond+" AND opened_at <= $__toTime")) + `
WHERE $__timeFilter(started_at)
GROUP BY time
ORDER BY time`
}

// mttaMTTRSQL is the mean time to acknowledge and to recover of the
// incidents that started in each interval (NULL where there are none), as
// availability/doc.go defines them: acknowledgements before the panel's
// end, and each incident's firing time (its periods, not the gaps between
// them) up to the panel's end, resolved by then or not.
func (b *builder) mttaMTTRSQL() string {
	acked := "toUInt32(acknowledged_at) > 0 AND toUInt32(acknowledged_at) < " + toSeconds
	return `SELECT
    toDateTime(intDiv(toUInt32(started_at), $__interval_s) * $__interval_s) AS time,
    if(countIf(` + acked + `) = 0, NULL, avgIf(greatest(toInt64(toUInt32(acknowledged_at)), toInt64(toUInt32(started_at))) - toInt64(toUInt32(started_at)), ` + acked + `)) AS mtta_seconds,
    avg(arraySum(arrayMap((s, e) -> greatest(toInt64(least(if(toUInt32(e) = 0, ` + nowSeconds + `, toUInt32(e)), ` + toSeconds + `)) - toInt64(toUInt32(s)), 0), period_starts, period_ends))) AS mttr_seconds
FROM
` + sub(b.opts.Queries.Incidents(serviceCond+" AND opened_at <= $__toTime")) + `
WHERE $__timeFilter(started_at) AND NOT ignore(period_starts, period_ends)
GROUP BY time
ORDER BY time`
}

// durationSeconds is an incident's age: until it was resolved, or now.
const durationSeconds = "if(toUInt32(resolved_at) = 0, toInt64(toUInt32(now())), toInt64(toUInt32(resolved_at))) - toInt64(toUInt32(started_at))"

// openIncidentsSQL lists the selected services' incidents that are not
// resolved, worst first.
func (b *builder) openIncidentsSQL() string {
	return `SELECT
    id,
    service,
    title,
    impact,
    state,
    started_at,
    if(toUInt32(acknowledged_at) = 0, NULL, acknowledged_at) AS acknowledged,
    ` + durationSeconds + ` AS open_seconds
FROM
` + sub(b.opts.Queries.Incidents(serviceCond)) + `
WHERE state != 'resolved'
ORDER BY impact DESC, started_at ASC
LIMIT 200`
}

// incidentsSQL lists the selected service's incidents that were open at
// some point of the panel's window, latest first.
func (b *builder) incidentsSQL() string {
	return `SELECT
    id,
    title,
    impact,
    state,
    started_at,
    if(toUInt32(acknowledged_at) = 0, NULL, acknowledged_at) AS acknowledged,
    if(toUInt32(resolved_at) = 0, NULL, resolved_at) AS resolved,
    ` + durationSeconds + ` AS duration_seconds,
    flaps,
    caused_by
FROM
` + sub(b.opts.Queries.Incidents(serviceCond+" AND opened_at <= $__toTime")) + `
WHERE started_at <= $__toTime AND (toUInt32(resolved_at) = 0 OR resolved_at >= $__fromTime)
ORDER BY started_at DESC
LIMIT 500`
}

// timelineSQL is the selected service's state per interval: 0 without
// incidents, else 1 + the worst impact of the incidents firing then, for a
// state timeline. Intervals without incidents are rows of 0, so that the
// timeline does not stretch the last state over them.
func (b *builder) timelineSQL() string {
	const width = "$__interval_s"
	return `SELECT
    toDateTime(bucket) AS time,
    max(level) AS incident
FROM
` + sub(`SELECT
    arrayJoin(arrayMap(k -> toUInt64((intDiv(`+fromSeconds+`, `+width+`) + k) * `+width+`), range(toUInt32(greatest(0, least(toInt64(intDiv(`+toSeconds+`, `+width+`)) - toInt64(intDiv(`+fromSeconds+`, `+width+`)) + 1, 10000)))))) AS bucket,
    toInt8(0) AS level
FROM system.one
UNION ALL
SELECT
    arrayJoin(arrayMap(k -> toUInt64((intDiv(p_from, `+width+`) + k) * `+width+`), range(toUInt32(intDiv(p_to - 1, `+width+`) - intDiv(p_from, `+width+`) + 1)))) AS bucket,
    toInt8(impact + 1) AS level
FROM
`+sub(b.periods(serviceCond))) + `
GROUP BY time
ORDER BY time`
}

// causedIncidentsSQL lists the selected service's incidents of the
// panel's window that nines linked to an upstream incident, with the
// upstream incident's service.
func (b *builder) causedIncidentsSQL() string {
	return `SELECT
    id,
    title,
    impact,
    started_at,
    duration_seconds,
    caused_by,
    upstream_service
FROM
` + sub(`SELECT
    id,
    title,
    impact,
    started_at,
    `+durationSeconds+` AS duration_seconds,
    caused_by
FROM
`+sub(b.opts.Queries.Incidents(serviceCond+" AND opened_at <= $__toTime"))+`
WHERE caused_by != '' AND started_at <= $__toTime AND (toUInt32(resolved_at) = 0 OR resolved_at >= $__fromTime)`) + ` AS l
ANY LEFT JOIN
` + sub("SELECT id AS caused_by, any(service) AS upstream_service\nFROM incidents\nWHERE opened_at <= $__toTime\nGROUP BY id") + ` AS r USING caused_by
ORDER BY started_at DESC
LIMIT 200`
}
