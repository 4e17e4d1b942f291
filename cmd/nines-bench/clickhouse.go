package main

import (
	"context"
	"slices"
	"time"

	"github.com/ninesops/nines/cmd/internal/harness"
)

// dropDatabase drops db on the server behind addr. A busy server can take
// a while to drop a database whose parts are being merged.
func dropDatabase(ctx context.Context, addr, db string) error {
	_, err := harness.NewSQL(addr, 2*time.Minute).Query(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
	return err
}

// probe measures ClickHouse's round trip for SELECT 1 every interval while
// a phase runs: how responsive the server is, whatever nines asks of it.
type probe struct {
	stop chan struct{}
	done chan struct{}
	lat  []time.Duration
}

func startProbe(ctx context.Context, c *harness.SQL, every time.Duration) *probe {
	p := &probe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			start := time.Now()
			if _, err := c.Query(ctx, "SELECT 1"); err == nil {
				p.lat = append(p.lat, time.Since(start))
			}
			select {
			case <-t.C:
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

// result stops the probe and returns its round trips, sorted.
func (p *probe) result() []time.Duration {
	close(p.stop)
	<-p.done
	slices.Sort(p.lat)
	return p.lat
}
