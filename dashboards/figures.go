package dashboards

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ninesops/nines/catalog"
)

// Queries knows how to write the SQL that nines' own figures come from, so
// that a panel shows what the API shows: the same query, with the
// plugin's macros where the API binds values. Package chstore implements
// it (chstore.DashboardQueries); the SQL exists once, there. (Its
// parameters are plain types so that chstore need not import this
// package.)
//
// Times are SQL expressions of Unix seconds; services is a parenthesized
// SQL list of service names; weights are the impact weights indexed by
// impact (none, degraded, outage); maint holds each service's maintenance
// intervals.
type Queries interface {
	// Figures is the API's availability query (availability.Source's
	// Downtime) over [from, end), open periods ending at now, with burn
	// rate ranges of the lengths recent ending at end. Columns, per
	// service with incidents: service, up (0: the service's own row; 1: a
	// row per upstream service, whose downtime is the part of the
	// service's its incidents caused), upstream, incidents, started,
	// acked, ack_seconds, resolved, resolve_seconds, longest, ids, causes,
	// downtime (weighted seconds, outside maintenance), own_downtime,
	// union2, union1, union0, maintenance (seconds of the window), then
	// recent<i> and recent_maint<i> for each recent range.
	Figures(from, end, now, services string, weights [3]float64, maint map[string][]catalog.Interval, recent []time.Duration) string
	// Daily is the API's daily series query (availability.Source's
	// Daily) over the days whose n+1 boundaries the Array(UInt32)
	// expression days holds. Columns, per day with downtime or incidents:
	// day (its index in days), downtime, incidents.
	Daily(days, now, services string, weights [3]float64, maint map[string][]catalog.Interval) string
	// Incidents is the latest version of each incident matching cond (a
	// condition on the immutable columns id, service and opened_at), one
	// row each, with the incident table's column names.
	Incidents(cond string) string
	// Changes is the latest recorded version of each change (package
	// changes: deploys, rollbacks, flag changes, …) matching cond (a
	// condition on the immutable columns id, service and at_ms), one row
	// each: id, service, at_ms, c_kind, c_version, c_commit,
	// c_environment, c_status, c_rollout, c_actor, c_url, c_description,
	// c_recorded_ms.
	Changes(cond string) string
}

// Weights are the impact weights of nines' config file (its availability
// section): how much of an instant with an open incident of each impact
// counts as downtime.
type Weights struct {
	Outage, Degraded, None float64
}

// DefaultWeights are nines' defaults: outage 1, degraded 0, none 0.
func DefaultWeights() Weights { return Weights{Outage: 1} }

// byImpact returns the weights indexed by impact: none, degraded, outage.
func (w Weights) byImpact() [3]float64 { return [3]float64{w.None, w.Degraded, w.Outage} }

// How long before and after generation the catalog's maintenance windows
// are written into the dashboards: recurring windows are expanded over
// this span, so dashboards must be generated again (as a catalog change
// does) within MaintenanceAhead for future maintenance to stay excluded.
const (
	MaintenanceBehind = 400 * 24 * time.Hour
	MaintenanceAhead  = 62 * 24 * time.Hour
)

// nowSeconds is now, when open periods end.
const nowSeconds = "toUInt32(now())"

// maintenanceOf returns the catalog's maintenance of names around now,
// merged and in whole seconds, as the API uses it.
func maintenanceOf(cat *catalog.Catalog, names []string, now time.Time) map[string][]catalog.Interval {
	out := map[string][]catalog.Interval{}
	for _, name := range names {
		if ivs := catalog.WholeSeconds(cat.Maintenance(name, now.Add(-MaintenanceBehind), now.Add(MaintenanceAhead))); len(ivs) > 0 {
			out[name] = ivs
		}
	}
	return out
}

// The API's arithmetic on a figure's sums (availability.computeFigure),
// as SQL over column expressions.

// ratioSQL is 1 − down/eligible within [0, 1], 1 without eligible time.
func ratioSQL(down, eligible string) string {
	return fmt.Sprintf("if(%[2]s <= 0, 1., greatest(0., least(1., 1 - %[1]s / %[2]s)))", down, eligible)
}

// budgetLeftSQL is the share of the error budget left.
func budgetLeftSQL(down, eligible, slo string) string {
	budget := "(" + budgetSQL(eligible, slo) + ")"
	return fmt.Sprintf("multiIf(%[1]s > 0, (%[1]s - %[2]s) / %[1]s, %[2]s > 0, -1 / 0, 1.)", budget, down)
}

