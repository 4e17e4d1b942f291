// Command nines-chaos breaks nines on purpose and checks that it keeps its
// promises (docs/guarantees.md).
//
//	nines-chaos chaos [flags]   the fault test (make chaos)
//	nines-chaos pause [flags]   the paused-leader test (make chaos)
//	nines-chaos storm [flags]   the storm of new groups (make chaos)
//	nines-chaos deadletter [flags]  refused replays kept as dead letters (make chaos)
//	nines-chaos memory [flags]  many large notifications at once: memory bounded (make chaos)
//	nines-chaos cluster [flags] ClickHouse server 1 of a replicated cluster killed mid-stream (make chaos)
//	nines-chaos soak [flags]    the soak test (make soak)
//
// The fault test starts a private ClickHouse and two nines replicas as
// processes, replays a generated stream of Alertmanager notifications to
// both (in different orders, with duplicates, retrying 5xx answers and
// refused connections as Alertmanager does), stops ClickHouse for a while
// and kill -9s one replica once (then restarts it) in the middle, kill -9s
// the replica that derives incidents (the deriver lease's holder) two
// thirds of the way in, and at the end compares what the API shows with a model of the stream computed
// independently of nines' code. It fails unless nothing answered 2xx was
// lost or applied twice and every incident is as expected.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ninesops/nines/cmd/internal/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "nines-chaos:", err)
		os.Exit(1)
	}
}

// errSkip means the test cannot run here (what is missing is said).
var errSkip = errors.New("skipped")

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: nines-chaos chaos|pause|storm|deadletter|cluster|soak [flags]")
	}
	switch args[0] {
	case "chaos":
		cfg, err := parseChaos(args[1:], out)
		if err != nil {
			return err
		}
		return runChaos(ctx, cfg, out)
	case "pause":
		cfg, err := parsePause(args[1:], out)
		if err != nil {
			return err
		}
		return runPause(ctx, cfg, out)
	case "storm":
		cfg, err := parseStorm(args[1:], out)
		if err != nil {
			return err
		}
		return runStorm(ctx, cfg, out)
	case "deadletter":
		cfg, err := parseDeadLetter(args[1:], out)
		if err != nil {
			return err
		}
		return runDeadLetter(ctx, cfg, out)
	case "cluster":
		cfg, err := parseCluster(args[1:], out)
		if err != nil {
			return err
		}
		return runCluster(ctx, cfg, out)
	case "soak":
		cfg, err := parseSoak(args[1:], out)
		if err != nil {
			return err
		}
		return runSoak(ctx, cfg, out)
	case "memory":
		cfg, err := parseMemory(args[1:], out)
		if err != nil {
			return err
		}
		return runMemory(ctx, cfg, out)
	}
	return fmt.Errorf("unknown command %q: want chaos, pause, storm, deadletter, memory, cluster or soak", args[0])
}

// common are the flags both tests share.
type common struct {
	bin   string // nines binary; empty: build ./cmd/nines
	work  string // working directory; empty: a temporary one, removed after a pass
	seed  uint64
	ports string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.bin, "nines.bin", "", "nines binary to test (default: go build ./cmd/nines)")
	fs.StringVar(&c.work, "work.dir", "", "working directory for ClickHouse, spools and logs (default: a temporary one, kept on failure)")
	fs.Uint64Var(&c.seed, "seed", 0, "random seed (default: from the clock; printed)")
	fs.StringVar(&c.ports, "ports", "", "loopback ports to use, FROM-TO (default: any free ones)")
}

// streamFlags are those of a generated stream with an outage in it (the
// fault and cluster tests).
type streamFlags struct {
	groups, episodes int
	window, outage   time.Duration
}

func (s *streamFlags) register(fs *flag.FlagSet, outage string) {
	fs.IntVar(&s.groups, "groups", 60, "Alertmanager groups in the stream")
	fs.IntVar(&s.episodes, "episodes", 3, "most episodes (incidents) per group")
	fs.DurationVar(&s.window, "duration", 3*time.Minute, "how long the stream is spread over")
	fs.DurationVar(&s.outage, "outage", 30*time.Second, outage)
}

type chaosConfig struct {
	common
	streamFlags
	kill        bool
	killDeriver bool
}

