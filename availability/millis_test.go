package availability_test

import (
	"context"
	"testing"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/incidents"
)

// TestFiguresCountWholeSeconds: incidents keep their times to the
// millisecond, and the figures count whole seconds, each time cut to its
// second (availability/doc.go, Windows): an incident started at
// 10:00:00.900, acknowledged at 10:00:05.100 and resolved at 10:00:10.100
// was down 10 s (not 9.2 s), acknowledged after 5 s (not 4.2 s).
func TestFiguresCountWholeSeconds(t *testing.T) {
	ctx := context.Background()
	store := openStore(t)
	ten := time.Date(2026, 11, 10, 10, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) time.Time { return ten.Add(d * time.Millisecond) }
	inc := incident("millis-1", "millis", incidents.ImpactOutage, period(ms(900), ms(10_100)))
	inc.AcknowledgedAt, inc.AcknowledgedBy = ms(5_100), "alice"
	write(t, store, inc)
	got, err := store.Get(ctx, "millis-1")
	if err != nil {
		t.Fatal(err)
	}
	if !got.StartedAt.Equal(ms(900)) || !got.AcknowledgedAt.Equal(ms(5_100)) || !got.ResolvedAt.Equal(ms(10_100)) {
		t.Fatalf("stored incident %s–%s acknowledged %s: its milliseconds are lost",
			got.StartedAt.Format(time.RFC3339Nano), got.ResolvedAt.Format(time.RFC3339Nano), got.AcknowledgedAt.Format(time.RFC3339Nano))
	}

	w, err := availability.WindowBetween(ten.Add(-time.Hour), ten.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	cat := parseCatalog(t, "services:\n  - name: millis\n")
	f, err := newService(t, store, cat, availability.Config{}, ten.Add(2*time.Hour)).Service(ctx, "millis", w, false)
	if err != nil {
		t.Fatal(err)
	}
	approx(t, "downtime", f.DowntimeSeconds, 10)
	approx(t, "availability", f.Availability, 1-10.0/7200)
	approx(t, "mttr", ptrValue(f.MTTRSeconds), 10)
	approx(t, "mtta", ptrValue(f.MTTASeconds), 5)
	if f.LongestIncidentSeconds != 10 || f.Incidents != 1 {
		t.Errorf("longest incident %d s, %d incidents; want 10 s, 1", f.LongestIncidentSeconds, f.Incidents)
	}
}
