package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/incidents"
)

// Waiting for ClickHouse at start: nines serves what it can without it
// (liveness, readiness saying why not, /metrics, and the webhook into the
// spool: startingRoutes in routes.go) and retries with a growing pause, so that a replica restarted
// during an outage comes back by itself.
const (
	storeRetryMin = 500 * time.Millisecond
	storeRetryMax = 30 * time.Second
)

// swapHandler serves through the handler last set.
type swapHandler struct{ h atomic.Pointer[http.Handler] }

func (s *swapHandler) set(h http.Handler) { s.h.Store(&h) }

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// waitForStore opens the store and migrates its schema, retrying while
// ClickHouse is unavailable, until ctx ends. Other errors (a refused
// password, a bad DSN) are returned at once. waiting is set to the last
// reason for waiting.
func waitForStore(ctx context.Context, f storeFlags, log *slog.Logger, reg prometheus.Registerer, waiting *atomic.Pointer[string]) (*chstore.Store, error) {
	pause := storeRetryMin
	for attempt := 1; ; attempt++ {
		// Try without metrics first: a store opened with reg cannot be
		// opened again with it.
		err := tryStore(ctx, f, log)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !errors.Is(err, incidents.ErrUnavailable) {
			return nil, err
		}
		why := err.Error()
		waiting.Store(&why)
		log.Warn("ClickHouse unavailable at start: waiting for it; webhooks are spooled meanwhile (503 without --spool.dir)",
			"attempt", attempt, "retry_in", pause.String(), "err", err)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, storeRetryMax)
	}
	return f.open(ctx, log, reg)
}

// tryStore opens the store, migrates it and closes it.
func tryStore(ctx context.Context, f storeFlags, log *slog.Logger) error {
	s, err := f.open(ctx, log, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Migrate(ctx)
}
