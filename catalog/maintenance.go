package catalog

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxWindowDuration is the longest a recurring maintenance window may last.
const MaxWindowDuration = 7 * 24 * time.Hour

// Schedule says how a maintenance window recurs.
type Schedule string

// Schedules. A one-off window has the empty Schedule.
const (
	ScheduleOnce   Schedule = ""
	ScheduleDaily  Schedule = "daily"
	ScheduleWeekly Schedule = "weekly"
)

// Window is one maintenance window of a service: either one-off, from Start
// to End, or recurring (Schedule daily or weekly), starting at Hour:Minute
// local time in Location on every day (daily) or on Days (weekly) and
// lasting Duration.
//
// Recurring windows follow the wall clock of their time zone: a weekly
// window at 03:00 Europe/Stockholm starts at 03:00 local time both before
// and after a daylight saving change. Duration is elapsed time, so a window
// that spans a change ends Duration after it started, not at the same wall
// clock time it would have ended on other days. A start time that does not
// exist on a given day (it falls into a spring-forward gap) is normalized
// the way time.Date does it: 02:30 on the day Europe/Stockholm jumps from
// 02:00 to 03:00 becomes 03:30 CEST. A start time that occurs twice (the
// autumn fall-back hour) is the second, after the clocks went back, in
// every zone: 02:30 on the day Europe/Stockholm goes back becomes 02:30
// CET, and 01:30 on the day America/New_York goes back becomes 01:30 EST.
// (time.Date alone does not promise which of the two it picks, and picks
// differently east and west of UTC.)
type Window struct {
	Reason string

	// Start and End bound a one-off window.
	Start, End time.Time

	Schedule Schedule
	Days     []time.Weekday // weekly windows only
	Hour     int            // local start time of recurring windows
	Minute   int
	Duration time.Duration
	Location *time.Location // for recurring windows; nil means UTC
}

// Recurring reports whether the window repeats.
func (w Window) Recurring() bool { return w.Schedule != ScheduleOnce }

// Interval is a span of time [Start, End).
type Interval struct {
	Start, End time.Time
}

// Duration returns the interval's length.
func (iv Interval) Duration() time.Duration { return iv.End.Sub(iv.Start) }

// Intervals returns the occurrences of the window that overlap [from, to),
// clamped to it, in UTC and in order. Occurrences of a recurring window do
// not overlap each other when Duration is at most a day (daily) or the gap
// between two of its days (weekly); when they do, Catalog.Maintenance
// merges them.
func (w Window) Intervals(from, to time.Time) []Interval {
	if !from.Before(to) {
		return nil
	}
	if !w.Recurring() {
		iv, ok := clamp(Interval{Start: w.Start, End: w.End}, from, to)
		if !ok {
			return nil
		}
		return []Interval{iv}
	}
	if w.Duration <= 0 || (w.Schedule == ScheduleWeekly && len(w.Days) == 0) ||
		w.Hour < 0 || w.Hour > 23 || w.Minute < 0 || w.Minute > 59 {
		return nil
	}
	loc := w.Location
	if loc == nil {
		loc = time.UTC
	}
	// Start one calendar day before the earliest day whose occurrence can
	// still reach from: time.Date may move a start into the next hour.
	y, m, d := from.Add(-w.Duration).In(loc).Date()
	d--
	var out []Interval
	for i := 0; ; i++ {
		start := secondOccurrence(time.Date(y, m, d+i, w.Hour, w.Minute, 0, 0, loc))
		if !start.Before(to) {
			break
		}
		if w.Schedule == ScheduleWeekly {
			// The calendar day's weekday, not the normalized start's.
			day := time.Date(y, m, d+i, 12, 0, 0, 0, time.UTC).Weekday()
			if !slices.Contains(w.Days, day) {
				continue
			}
		}
		if iv, ok := clamp(Interval{Start: start, End: start.Add(w.Duration)}, from, to); ok {
			out = append(out, iv)
		}
	}
	return out
}

// secondOccurrence returns the later of the two instants that show t's
// wall clock when the clocks go back around t, and t otherwise.
func secondOccurrence(t time.Time) time.Time {
	// Zone changes are hours apart at most; look a few hours either side.
	_, before := t.Add(-3 * time.Hour).Zone()
	_, after := t.Add(3 * time.Hour).Zone()
	if before <= after {
		return t // no fall-back here
	}
	later := t.Add(time.Duration(before-after) * time.Second)
	y1, m1, d1 := t.Date()
	y2, m2, d2 := later.Date()
	if y1 == y2 && m1 == m2 && d1 == d2 && t.Hour() == later.Hour() && t.Minute() == later.Minute() {
		return later
	}
	return t
}

// clamp cuts iv to [from, to) and reports whether anything is left.
func clamp(iv Interval, from, to time.Time) (Interval, bool) {
	if iv.Start.Before(from) {
		iv.Start = from
	}
	if iv.End.After(to) {
		iv.End = to
	}
	if !iv.Start.Before(iv.End) {
		return Interval{}, false
	}
	return Interval{Start: iv.Start.UTC(), End: iv.End.UTC()}, true
}

