package collector_test

import (
	"context"
	"sync"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/collector"
)

// fakeFigures implements collector.Figures with canned figures per window.
type fakeFigures struct {
	mu    sync.Mutex
	figs  map[string][]availability.Figure // by window name
	err   error
	block chan struct{} // while set, All waits for it to close (or ctx)
	calls int
}

func (f *fakeFigures) ParseWindow(name string) (availability.Window, error) {
	return availability.ParseWindow(name, time.Now(), time.UTC)
}

func (f *fakeFigures) All(ctx context.Context, w availability.Window, _ bool) ([]availability.Figure, error) {
	f.mu.Lock()
	f.calls++
	block := f.block
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return f.figs[w.Name], nil
}

func (f *fakeFigures) set(figs map[string][]availability.Figure, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.figs, f.err = figs, err
}

func (f *fakeFigures) setBlock(block chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.block = block
}

func (f *fakeFigures) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeCounts implements collector.IncidentCounter with canned counts.
type fakeCounts struct {
	mu     sync.Mutex
	counts []collector.IncidentCount
	err    error
}

func (f *fakeCounts) IncidentCounts(context.Context) ([]collector.IncidentCount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts, f.err
}

// fig returns a figure with everything a healthy service has; change what
// a test needs.
func fig(service, owner, window string, availabilityRatio float64) availability.Figure {
	return availability.Figure{
		Service: service, Owner: owner, Catalogued: owner != "", Window: window,
		Availability: availabilityRatio, OwnAvailability: availabilityRatio,
		SLOTarget: 0.999, ErrorBudgetRemaining: 1,
	}
}

func ptr[T any](v T) *T { return &v }

// fakeDORA implements collector.DORASource with canned figures per window.
type fakeDORA struct {
	figs map[string][]collector.DORAFigure // by window name
	err  error
}

func (f *fakeDORA) DORA(_ context.Context, w availability.Window) ([]collector.DORAFigure, error) {
	return f.figs[w.Name], f.err
}
