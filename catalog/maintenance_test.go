package catalog

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func utc(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err) // test helper with literal input
	}
	return t
}

// ivs renders intervals as "start/end" in UTC for compact comparison.
func ivs(in []Interval) []string {
	out := make([]string, len(in))
	for i, iv := range in {
		out[i] = iv.Start.UTC().Format("2006-01-02 15:04") + "/" + iv.End.UTC().Format("2006-01-02 15:04")
	}
	return out
}

func TestMaintenance(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, map[string]string{"catalog.yml": `
defaults: {timezone: Europe/Stockholm}
services:
  - name: oneoff
    maintenance:
      - {start: 2026-11-01T02:00:00+01:00, end: 2026-11-01T04:00:00+01:00, reason: DB upgrade}
  - name: weekly
    maintenance:
      - {schedule: weekly, days: [sun], at: "03:00", duration: 1h}
  - name: weekly-utc
    maintenance:
      - {schedule: weekly, days: [sun], at: "03:00", duration: 1h, timezone: UTC}
  - name: daily
    maintenance:
      - {schedule: daily, at: "23:30", duration: 1h}
  - name: gap
    maintenance:
      - {schedule: daily, at: "02:30", duration: 1h}
  - name: gap-west
    maintenance:
      - {schedule: daily, at: "01:30", duration: 1h, timezone: America/New_York}
  - name: overlapping
    maintenance:
      - {schedule: weekly, days: [mon, wed], at: "22:00", duration: 4h}
      - {schedule: daily, at: "01:00", duration: 2h}
      - {start: "2026-06-03 12:00", end: "2026-06-03 13:00"}
      - {start: "2026-06-03 13:00", end: "2026-06-03 14:00"}
  - name: long
    maintenance:
      - {schedule: weekly, days: [fri], at: "18:00", duration: 168h}
  - name: none
`})
	tests := []struct {
		name     string
		service  string
		from, to string // UTC
		want     []string
	}{
		{
			name: "one-off inside the range", service: "oneoff",
			from: "2026-10-31 00:00", to: "2026-11-02 00:00",
			want: []string{"2026-11-01 01:00/2026-11-01 03:00"},
		},
		{
			name: "one-off clamped at both ends", service: "oneoff",
			from: "2026-11-01 01:30", to: "2026-11-01 02:15",
			want: []string{"2026-11-01 01:30/2026-11-01 02:15"},
		},
		{
			name: "one-off ending exactly at from", service: "oneoff",
			from: "2026-11-01 03:00", to: "2026-11-02 00:00",
			want: []string{},
		},
		{
			name: "one-off starting exactly at to", service: "oneoff",
			from: "2026-10-31 00:00", to: "2026-11-01 01:00",
			want: []string{},
		},
		{
			// 2026-03-29: Stockholm goes from CET (+1) to CEST (+2) at 02:00.
			name: "weekly across spring DST change", service: "weekly",
			from: "2026-03-16 00:00", to: "2026-04-06 00:00",
			want: []string{
				"2026-03-22 02:00/2026-03-22 03:00", // 03:00 CET
				"2026-03-29 01:00/2026-03-29 02:00", // 03:00 CEST, the day of the change
				"2026-04-05 01:00/2026-04-05 02:00",
			},
		},
		{
			// 2026-10-25: back from CEST to CET at 03:00 CEST.
			name: "weekly across autumn DST change", service: "weekly",
			from: "2026-10-12 00:00", to: "2026-11-02 00:00",
			want: []string{
				"2026-10-18 01:00/2026-10-18 02:00", // 03:00 CEST
				"2026-10-25 02:00/2026-10-25 03:00", // 03:00 CET, the day of the change
				"2026-11-01 02:00/2026-11-01 03:00",
			},
		},
		{
			name: "weekly in its own time zone", service: "weekly-utc",
			from: "2026-03-28 00:00", to: "2026-03-30 00:00",
			want: []string{"2026-03-29 03:00/2026-03-29 04:00"},
		},
		{
			name: "window already running at from is clamped", service: "weekly",
			from: "2026-03-29 01:30", to: "2026-03-29 12:00",
			want: []string{"2026-03-29 01:30/2026-03-29 02:00"},
		},
		{
			// 23:30 local lasting an hour crosses local midnight; the
			// window that started on the 1st is still running at 00:00
			// CEST on the 2nd.
			name: "daily crossing midnight", service: "daily",
			from: "2026-06-01 22:00", to: "2026-06-03 22:00", // local midnights
			want: []string{
				"2026-06-01 22:00/2026-06-01 22:30", // from 23:30 CEST on 06-01
				"2026-06-02 21:30/2026-06-02 22:30",
				"2026-06-03 21:30/2026-06-03 22:00",
			},
		},
		{
			// 02:30 does not exist on 2026-03-29 in Stockholm; time.Date
			// normalizes it to 03:30 CEST (01:30 UTC).
			name: "daily at a nonexistent local time", service: "gap",
			from: "2026-03-28 00:00", to: "2026-03-31 00:00",
			want: []string{
				"2026-03-28 01:30/2026-03-28 02:30", // 02:30 CET
				"2026-03-29 01:30/2026-03-29 02:30", // 03:30 CEST
				"2026-03-30 00:30/2026-03-30 01:30", // 02:30 CEST
			},
		},
		{
			// 02:30 happens twice on 2026-10-25; time.Date picks the
			// second, 02:30 CET (01:30 UTC).
			name: "daily at an ambiguous local time", service: "gap",
			from: "2026-10-24 00:00", to: "2026-10-27 00:00",
			want: []string{
				"2026-10-24 00:30/2026-10-24 01:30", // 02:30 CEST
				"2026-10-25 01:30/2026-10-25 02:30", // 02:30 CET
				"2026-10-26 01:30/2026-10-26 02:30", // 02:30 CET
			},
		},
		{
			// West of UTC too: 01:30 happens twice on 2026-11-01 in New
			// York (EDT, then EST); the second, 01:30 EST, is 06:30 UTC.
			name: "daily at an ambiguous local time west of UTC", service: "gap-west",
			from: "2026-10-31 00:00", to: "2026-11-03 00:00",
			want: []string{
				"2026-10-31 05:30/2026-10-31 06:30", // 01:30 EDT
				"2026-11-01 06:30/2026-11-01 07:30", // 01:30 EST
				"2026-11-02 06:30/2026-11-02 07:30", // 01:30 EST
			},
		},
		{
			// Monday 22:00–02:00 CEST and daily 01:00–03:00 overlap, as do
			// the two touching one-offs on Wednesday.
			name: "overlapping windows merged", service: "overlapping",
			from: "2026-06-01 00:00", to: "2026-06-04 00:00",
			want: []string{
				"2026-06-01 00:00/2026-06-01 01:00", // Sunday's daily window, clamped
				"2026-06-01 20:00/2026-06-02 01:00", // Monday 22:00 + Tuesday 01:00–03:00
				"2026-06-02 23:00/2026-06-03 01:00", // Wednesday's daily
				"2026-06-03 10:00/2026-06-03 12:00", // two touching one-offs
				"2026-06-03 20:00/2026-06-04 00:00", // Wednesday 22:00, clamped
			},
		},
		{
			name: "a week-long window covers the range", service: "long",
			from: "2026-06-10 00:00", to: "2026-06-11 00:00",
			want: []string{"2026-06-10 00:00/2026-06-11 00:00"},
		},
		{
			name: "empty range", service: "weekly",
			from: "2026-03-29 02:00", to: "2026-03-29 01:00",
			want: []string{},
		},
		{name: "no windows", service: "none", from: "2026-01-01 00:00", to: "2027-01-01 00:00", want: []string{}},
		{name: "unknown service", service: "nope", from: "2026-01-01 00:00", to: "2027-01-01 00:00", want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := c.Maintenance(tc.service, utc(tc.from), utc(tc.to))
			if g := ivs(got); !slices.Equal(g, tc.want) {
				t.Errorf("Maintenance(%s):\n%s\nwant:\n%s", tc.service, strings.Join(g, "\n"), strings.Join(tc.want, "\n"))
			}
			for _, iv := range got {
				if iv.Start.Location() != time.UTC || iv.Duration() <= 0 {
					t.Errorf("interval %v: want UTC and positive duration", iv)
				}
			}
		})
	}
}

