package dashboards

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ninesops/nines/catalog"
)

// maxQuerySize is ClickHouse's default max_query_size: a longer query is
// refused ("Max query size exceeded").
const maxQuerySize = 262144

// TestDailyMaintenanceOnManyServices: a catalog whose 20 services all have
// a daily maintenance window (in a time zone with daylight saving, at a
// wall-clock time that the changes skip and repeat) gives dashboards whose
// every query ClickHouse accepts and runs, on every dashboard, with All
// selected and with one service. (The SQL once wrote out every occurrence
// of every window over the 462 days around generation, several times per
// query, and the overview's exceeded max_query_size.)
func TestDailyMaintenanceOnManyServices(t *testing.T) {
	env := newCHEnv(t)
	var y strings.Builder
	y.WriteString("defaults:\n  slo_target: 99.5\n  timezone: Europe/Stockholm\nsquads:\n  - name: core\nservices:\n")
	names := []string{"api", "auth", "db"}
	for i := len(names); i < 20; i++ {
		names = append(names, fmt.Sprintf("service-%02d", i))
	}
	for i, n := range names {
		fmt.Fprintf(&y, "  - name: %s\n    owner: core\n", n)
		if i > 0 {
			fmt.Fprintf(&y, "    dependencies: [%s]\n", names[i-1])
		}
		y.WriteString("    maintenance:\n      - {schedule: daily, at: \"02:30\", duration: 1h}\n")
	}
	cat, err := catalog.Parse([]byte(y.String()), "catalog.yml")
	if err != nil {
		t.Fatal(err)
	}
	ds, err := Generate(cat, withQueries(Options{Now: env.now}))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		for _, p := range d.Panels {
			if p, ok := p.(*Panel); ok {
				for _, tg := range p.Targets {
					if q, ok := tg.(*ClickHouseQuery); ok && len(q.RawSQL) > maxQuerySize {
						t.Errorf("%s, %v: %d bytes of SQL, more than ClickHouse's max_query_size (%d)", d.UID, p, len(q.RawSQL), maxQuerySize)
					}
				}
			}
		}
		for _, pick := range []string{"all", "one"} {
			t.Run(d.UID+"/"+pick, func(t *testing.T) {
				if n := env.checkDashboard(t, d, pick); n == 0 && !t.Failed() {
					t.Errorf("no ClickHouse query ran")
				}
			})
		}
	}
}