// budgetSQL is the error budget in seconds.
func budgetSQL(eligible, slo string) string {
	return fmt.Sprintf("(1 - %s) * greatest(toFloat64(%s), 0)", slo, eligible)
}

// burnSQL is a burn rate: the share of eligible time lost over the share
// the SLO allows.
func burnSQL(down, eligible, slo string) string {
	return fmt.Sprintf("if(%[2]s <= 0 OR %[3]s >= 1, 0., %[1]s / %[2]s / (1 - %[3]s))", down, eligible, slo)
}

// figures is the API's figures of the services in services (a
// parenthesized SQL list) over the panel's window, one row per service
// with incidents: service, downtime, own_downtime, incidents and down_1h
// (the downtime of the burn-rate range: the last hour of the window).
// maint limits the maintenance written out to those services (nil: every
// catalogued one).
func (b *builder) figures(services string, maint map[string][]catalog.Interval) string {
	if maint == nil {
		maint = b.maintenance
	}
	q := b.opts.Queries.Figures(fromSeconds, toSeconds, nowSeconds, services, b.opts.Weights.byImpact(), maint, []time.Duration{time.Hour})
	return `SELECT
    service,
    downtime,
    own_downtime,
    incidents,
    recent0 AS down_1h
FROM
` + sub(q) + `
WHERE up = 0`
}

// maintenanceSQL is the maintenance seconds within [from, to) (SQL
// expressions of Unix seconds) of the services whose name satisfies cond
// (a condition on m.1), from the catalog's intervals written out at
// generation as runs (catalog.Runs: a service, the first interval's start
// and length, the step and the count), a few per recurring window rather
// than one per occurrence; merged per service, so their overlaps with the
// range add up, as the API adds them (every service's, with or without
// incidents).
func (b *builder) maintenanceSQL(cond, from, to string) string {
	var tuples []string
	for _, name := range slices.Sorted(maps.Keys(b.maintenance)) {
		for _, r := range catalog.Runs(b.maintenance[name]) {
			tuples = append(tuples, fmt.Sprintf("(%s, %d, %d, %d, %d)", sqlString(name), r.Start.Unix(), int64(r.Length/time.Second), int64(r.Step/time.Second), r.Count))
		}
	}
	if len(tuples) == 0 {
		return "0"
	}
	return fmt.Sprintf("arraySum(arrayMap(m -> arraySum(arrayMap(k -> greatest(0, least(toInt64(m.2 + k * m.4 + m.3), toInt64(%[2]s)) - greatest(toInt64(m.2 + k * m.4), toInt64(%[1]s))), range(toUInt32(m.5)))), arrayFilter(m -> %[3]s, [%[4]s])))",
		from, to, cond, strings.Join(tuples, ", "))
}

// eligibleSQL is a window's seconds less its maintenance, of the service
// in column service.
func (b *builder) eligibleSQL(cond string) string {
	return "(" + spanSeconds + " - " + b.maintenanceSQL(cond, fromSeconds, toSeconds) + ")"
}

// eligible1hSQL is the same over the last hour of the window.
func (b *builder) eligible1hSQL(cond string) string {
	start := "greatest(toInt64(" + toSeconds + ") - 3600, 0)"
	return "(3600 - " + b.maintenanceSQL(cond, start, toSeconds) + ")"
}

// maintenanceFor is the maintenance of one catalogued service.
func (b *builder) maintenanceFor(names ...string) map[string][]catalog.Interval {
	out := map[string][]catalog.Interval{}
	for _, n := range names {
		if ivs, ok := b.maintenance[n]; ok {
			out[n] = ivs
		}
	}
	return out
}

// serviceList is the service variable as an SQL list.
const serviceList = "(${service:singlequote})"

// withFigures joins services (rows of service and catalog columns) with
// their figures; services without incidents get zeros, and a whole window
// of eligible time.
func (b *builder) withFigures(services, cols string) string {
	return `SELECT
    ` + cols + `,
    downtime,
    own_downtime,
    incidents,
    ` + b.eligibleSQL("m.1 = service") + ` AS eligible_s,
    ` + b.eligible1hSQL("m.1 = service") + ` AS eligible_1h_s,
    down_1h
FROM
` + sub(services) + ` AS l
ANY LEFT JOIN
` + sub(b.figures(serviceList, nil)) + ` AS r USING service`
}