func TestWindowIntervals(t *testing.T) {
	t.Parallel()
	from, to := utc("2026-06-01 00:00"), utc("2026-06-03 00:00")
	tests := []struct {
		name string
		w    Window
		want []string
	}{
		{
			name: "nil location is UTC",
			w:    Window{Schedule: ScheduleDaily, Hour: 12, Duration: time.Hour},
			want: []string{"2026-06-01 12:00/2026-06-01 13:00", "2026-06-02 12:00/2026-06-02 13:00"},
		},
		{
			name: "weekly without days is empty",
			w:    Window{Schedule: ScheduleWeekly, Hour: 12, Duration: time.Hour},
			want: []string{},
		},
		{
			name: "recurring without duration is empty",
			w:    Window{Schedule: ScheduleDaily, Hour: 12},
			want: []string{},
		},
		{
			name: "invalid start time is empty",
			w:    Window{Schedule: ScheduleDaily, Hour: -1_000_000, Duration: time.Hour},
			want: []string{},
		},
		{
			// Occurrences overlap; Intervals leaves merging to Maintenance.
			name: "daily longer than a day",
			w:    Window{Schedule: ScheduleDaily, Hour: 12, Duration: 25 * time.Hour},
			want: []string{
				"2026-06-01 00:00/2026-06-01 13:00",
				"2026-06-01 12:00/2026-06-02 13:00",
				"2026-06-02 12:00/2026-06-03 00:00",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := ivs(tc.w.Intervals(from, to)); !slices.Equal(got, tc.want) {
				t.Errorf("Intervals = %v, want %v", got, tc.want)
			}
		})
	}
	if (Window{Start: from, End: to}).Recurring() || !(Window{Schedule: ScheduleDaily}).Recurring() {
		t.Error("Recurring")
	}
}

