package chstore

import (
	"context"
	"fmt"
	"time"

	"github.com/ninesops/nines/incidents"
)

// Outages returns the incidents with impact outage of services that are
// open or were resolved at or after since (to the second), for cascade
// linking (incidents.OutageFinder).
func (s *Store) Outages(ctx context.Context, services []string, since time.Time) ([]*incidents.Incident, error) {
	if len(services) == 0 {
		return nil, nil
	}
	q := selectIncidents("service IN ?",
		[]string{"(last_state != 'resolved' OR last_resolved_at >= toDateTime(?))", "last_impact = 2"},
		"ORDER BY started_at, id")
	incs, err := s.queryIncidents(ctx, "query_open_outages", q, inList(services), max(since.Unix(), 0))
	if err != nil {
		return nil, fmt.Errorf("open outages: %w", err)
	}
	return incs, nil
}
