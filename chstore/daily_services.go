package chstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/ninesops/nines/availability"
)

var _ availability.ManyDailySource = (*Store)(nil)

// DailyServices implements availability.ManyDailySource: dailySQL for
// every service of q at once, one row per service and day that has
// downtime or incidents.
func (s *Store) DailyServices(ctx context.Context, q availability.ManyDailyQuery) (map[string][]availability.RawDay, error) {
	if len(q.Days) == 0 || len(q.Services) == 0 {
		return map[string][]availability.RawDay{}, nil
	}
	const op = "query_daily"
	what := fmt.Sprintf("%q", q.Services[0])
	if len(q.Services) > 1 {
		what = fmt.Sprintf("%d services", len(q.Services))
	}
	now := unix(q.Now)
	days := make([]uint32, 0, len(q.Days)+1)
	for _, d := range q.Days {
		days = append(days, unix(d.Start))
	}
	last := min(unix(q.Days[len(q.Days)-1].End), now)
	days = append(days, last)
	p := sweepParams{lo: days[0], hi: last, from: days[0], end: last, now: now, weights: q.Weights, services: q.Services}
	args := append(p.args(), clickhouse.Named("days", days), clickhouse.Named("ndays", uint32(len(q.Days))))
	mr := maintenanceRows(q.Maintenance, q.Services, p.lo, p.hi)
	args = append(args, mr.args()...)
	query := dailyText(!mr.empty())

	s.metrics.op(op)
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, s.fail(ctx, op, err, "query daily availability of %s", what)
	}
	defer rows.Close()
	out := map[string][]availability.RawDay{}
	for rows.Next() {
		var (
			service string
			day     uint32
			d       availability.RawDay
			n       int64
		)
		if err := rows.Scan(&service, &day, &d.Downtime, &n); err != nil {
			return nil, s.fail(ctx, op, err, "read daily availability of %s", what)
		}
		d.Index, d.Incidents = int(day), int(n)
		out[service] = append(out[service], d)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "read daily availability of %s", what)
	}
	for _, ds := range out {
		slices.SortFunc(ds, func(a, b availability.RawDay) int { return a.Index - b.Index })
	}
	return out, nil
}
