package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// counts are what the senders saw.
type counts struct {
	sent      atomic.Int64 // notifications to deliver (per replica, duplicates included)
	acked     atomic.Int64 // answered 2xx
	retries5  atomic.Int64 // 5xx answers, retried
	retriesTx atomic.Int64 // transport errors (replica down), retried
	rejected  atomic.Int64 // 4xx answers: never retried, a bug
	latencies latencies
}

// summary says what the senders saw, in one line.
func (c *counts) summary() string {
	return fmt.Sprintf("notifications sent %d, acknowledged (2xx) %d, retried %d (5xx %d, refused connections %d), rejected (4xx) %d",
		c.sent.Load(), c.acked.Load(), c.retries5.Load()+c.retriesTx.Load(),
		c.retries5.Load(), c.retriesTx.Load(), c.rejected.Load())
}

// latencies collects request durations for percentiles.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// take returns the durations collected since the last take.
func (l *latencies) take() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.d
	l.d = nil
	return d
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// sender posts notifications to one replica the way Alertmanager does: one
// at a time per group, retrying 5xx answers and transport errors with
// back-off until they are accepted, never 4xx ones.
type sender struct {
	r      *replica
	token  string
	client *http.Client
	c      *counts
	// acked records the notifications a replica answered 2xx.
	acked func(*note)
}

// post delivers one notification; it returns false if ctx ended first.
func (s *sender) post(ctx context.Context, n *note) bool {
	s.c.sent.Add(1)
	backoff := 50 * time.Millisecond
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.r.base+"/api/v1/alerts", bytes.NewReader(n.body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+s.token)
		began := time.Now()
		resp, err := s.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode/100 == 2:
				s.c.latencies.add(time.Since(began))
				s.c.acked.Add(1)
				s.acked(n)
				return true
			case resp.StatusCode/100 == 4:
				s.c.rejected.Add(1)
				return true
			}
			s.c.retries5.Add(1)
		} else {
			if ctx.Err() != nil {
				return false
			}
			s.c.retriesTx.Add(1)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// deliver sends each group's notifications in order (per replica, per
// group, in parallel), spread evenly over window.
func (s *sender) deliver(ctx context.Context, perGroup [][]*note, window time.Duration) {
	var wg sync.WaitGroup
	start := time.Now()
	for _, notes := range perGroup {
		wg.Go(func() {
			for i, n := range notes {
				at := start.Add(time.Duration(float64(window) * float64(i) / float64(len(notes))))
				if d := time.Until(at); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-ctx.Done():
						t.Stop()
						return
					case <-t.C:
					}
				}
				if !s.post(ctx, n) {
					return
				}
			}
		})
	}
	wg.Wait()
}
