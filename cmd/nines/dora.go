package main

import (
	"context"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/collector"
)

// doraFigures gives the collector the DORA figures of GET /api/v1/dora:
// the same changes.Service computes both.
type doraFigures struct{ chg *changes.Service }

func (d doraFigures) DORA(ctx context.Context, w availability.Window) ([]collector.DORAFigure, error) {
	services, _, err := d.chg.DORA(ctx, w)
	if err != nil {
		return nil, err
	}
	out := make([]collector.DORAFigure, len(services))
	for i, s := range services {
		out[i] = collector.DORAFigure{
			Service: s.Service, Owner: s.Squad, DeploymentsPerDay: s.DeploymentsPerDay,
			ChangeFailureRate: s.ChangeFailureRate, TimeToRestoreSeconds: s.TimeToRestoreSeconds,
		}
	}
	return out, nil
}
