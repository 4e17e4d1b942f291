package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ninesops/nines/cmd/internal/harness"
)

// The soak test: one nines, a steady rate of notifications from a fixed
// pool of groups that go through episode after episode (so incidents keep
// opening and resolving, mostly repeats, as Alertmanager sends them), and
// samples of memory, goroutines and latency at the start (after a warm-up),
// the middle and the end. Memory and goroutines must stay flat: nothing in
// nines may grow with the number of notifications or incidents handled.

type soakConfig struct {
	common
	duration time.Duration
	rate     float64
	groups   int
	workers  int
	assert   bool
}

func parseSoak(args []string, out io.Writer) (soakConfig, error) {
	fs := flag.NewFlagSet("nines-chaos soak", flag.ContinueOnError)
	fs.SetOutput(out)
	var c soakConfig
	c.register(fs)
	fs.DurationVar(&c.duration, "duration", 10*time.Minute, "how long to run")
	fs.Float64Var(&c.rate, "rate", 200, "notifications per second")
	fs.IntVar(&c.groups, "groups", 500, "Alertmanager groups cycling through episodes")
	fs.IntVar(&c.workers, "workers", 32, "concurrent senders")
	fs.BoolVar(&c.assert, "assert", true, "fail unless memory and goroutines stay flat and latency bounded")
	return c, fs.Parse(args)
}

// sample is one measurement of the process.
type sample struct {
	at         time.Duration
	rss, heap  float64
	goroutines float64
	p50, p99   time.Duration
	requests   int
}

func (s sample) String() string {
	return fmt.Sprintf("+%-7s RSS %6.1f MiB  heap %6.1f MiB  goroutines %4.0f  latency p50 %-8s p99 %-8s (%d requests)",
		s.at.Round(time.Second), s.rss/(1<<20), s.heap/(1<<20), s.goroutines, s.p50.Round(100*time.Microsecond), s.p99.Round(100*time.Microsecond), s.requests)
}

// flat checks growth. Memory is compared from the middle to the end of
// the load: what grows without bound shows there, after caches and pools
// have filled. Goroutines are compared idle, before and after the load
// (with the client's connections closed): under load their number follows
// the requests in flight, not leaks.
func flat(idleBefore, mid, end, idleAfter sample) error {
	var errs []error
	if idleAfter.goroutines > idleBefore.goroutines+10 {
		errs = append(errs, fmt.Errorf("idle goroutines grew from %.0f to %.0f", idleBefore.goroutines, idleAfter.goroutines))
	}
	if end.heap > 1.5*mid.heap+16<<20 {
		errs = append(errs, fmt.Errorf("heap grew from %.1f to %.1f MiB", mid.heap/(1<<20), end.heap/(1<<20)))
	}
	if end.rss > 1.5*mid.rss+32<<20 {
		errs = append(errs, fmt.Errorf("RSS grew from %.1f to %.1f MiB", mid.rss/(1<<20), end.rss/(1<<20)))
	}
	if end.p99 > 5*time.Second {
		errs = append(errs, fmt.Errorf("p99 latency %s over 5s", end.p99))
	}
	return errors.Join(errs...)
}

// feed produces a group's notifications forever: episode after episode.
type feed struct {
	rng   *rand.Rand
	g     *group
	next  time.Time
	queue []*note
}

func (f *feed) pop() *note {
	if len(f.queue) == 0 {
		ep := genEpisode(f.rng, f.g, f.next, false)
		f.queue = ep.notes
		f.next = ep.resolvedAt().Add(2 * time.Hour)
	}
	n := f.queue[0]
	f.queue = f.queue[1:]
	return n
}

