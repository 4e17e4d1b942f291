package dashboards

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// What Grafana and the ClickHouse plugin do to a panel's rawSql before
// ClickHouse sees it: Grafana interpolates dashboard variables in the
// browser, then the plugin's backend expands its macros (as in its
// pkg/macros: $__timeFilter(col) → col >= toDateTime(from) AND col <=
// toDateTime(to), $__fromTime → toDateTime(from), $__toTime, $__interval_s
// → whole seconds, at least 1).

// interpolate replaces dashboard variables with values, formatted as
// Grafana formats them. Macros ($__…) are left for expandMacros.
func interpolate(sql string, vars map[string][]string) (string, error) {
	// ${name}, ${name:format} and $name.
	variableRe := regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\$(\w+)`)
	var err error
	out := variableRe.ReplaceAllStringFunc(sql, func(m string) string {
		sm := variableRe.FindStringSubmatch(m)
		name, format := sm[1], sm[2]
		if name == "" {
			name = sm[3]
		}
		if strings.HasPrefix(name, "__") {
			return m
		}
		vals, ok := vars[name]
		if !ok {
			if err == nil {
				err = fmt.Errorf("unknown variable %s", m)
			}
			return m
		}
		switch format {
		case "singlequote":
			q := make([]string, len(vals))
			for i, v := range vals {
				q[i] = "'" + strings.ReplaceAll(v, "'", `\'`) + "'"
			}
			return strings.Join(q, ",")
		case "regex":
			q := make([]string, len(vals))
			for i, v := range vals {
				q[i] = regexp.QuoteMeta(v)
			}
			if len(q) == 1 {
				return q[0]
			}
			return "(" + strings.Join(q, "|") + ")"
		case "":
			return strings.Join(vals, ",")
		}
		if err == nil {
			err = fmt.Errorf("variable %s: format %q not handled by this test", m, format)
		}
		return m
	})
	return out, err
}

// expandMacros expands the ClickHouse plugin's macros as its backend does,
// and fails on any macro it does not know, or on macros ClickHouse 18.16
// cannot run ($__timeInterval and $__timeGroup expand to
// toStartOfInterval).
func expandMacros(sql string, from, to time.Time, interval time.Duration) (string, error) {
	for _, bad := range []string{"$__timeInterval", "$__timeGroup"} {
		if strings.Contains(sql, bad) {
			return "", fmt.Errorf("%s expands to toStartOfInterval, which ClickHouse 18.16 lacks: use toDateTime(intDiv(toUInt32(col), $__interval_s) * $__interval_s)", bad)
		}
	}
	timeFilterRe := regexp.MustCompile(`\$__timeFilter\(([^)]*)\)`)
	f, t := fmt.Sprintf("toDateTime(%d)", from.Unix()), fmt.Sprintf("toDateTime(%d)", to.Unix())
	sql = timeFilterRe.ReplaceAllStringFunc(sql, func(m string) string {
		col := strings.TrimSpace(timeFilterRe.FindStringSubmatch(m)[1])
		return col + " >= " + f + " AND " + col + " <= " + t
	})
	sql = strings.ReplaceAll(sql, "$__fromTime", f)
	sql = strings.ReplaceAll(sql, "$__toTime", t)
	sql = strings.ReplaceAll(sql, "$__interval_s", strconv.Itoa(int(math.Max(interval.Seconds(), 1))))
	if i := strings.Index(sql, "$"); i >= 0 {
		end := min(i+30, len(sql))
		return "", fmt.Errorf("unexpanded %q", sql[i:end])
	}
	return sql, nil
}

// parseGrafanaDuration reads durations such as 30s, 1h, 7d.
func parseGrafanaDuration(s string) (time.Duration, error) {
	if strings.HasSuffix(s, "d") {
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
