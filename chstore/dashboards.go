package chstore

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ninesops/nines/catalog"
)

// DashboardQueries implements dashboards.Queries (without importing it): the text of the queries
// the API's figures come from (Store.Downtime, Store.Daily, and the
// collapse of incident versions every read uses), with SQL expressions
// (the Grafana plugin's macros) in place of the values the store binds,
// and the catalog's maintenance written out. So a dashboard panel runs the
// API's own SQL, and its figures are the API's.
type DashboardQueries struct{}

// Figures implements dashboards.Queries: downtimeSQL over [from, end) for
// the services listed, with burn-rate ranges of the lengths recent ending
// at end.
func (DashboardQueries) Figures(from, end, now, services string, weights [3]float64, maint map[string][]catalog.Interval, recent []time.Duration) string {
	mr := maintenanceRows(maint, nil, 0, math.MaxUint32)
	from = "toUInt32(" + from + ")"
	end = "toUInt32(greatest(" + end + ", " + from + "))"
	vals := weightValues(weights)
	vals["from"], vals["end"], vals["now"], vals["hi"] = from, end, "toUInt32("+now+")", end
	vals["services"] = services
	lo := from
	for i, d := range recent {
		start := fmt.Sprintf("toUInt32(greatest(toInt64(%s) - %d, 0))", end, int64(d.Seconds()))
		vals[fmt.Sprintf("r%d_from", i)], vals[fmt.Sprintf("r%d_to", i)] = start, end
		lo = "least(" + lo + ", " + start + ")"
	}
	vals["lo"] = lo
	maintenanceValues(vals, mr)
	return inline(downtimeText(true, len(recent), !mr.empty(), false), vals)
}

// Daily implements dashboards.Queries: dailySQL over the days whose
// boundaries the array days holds, for the services listed.
func (DashboardQueries) Daily(days, now, services string, weights [3]float64, maint map[string][]catalog.Interval) string {
	mr := maintenanceRows(maint, nil, 0, math.MaxUint32)
	vals := weightValues(weights)
	vals["days"], vals["now"], vals["services"] = days, "toUInt32("+now+")", services
	vals["lo"] = "arrayElement(" + days + ", 1)"
	vals["hi"] = "arrayElement(" + days + ", -1)"
	vals["ndays"] = "toUInt32(greatest(length(" + days + "), 1) - 1)"
	maintenanceValues(vals, mr)
	return inline(dailyText(!mr.empty()), vals)
}

// Incidents implements dashboards.Queries: the latest version of each
// incident matching cond, as every read of the store collapses them (to
// the second: the panels show no milliseconds).
func (DashboardQueries) Incidents(cond string) string {
	return incidentsQuery(cond, nil, "", false)
}

// Changes implements dashboards.Queries: the latest recorded version of
// each change matching cond, as Store.Changes collapses them.
func (DashboardQueries) Changes(cond string) string {
	return fmt.Sprintf(collapsedChanges, cond)
}

// weightValues are the weights, indexed by impact, as @w0, @w1, @w2.
func weightValues(w [3]float64) map[string]string {
	f := func(v float64) string { return "toFloat64(" + strconv.FormatFloat(v, 'g', -1, 64) + ")" }
	return map[string]string{"w0": f(w[0]), "w1": f(w[1]), "w2": f(w[2])}
}

// maintenanceValues writes the runs as array literals, if any.
func maintenanceValues(vals map[string]string, mr maintenanceRuns) {
	if mr.empty() {
		return
	}
	quoted := make([]string, len(mr.services))
	for i, s := range mr.services {
		quoted[i] = quoteString(s)
	}
	nums := func(xs []uint32) string {
		parts := make([]string, len(xs))
		for i, x := range xs {
			parts[i] = strconv.FormatUint(uint64(x), 10)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	vals["ms"] = "[" + strings.Join(quoted, ", ") + "]"
	vals["mst"], vals["ml"], vals["mp"], vals["mn"] = nums(mr.start), nums(mr.length), nums(mr.step), nums(mr.count)
}

// quoteString writes s as a ClickHouse string literal.
func quoteString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

var placeholder = regexp.MustCompile(`@(\w+)`)

// inline replaces each @name placeholder of query with vals[name],
// parenthesized (but for @services, already a parenthesized list). A name
// without a value is left as it is, and ClickHouse refuses the query.
func inline(query string, vals map[string]string) string {
	return placeholder.ReplaceAllStringFunc(query, func(m string) string {
		v, ok := vals[m[1:]]
		switch {
		case !ok:
			return m
		case m == "@services":
			return v
		}
		return "(" + v + ")"
	})
}
