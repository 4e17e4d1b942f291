package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// maxRecentPerService bounds RecentByService's perService.
const maxRecentPerService = 100

// RecentByService returns, for each of services, its latest perService
// incidents (by start to the millisecond, newest first) that started at
// or after since and before until (zero: no bound; both to the second),
// with their alerts: one query for all of them, where List would take one
// per service. Services without any are absent.
func (s *Store) RecentByService(ctx context.Context, services []string, since, until time.Time, perService int) (map[string][]*incidents.Incident, error) {
	out := map[string][]*incidents.Incident{}
	if len(services) == 0 || perService <= 0 {
		return out, nil
	}
	if len(services) > maxInList {
		return nil, fmt.Errorf("recent incidents: %w: at most %d services at once, got %d", fault.ErrInvalid, maxInList, len(services))
	}
	outer, args := []string{"started_at >= toDateTime(?)"}, []any{inList(services), max(since.Unix(), 0)}
	if !until.IsZero() {
		outer, args = append(outer, "started_at < toDateTime(?)"), append(args, max(until.Unix(), 0))
	}
	q := selectIncidents("service IN ?", outer,
		fmt.Sprintf("ORDER BY service, started_at DESC, started_at_millis DESC, id DESC\nLIMIT %d BY service", min(perService, maxRecentPerService)))
	incs, err := s.queryIncidents(ctx, "query_recent", q, args...)
	if err != nil {
		return nil, fmt.Errorf("recent incidents: %w", err)
	}
	for _, inc := range incs {
		out[inc.Service] = append(out[inc.Service], inc)
	}
	return out, nil
}
