package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target is where a load run sends the script: the body of each step and
// the request to send it with.
type target struct {
	name string
	url  string
	body func(*step) []byte
	// header is added to every request.
	header http.Header
	// answered, if set, hears of every 2xx answer as it comes.
	answered func(s *step, at time.Time)
}

// loadResult is what a load run measured.
type loadResult struct {
	sent      int             // requests that got an answer or failed
	ok        int             // 2xx answers
	okAlerts  int             // alerts in the notifications answered 2xx
	non2xx    int             // other answers
	transport int             // requests that got no answer
	codes     map[int]int     // answers by status, 2xx included
	lat       []time.Duration // latencies of 2xx answers, sorted
	elapsed   time.Duration   // first send to last answer
	late      int             // fixed rate: sends more than 10 ms behind schedule
	firstErr  string          // first failure, for the report
}

func (r *loadResult) perSecond(n int) float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(n) / r.elapsed.Seconds()
}

// quantile returns the q-quantile of the 2xx latencies (nearest rank).
func (r *loadResult) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(q*float64(len(r.lat))+0.5) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

func (r *loadResult) max() time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[len(r.lat)-1]
}

// newClient returns an HTTP client that keeps a connection per worker.
func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns:        conns + 16,
			MaxIdleConnsPerHost: conns + 16,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
		},
		Timeout: 60 * time.Second,
	}
}

// loadOptions say how fast to send.
type loadOptions struct {
	Concurrency int     // closed loop: requests in flight (rate 0)
	Rate        float64 // open loop: notifications per second; 0 = as fast as answers come
	Duration    time.Duration
}

// drive sends the steps of w to t, in order, with each group's steps one
// after the other (a step is sent only once its group's previous step was
// answered, as Alertmanager does for one group). With a rate it sends on a
// fixed schedule for at most Duration (open loop); without, Concurrency
// workers send as fast as answers come (closed loop).
func drive(ctx context.Context, client *http.Client, t target, w *workload, o loadOptions) *loadResult {
	steps := w.steps
	if o.Rate > 0 && o.Duration > 0 {
		if n := int(o.Rate * o.Duration.Seconds()); n < len(steps) {
			steps = steps[:n]
		}
	}
	done := make([]chan struct{}, len(steps))
	for i := range done {
		done[i] = make(chan struct{})
	}
	var (
		mu  sync.Mutex
		res = &loadResult{codes: map[int]int{}}
	)
	record := func(s *step, code int, err error, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		res.sent++
		switch {
		case err != nil:
			res.transport++
			if res.firstErr == "" {
				res.firstErr = err.Error()
			}
		case code/100 == 2:
			res.codes[code]++
			res.ok++
			res.okAlerts += s.alerts
			res.lat = append(res.lat, d)
		default:
			res.codes[code]++
			res.non2xx++
			if res.firstErr == "" {
				res.firstErr = fmt.Sprintf("HTTP %d", code)
			}
		}
	}
	one := func(i int) {
		s := &steps[i]
		if s.prev >= 0 && s.prev < len(done) {
			select {
			case <-done[s.prev]:
			case <-ctx.Done():
				return
			}
		}
		code, d, err := post(ctx, client, t, s)
		record(s, code, err, d)
		if err == nil && code/100 == 2 && t.answered != nil {
			t.answered(s, time.Now())
		}
		close(done[i])
	}

	start := time.Now()
	var wg sync.WaitGroup
	if o.Rate > 0 {
		interval := time.Duration(float64(time.Second) / o.Rate)
		for i := range steps {
			at := start.Add(time.Duration(i) * interval)
			if wait := time.Until(at); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
				}
			} else if wait < -10*time.Millisecond {
				mu.Lock()
				res.late++
				mu.Unlock()
			}
			if ctx.Err() != nil {
				break
			}
			wg.Go(func() { one(i) })
		}
	} else {
		var next atomic.Int64
		for range max(o.Concurrency, 1) {
			wg.Go(func() {
				for ctx.Err() == nil {
					i := int(next.Add(1)) - 1
					if i >= len(steps) {
						return
					}
					one(i)
				}
			})
		}
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.lat)
	return res
}

// post sends one step and reads the whole answer.
func post(ctx context.Context, client *http.Client, t target, s *step) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(t.body(s)))
	if err != nil {
		return 0, 0, err
	}
	for k, v := range t.header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, time.Since(start), err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start), err
}
