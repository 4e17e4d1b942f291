package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ninesops/nines/cmd/internal/harness"
)

// The dead-letter test: notifications answered 2xx into the spool while
// ClickHouse is down, then refused by the notification log when they are
// replayed (its table lost a column that no migration adds back, as when
// a migration was edited after it had shipped), must end in the spool's
// dead-letter file, never dropped;
// `nines spool inspect` must show each of them with the reason, and once
// the cause is gone `nines spool replay` must apply them all, so that the
// API shows each group's incident.

type deadLetterConfig struct {
	common
	groups int
}

func parseDeadLetter(args []string, out io.Writer) (deadLetterConfig, error) {
	fs := flag.NewFlagSet("nines-chaos deadletter", flag.ContinueOnError)
	fs.SetOutput(out)
	var c deadLetterConfig
	c.register(fs)
	fs.IntVar(&c.groups, "groups", 20, "new groups spooled, one notification each")
	return c, fs.Parse(args)
}

func runDeadLetter(ctx context.Context, c deadLetterConfig, out io.Writer) (err error) {
	if c.groups < 1 {
		return errors.New("--groups must be at least 1")
	}
	e, err := setup(ctx, c.common, out, "spool.dir")
	if err != nil {
		return err
	}
	defer func() { e.teardown(err != nil) }()
	spoolDir := filepath.Join(e.work, "spool-a")
	r, err := newReplica("a", e.bin, e.work, e.replicaArgs("a", "--spool.dir="+spoolDir, "--spool.store-timeout=1s"), e.ports)
	if err != nil {
		return err
	}
	if err := r.start(ctx); err != nil {
		return err
	}
	running := true
	defer func() {
		if running {
			r.kill()
		}
	}()
	if err := r.current().WaitReady(ctx, r.base+"/-/ready", 60*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(out, "deadletter: %d new groups spooled while ClickHouse is down, refused on replay\n", c.groups)

	// ClickHouse goes down: every notification is spooled and answered 2xx.
	if err := e.ch.Stop(ctx); err != nil {
		return err
	}
	base := time.Now().Add(-time.Hour - time.Duration(c.groups)*time.Second).Truncate(time.Second)
	groups := make([]*group, c.groups)
	var counts counts
	s := &sender{r: r, token: e.token, client: &http.Client{Timeout: 30 * time.Second}, c: &counts, acked: func(*note) {}}
	for i := range groups {
		g, body := stormGroup(i, base)
		groups[i] = g
		if !s.post(ctx, &note{group: g, body: body}) {
			return ctx.Err()
		}
	}
	spooled, err := r.metric("nines_spool_records")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "answered 2xx %d of %d (rejected %d), spooled %.0f\n", counts.acked.Load(), c.groups, counts.rejected.Load(), spooled)
	if int(counts.acked.Load()) != c.groups || int(spooled) != c.groups {
		return fmt.Errorf("deadletter: %d of %d notifications answered 2xx, %.0f spooled, want all", counts.acked.Load(), c.groups, spooled)
	}
	// The replica dies with them spooled; ClickHouse comes back with a
	// column gone, and the replica starts again and replays them.
	r.kill()
	running = false
	if err := e.ch.Start(ctx); err != nil {
		return err
	}
	if err := e.sql(ctx, "ALTER TABLE chaos.notification_log_v2 DROP COLUMN kind"); err != nil {
		return err
	}
	if err := r.start(ctx); err != nil {
		return err
	}
	running = true
	if err := waitMetric(ctx, r, "nines_spool_dead_letters", float64(c.groups), 3*time.Minute); err != nil {
		return err
	}
	if err := waitMetric(ctx, r, "nines_spool_records", 0, time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(out, "replay refused: %d dead letters, spool empty\n", c.groups)
	if _, err := r.stop(20 * time.Second); err != nil {
		return fmt.Errorf("replica a: %w", err)
	}
	running = false

	// The operator looks, mends the schema and replays.
	inspect, err := e.nines(ctx, "spool", "inspect", "--spool.dir="+spoolDir)
	if err != nil {
		return err
	}
	var problems []string
	if !strings.Contains(inspect, strconv.Itoa(c.groups)+" dead letters") || !strings.Contains(inspect, "kind") {
		problems = append(problems, "nines spool inspect does not show "+strconv.Itoa(c.groups)+" dead letters refused for the missing column")
	}
	for _, g := range groups {
		if !strings.Contains(inspect, g.key) {
			problems = append(problems, "nines spool inspect does not show "+g.key)
		}
	}
	if err := e.sql(ctx, "ALTER TABLE chaos.notification_log_v2 ADD COLUMN kind String AFTER hash"); err != nil {
		return err
	}
	replay, err := e.nines(ctx, "spool", "replay", "--spool.dir="+spoolDir, "--clickhouse.dsn=clickhouse://"+e.ch.Addr()+"/chaos")
	if err != nil {
		return err
	}
	fmt.Fprint(out, "nines spool replay: ", replay)
	if want := fmt.Sprintf("%d dead letters applied, 0 left", c.groups); !strings.Contains(replay, want) {
		problems = append(problems, "nines spool replay did not print "+want)
	}
	if after, err := e.nines(ctx, "spool", "inspect", "--spool.dir="+spoolDir); err != nil || !strings.Contains(after, "0 dead letters") {
		problems = append(problems, fmt.Sprintf("nines spool inspect after the replay: %v %s", err, after))
	}

	// Every group's incident, through the API.
	if err := r.start(ctx); err != nil {
		return err
	}
	running = true
	if err := harness.Sync(ctx, &http.Client{Timeout: 30 * time.Second}, r.base, e.apiToken, 3*time.Minute); err != nil {
		return err
	}
	list, err := harness.Incidents[stored](ctx, &http.Client{Timeout: 30 * time.Second}, r.base)
	if err != nil {
		return fmt.Errorf("read incidents: %w", err)
	}
	v := stormVerify(groups, list)
	fmt.Fprintf(out, "incidents expected %d, found %d, missing %d (must be 0), extra %d (must be 0), wrong %d (must be 0)\n",
		len(groups), len(list), v.missing, v.extra, len(v.mismatches))
	took, serr := r.stop(20 * time.Second)
	running = false
	fmt.Fprintf(out, "replica a: SIGTERM → exited in %s, %v\n", took.Round(time.Millisecond), exitStatus(serr))
	for _, p := range append(problems, v.mismatches...) {
		fmt.Fprintln(out, "  problem:", p)
	}
	if len(problems) > 0 || v.missing > 0 || v.extra > 0 || len(v.mismatches) > 0 || serr != nil {
		fmt.Fprintln(out, "FAIL")
		return fmt.Errorf("dead-letter test failed: %d problems, %d groups without their incident, %d extra, %d wrong, exit: %v",
			len(problems), v.missing, v.extra, len(v.mismatches), serr)
	}
	fmt.Fprintln(out, "PASS")
	return nil
}

// sql runs a statement on the private ClickHouse over HTTP.
func (e *env) sql(ctx context.Context, q string) error {
	_, err := harness.NewSQL("127.0.0.1:"+strconv.Itoa(e.ch.HTTP), 30*time.Second).Query(ctx, q)
	return err
}

// nines runs a nines command and returns what it printed.
func (e *env) nines(ctx context.Context, args ...string) (string, error) {
	b, err := exec.CommandContext(ctx, e.bin, args...).CombinedOutput()
	if err != nil {
		return string(b), fmt.Errorf("nines %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return string(b), nil
}
