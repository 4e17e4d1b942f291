package chstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeFlusher records flushes; each flush takes delay (of fake time).
type fakeFlusher struct {
	delay time.Duration
	err   error

	mu       sync.Mutex
	flushes  [][]*request
	at       []time.Time
	inFlight int
	maxIn    int
}

func (f *fakeFlusher) flush(ctx context.Context, reqs []*request) error {
	f.mu.Lock()
	f.flushes = append(f.flushes, reqs)
	f.at = append(f.at, time.Now())
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	f.mu.Unlock()
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
	return f.err
}

func (f *fakeFlusher) sizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, reqs := range f.flushes {
		out = append(out, len(reqs))
	}
	return out
}

func req(n int) *request {
	return &request{rows: rowSet{events: make([]eventRow, n)}}
}

func startBatcher(t *testing.T, f *fakeFlusher, interval time.Duration, maxRows int) *batcher {
	b := newBatcher(interval, maxRows, time.Minute, f.flush)
	go b.run()
	t.Cleanup(b.close)
	return b
}

func TestBatcherWaitsIntervalUnderLightLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFlusher{}
		b := startBatcher(t, f, 100*time.Millisecond, 1000)
		start := time.Now()
		if err := b.write(t.Context(), req(1)); err != nil {
			t.Fatalf("write: %v", err)
		}
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Errorf("write took %v, want the flush interval 100ms", got)
		}
		if got := f.sizes(); len(got) != 1 || got[0] != 1 {
			t.Errorf("flush sizes = %v, want [1]", got)
		}
	})
}

func TestBatcherMergesConcurrentWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFlusher{delay: 300 * time.Millisecond}
		b := startBatcher(t, f, 100*time.Millisecond, 1_000_000)
		start := time.Now()
		var wg sync.WaitGroup
		// 100 writes at once, then 100 more while the first flush runs:
		// the second group is flushed as soon as the first flush ends.
		for range 100 {
			wg.Go(func() {
				if err := b.write(t.Context(), req(3)); err != nil {
					t.Errorf("write: %v", err)
				}
			})
		}
		time.Sleep(150 * time.Millisecond) // fake time: the first flush is running
		for range 100 {
			wg.Go(func() {
				if err := b.write(t.Context(), req(3)); err != nil {
					t.Errorf("write: %v", err)
				}
			})
		}
		wg.Wait()
		if got := f.sizes(); len(got) != 2 || got[0] != 100 || got[1] != 100 {
			t.Errorf("flush sizes = %v, want [100 100]", got)
		}
		if f.maxIn != 1 {
			t.Errorf("%d flushes in flight at once, want 1", f.maxIn)
		}
		// The first group waits its interval (100ms); the second, 250ms old
		// when the first flush ends at 400ms, is flushed right then.
		if got := []time.Duration{f.at[0].Sub(start), f.at[1].Sub(start)}; got[0] != 100*time.Millisecond || got[1] != 400*time.Millisecond {
			t.Errorf("flushes at %v, want [100ms 400ms]", got)
		}
	})
}

func TestBatcherFlushesFullBatchAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFlusher{}
		b := startBatcher(t, f, time.Hour, 10)
		start := time.Now()
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				if err := b.write(t.Context(), req(4)); err != nil {
					t.Errorf("write: %v", err)
				}
			})
		}
		synctest.Wait()
		// 5×4 rows with at most 10 a batch: [4 4] [4 4] are full and
		// flushed at once; the last [4] waits for its interval.
		if got := f.sizes(); len(got) != 2 || got[0] != 2 || got[1] != 2 {
			t.Errorf("flush sizes = %v, want [2 2]", got)
		}
		if time.Since(start) != 0 {
			t.Errorf("full batches waited %v", time.Since(start))
		}
		wg.Wait()
		if got := f.sizes(); len(got) != 3 {
			t.Errorf("flush sizes = %v, want 3 flushes", got)
		}
		if got := time.Since(start); got != time.Hour {
			t.Errorf("last write took %v, want the interval", got)
		}
	})
}

func TestBatcherSharesFlushError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		f := &fakeFlusher{err: boom}
		b := startBatcher(t, f, 10*time.Millisecond, 1000)
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if err := b.write(t.Context(), req(1)); !errors.Is(err, boom) {
					t.Errorf("write = %v, want %v", err, boom)
				}
			})
		}
		wg.Wait()
		if got := f.sizes(); len(got) != 1 {
			t.Errorf("flush sizes = %v, want one flush", got)
		}
	})
}

func TestBatcherDropsCanceledWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFlusher{}
		b := startBatcher(t, f, 100*time.Millisecond, 1000)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		canceled, kept := req(1), req(1)
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := b.write(ctx, canceled); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("canceled write = %v, want deadline exceeded", err)
			}
		})
		wg.Go(func() {
			if err := b.write(t.Context(), kept); err != nil {
				t.Errorf("write: %v", err)
			}
		})
		wg.Wait()
		if len(f.flushes) != 1 || len(f.flushes[0]) != 1 || f.flushes[0][0] != kept {
			t.Errorf("flushed %v, want only the write that was not canceled", f.sizes())
		}
	})
}

func TestBatcherCloseFlushesPending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFlusher{}
		b := newBatcher(time.Hour, 1000, time.Minute, f.flush)
		go b.run()
		done := make(chan error)
		go func() { done <- b.write(t.Context(), req(1)) }()
		synctest.Wait() // the write is queued, waiting for its interval
		b.close()
		if err := <-done; err != nil {
			t.Errorf("pending write = %v, want it flushed by close", err)
		}
		if err := b.write(t.Context(), req(1)); !errors.Is(err, errClosed) {
			t.Errorf("write after close = %v, want %v", err, errClosed)
		}
	})
}

// TestGatherKeepsRowsForARetry: a flush gathers its requests' rows once,
// and lets each request's own copy go; a second try of the flush (after a
// broken connection, flushGroup) gathers every row again, in order.
func TestGatherKeepsRowsForARetry(t *testing.T) {
	var reqs []*request
	var want rowSet
	for i := range 3 {
		r := rowSet{
			incidents: []incidentRow{{id: fmt.Sprint("inc-", i)}},
			alerts:    []alertRow{{fingerprint: fmt.Sprint("a", i)}, {fingerprint: fmt.Sprint("b", i)}},
			events:    []eventRow{{id: fmt.Sprint("ev-", i)}},
		}
		want.incidents = append(want.incidents, r.incidents...)
		want.alerts = append(want.alerts, r.alerts...)
		want.events = append(want.events, r.events...)
		reqs = append(reqs, &request{rows: r})
	}
	for try := range 2 {
		got := gather(reqs)
		if !reflect.DeepEqual(got.incidents, want.incidents) || !reflect.DeepEqual(got.alerts, want.alerts) || !reflect.DeepEqual(got.events, want.events) {
			t.Errorf("try %d gathered %+v, want %+v", try+1, got, want)
		}
		for i, r := range reqs[1:] {
			if r.rows.len() != 0 {
				t.Errorf("try %d: request %d still holds %d rows of its own", try+1, i+2, r.rows.len())
			}
		}
	}
}
