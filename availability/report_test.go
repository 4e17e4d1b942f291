package availability

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func reportFixture() Report {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to := from.Add(30 * 24 * time.Hour)
	p := func(v float64) *float64 { return &v }
	figs := []Figure{
		{Service: "checkout", Owner: "payments", Catalogued: true, Window: "30d", From: from, To: to, WindowSeconds: 2592000,
			Availability: 0.99812345, OwnAvailability: 0.9991, DowntimeSeconds: 4870.5, DowntimeByImpactSeconds: ImpactSeconds{Outage: 4000, Degraded: 870},
			OwnDowntimeSeconds: 2300, MaintenanceSeconds: 3600, Incidents: 3, MTTASeconds: p(125.4), MTTRSeconds: p(5000), MTBFSeconds: p(86400 * 3),
			LongestIncidentSeconds: 3600, SLOTarget: 0.9995, ErrorBudgetSeconds: 1296, ErrorBudgetConsumedSeconds: 4870.5, ErrorBudgetRemaining: -2.758,
			ErrorBudgetRemainingSeconds: -3574.5, BurnRate1h: 0, BurnRate24h: 1.5,
			Upstream:    []UpstreamCost{{Service: "payments-api", IncidentIDs: []string{"inc-0123456789abcdef0123"}, DowntimeSeconds: 2570}},
			IncidentIDs: []string{"inc-0123456789abcdef0123", "inc-1111111111111111aaaa", "inc-2222222222222222bbbb"}},
		{Service: "search|pipe", Owner: "", Catalogued: true, Window: "30d", From: from, To: to, WindowSeconds: 2592000,
			Availability: 0.99999, OwnAvailability: 0.99999, DowntimeSeconds: 25.9, Incidents: 1, MTTRSeconds: p(25.9),
			SLOTarget: 0.99999, ErrorBudgetSeconds: 25.92, ErrorBudgetConsumedSeconds: 25.9, ErrorBudgetRemaining: 0.0008},
		{Service: "legacy", Catalogued: false, Window: "30d", From: from, To: to, WindowSeconds: 2592000,
			Availability: 1, OwnAvailability: 1, SLOTarget: 0.999, ErrorBudgetSeconds: 2592, ErrorBudgetRemaining: 1,
			ErrorBudgetRemainingSeconds: 2592},
	}
	rep := NewReport(Window{From: from, To: to, Name: "30d"}, figs)
	rep.TimeZone = "Europe/Berlin"
	return rep
}

// TestWriteReport: nines report's output in each format, against golden
// files (byte for byte: scripts read these).
func TestWriteReport(t *testing.T) {
	t.Parallel()
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		format string
		loc    *time.Location
	}{{"table", berlin}, {"markdown", time.UTC}, {"csv", time.UTC}, {"json", time.UTC}} {
		t.Run(tc.format, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			if err := WriteReport(&b, reportFixture(), tc.format, tc.loc); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "report."+tc.format+".golden")
			if *update {
				if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b.Bytes(), want) {
				t.Errorf("%s report differs from %s:\n%s", tc.format, golden, b.Bytes())
			}
		})
	}
	if err := WriteReport(&bytes.Buffer{}, reportFixture(), "yaml", time.UTC); err == nil {
		t.Error("an unknown format gave no error")
	}
}

func TestFormatAvailability(t *testing.T) {
	t.Parallel()
	for a, want := range map[float64]string{
		0.9995: "99.95% (3.3 nines)", 1: "100% (∞ nines)", 0.99999: "99.999% (5.0 nines)",
		0.999996: "99.9996% (5.4 nines)", 0: "0.00% (0.0 nines)",
	} {
		if got := formatAvailability(a); got != want {
			t.Errorf("formatAvailability(%v) = %q, want %q", a, got, want)
		}
	}
}
