package dashboards

import (
	"fmt"
	"slices"
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

// availabilityTableSQL is every selected service's availability over the
// panel's window against its SLO, worst error budget first.
func (b *builder) availabilityTableSQL(uncatalogued bool) string {
	w := b.opts.DegradedWeight
	ms := downtimeMeasures(w, true)
	per := periods(serviceCond)
	withDowntime := `SELECT
    service,
    owner,
    tier,
    slo_target,
    dashboard_uid,
    squad_uid,
    ` + weightedDowntime("", w) + ` AS downtime_seconds,
    ` + weightedDowntime("own_", w) + ` AS own_downtime_seconds
FROM
` + sub("SELECT service, owner, tier, slo_target, dashboard_uid, squad_uid\nFROM\n"+sub(b.servicesSQL(uncatalogued))+"\nWHERE "+serviceCond) + ` AS l
ANY LEFT JOIN
` + sub(totals(segments(per, ms), ms, true)) + ` AS r USING service`
	withCounts := `SELECT
    service,
    owner,
    tier,
    slo_target,
    dashboard_uid,
    squad_uid,
    downtime_seconds,
    own_downtime_seconds,
    incident_count,
    toFloat64(` + windowSeconds + `) AS window_seconds
FROM
` + sub(withDowntime) + ` AS l
ANY LEFT JOIN
` + sub("SELECT service, uniqExact(id) AS incident_count\nFROM\n"+sub(per)+"\nGROUP BY service") + ` AS r USING service`
	return `SELECT
    service,
    owner,
    tier,
    slo_target,
    1 - downtime_seconds / window_seconds AS availability,
    1 - own_downtime_seconds / window_seconds AS own_availability,
    downtime_seconds,
    incident_count,
    1 - downtime_seconds / ((1 - slo_target) * window_seconds) AS error_budget_remaining,
    dashboard_uid,
    squad_uid
FROM
` + sub(withCounts) + `
ORDER BY error_budget_remaining ASC, availability ASC, service ASC`
}

// availabilitySQL is the selected service's availability (and, with own,
// its own availability) over the panel's window: one row even without
// incidents.
func (b *builder) availabilitySQL(own bool) string {
	w := b.opts.DegradedWeight
	ms := downtimeMeasures(w, own)
	cols := []string{"1 - " + weightedDowntime("", w) + " / " + windowSeconds + " AS availability"}
	if own {
		cols = append(cols, "1 - "+weightedDowntime("own_", w)+" / "+windowSeconds+" AS own_availability")
	}
	return "SELECT\n    " + strings.Join(cols, ",\n    ") + "\nFROM\n" + sub(totals(segments(periods(serviceCond), ms), ms, false))
}

// errorBudgetSQL is the share of the error budget left over the panel's
// window, the downtime and the downtime the SLO allows.
func (b *builder) errorBudgetSQL(slo float64) string {
	w := b.opts.DegradedWeight
	ms := downtimeMeasures(w, false)
	return `SELECT
    1 - downtime_seconds / allowed_downtime_seconds AS error_budget_remaining,
    downtime_seconds,
    allowed_downtime_seconds
FROM
` + sub(`SELECT
    `+weightedDowntime("", w)+` AS downtime_seconds,
    (1 - `+formatFloat(slo)+`) * `+windowSeconds+` AS allowed_downtime_seconds
FROM
`+sub(totals(segments(periods(serviceCond), ms), ms, false)))
}

// burndownSQL is the error budget left at the end of each interval of the
// panel's window (downtime from the window's start up to then), and the
// budget that would be left had it been spent evenly over the window.
func (b *builder) burndownSQL(slo float64) string {
	w := b.opts.DegradedWeight
	ms := downtimeMeasures(w, false)
	var arrays, sums []string
	for _, m := range ms {
		k := sqlString(m.kind)
		arrays = append(arrays,
			fmt.Sprintf("groupArrayIf(seg_from, kind = %s) AS %s_froms", k, m.kind),
			fmt.Sprintf("groupArrayIf(seg_to, kind = %s) AS %s_tos", k, m.kind))
		sums = append(sums, fmt.Sprintf(
			"arraySum(arrayMap((a, z) -> greatest(toInt64(0), toInt64(least(toUInt64(z), b)) - toInt64(a)), %s_froms, %s_tos)) AS %s_seconds",
			m.kind, m.kind, m.kind))
	}
	perBucket := `SELECT
    arrayJoin(arrayMap(k -> least(toUInt64(from_s) + (k + 1) * $__interval_s, toUInt64(to_s)), range(toUInt32(greatest(0, least(intDiv(toInt64(to_s) - toInt64(from_s), $__interval_s) + 1, 10000)))))) AS b,
    from_s,
    window_s,
    ` + strings.Join(sums, ",\n    ") + `
FROM
` + sub(`SELECT
    `+fromSeconds+` AS from_s,
    `+toSeconds+` AS to_s,
    toFloat64(`+windowSeconds+`) AS window_s,
    `+strings.Join(arrays, ",\n    ")+`
FROM
`+sub(segments(periods(serviceCond), ms)))
	return `SELECT
    toDateTime(b) AS time,
    1 - ` + weightedDowntime("", w) + ` / ((1 - ` + formatFloat(slo) + `) * window_s) AS error_budget_remaining,
    1 - (toInt64(b) - toInt64(from_s)) / window_s AS even_burn
FROM
` + sub(perBucket) + `
ORDER BY time`
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
` + sub(bucketsOf(segments(periods(serviceCond), ms), "$__interval_s")) + `
GROUP BY time, service
ORDER BY time, service`
}

// downtimePerDaySQL is the selected service's outage time and the time it
// was degraded but not out, per UTC day.
func (b *builder) downtimePerDaySQL() string {
	ms := []measure{{"outage", condOutage}, {"impaired", condImpaired}}
	return `SELECT
    toDateTime(bucket) AS time,
    sumIf(seconds, kind = 'outage') AS outage_seconds,
    sumIf(seconds, kind = 'impaired') - sumIf(seconds, kind = 'outage') AS degraded_seconds
FROM
` + sub(bucketsOf(segments(periods(serviceCond), ms), "86400")) + `
GROUP BY time
ORDER BY time`
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
` + sub(collapsedIncidents(serviceCond+" AND opened_at <= $__toTime")) + `
WHERE $__timeFilter(started_at)
GROUP BY time
ORDER BY time`
}

// mttaMTTRSQL is the mean time to acknowledge and to resolve of the
// incidents that started in each interval (NULL where there are none).
func (b *builder) mttaMTTRSQL() string {
	return `SELECT
    toDateTime(intDiv(toUInt32(started_at), $__interval_s) * $__interval_s) AS time,
    if(countIf(toUInt32(acknowledged_at) > 0) = 0, NULL, avgIf(toInt64(toUInt32(acknowledged_at)) - toInt64(toUInt32(started_at)), toUInt32(acknowledged_at) > 0)) AS mtta_seconds,
    if(countIf(state = 'resolved') = 0, NULL, avgIf(toInt64(toUInt32(resolved_at)) - toInt64(toUInt32(started_at)), state = 'resolved')) AS mttr_seconds
FROM
` + sub(collapsedIncidents(serviceCond+" AND opened_at <= $__toTime")) + `
WHERE $__timeFilter(started_at)
GROUP BY time
ORDER BY time`
}

// burnRateSQL ranks the selected services by how fast they spend their
// error budget: downtime over the last hour and over the panel's window
// (24h), as multiples of the rate that would spend the budget exactly.
func (b *builder) burnRateSQL() string {
	w := b.opts.DegradedWeight
	ms := downtimeMeasures(w, false)
	var cols []string
	cols = append(cols, "service")
	for _, m := range ms {
		k := sqlString(m.kind)
		cols = append(cols,
			fmt.Sprintf("sumIf(toInt64(seg_to) - toInt64(seg_from), kind = %s) AS %s_seconds", k, m.kind),
			fmt.Sprintf("sumIf(greatest(toInt64(0), toInt64(seg_to) - greatest(toInt64(seg_from), toInt64(%s) - 3600)), kind = %s) AS last_hour_%s_seconds", toSeconds, k, m.kind))
	}
	lastHour := weightedDowntime("last_hour_", w)
	return `SELECT
    service,
    owner,
    slo_target,
    burn_rate_1h,
    burn_rate_window,
    dashboard_uid
FROM
` + sub(`SELECT
    service,
    owner,
    slo_target,
    dashboard_uid,
    `+lastHour+` / least(3600, `+windowSeconds+`) / (1 - slo_target) AS burn_rate_1h,
    `+weightedDowntime("", w)+` / `+windowSeconds+` / (1 - slo_target) AS burn_rate_window
FROM
`+sub("SELECT service, owner, slo_target, dashboard_uid\nFROM\n"+sub(b.servicesSQL(true))+"\nWHERE "+serviceCond)+` AS l
ANY LEFT JOIN
`+sub("SELECT\n    "+strings.Join(cols, ",\n    ")+"\nFROM\n"+sub(segments(periods(serviceCond), ms))+"\nGROUP BY service")+` AS r USING service`) + `
WHERE burn_rate_window > 0
ORDER BY burn_rate_1h DESC, burn_rate_window DESC, service ASC
LIMIT 10`
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
` + sub(collapsedIncidents(serviceCond)) + `
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
` + sub(collapsedIncidents(serviceCond+" AND opened_at <= $__toTime")) + `
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
`+sub(periods(serviceCond))) + `
GROUP BY time
ORDER BY time`
}

// upstreamSQL lists a service's upstream dependencies from the catalog
// (direct or transitive) with their availability over the panel's window
// and the downtime of this service's incidents that nines linked to one of
// their incidents (caused_by).
func (b *builder) upstreamSQL(s serviceInfo) string {
	w := b.opts.DegradedWeight
	ms := downtimeMeasures(w, false)
	var tuples, names []string
	for _, up := range s.upstream {
		rel := "transitive"
		if slices.Contains(s.Dependencies, up) {
			rel = "direct"
		}
		names = append(names, sqlString(up))
		tuples = append(tuples, fmt.Sprintf("(%s, %s, %s)", sqlString(up), sqlString(rel), sqlString(serviceUID(up))))
	}
	upCond := "service IN (" + strings.Join(names, ", ") + ")"
	deps := `SELECT
    tupleElement(d, 1) AS service,
    tupleElement(d, 2) AS relation,
    tupleElement(d, 3) AS dashboard_uid
FROM
(
    SELECT arrayJoin([` + strings.Join(tuples, ", ") + `]) AS d
)`
	caused := `SELECT
    upstream AS service,
    id,
    impact,
    caused_by,
    p_from,
    p_to
FROM
` + sub("SELECT id, impact, caused_by, p_from, p_to\nFROM\n"+sub(periods(serviceCond))+"\nWHERE caused_by != ''") + ` AS l
ANY INNER JOIN
` + sub("SELECT id AS caused_by, any(service) AS upstream\nFROM incidents\nWHERE "+upCond+" AND opened_at <= $__toTime\nGROUP BY id") + ` AS r USING caused_by`
	withAvailability := `SELECT
    service,
    relation,
    dashboard_uid,
    1 - ` + weightedDowntime("", w) + ` / ` + windowSeconds + ` AS availability
FROM
` + sub(deps) + ` AS l
ANY LEFT JOIN
` + sub(totals(segments(periods(upCond), ms), ms, true)) + ` AS r USING service`
	return `SELECT
    service,
    relation,
    availability,
    caused_downtime_seconds,
    dashboard_uid
FROM
` + sub(withAvailability) + ` AS l
ANY LEFT JOIN
` + sub("SELECT\n    service,\n    "+weightedDowntime("", w)+" AS caused_downtime_seconds\nFROM\n"+sub(totals(segments(caused, ms), ms, true))) + ` AS r USING service
ORDER BY caused_downtime_seconds DESC, relation ASC, service ASC`
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
`+sub(collapsedIncidents(serviceCond+" AND opened_at <= $__toTime"))+`
WHERE caused_by != '' AND started_at <= $__toTime AND (toUInt32(resolved_at) = 0 OR resolved_at >= $__fromTime)`) + ` AS l
ANY LEFT JOIN
` + sub("SELECT id AS caused_by, any(service) AS upstream_service\nFROM incidents\nWHERE opened_at <= $__toTime\nGROUP BY id") + ` AS r USING caused_by
ORDER BY started_at DESC
LIMIT 200`
}
