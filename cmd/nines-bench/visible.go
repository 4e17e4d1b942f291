package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// visibility measures, for a sample of notifications, the time from
// nines' 2xx answer to the moment GET /api/v1/incidents/{id} shows what
// the notification says: the incident exists with all the group's alerts
// and no more of them firing than the notification has. A group's alerts
// only ever resolve in the scripts, so a later notification of the group
// showing instead counts too (it was sent after this one's answer, and
// can only be visible once this one is applied). Repeats change nothing
// visible and are not sampled.
type visibility struct {
	client  *http.Client
	base    string
	every   int           // sample one notification in every
	poll    time.Duration // between two GETs of one sample
	timeout time.Duration // a sample not visible by then counts as a timeout

	wg       sync.WaitGroup
	mu       sync.Mutex
	seen     int
	lat      []time.Duration
	timeouts int
	errs     int
	firstErr string
}

func newVisibility(client *http.Client, base string, every int) *visibility {
	return &visibility{client: client, base: base, every: every, poll: 100 * time.Millisecond, timeout: 30 * time.Second}
}

// sample decides whether the notification s, answered 2xx at answered,
// is sampled, and if so polls until it is visible.
func (v *visibility) sample(ctx context.Context, w *workload, s *step, answered time.Time) {
	if s.kind == stepRepeat {
		return
	}
	v.mu.Lock()
	v.seen++
	take := v.seen%v.every == 0
	v.mu.Unlock()
	if !take {
		return
	}
	id := w.groups[s.group].id
	v.wg.Go(func() {
		deadline := answered.Add(v.timeout)
		for ctx.Err() == nil {
			ok, err := v.shows(ctx, id, s)
			if err != nil {
				v.fail(err)
				return
			}
			if ok {
				v.mu.Lock()
				v.lat = append(v.lat, time.Since(answered))
				v.mu.Unlock()
				return
			}
			if time.Now().After(deadline) {
				v.mu.Lock()
				v.timeouts++
				v.mu.Unlock()
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(v.poll):
			}
		}
	})
}

// shows reports whether the incident id reflects s.
func (v *visibility) shows(ctx context.Context, id string, s *step) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.base+"/api/v1/incidents/"+id, nil)
	if err != nil {
		return false, err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotFound:
		_, _ = io.Copy(io.Discard, resp.Body)
		return false, nil
	case http.StatusOK:
	default:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Errorf("GET incident %s: HTTP %d: %s", id, resp.StatusCode, b)
	}
	var inc apiIncident
	if err := json.NewDecoder(resp.Body).Decode(&inc); err != nil {
		return false, fmt.Errorf("GET incident %s: %w", id, err)
	}
	return reflects(inc, s), nil
}

// reflects reports whether inc shows s (or a later notification of its
// group): all its alerts, and no more of them firing.
func reflects(inc apiIncident, s *step) bool {
	firing := 0
	for _, a := range inc.Alerts {
		if a.Status == "firing" {
			firing++
		}
	}
	return len(inc.Alerts) == s.alerts && firing <= s.firing
}

func (v *visibility) fail(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.errs++
	if v.firstErr == "" {
		v.firstErr = err.Error()
	}
}

// visibleResult is what the samples measured.
type visibleResult struct {
	lat      []time.Duration // sorted
	timeouts int
	errs     int
	firstErr string
	timeout  time.Duration
}

// result waits for the samples still polling and returns their figures.
func (v *visibility) result() *visibleResult {
	v.wg.Wait()
	v.mu.Lock()
	defer v.mu.Unlock()
	slices.Sort(v.lat)
	return &visibleResult{lat: v.lat, timeouts: v.timeouts, errs: v.errs, firstErr: v.firstErr, timeout: v.timeout}
}

// quantile is the q-quantile (nearest rank) of the samples, those never
// visible counted as taking the timeout (a lower bound for them).
func (r *visibleResult) quantile(q float64) time.Duration {
	all := slices.Clone(r.lat)
	for range r.timeouts {
		all = append(all, r.timeout)
	}
	if len(all) == 0 {
		return 0
	}
	slices.Sort(all)
	i := int(q*float64(len(all))+0.5) - 1
	return all[min(max(i, 0), len(all)-1)]
}

func (r *visibleResult) p99() time.Duration { return r.quantile(0.99) }

func (r *visibleResult) String() string {
	n := len(r.lat)
	if n == 0 {
		return fmt.Sprintf("no sample visible (%d timeouts after %v, %d errors: %s)", r.timeouts, r.timeout, r.errs, r.firstErr)
	}
	s := fmt.Sprintf("2xx to visible in GET /api/v1/incidents/{id}: p50 %s, p99 %s, max %s over %d sampled notifications",
		ms(r.quantile(0.5)), ms(r.p99()), ms(max(r.lat[n-1], r.quantile(1))), n+r.timeouts)
	if r.timeouts > 0 {
		s += fmt.Sprintf(", %d not visible within %v (counted as %v)", r.timeouts, r.timeout, r.timeout)
	}
	if r.errs > 0 {
		s += fmt.Sprintf(", %d errors (first: %s)", r.errs, r.firstErr)
	}
	return s
}
