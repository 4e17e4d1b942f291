package web

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ninesops/nines/catalog"
)

// memo keeps the last value load computed for the current catalog and
// serves it while it is younger than ttl. Once older, it is still served
// while one load in the background replaces it, so that no request waits
// for a computation over every service once the first has been done. A
// new catalog, or no value yet, makes the request wait for a load (one
// load at a time, which waiting requests share). A failed load keeps the
// last value and is retried by the next request. A ttl of zero or less
// loads on every call. Loads end with base (Pages.Close), which waits for
// them through loads.
type memo[T any] struct {
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time
	log     *slog.Logger
	what    string
	load    func(ctx context.Context, cat *catalog.Catalog) (T, error)
	base    context.Context
	loads   *sync.WaitGroup

	mu     sync.Mutex
	closed bool
	val    T
	cat    *catalog.Catalog // the catalog val was computed with; nil: no value
	at     time.Time        // when the load of val started
	flight *memoFlight[T]
}

type memoFlight[T any] struct {
	cat  *catalog.Catalog
	done chan struct{}
	val  T
	at   time.Time
	err  error
}

// get returns the value for cat and when its computation started.
func (m *memo[T]) get(ctx context.Context, cat *catalog.Catalog) (T, time.Time, error) {
	if m.ttl <= 0 {
		at := m.now()
		v, err := m.load(ctx, cat)
		return v, at, err
	}
	m.mu.Lock()
	if m.cat == cat {
		v, at := m.val, m.at
		if m.now().Sub(at) >= m.ttl {
			m.startLocked(cat)
		}
		m.mu.Unlock()
		return v, at, nil
	}
	f := m.startLocked(cat)
	m.mu.Unlock()
	select {
	case <-f.done:
		return f.val, f.at, f.err
	case <-ctx.Done():
		var zero T
		return zero, time.Time{}, ctx.Err()
	}
}

// startLocked starts a load for cat unless one is running for it, and
// returns it. The load does not belong to any request: it runs to its
// end (or the timeout, or Pages.Close) even when the request that started
// it goes away.
func (m *memo[T]) startLocked(cat *catalog.Catalog) *memoFlight[T] {
	if f := m.flight; f != nil && f.cat == cat {
		return f
	}
	f := &memoFlight[T]{cat: cat, done: make(chan struct{}), at: m.now()}
	if m.closed {
		f.err = fmt.Errorf("page figures: %w", context.Cause(m.base))
		close(f.done)
		return f
	}
	m.flight = f
	m.loads.Add(1)
	go func() {
		defer m.loads.Done()
		defer close(f.done)
		ctx, cancel := context.WithTimeout(m.base, m.timeout)
		defer cancel()
		f.val, f.err = m.load(ctx, cat)
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.flight == f {
			m.flight = nil
		}
		if f.err != nil {
			m.log.Warn("page figures: refresh failed", "figures", m.what, "err", f.err)
			return
		}
		if !f.at.Before(m.at) {
			m.val, m.cat, m.at = f.val, cat, f.at
		}
	}()
	return f
}

// close refuses new loads; Pages.Close then ends and waits for the
// running ones.
func (m *memo[T]) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
}

// idle reports whether no load is running.
func (m *memo[T]) idle() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.flight == nil
}
