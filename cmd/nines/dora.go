package main

import (
	"context"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/chat"
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
			ChangeFailureRate: s.ChangeFailureRate, RollbackRate: s.RollbackRate, TimeToRestoreSeconds: s.TimeToRestoreSeconds,
		}
	}
	return out, nil
}

// chatDORA gives the Slack digest the DORA figures of GET /api/v1/dora
// over a window such as "7d": the same changes.Service computes both.
type chatDORA struct {
	chg   *changes.Service
	avail *availability.Service // parses windows as the API does
}

// DORA implements chat.DORASource.
func (d chatDORA) DORA(ctx context.Context, window string) ([]chat.DORAFigure, error) {
	w, err := d.avail.ParseWindow(window)
	if err != nil {
		return nil, err
	}
	services, _, err := d.chg.DORA(ctx, w)
	if err != nil {
		return nil, err
	}
	out := make([]chat.DORAFigure, len(services))
	for i, s := range services {
		out[i] = chat.DORAFigure{
			Service: s.Service, Owner: s.Squad, Deployments: s.Deployments, DeploymentsPerDay: s.DeploymentsPerDay,
			ChangeFailureRate: s.ChangeFailureRate, RollbackRate: s.RollbackRate,
			Restored: s.Restored, TimeToRestoreSeconds: s.TimeToRestoreSeconds,
		}
	}
	return out, nil
}
