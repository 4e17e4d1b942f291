package incidents_test

import (
	"testing"
	"time"

	"github.com/ninesops/nines/incidents"
)

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{12 * time.Second, "12s"},
		{12*time.Second + 400*time.Millisecond, "12s"},
		{4*time.Minute + 10*time.Second, "4m10s"},
		{5 * time.Minute, "5m"},
		{time.Hour + 2*time.Minute, "1h2m"},
		{time.Hour + 23*time.Minute + 5*time.Second, "1h23m5s"},
		{26 * time.Hour, "26h"},
		{-time.Second, "0s"},
	}
	for _, tc := range tests {
		if got := incidents.FormatDuration(tc.d); got != tc.want {
			t.Errorf("FormatDuration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
	secs := 5000.4
	if got := incidents.FormatSeconds(&secs); got != "1h23m20s" {
		t.Errorf("FormatSeconds(5000.4) = %q, want 1h23m20s", got)
	}
	if got := incidents.FormatSeconds(nil); got != "-" {
		t.Errorf("FormatSeconds(nil) = %q, want -", got)
	}
}
