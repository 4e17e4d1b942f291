package incidents

import (
	"math"
	"strings"
	"time"
)

// FormatDuration writes a span of time the way nines shows it to people
// (incident lengths, MTTR and other figures, how long before an incident a
// change was made): 1h23m, 45m10s, 12s, 26h, rounded to the second; a
// negative span is 0s.
func FormatDuration(d time.Duration) string {
	d = max(d.Round(time.Second), 0)
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// FormatSeconds is FormatDuration for a figure in seconds; "-" when the
// figure is undefined (nil).
func FormatSeconds(p *float64) string {
	if p == nil {
		return "-"
	}
	return FormatDuration(time.Duration(math.Round(*p)) * time.Second)
}