func TestParseClockAndWeekday(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"00:00", "23:59", "03:05"} {
		if _, _, err := parseClock(s); err != nil {
			t.Errorf("parseClock(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "3:00", "+1:00", "03:60", "24:00", "03-00", "03:0a", "003:00"} {
		if _, _, err := parseClock(s); err == nil {
			t.Errorf("parseClock(%q) accepted", s)
		}
	}
	for s, want := range map[string]time.Weekday{"sun": time.Sunday, "Monday": time.Monday, " SAT ": time.Saturday} {
		if got, ok := parseWeekday(s); !ok || got != want {
			t.Errorf("parseWeekday(%q) = %v, %v", s, got, ok)
		}
	}
	if _, ok := parseWeekday("su"); ok {
		t.Error(`parseWeekday("su") accepted`)
	}
}

// TestRuns: runs give back exactly the intervals they were made of, and a
// daily window in a zone with daylight saving is a few runs a year.
func TestRuns(t *testing.T) {
	sthlm, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(462 * 24 * time.Hour)
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name     string
		ivs      []Interval
		maxRuns  int
		wantRuns int
	}{
		{name: "none", wantRuns: 0},
		{name: "one", ivs: []Interval{{at("2026-01-01T00:00:00Z"), at("2026-01-01T01:00:00Z")}}, wantRuns: 1},
		{name: "irregular", ivs: []Interval{
			{at("2026-01-01T00:00:00Z"), at("2026-01-01T01:00:00Z")},
			{at("2026-01-02T00:00:00Z"), at("2026-01-02T02:00:00Z")},
			{at("2026-01-03T00:00:00Z"), at("2026-01-03T02:00:00Z")},
			{at("2026-01-05T00:00:00Z"), at("2026-01-05T02:00:00Z")},
			{at("2026-01-05T03:00:00Z"), at("2026-01-05T03:00:01Z")},
		}, wantRuns: 4},
		{name: "daily across DST, gap and repeat", ivs: WholeSeconds(Window{
			Schedule: ScheduleDaily, Hour: 2, Minute: 30, Duration: time.Hour, Location: sthlm,
		}.Intervals(from, to)), maxRuns: 12},
		{name: "weekly, clamped", ivs: WholeSeconds(Window{
			Schedule: ScheduleWeekly, Days: []time.Weekday{time.Monday, time.Thursday}, Hour: 23, Duration: 3 * time.Hour, Location: sthlm,
		}.Intervals(from.Add(time.Hour), to)), maxRuns: 24},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runs := Runs(tc.ivs)
			var back []Interval
			for _, r := range runs {
				back = append(back, r.Intervals()...)
			}
			slices.SortFunc(back, func(a, b Interval) int { return a.Start.Compare(b.Start) })
			if len(back) != len(tc.ivs) {
				t.Fatalf("runs hold %d intervals, want %d", len(back), len(tc.ivs))
			}
			for i := range back {
				if !back[i].Start.Equal(tc.ivs[i].Start) || !back[i].End.Equal(tc.ivs[i].End) {
					t.Fatalf("interval %d: %v, want %v", i, back[i], tc.ivs[i])
				}
			}
			t.Logf("%d intervals in %d runs", len(tc.ivs), len(runs))
			if tc.maxRuns > 0 && (len(runs) > tc.maxRuns || len(tc.ivs) < 50) {
				t.Errorf("%d intervals in %d runs, want at most %d", len(tc.ivs), len(runs), tc.maxRuns)
			}
			if tc.maxRuns == 0 && len(runs) != tc.wantRuns {
				t.Errorf("%d runs, want %d", len(runs), tc.wantRuns)
			}
		})
	}
}