// availabilityTableSQL is every selected service's availability over the
// panel's window against its SLO, worst error budget first: the API's
// figures (GET /api/v1/availability).
func (b *builder) availabilityTableSQL(uncatalogued bool) string {
	services := "SELECT service, owner, tier, slo_target, dashboard_uid, squad_uid\nFROM\n" + sub(b.servicesSQL(uncatalogued)) + "\nWHERE " + serviceCond
	return `SELECT
    service,
    owner,
    tier,
    slo_target,
    ` + ratioSQL("downtime", "eligible_s") + ` AS availability,
    ` + ratioSQL("own_downtime", "eligible_s") + ` AS own_availability,
    downtime AS downtime_seconds,
    incidents AS incident_count,
    ` + budgetLeftSQL("downtime", "eligible_s", "slo_target") + ` AS error_budget_remaining,
    dashboard_uid,
    squad_uid
FROM
` + sub(b.withFigures(services, "service, owner, tier, slo_target, dashboard_uid, squad_uid")) + `
ORDER BY error_budget_remaining ASC, availability ASC, service ASC`
}

// oneService is the figures of the selected services summed into one row,
// even without incidents: for panels of one service.
func (b *builder) oneService() string {
	return `SELECT
    sum(downtime) AS downtime,
    sum(own_downtime) AS own_downtime,
    ` + b.eligibleSQL("m.1 IN "+serviceList) + ` AS eligible
FROM
` + sub(b.figures(serviceList, nil))
}

// availabilitySQL is the selected service's availability (and, with own,
// its own availability) over the panel's window: one row even without
// incidents.
func (b *builder) availabilitySQL(own bool) string {
	cols := []string{ratioSQL("downtime", "eligible") + " AS availability"}
	if own {
		cols = append(cols, ratioSQL("own_downtime", "eligible")+" AS own_availability")
	}
	return "SELECT\n    " + strings.Join(cols, ",\n    ") + "\nFROM\n" + sub(b.oneService())
}

// errorBudgetSQL is the share of the error budget left over the panel's
// window, the downtime and the downtime the SLO allows.
func (b *builder) errorBudgetSQL(slo float64) string {
	s := formatFloat(slo)
	return `SELECT
    ` + budgetLeftSQL("downtime", "eligible", s) + ` AS error_budget_remaining,
    downtime AS downtime_seconds,
    ` + budgetSQL("eligible", s) + ` AS allowed_downtime_seconds
FROM
` + sub(b.oneService())
}

