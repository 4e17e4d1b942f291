package chstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ninesops/nines/fault"
)

func TestRateMeter(t *testing.T) {
	t.Parallel()
	var m rateMeter
	now := time.Date(2026, 11, 22, 17, 0, 0, 0, time.UTC)
	// 500 events every 50 ms: 10,000 a second.
	for range 200 {
		m.add(now, 500)
		now = now.Add(50 * time.Millisecond)
	}
	if got := m.perSecond(now); math.Abs(got-10000) > 500 {
		t.Errorf("rate after 10 s at 10,000/s = %.0f", got)
	}
	// Nothing for 5 s (five time constants): almost forgotten.
	now = now.Add(5 * time.Second)
	if got := m.perSecond(now); got > 100 {
		t.Errorf("rate 5 s after the last event = %.0f, want near 0", got)
	}
}

func TestBatcherLinger(t *testing.T) {
	t.Parallel()
	b := newBatcher(10*time.Millisecond, 1_000_000, time.Minute, nil)
	b.adapt(time.Second, 20000)
	now := time.Date(2026, 11, 22, 17, 0, 0, 0, time.UTC)
	tests := []struct {
		rate float64
		want time.Duration
	}{
		{0, 10 * time.Millisecond},
		{5000, 10 * time.Millisecond},
		{10000, 10 * time.Millisecond},
		{14142, 100 * time.Millisecond}, // halfway (in logarithms)
		{20000, time.Second},
		{100000, time.Second},
	}
	for _, tc := range tests {
		b.rate = rateMeter{rate: tc.rate, at: now}
		got := b.linger(now)
		if math.Abs(float64(got-tc.want)) > float64(tc.want)/100 {
			t.Errorf("linger at %.0f rows/s = %v, want %v", tc.rate, got, tc.want)
		}
	}
	// Without adapt, the linger is fixed.
	fixed := newBatcher(50*time.Millisecond, 1000, time.Minute, nil)
	fixed.rate = rateMeter{rate: 1e6, at: now}
	if got := fixed.linger(now); got != 50*time.Millisecond {
		t.Errorf("fixed linger = %v, want 50ms", got)
	}
}

// Under a storm the batcher makes about one flush per maxInterval; once
// the storm is over, a lone write waits only the light-load interval.
func TestBatcherAdaptsToLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFlusher{delay: 20 * time.Millisecond}
		b := newBatcher(10*time.Millisecond, 1_000_000, time.Minute, f.flush)
		b.adapt(time.Second, 10000)
		go b.run()
		defer b.close()

		// 50,000 rows/s for 5 s: 100 rows every 2 ms, each write waited
		// for by its own goroutine, as concurrent HTTP requests do.
		var wg sync.WaitGroup
		for range 2500 {
			wg.Go(func() {
				if err := b.write(t.Context(), req(100)); err != nil {
					t.Errorf("write: %v", err)
				}
			})
			time.Sleep(2 * time.Millisecond)
		}
		wg.Wait()
		f.mu.Lock()
		at := append([]time.Time(nil), f.at...)
		f.mu.Unlock()
		// After the rate has built up (about a second), flushes are a
		// second apart.
		var late []time.Duration
		for i := 1; i < len(at); i++ {
			if at[i].Sub(at[0]) > 2*time.Second {
				late = append(late, at[i].Sub(at[i-1]))
			}
		}
		if len(late) == 0 {
			t.Fatalf("no flushes after 2 s: %v", at)
		}
		for _, d := range late {
			if d < 900*time.Millisecond || d > 1100*time.Millisecond {
				t.Errorf("flushes under load %v apart, want about 1s (all gaps: %v)", d, late)
				break
			}
		}
		t.Logf("%d flushes, gaps after 2 s: %v", len(at), late)
		if len(at) > 12 {
			t.Errorf("%d flushes for a 5 s storm, want about one a second", len(at))
		}

		// Quiet for 10 s, then one write: it waits the light-load linger
		// (plus the flush).
		time.Sleep(10 * time.Second)
		start := time.Now()
		if err := b.write(t.Context(), req(1)); err != nil {
			t.Fatalf("write: %v", err)
		}
		if got := time.Since(start); got != 30*time.Millisecond {
			t.Errorf("lone write after the storm took %v, want 10ms linger + 20ms flush", got)
		}
	})
}