func parseChaos(args []string, out io.Writer) (chaosConfig, error) {
	fs := flag.NewFlagSet("nines-chaos chaos", flag.ContinueOnError)
	fs.SetOutput(out)
	var c chaosConfig
	c.common.register(fs)
	c.streamFlags.register(fs, "how long ClickHouse is stopped, from a third of the way in")
	fs.BoolVar(&c.kill, "kill", true, "kill -9 one replica once, during the outage, and restart it")
	fs.BoolVar(&c.killDeriver, "kill-deriver", true, "kill -9 the replica that derives incidents (holds the deriver lease) two thirds of the way in, and restart it")
	return c, fs.Parse(args)
}

// env is what both tests set up: a working directory, a nines binary and
// a private ClickHouse.
type env struct {
	root, work, bin string
	ch              *harness.ClickHouse
	ports           *harness.Ports
	token, apiToken string
	out             io.Writer
	keep            bool
}

func setup(ctx context.Context, c common, out io.Writer, needFlags ...string) (_ *env, err error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return nil, err
	}
	p, err := harness.ParsePorts(c.ports)
	if err != nil {
		return nil, err
	}
	e := &env{root: root, work: c.work, bin: c.bin, out: out, keep: c.work != "", ports: p}
	if e.work == "" {
		if e.work, err = os.MkdirTemp("", "nines-chaos-"); err != nil {
			return nil, err
		}
	} else if err := os.MkdirAll(e.work, 0o700); err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if err == nil {
			return
		}
		if started {
			_ = e.ch.Stop(context.Background())
		}
		if !e.keep {
			_ = os.RemoveAll(e.work)
		}
	}()
	if e.bin == "" {
		fmt.Fprintln(out, "building nines…")
		if e.bin, err = buildNines(ctx, root, e.work); err != nil {
			return nil, err
		}
	}
	ok, err := hasFlags(ctx, e.bin, needFlags...)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s serve lacks --%s: wire cmd/nines/spoolwire.go into serve.go", errSkip, e.bin, strings.Join(needFlags, ", --"))
	}
	if _, err := os.Stat("/usr/sbin/clickhouse-server"); err != nil {
		return nil, fmt.Errorf("%w: clickhouse-server is not installed (make deps)", errSkip)
	}
	if e.ch, err = harness.NewClickHouse(root, filepath.Join(e.work, "clickhouse"), e.ports); err != nil {
		return nil, err
	}
	if err := e.ch.Start(ctx); err != nil {
		return nil, err
	}
	started = true
	e.token, e.apiToken = "chaos-webhook-token", "chaos-api-token"
	for name, v := range map[string]string{"webhook.token": e.token, "api.token": e.apiToken} {
		if err := os.WriteFile(filepath.Join(e.work, name), []byte(v+"\n"), 0o600); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// teardown stops ClickHouse and removes the working directory unless the
// test failed or it was given.
func (e *env) teardown(failed bool) {
	if err := e.ch.Stop(context.Background()); err != nil {
		fmt.Fprintln(e.out, err)
	}
	if failed || e.keep {
		fmt.Fprintln(e.out, "logs and data kept in", e.work)
		return
	}
	_ = os.RemoveAll(e.work)
}

func (e *env) replicaArgs(name string, extra ...string) []string {
	defaults := []string{
		"--clickhouse.dsn=clickhouse://" + e.ch.Addr() + "/chaos",
		"--storage.path=" + filepath.Join(e.work, "data-"+name),
		"--clickhouse.dial-timeout=1s", "--clickhouse.flush-interval=50ms",
		"--webhook.bearer-token-file=" + filepath.Join(e.work, "webhook.token"),
		"--api.token-file=" + filepath.Join(e.work, "api.token"),
		"--web.shutdown-timeout=15s", "--log.level=warn",
	}
	// A flag in extra replaces its default: nines refuses a flag twice.
	given := map[string]bool{}
	for _, a := range extra {
		name, _, _ := strings.Cut(a, "=")
		given[name] = true
	}
	var args []string
	for _, d := range defaults {
		if name, _, _ := strings.Cut(d, "="); !given[name] {
			args = append(args, d)
		}
	}
	return append(args, extra...)
}

func runChaos(ctx context.Context, c chaosConfig, out io.Writer) (err error) {
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	e, err := setup(ctx, c.common, out, "spool.dir")
	if err != nil {
		return err
	}
	defer func() { e.teardown(err != nil) }()

	// Both replicas post to one fake Slack: whichever leads, every
	// incident gets one main message.
	fake, slackArgs, closeSlack, err := e.fakeSlack()
	if err != nil {
		return err
	}
	defer closeSlack()

	var replicas []*replica
	for _, name := range []string{"a", "b"} {
		r, err := newReplica(name, e.bin, e.work, e.replicaArgs(name, append(slackArgs,
			"--spool.dir="+filepath.Join(e.work, "spool-"+name), "--spool.store-timeout=1s")...), e.ports)
		if err != nil {
			return err
		}
		if err := r.start(ctx); err != nil {
			return err
		}
		replicas = append(replicas, r)
	}
	a, b := replicas[0], replicas[1]

	rng := rand.New(rand.NewPCG(c.seed, 7))
	base := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	groups := genStream(rng, c.groups, c.episodes, base)
	var perA, perB [][]*note
	episodes, notes := 0, 0
	for _, g := range groups {
		perA = append(perA, order(rng, g, false))
		perB = append(perB, order(rng, g, true))
		episodes += len(g.episodes)
		for _, ep := range g.episodes {
			notes += len(ep.notes)
		}
	}
	fmt.Fprintf(out, "chaos: seed %d, %d groups, %d episodes, %d notifications to each of 2 replicas over %s\n",
		c.seed, len(groups), episodes, notes, c.window)

	var (
		counts  counts
		ackedMu sync.Mutex
		acked   = map[*note]bool{}
	)
	client := &http.Client{Timeout: 30 * time.Second}
	newSender := func(r *replica) *sender {
		return &sender{r: r, token: e.token, client: client, c: &counts, acked: func(n *note) {
			ackedMu.Lock()
			acked[n] = true
			ackedMu.Unlock()
		}}
	}

	// The faults, while the stream flows.
	began := time.Now()
	faults := make(chan error, 1)
	var (
		faultLog  []string
		lastFault time.Time // the last kill, after which chat must settle
	)
	go func() {
		faults <- func() error {
			// ClickHouse stops a third of the way in; while it is down,
			// with notifications in its spool, replica b is killed -9 and
			// restarted (it starts again once ClickHouse is back: nines
			// needs ClickHouse to start).
			if !sleepUntil(ctx, began.Add(c.window/3)) {
				return ctx.Err()
			}
			if c.outage > 0 {
				if err := e.ch.Stop(context.Background()); err != nil {
					return err
				}
				faultLog = append(faultLog, fmt.Sprintf("ClickHouse stopped at +%s for %s", time.Since(began).Round(time.Second), c.outage))
			}
			back := time.Now().Add(c.outage)
			var restarted chan error
			if c.kill {
				if !sleepUntil(ctx, time.Now().Add(c.outage*2/5)) {
					return ctx.Err()
				}
				spooled, _ := b.metric("nines_spool_records")
				at := time.Since(began)
				lastFault = time.Now()
				b.kill()
				restarted = make(chan error, 1)
				go func() {
					down := time.Now()
					for {
						err := b.start(ctx)
						if err == nil {
							faultLog = append(faultLog, fmt.Sprintf("replica b killed -9 at +%s with %.0f notifications spooled; up again %s later",
								at.Round(time.Second), spooled, time.Since(down).Round(100*time.Millisecond)))
							restarted <- nil
							return
						}
						if ctx.Err() != nil || time.Since(down) > 2*time.Minute {
							restarted <- err
							return
						}
						time.Sleep(500 * time.Millisecond)
					}
				}()
			}
			if c.outage > 0 {
				if !sleepUntil(ctx, back) {
					return ctx.Err()
				}
				if err := e.ch.Start(ctx); err != nil {
					return err
				}
			}
			if restarted != nil {
				if err := <-restarted; err != nil {
					return err
				}
			}
			if c.killDeriver {
				// The deriver dies mid-stream: the other replica takes
				// over its lease and goes on from the log.
				if !sleepUntil(ctx, began.Add(c.window*2/3)) {
					return ctx.Err()
				}
				var leader *replica
				for _, r := range replicas {
					if v, err := r.metric("nines_deriver_leader"); err == nil && v == 1 {
						leader = r
					}
				}
				if leader == nil {
					faultLog = append(faultLog, "no replica held the deriver lease at +"+time.Since(began).Round(time.Second).String()+": none killed")
					return nil
				}
				at := time.Since(began)
				lastFault = time.Now()
				leader.kill()
				down := time.Now()
				if err := leader.start(ctx); err != nil {
					return fmt.Errorf("restart the deriver %s: %w", leader.name, err)
				}
				faultLog = append(faultLog, fmt.Sprintf("the deriver (replica %s) killed -9 at +%s; up again %s later",
					leader.name, at.Round(time.Second), time.Since(down).Round(100*time.Millisecond)))
			}
			return nil
		}()
	}()
	var wg sync.WaitGroup
	wg.Go(func() { newSender(a).deliver(ctx, perA, c.window) })
	wg.Go(func() { newSender(b).deliver(ctx, perB, c.window) })
	wg.Wait()
	if err := endStream(ctx, faults, began, replicas, out); err != nil {
		return err
	}
	if err := harness.Sync(ctx, client, a.base, e.apiToken, 3*time.Minute); err != nil {
		return err
	}
	incs, err := fetchIncidents(client, a.base)
	if err != nil {
		return fmt.Errorf("read incidents: %w", err)
	}
	ackedMu.Lock()
	v := verify(groups, incs, acked)
	ackedMu.Unlock()

	for _, f := range faultLog {
		fmt.Fprintln(out, "fault:", f)
	}
	fmt.Fprintln(out, counts.summary())
	fmt.Fprintf(out, "lost %d (must be 0), duplicated %d (must be 0)\n", v.lost, v.duplicated)
	fmt.Fprintf(out, "incidents expected %d, found %d, mismatches %d\n", v.expected, v.found, len(v.mismatches))
	twice, missing := chatCheck(ctx, out, fake, v.found, lastFault)
	for i, m := range v.mismatches {
		if i == 20 {
			fmt.Fprintf(out, "  … and %d more\n", len(v.mismatches)-20)
			break
		}
		fmt.Fprintln(out, "  mismatch:", m)
	}
	var stopErrs []error
	for _, r := range replicas {
		took, err := r.stop(20 * time.Second)
		fmt.Fprintf(out, "replica %s: SIGTERM → exited in %s, %v\n", r.name, took.Round(time.Millisecond), exitStatus(err))
		if err != nil {
			stopErrs = append(stopErrs, fmt.Errorf("replica %s: %w", r.name, err))
		}
	}
	if v.lost > 0 || v.duplicated > 0 || len(v.mismatches) > 0 || counts.rejected.Load() > 0 || len(stopErrs) > 0 || twice > 0 || missing > 0 {
		fmt.Fprintln(out, "FAIL")
		return errors.Join(append(stopErrs, fmt.Errorf("fault test failed: lost %d, duplicated %d, mismatches %d, rejected %d, chat messages posted twice %d, missing %d",
			v.lost, v.duplicated, len(v.mismatches), counts.rejected.Load(), twice, missing))...)
	}
	fmt.Fprintln(out, "PASS")
	return nil
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// endStream waits for the faults to end, then for the spools to drain.
func endStream(ctx context.Context, faults <-chan error, began time.Time, replicas []*replica, out io.Writer) error {
	if err := <-faults; err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Fprintf(out, "stream delivered in %s; waiting for the spools to drain\n", time.Since(began).Round(time.Second))
	return waitDrained(ctx, replicas, 3*time.Minute)
}

// waitDrained waits until no replica has anything spooled.
func waitDrained(ctx context.Context, replicas []*replica, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pending := 0.0
		for _, r := range replicas {
			n, err := r.metric("nines_spool_records")
			if err != nil {
				return fmt.Errorf("replica %s: %w", r.name, err)
			}
			pending += n
		}
		if pending == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("spools not drained after %s: %v notifications left", timeout, pending)
		}
		if !sleepUntil(ctx, time.Now().Add(200*time.Millisecond)) {
			return ctx.Err()
		}
	}
}
