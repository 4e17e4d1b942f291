package availability_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// DailyServices answers for many services what Daily answers for each (the
// status page's bars equal the API's daily figures), in one query.
func TestDailyServicesEqualsDaily(t *testing.T) {
	t.Parallel()
	s := openStore(t)
	now := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC)
	day := func(d, h int) time.Time { return time.Date(2026, 6, d, h, 0, 0, 0, time.UTC) }
	write(t, s,
		incident("inc-a1", "a", incidents.ImpactOutage, period(day(3, 10), day(3, 11))),
		incident("inc-a2", "a", incidents.ImpactDegraded, period(day(5, 23), day(6, 2))),
		incident("inc-b1", "b", incidents.ImpactOutage, period(day(4, 1), day(4, 3)), period(day(4, 5), time.Time{})),
		incident("inc-c1", "c", incidents.ImpactOutage, period(day(9, 1), day(9, 2))),
	)
	cat := parseCatalog(t, `services:
  - name: a
    maintenance:
      - {start: "2026-06-03T10:30:00Z", end: "2026-06-03T12:00:00Z"}
  - {name: b}
  - {name: c}
  - {name: quiet}
`)
	svc := newService(t, s, cat, availability.Config{}, now)
	ctx := context.Background()
	from, to := day(1, 0), now
	got, err := svc.DailyServices(ctx, []string{"a", "b", "quiet"}, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Errorf("answered for %d services, want 3", len(got))
	}
	for _, name := range []string{"a", "b", "quiet"} {
		want, err := svc.Daily(ctx, name, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if len(want) != 10 {
			t.Fatalf("%s: Daily gave %d days, want 10", name, len(want))
		}
		if !reflect.DeepEqual(got[name], want) {
			t.Errorf("%s:\nDailyServices %+v\nDaily         %+v", name, got[name], want)
		}
	}
	if a := got["a"]; len(a) == 10 && (a[2].DowntimeSeconds != 1800 || a[2].MaintenanceSeconds != 5400) {
		t.Errorf("a on June 3: %+v, want 30m of downtime and 1h30 of maintenance", a[2])
	}
	if _, err := svc.DailyServices(ctx, []string{"a", "nope"}, from, to); !errors.Is(err, fault.ErrNotFound) {
		t.Errorf("an unknown service: %v, want ErrNotFound", err)
	}
}