// burnRateSQL ranks the selected services by how fast they spend their
// error budget: the API's burn_rate_1h, and the burn rate over the panel's
// window (24h: the API's burn_rate_24h).
func (b *builder) burnRateSQL() string {
	services := "SELECT service, owner, slo_target, dashboard_uid\nFROM\n" + sub(b.servicesSQL(true)) + "\nWHERE " + serviceCond
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
    `+burnSQL("down_1h", "eligible_1h_s", "slo_target")+` AS burn_rate_1h,
    `+burnSQL("downtime", "eligible_s", "slo_target")+` AS burn_rate_window
FROM
`+sub(b.withFigures(services, "service, owner, slo_target, dashboard_uid"))) + `
WHERE burn_rate_window > 0
ORDER BY burn_rate_1h DESC, burn_rate_window DESC, service ASC
LIMIT 10`
}

// upstreamSQL lists a service's upstream dependencies from the catalog
// (direct or transitive) with their availability over the panel's window
// and the downtime of this service's incidents that nines linked to one of
// their incidents (caused_by): the API's figures and its upstream list.
func (b *builder) upstreamSQL(s serviceInfo) string {
	var tuples, names []string
	for _, up := range s.upstream {
		rel := "transitive"
		if slices.Contains(s.Dependencies, up) {
			rel = "direct"
		}
		names = append(names, sqlString(up))
		tuples = append(tuples, fmt.Sprintf("(%s, %s, %s)", sqlString(up), sqlString(rel), sqlString(serviceUID(up))))
	}
	deps := `SELECT
    tupleElement(d, 1) AS service,
    tupleElement(d, 2) AS relation,
    tupleElement(d, 3) AS dashboard_uid
FROM
(
    SELECT arrayJoin([` + strings.Join(tuples, ", ") + `]) AS d
)`
	ups := "(" + strings.Join(names, ", ") + ")"
	withAvailability := `SELECT
    service,
    relation,
    dashboard_uid,
    ` + ratioSQL("downtime", b.eligibleSQL("m.1 = service")) + ` AS availability
FROM
` + sub(deps) + ` AS l
ANY LEFT JOIN
` + sub(b.figures(ups, b.maintenanceFor(s.upstream...))) + ` AS r USING service`
	caused := b.opts.Queries.Figures(fromSeconds, toSeconds, nowSeconds, serviceList, b.opts.Weights.byImpact(), b.maintenanceFor(s.Name), nil)
	return `SELECT
    service,
    relation,
    availability,
    caused_downtime_seconds,
    dashboard_uid
FROM
` + sub(withAvailability) + ` AS l
ANY LEFT JOIN
` + sub("SELECT upstream AS service, downtime AS caused_downtime_seconds\nFROM\n"+sub(caused)+"\nWHERE up = 1") + ` AS r USING service
ORDER BY caused_downtime_seconds DESC, relation ASC, service ASC`
}

// dayStarts is the days of the catalog's time zone from the one of the
// panel's start to the one of its end, as the API's daily series splits
// them: an SQL array of their n+1 boundaries, the last one not after now.
func (b *builder) dayStarts() string {
	tz := sqlString(b.tz)
	first := "toUInt32(toStartOfDay(toDateTime(" + fromSeconds + "), " + tz + "))"
	// The start of the day after the end's day: 36 hours after the start
	// of the end's day lies in the next day whatever DST does.
	after := "toUInt32(toStartOfDay(toDateTime(toUInt32(toStartOfDay(toDateTime(" + toSeconds + "), " + tz + ")) + 129600), " + tz + "))"
	last := "least(" + after + ", " + nowSeconds + ")"
	// Day k starts at the start of the day holding first + k days + 12h.
	starts := "arrayFilter(d -> d < " + last + ", arrayMap(k -> toUInt32(toStartOfDay(toDateTime(" + first + " + k * 86400 + 43200), " + tz + ")), range(toUInt32(least(intDiv(greatest(toInt64(" + last + ") - " + first + ", 0), 86400) + 2, 1001)))))"
	return "arrayPushBack(" + starts + ", " + last + ")"
}

// downtimePerDaySQL is the selected service's weighted downtime per day of
// the catalog's time zone: the API's daily series
// (GET /api/v1/services/{name}/availability/daily).
func (b *builder) downtimePerDaySQL(s serviceInfo) string {
	days := b.dayStarts()
	q := b.opts.Queries.Daily(days, nowSeconds, serviceList, b.opts.Weights.byImpact(), b.maintenanceFor(s.Name))
	return `SELECT
    toDateTime(arrayElement(` + days + `, toUInt32(day) + 1)) AS time,
    downtime AS downtime_seconds
FROM
` + sub(q) + `
ORDER BY time`
}

// burndownSQL is the error budget left at the end of each interval of the
// panel's window (downtime from the window's start up to then, by the
// API's daily arithmetic over intervals), and the budget that would be
// left had it been spent evenly over the window. Its last point is the
// API's error_budget_remaining.
func (b *builder) burndownSQL(s serviceInfo) string {
	bounds := "arrayPushBack(arrayFilter(x -> x < " + toSeconds + ", arrayMap(k -> toUInt32(" + fromSeconds + " + k * $__interval_s), range(toUInt32(greatest(0, least(intDiv(toInt64(" + toSeconds + ") - toInt64(" + fromSeconds + "), $__interval_s) + 1, 10000)))))), " + toSeconds + ")"
	q := b.opts.Queries.Daily(bounds, nowSeconds, serviceList, b.opts.Weights.byImpact(), b.maintenanceFor(s.Name))
	slo := formatFloat(s.SLOTarget)
	eligible := b.eligibleSQL("m.1 IN " + serviceList)
	return `SELECT
    toDateTime(tupleElement(p, 1)) AS time,
    ` + budgetLeftSQL("tupleElement(p, 2)", "window_eligible", slo) + ` AS error_budget_remaining,
    1 - (toInt64(tupleElement(p, 1)) - toInt64(` + fromSeconds + `)) / ` + windowSeconds + ` AS even_burn
FROM
` + sub(`SELECT
    arrayJoin(arrayMap((x, c) -> (x, c), arrayPopFront(bs), arrayCumSum(arrayMap(i -> arraySum(arrayFilter((d, j) -> j = i, dd, di)), range(toUInt32(length(bs) - 1)))))) AS p,
    `+eligible+` AS window_eligible
FROM
`+sub(`SELECT
    `+bounds+` AS bs,
    groupArray(toUInt32(day)) AS di,
    groupArray(downtime) AS dd
FROM
`+sub(q))+`
WHERE NOT ignore(bs, di, dd)`) + `
ORDER BY time`
}
