package availability

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func TestParseWindow(t *testing.T) {
	t.Parallel()
	sthlm := mustLoad(t, "Europe/Stockholm")
	utc := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UTC()
	}
	tests := []struct {
		name     string
		in       string
		now      string
		loc      *time.Location
		from, to string
		seconds  int64
	}{
		{name: "1h", in: "1h", now: "2026-11-22T12:00:00.7Z", from: "2026-11-22T11:00:00Z", to: "2026-11-22T12:00:00Z", seconds: 3600},
		{name: "24h", in: "24h", now: "2026-11-22T12:00:00Z", from: "2026-11-21T12:00:00Z", to: "2026-11-22T12:00:00Z", seconds: 86400},
		{name: "7d is 168 hours even across DST", in: "7d", now: "2026-03-31T12:00:00Z", loc: sthlm, from: "2026-03-24T12:00:00Z", to: "2026-03-31T12:00:00Z", seconds: 7 * 86400},
		{name: "28d", in: "28d", now: "2026-11-22T12:00:00Z", from: "2026-10-25T12:00:00Z", to: "2026-11-22T12:00:00Z", seconds: 28 * 86400},
		{name: "30d", in: "30d", now: "2026-11-22T12:00:00Z", from: "2026-10-23T12:00:00Z", to: "2026-11-22T12:00:00Z", seconds: 30 * 86400},
		{name: "90d", in: "90d", now: "2026-11-22T12:00:00Z", from: "2026-08-24T12:00:00Z", to: "2026-11-22T12:00:00Z", seconds: 90 * 86400},
		{name: "2w", in: "2w", now: "2026-11-22T12:00:00Z", from: "2026-11-08T12:00:00Z", to: "2026-11-22T12:00:00Z", seconds: 14 * 86400},
		{name: "Go duration", in: "90m", now: "2026-11-22T12:00:00Z", from: "2026-11-22T10:30:00Z", to: "2026-11-22T12:00:00Z", seconds: 5400},
		{name: "case and blanks", in: " Month ", now: "2026-11-22T12:00:00Z", from: "2026-11-01T00:00:00Z", to: "2026-11-22T12:00:00Z", seconds: (21*24 + 12) * 3600},
		{name: "month in Stockholm", in: "month", now: "2026-11-22T12:00:00Z", loc: sthlm, from: "2026-10-31T23:00:00Z", to: "2026-11-22T12:00:00Z", seconds: (21*24 + 13) * 3600},
		{name: "day across spring DST is 23h so far", in: "day", now: "2026-03-29T21:59:59Z", loc: sthlm, from: "2026-03-28T23:00:00Z", to: "2026-03-29T21:59:59Z", seconds: 23*3600 - 1},
		{name: "week from Monday", in: "week", now: "2026-11-22T12:00:00Z", from: "2026-11-16T00:00:00Z", to: "2026-11-22T12:00:00Z", seconds: (6*24 + 12) * 3600},
		{name: "quarter", in: "quarter", now: "2026-11-22T12:00:00Z", from: "2026-10-01T00:00:00Z", to: "2026-11-22T12:00:00Z", seconds: (52*24 + 12) * 3600},
		{name: "year", in: "year", now: "2026-11-22T12:00:00Z", from: "2026-01-01T00:00:00Z", to: "2026-11-22T12:00:00Z", seconds: (325*24 + 12) * 3600},
		{name: "previous-month February 28 days", in: "previous-month", now: "2026-03-15T12:00:00Z", from: "2026-02-01T00:00:00Z", to: "2026-03-01T00:00:00Z", seconds: 28 * 86400},
		{name: "previous-month February 29 days", in: "previous-month", now: "2028-03-01T00:00:00Z", from: "2028-02-01T00:00:00Z", to: "2028-03-01T00:00:00Z", seconds: 29 * 86400},
		{name: "previous-month April 30 days", in: "previous-month", now: "2026-05-05T00:00:00Z", from: "2026-04-01T00:00:00Z", to: "2026-05-01T00:00:00Z", seconds: 30 * 86400},
		{name: "previous-month January 31 days", in: "previous-month", now: "2026-02-10T00:00:00Z", from: "2026-01-01T00:00:00Z", to: "2026-02-01T00:00:00Z", seconds: 31 * 86400},
		{name: "previous-month March in Stockholm loses an hour", in: "previous-month", now: "2026-04-10T00:00:00Z", loc: sthlm, from: "2026-02-28T23:00:00Z", to: "2026-03-31T22:00:00Z", seconds: 31*86400 - 3600},
		{name: "previous-month October in Stockholm gains an hour", in: "previous-month", now: "2026-11-10T00:00:00Z", loc: sthlm, from: "2026-09-30T22:00:00Z", to: "2026-10-31T23:00:00Z", seconds: 31*86400 + 3600},
		{name: "previous-day across autumn DST is 25h", in: "previous-day", now: "2026-10-26T10:00:00Z", loc: sthlm, from: "2026-10-24T22:00:00Z", to: "2026-10-25T23:00:00Z", seconds: 25 * 3600},
		{name: "previous-quarter", in: "previous-quarter", now: "2026-01-15T00:00:00Z", from: "2025-10-01T00:00:00Z", to: "2026-01-01T00:00:00Z", seconds: 92 * 86400},
		{name: "previous-year", in: "previous-year", now: "2026-01-15T00:00:00Z", from: "2025-01-01T00:00:00Z", to: "2026-01-01T00:00:00Z", seconds: 365 * 86400},
		{name: "previous-week", in: "previous-week", now: "2026-11-22T12:00:00Z", from: "2026-11-09T00:00:00Z", to: "2026-11-16T00:00:00Z", seconds: 7 * 86400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, err := ParseWindow(tc.in, utc(tc.now), tc.loc)
			if err != nil {
				t.Fatalf("ParseWindow(%q): %v", tc.in, err)
			}
			if !w.From.Equal(utc(tc.from)) || !w.To.Equal(utc(tc.to)) {
				t.Errorf("ParseWindow(%q) = %s – %s, want %s – %s", tc.in, w.From, w.To, tc.from, tc.to)
			}
			if got := int64(w.Duration() / time.Second); got != tc.seconds {
				t.Errorf("ParseWindow(%q) lasts %ds, want %ds", tc.in, got, tc.seconds)
			}
			if w.String() != strings.ToLower(strings.TrimSpace(tc.in)) {
				t.Errorf("String() = %q", w.String())
			}
		})
	}
}

