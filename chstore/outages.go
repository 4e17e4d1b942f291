package chstore

import (
	"context"
	"fmt"

	"github.com/ninesops/nines/incidents"
)

// OpenOutages returns the open incidents with impact outage of services,
// for cascade linking (incidents.OutageFinder).
func (s *Store) OpenOutages(ctx context.Context, services []string) ([]*incidents.Incident, error) {
	if len(services) == 0 {
		return nil, nil
	}
	q := selectIncidents("service IN ?",
		[]string{"last_state != 'resolved'", "last_impact = 2"},
		"ORDER BY started_at, id")
	incs, err := s.queryIncidents(ctx, "query_open_outages", q, inList(services))
	if err != nil {
		return nil, fmt.Errorf("open outages: %w", err)
	}
	return incs, nil
}
