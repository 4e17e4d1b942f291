package availability

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ninesops/nines/fault"
)

// MaxWindow is the longest window figures are computed over.
const MaxWindow = 5 * 366 * 24 * time.Hour

// Window is the span of time [From, To) that figures are computed over, in
// whole seconds. Figures never count time after now: see the package
// documentation.
type Window struct {
	// Name is how the window was asked for ("30d", "month",
	// "previous-quarter"); empty for an explicit window.
	Name string
	From time.Time
	To   time.Time
}

// String returns the window's name, or from/to in RFC 3339 for an explicit
// window.
func (w Window) String() string {
	if w.Name != "" {
		return w.Name
	}
	return w.From.UTC().Format(time.RFC3339) + "/" + w.To.UTC().Format(time.RFC3339)
}

// Duration returns the window's length.
func (w Window) Duration() time.Duration { return w.To.Sub(w.From) }

// calendar units: the start of the current period containing t (in t's
// location).
var calendar = map[string]func(t time.Time) time.Time{
	"day": func(t time.Time) time.Time {
		y, m, d := t.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
	},
	"week": func(t time.Time) time.Time {
		y, m, d := t.Date()
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		return time.Date(y, m, d-back, 0, 0, 0, 0, t.Location())
	},
	"month": func(t time.Time) time.Time {
		y, m, _ := t.Date()
		return time.Date(y, m, 1, 0, 0, 0, 0, t.Location())
	},
	"quarter": func(t time.Time) time.Time {
		y, m, _ := t.Date()
		return time.Date(y, (m-1)/3*3+1, 1, 0, 0, 0, 0, t.Location())
	},
	"year": func(t time.Time) time.Time {
		return time.Date(t.Year(), 1, 1, 0, 0, 0, 0, t.Location())
	},
}

var rollingRe = regexp.MustCompile(`^([0-9]{1,6})([dw])$`)

// ParseWindow reads a window relative to now: rolling ("1h", "24h", "7d",
// "28d", "30d", "90d", "2w", any Go duration), calendar to date in loc
// ("day", "week", "month", "quarter", "year") or a whole previous calendar
// period ("previous-month", …). A nil loc is UTC. Errors wrap
// fault.ErrInvalid and name the window parameter.
func ParseWindow(s string, now time.Time, loc *time.Location) (Window, error) {
	if loc == nil {
		loc = time.UTC
	}
	now = now.Truncate(time.Second).In(loc)
	name := strings.ToLower(strings.TrimSpace(s))
	if start, ok := calendar[name]; ok {
		return Window{Name: name, From: start(now).UTC(), To: now.UTC()}, nil
	}
	if unit, ok := strings.CutPrefix(name, "previous-"); ok {
		if start, ok := calendar[unit]; ok {
			cur := start(now)
			prev := start(cur.Add(-time.Nanosecond))
			return Window{Name: name, From: prev.UTC(), To: cur.UTC()}, nil
		}
	}
	d, err := parseRolling(name)
	if err != nil {
		return Window{}, fmt.Errorf("%w: window: %s", fault.ErrInvalid, err)
	}
	return Window{Name: name, From: now.Add(-d).UTC(), To: now.UTC()}, nil
}

func parseRolling(s string) (time.Duration, error) {
	unknown := fmt.Errorf("unknown window %q (want a duration such as 1h, 24h, 7d, 30d or 2w, "+
		"or day, week, month, quarter, year, or previous-day … previous-year)", s)
	var d time.Duration
	if m := rollingRe.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1]) // cannot fail: six digits at most
		d = time.Duration(n) * 24 * time.Hour
		if m[2] == "w" {
			d *= 7
		}
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, unknown
		}
	}
	switch {
	case d < time.Second:
		return 0, fmt.Errorf("window %q: must be at least 1s", s)
	case d > MaxWindow:
		return 0, fmt.Errorf("window %q: must be at most %s", s, MaxWindow)
	}
	return d.Truncate(time.Second), nil
}

// WindowBetween returns the explicit window [from, to), in whole seconds.
// Errors wrap fault.ErrInvalid.
func WindowBetween(from, to time.Time) (Window, error) {
	from, to = from.Truncate(time.Second).UTC(), to.Truncate(time.Second).UTC()
	switch {
	case !from.Before(to):
		return Window{}, fmt.Errorf("%w: from must be before to", fault.ErrInvalid)
	case from.Unix() < 0:
		return Window{}, fmt.Errorf("%w: from: before 1970", fault.ErrInvalid)
	case to.Sub(from) > MaxWindow:
		return Window{}, fmt.Errorf("%w: to: at most %s after from", fault.ErrInvalid, MaxWindow)
	}
	return Window{From: from, To: to}, nil
}