func TestParseWindowErrors(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in, want string
	}{
		{"5x", `window: unknown window "5x"`},
		{"", `window: unknown window ""`},
		{"previous-fortnight", `unknown window "previous-fortnight"`},
		{"-1h", `window "-1h": must be at least 1s`},
		{"0d", `window "0d": must be at least 1s`},
		{"100ms", `must be at least 1s`},
		{"99999w", `must be at most`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			_, err := ParseWindow(tc.in, now, time.UTC)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseWindow(%q) = %v, want an error containing %q", tc.in, err, tc.want)
			}
			if !errors.Is(err, fault.ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
		})
	}
}

func TestWindowBetween(t *testing.T) {
	t.Parallel()
	a := time.Date(2026, 11, 1, 0, 0, 0, 500, time.UTC)
	b := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	w, err := WindowBetween(a, b)
	if err != nil {
		t.Fatal(err)
	}
	if w.Duration() != 24*time.Hour || w.Name != "" || w.String() != "2026-11-01T00:00:00Z/2026-11-02T00:00:00Z" {
		t.Errorf("WindowBetween = %+v (%s)", w, w)
	}
	for _, tc := range []struct {
		name     string
		from, to time.Time
		want     string
	}{
		{"after", b, a, "from must be before to"},
		{"equal", a, a, "from must be before to"},
		{"too long", a, a.AddDate(6, 0, 0), "to: at most"},
		{"before 1970", time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC), a, "from: before 1970"},
	} {
		_, err := WindowBetween(tc.from, tc.to)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("%s: WindowBetween = %v, want an invalid error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "defaults", cfg: Config{}},
		{name: "degraded 0.3", cfg: Config{ImpactWeights: ImpactWeights{Degraded: f(0.3)}}},
		{name: "outage above 1", cfg: Config{ImpactWeights: ImpactWeights{Outage: f(1.5)}}, want: "availability.impact_weights.outage: must be between 0 and 1, got 1.5"},
		{name: "negative none", cfg: Config{ImpactWeights: ImpactWeights{None: f(-0.1)}}, want: "availability.impact_weights.none"},
		{name: "bad window", cfg: Config{Windows: []string{"1h", "5x"}}, want: `availability.windows[1]: unknown window "5x"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tc.want && !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
	c := DefaultConfig()
	if got := c.ImpactWeights.Weight(incidents.ImpactOutage); got != 1 {
		t.Errorf("default outage weight %v", got)
	}
	if got := c.ImpactWeights.Weight(incidents.ImpactDegraded); got != 0 {
		t.Errorf("default degraded weight %v", got)
	}
	if len(c.Windows) != 4 {
		t.Errorf("default windows %v", c.Windows)
	}
}
