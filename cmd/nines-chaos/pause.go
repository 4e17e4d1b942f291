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
	"syscall"
	"time"

	"github.com/ninesops/nines/chat/slacktest"
)

// The paused-leader test: two nines replicas post to a fake Slack while
// new incidents keep coming; the chat leader is stopped (SIGSTOP, as a
// long GC pause, a frozen VM or a CPU-throttled container would stop it)
// for longer than its lease, so that the other replica takes over, then
// continued (SIGCONT). Every incident must end up with exactly one main
// message in the operations channel.

type pauseConfig struct {
	common
	pause   time.Duration
	pauses  int
	rate    float64
	latency time.Duration
}

func parsePause(args []string, out io.Writer) (pauseConfig, error) {
	fs := flag.NewFlagSet("nines-chaos pause", flag.ContinueOnError)
	fs.SetOutput(out)
	var c pauseConfig
	c.register(fs)
	fs.DurationVar(&c.pause, "pause", 24*time.Second, "how long the chat leader is stopped each time (longer than the 15s lease)")
	fs.IntVar(&c.pauses, "pauses", 3, "how many times the leader is stopped")
	fs.Float64Var(&c.rate, "rate", 2, "new incidents per second while the test runs")
	fs.DurationVar(&c.latency, "slack.latency", 150*time.Millisecond, "how long each call to the fake Slack takes")
	return c, fs.Parse(args)
}

func runPause(ctx context.Context, c pauseConfig, out io.Writer) (err error) {
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	if c.pauses < 1 || c.rate <= 0 {
		return errors.New("--pauses must be at least 1 and --rate positive")
	}
	e, err := setup(ctx, c.common, out, "slack.token-file")
	if err != nil {
		return err
	}
	defer func() { e.teardown(err != nil) }()

	fake, slackArgs, closeSlack, err := e.fakeSlack()
	if err != nil {
		return err
	}
	defer closeSlack()
	fake.SetLatency(c.latency)
	var replicas []*replica
	defer func() {
		for _, r := range replicas {
			took, serr := r.stop(20 * time.Second)
			fmt.Fprintf(out, "replica %s: SIGTERM → exited in %s, %v\n", r.name, took.Round(time.Millisecond), exitStatus(serr))
			if serr != nil && err == nil {
				err = fmt.Errorf("replica %s: %w", r.name, serr)
			}
		}
	}()
	// a starts first: it is the older replica, so it leads, and leads
	// again whenever it runs.
	for _, name := range []string{"a", "b"} {
		r, err := newReplica(name, e.bin, e.work, e.replicaArgs(name, slackArgs...), e.ports)
		if err != nil {
			return err
		}
		if err := r.start(ctx); err != nil {
			return err
		}
		replicas = append(replicas, r)
		if name == "a" {
			if err := waitMetric(ctx, r, "nines_chat_leader", 1, 30*time.Second); err != nil {
				return err
			}
		}
	}
	a, b := replicas[0], replicas[1]
	fmt.Fprintf(out, "pause: seed %d, %.1f new incidents/s, chat leader stopped %d× for %s, Slack calls take %s\n",
		c.seed, c.rate, c.pauses, c.pause, c.latency)

	// New incidents, each its own group, to b (a stopped replica
	// answers nothing, as Alertmanager would find).
	var (
		counts  counts
		wg      sync.WaitGroup
		client  = &http.Client{Timeout: 30 * time.Second}
		streamC = make(chan struct{})
	)
	s := &sender{r: b, token: e.token, client: client, c: &counts, acked: func(*note) {}}
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	wg.Go(func() {
		t := time.NewTicker(time.Duration(float64(time.Second) / c.rate))
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-streamC:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			g := &group{name: fmt.Sprintf("Paused%05d", i), service: "pause"}
			g.key = fmt.Sprintf(`{}:{alertname=%q}`, g.name)
			labels := map[string]string{"alertname": g.name, "service": g.service, "severity": "critical", "instance": "host-1"}
			o := &occ{fp: fingerprint(labels), labels: labels, start: base.Add(time.Duration(i) * time.Second)}
			n := &note{group: g, firing: []*occ{o}}
			n.body = webhookBody(g, n)
			s.post(ctx, n)
		}
	})

	rng := rand.New(rand.NewPCG(c.seed, 13))
	var faultLog []string
	began := time.Now()
	resumed := began
	for i := range c.pauses {
		// Stop the leader at a random moment of its work.
		if !sleepUntil(ctx, time.Now().Add(3*time.Second+time.Duration(rng.Int64N(int64(3*time.Second))))) {
			return ctx.Err()
		}
		before := len(fake.Messages("#operations"))
		if err := syscall.Kill(a.pid(), syscall.SIGSTOP); err != nil {
			return err
		}
		at := time.Since(began)
		if !sleepUntil(ctx, time.Now().Add(c.pause)) {
			_ = syscall.Kill(a.pid(), syscall.SIGCONT)
			return ctx.Err()
		}
		during := len(fake.Messages("#operations")) - before
		bLed, _ := b.metric("nines_chat_leader")
		if err := syscall.Kill(a.pid(), syscall.SIGCONT); err != nil {
			return err
		}
		resumed = time.Now()
		faultLog = append(faultLog, fmt.Sprintf("pause %d: leader a stopped at +%s for %s; %d messages posted meanwhile; b leading at the end: %v",
			i+1, at.Round(time.Second), c.pause, during, bLed == 1))
		if err := waitMetric(ctx, b, "nines_chat_leader", 0, 30*time.Second); err != nil {
			return fmt.Errorf("after pause %d: %w", i+1, err)
		}
	}
	close(streamC)
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// Let the leader catch up, past the intent grace period (30s), so
	// that any post left to a look-up has been settled.
	want := int(counts.acked.Load())
	twice, missing := chatCheck(ctx, out, fake, want, resumed)
	for _, f := range faultLog {
		fmt.Fprintln(out, "fault:", f)
	}
	fmt.Fprintf(out, "incidents opened %d (notifications rejected %d)\n", want, counts.rejected.Load())
	if twice > 0 || missing > 0 || counts.rejected.Load() > 0 {
		fmt.Fprintln(out, "FAIL")
		return fmt.Errorf("paused-leader test failed: %d incidents posted more than once, %d missing", twice, missing)
	}
	fmt.Fprintln(out, "PASS")
	return nil
}

func distinctIncidents(msgs []slacktest.Message) int {
	seen := map[any]bool{}
	for _, m := range msgs {
		if m.Metadata != nil {
			seen[m.Metadata.EventPayload["incident_id"]] = true
		}
	}
	return len(seen)
}

// waitMetric waits until a replica's metric has the value.
func waitMetric(ctx context.Context, r *replica, name string, want float64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if v, err := r.metric(name); err == nil && v == want {
			return nil
		}
		if time.Now().After(deadline) {
			v, err := r.metric(name)
			return fmt.Errorf("replica %s: %s is %v (%v), want %v after %s", r.name, name, v, err, want, timeout)
		}
		if !sleepUntil(ctx, time.Now().Add(100*time.Millisecond)) {
			return ctx.Err()
		}
	}
}
