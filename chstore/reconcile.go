package chstore

import (
	"context"
	"fmt"

	"github.com/ninesops/nines/incidents"
)

// maxOpenIncidents bounds what OpenIncidentsFromAlerts reads: far more incidents
// than an organisation has open at once.
const maxOpenIncidents = 10_000

// OpenIncidentsFromAlerts returns the incidents that alerts opened and that are not
// resolved, oldest first, with their alerts: what the reconciler compares
// with Alertmanager's active alerts.
func (s *Store) OpenIncidentsFromAlerts(ctx context.Context) ([]*incidents.Incident, error) {
	q := selectIncidents("1",
		[]string{"last_state != 'resolved'", "last_source = '" + incidents.SourceAlertmanager + "'"},
		fmt.Sprintf("ORDER BY started_at, id\nLIMIT %d", maxOpenIncidents))
	incs, err := s.queryIncidents(ctx, "query_open_incidents_from_alerts", q)
	if err != nil {
		return nil, fmt.Errorf("open incidents: %w", err)
	}
	return incs, nil
}
