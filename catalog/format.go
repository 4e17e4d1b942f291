package catalog

import (
	"math"
	"strconv"
)

// Percent writes a ratio as a percentage, the way nines shows SLO targets
// everywhere (reports, dashboards, Slack, alert rules): 0.99999 → 99.999%,
// 0.9995 → 99.95%, 0.75 → 75%. It rounds away float noise (0.99999 × 100
// is 99.99900000000001) to six decimals of a percent, finer than any SLO.
func Percent(ratio float64) string {
	return strconv.FormatFloat(math.Round(ratio*1e8)/1e6, 'f', -1, 64) + "%"
}