// mergeIntervals sorts intervals and merges those that overlap or touch.
func mergeIntervals(ivs []Interval) []Interval {
	if len(ivs) == 0 {
		return nil
	}
	slices.SortFunc(ivs, func(a, b Interval) int { return a.Start.Compare(b.Start) })
	out := []Interval{ivs[0]}
	for _, iv := range ivs[1:] {
		last := &out[len(out)-1]
		if iv.Start.After(last.End) {
			out = append(out, iv)
			continue
		}
		if iv.End.After(last.End) {
			last.End = iv.End
		}
	}
	return out
}

// parseWeekday reads mon, monday, Mon, ...
func parseWeekday(s string) (time.Weekday, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	for d := time.Sunday; d <= time.Saturday; d++ {
		full := strings.ToLower(d.String())
		if s == full || s == full[:3] {
			return d, true
		}
	}
	return 0, false
}

// parseClock reads a 24-hour HH:MM time of day.
func parseClock(s string) (hour, minute int, err error) {
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || !twoDigits(hh) || !twoDigits(mm) {
		return 0, 0, fmt.Errorf("want HH:MM, got %q", s)
	}
	hour, err1 := strconv.Atoi(hh)
	minute, err2 := strconv.Atoi(mm)
	if err1 != nil || err2 != nil || hour < 0 || hour > 23 || minute < 0 || minute > 59 {
		return 0, 0, fmt.Errorf("want HH:MM between 00:00 and 23:59, got %q", s)
	}
	return hour, minute, nil
}

func twoDigits(s string) bool {
	return len(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9'
}

// parseTime reads a one-off window's start or end: RFC 3339 with an offset,
// or a date and time without one (2026-11-01T02:00, 2026-11-01 02:00:00),
// which is taken in loc.
func parseTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{
		"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04",
	} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("want a time like 2026-11-01T02:00:00+01:00 or 2026-11-01 02:00, got %q", s)
}

// WholeSeconds truncates sorted intervals to whole seconds (what the
// incident store and availability count in) and merges those that come to
// touch or overlap, dropping empty ones.
func WholeSeconds(ivs []Interval) []Interval {
	var out []Interval
	for _, iv := range ivs {
		iv = Interval{Start: iv.Start.Truncate(time.Second).UTC(), End: iv.End.Truncate(time.Second).UTC()}
		if !iv.Start.Before(iv.End) {
			continue
		}
		if n := len(out); n > 0 && !iv.Start.After(out[n-1].End) {
			if iv.End.After(out[n-1].End) {
				out[n-1].End = iv.End
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// Run is Count intervals of the same Length, the i-th starting at
// Start + i×Step: a compact form of a recurring window's occurrences,
// which repeat at a fixed step between daylight saving changes.
type Run struct {
	Start        time.Time
	Length, Step time.Duration
	Count        int
}

// Intervals returns the run's intervals.
func (r Run) Intervals() []Interval {
	out := make([]Interval, r.Count)
	for i := range out {
		start := r.Start.Add(time.Duration(i) * r.Step)
		out[i] = Interval{Start: start, End: start.Add(r.Length)}
	}
	return out
}

// Runs writes intervals as runs, exactly: the runs' intervals are ivs,
// each once (in another order where runs interleave). Intervals of one
// length at one step share a run, so a daily window over a year is a few
// runs (one per daylight saving change) rather than hundreds of
// intervals, and a weekly window on several days a few runs per day.
func Runs(ivs []Interval) []Run {
	type key struct {
		start  int64
		length time.Duration
	}
	left := make(map[key]bool, len(ivs))
	for _, iv := range ivs {
		left[key{iv.Start.UnixNano(), iv.Duration()}] = true
	}
	// count is how many intervals of the progression from k by step are
	// left.
	count := func(k key, step time.Duration) int {
		n := 0
		for left[k] {
			n++
			k.start += int64(step)
		}
		return n
	}
	// Steps tried from each run's first interval: to the next few
	// intervals of the same length.
	const candidates = 16
	var out []Run
	for i, iv := range ivs {
		k := key{iv.Start.UnixNano(), iv.Duration()}
		if !left[k] {
			continue
		}
		best := Run{Start: iv.Start, Length: k.length, Count: 1}
		tried := 0
		for _, next := range ivs[i+1:] {
			if tried == candidates {
				break
			}
			nk := key{next.Start.UnixNano(), next.Duration()}
			if nk.length != k.length || nk.start <= k.start || !left[nk] {
				continue
			}
			tried++
			step := time.Duration(nk.start - k.start)
			if n := count(k, step); n > best.Count {
				best.Step, best.Count = step, n
			}
		}
		for j := range best.Count {
			delete(left, key{k.start + int64(j)*int64(best.Step), k.length})
		}
		out = append(out, best)
	}
	return out
}