func TestBatcherRetriesBrokenConnectionOnce(t *testing.T) {
	broken := fmt.Errorf("insert: %w: %w", fault.ErrUnavailable, io.ErrUnexpectedEOF)
	tests := []struct {
		name      string
		errs      []error // what each flush attempt returns
		wantCalls int
		wantErr   error
	}{
		{"broken once", []error{broken, nil}, 2, nil},
		{"broken twice", []error{broken, broken}, 2, fault.ErrUnavailable},
		{"invalid", []error{fault.ErrInvalid}, 1, fault.ErrInvalid},
		{"closed", []error{errClosed}, 1, errClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				calls := 0
				b := newBatcher(time.Millisecond, 1000, time.Minute, func(context.Context, []*request) error {
					calls++
					return tc.errs[min(calls, len(tc.errs))-1]
				})
				go b.run()
				defer b.close()
				err := b.write(t.Context(), req(1))
				if (tc.wantErr == nil) != (err == nil) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
					t.Errorf("write = %v, want %v", err, tc.wantErr)
				}
				if calls != tc.wantCalls {
					t.Errorf("%d flush attempts, want %d", calls, tc.wantCalls)
				}
			})
		})
	}
}

// TestDeriverGivesWayToBusyWebhooks: the deriver's writes linger with the
// log's load, not their own. While webhooks log 2,000 notifications a
// second, a page of the deriver's writes waits about the busy linger (a
// second: few large INSERTs, CPU left to answer the webhooks); once they
// have stopped, however much the deriver itself writes to catch up, a page
// waits only the light-load linger.
func TestDeriverGivesWayToBusyWebhooks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logf := &fakeFlusher{delay: 5 * time.Millisecond}
		logb := newBatcher(10*time.Millisecond, 1_000_000, time.Minute, logf.flush)
		logb.adapt(time.Second, 20000)
		derf := &fakeFlusher{delay: 20 * time.Millisecond}
		der := newBatcher(10*time.Millisecond, 1_000_000, time.Minute, derf.flush)
		der.adapt(time.Second, busyLogRecords)
		der.follow(logb)
		go logb.run()
		go der.run()
		defer logb.close()
		defer der.close()

		// page writes 200 notifications' rows at once, as the deriver's
		// workers do, and returns how long the last one waited.
		page := func() time.Duration {
			start := time.Now()
			var wg sync.WaitGroup
			for range 200 {
				wg.Go(func() {
					if err := der.write(t.Context(), req(50)); err != nil {
						t.Errorf("write: %v", err)
					}
				})
			}
			wg.Wait()
			return time.Since(start)
		}
		// Webhooks: 2,000 notifications a second for 4 s, 10 every 5 ms.
		stop := make(chan struct{})
		var hooks sync.WaitGroup
		hooks.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				hooks.Go(func() { _ = logb.write(t.Context(), req(10)) })
				time.Sleep(5 * time.Millisecond)
			}
		})
		time.Sleep(2 * time.Second)
		busy := page()
		close(stop)
		hooks.Wait()
		if busy < 500*time.Millisecond {
			t.Errorf("a page while webhooks log 2,000/s waited %v, want about the busy linger (1s)", busy)
		}
		// The webhooks stopped: 3 s later the deriver catches up, pages
		// back to back (200,000 rows a second of its own).
		time.Sleep(3 * time.Second)
		for i := range 5 {
			if got := page(); got > 100*time.Millisecond {
				t.Errorf("page %d after the webhooks stopped waited %v, want the light-load linger (10ms) and the flush (20ms)", i, got)
			}
		}
	})
}