func runSoak(ctx context.Context, c soakConfig, out io.Writer) (err error) {
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	e, err := setup(ctx, c.common, out)
	if err != nil {
		return err
	}
	defer func() { e.teardown(err != nil) }()
	r, err := newReplica("soak", e.bin, e.work, e.replicaArgs("soak"), e.ports)
	if err != nil {
		return err
	}
	if err := r.start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "soak: seed %d, %.0f notifications/s for %s from %d groups\n", c.seed, c.rate, c.duration, c.groups)

	rng := rand.New(rand.NewPCG(c.seed, 11))
	base := time.Now().Add(-30 * 24 * time.Hour).Truncate(time.Second)
	feeds := make([]*feed, c.groups)
	for i := range feeds {
		g := &group{name: fmt.Sprintf("Soak%04d", i), service: fmt.Sprintf("svc-%02d", i%23)}
		g.key = fmt.Sprintf(`{}:{alertname=%q, service=%q}`, g.name, g.service)
		feeds[i] = &feed{rng: rand.New(rand.NewPCG(c.seed, uint64(i))), g: g, next: base.Add(time.Duration(rng.IntN(3600)) * time.Second)}
	}
	var (
		counts counts
		failed atomic.Int64
		behind atomic.Int64
		work   = make(chan *note, c.workers*4)
		wg     sync.WaitGroup
		client = &http.Client{Timeout: 30 * time.Second}
	)
	s := &sender{r: r, token: e.token, client: client, c: &counts, acked: func(*note) {}}
	for range c.workers {
		wg.Go(func() {
			for n := range work {
				if !s.post(ctx, n) {
					failed.Add(1)
				}
			}
		})
	}
	measure := func(at time.Duration) (sample, error) {
		sm := sample{at: at}
		rs, err := harness.RSS(r.pid())
		if err != nil {
			return sm, err
		}
		sm.rss = float64(rs)
		if sm.heap, err = r.metric("go_memstats_heap_inuse_bytes"); err != nil {
			return sm, err
		}
		if sm.goroutines, err = r.metric("go_goroutines"); err != nil {
			return sm, err
		}
		lat := counts.latencies.take()
		sm.p50, sm.p99, sm.requests = percentile(lat, 0.5), percentile(lat, 0.99), len(lat)
		return sm, nil
	}

	// Idle, before the load (after one notification has warmed nines up).
	if !s.post(ctx, feeds[0].pop()) {
		return ctx.Err()
	}
	client.CloseIdleConnections()
	time.Sleep(time.Second)
	idleBefore, err := measure(0)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "idle   ", idleBefore)

	began := time.Now()
	interval := time.Duration(float64(time.Second) / c.rate)
	tick := time.NewTicker(interval)
	var samples []sample
	marks := []time.Duration{c.duration / 10, c.duration / 2, c.duration}
	next := 0
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			close(work)
			wg.Wait()
			return ctx.Err()
		case <-tick.C:
		}
		el := time.Since(began)
		if next < len(marks) && el >= marks[next] {
			sm, err := measure(el)
			if err != nil {
				close(work)
				wg.Wait()
				return err
			}
			samples = append(samples, sm)
			fmt.Fprintln(out, "load   ", sm)
			next++
			if next == len(marks) {
				break
			}
		}
		select {
		case work <- feeds[i%len(feeds)].pop():
		default:
			behind.Add(1) // nines (or this machine) cannot keep the rate
		}
	}
	tick.Stop()
	close(work)
	wg.Wait()
	client.CloseIdleConnections()
	// Idle means the deriver too has applied what was answered (it may
	// lag the webhook under load: that is its job).
	synced := time.Now()
	if err := harness.Sync(ctx, &http.Client{Timeout: 30 * time.Second}, r.base, e.apiToken, 3*time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(out, "the deriver had applied everything %s after the load ended\n", time.Since(synced).Round(100*time.Millisecond))
	time.Sleep(time.Second)
	idleAfter, err := measure(time.Since(began))
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "idle   ", idleAfter)
	took, stopErr := r.stop(30 * time.Second)
	fmt.Fprintf(out, "sent %d, acknowledged %d, retried %d, rejected %d, dropped by the sender for being behind %d\n",
		counts.sent.Load(), counts.acked.Load(), counts.retries5.Load()+counts.retriesTx.Load(), counts.rejected.Load(), behind.Load())
	fmt.Fprintf(out, "SIGTERM → exited in %s, %s\n", took.Round(time.Millisecond), exitStatus(stopErr))
	if stopErr != nil {
		return stopErr
	}
	if counts.rejected.Load() > 0 {
		return fmt.Errorf("%d notifications rejected", counts.rejected.Load())
	}
	if c.assert {
		if err := flat(idleBefore, samples[1], samples[2], idleAfter); err != nil {
			fmt.Fprintln(out, "FAIL")
			return err
		}
	}
	fmt.Fprintln(out, "PASS")
	return nil
}
