package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ninesops/nines/cmd/internal/harness"
)

// The cluster failover test (issue 17): a replicated ClickHouse cluster
// (ZooKeeper and two servers, two replicas of one shard) and two nines
// with --clickhouse.cluster writing through server 1 (their DSN lists
// server 1 first). ClickHouse server 1 is killed -9 a third of the way
// into the stream; nines fails over to server 2 and spools what it could
// not store; server 1 comes back after the outage and catches up. At the
// end a third nines reads through server 2 alone, and what it shows must
// be what the stream says (nothing lost, nothing twice) and equal, the
// incidents and the availability figures, to two single-server nines fed
// the same notifications at the same time.

type clusterConfig struct {
	common
	streamFlags
}

func parseCluster(args []string, out io.Writer) (clusterConfig, error) {
	fs := flag.NewFlagSet("nines-chaos cluster", flag.ContinueOnError)
	fs.SetOutput(out)
	var c clusterConfig
	c.common.register(fs)
	c.streamFlags.register(fs, "how long ClickHouse server 1 stays dead, from a third of the way in")
	return c, fs.Parse(args)
}

// clusterTables are the tables whose rows must be the same on both
// servers once server 1 has caught up.
var clusterTables = []string{"incidents", "incident_alerts", "incident_events", "incident_segments", "schema_migrations"}

func runCluster(ctx context.Context, c clusterConfig, out io.Writer) (err error) {
	if c.seed == 0 {
		c.seed = uint64(time.Now().UnixNano())
	}
	if c.outage <= 0 || c.outage >= c.window*2/3 {
		return errors.New("--outage must be positive and end before the stream does")
	}
	e, err := setup(ctx, c.common, out, "spool.dir", "clickhouse.cluster")
	if err != nil {
		return err
	}
	defer func() { e.teardown(err != nil) }()
	cl, err := harness.NewCluster(e.root, filepath.Join(e.work, "cluster"), e.ports)
	if err != nil {
		return err
	}
	if err := cl.Start(ctx); err != nil {
		return fmt.Errorf("%w (is zookeeper installed? make deps)", err)
	}
	defer func() {
		if serr := cl.Stop(context.Background()); serr != nil {
			fmt.Fprintln(out, serr)
		}
	}()

	dsn := func(servers ...int) string {
		return "--clickhouse.dsn=clickhouse://" + cl.Addrs(servers...) + "/chaos"
	}
	spool := func(name string) []string {
		return []string{"--spool.dir=" + filepath.Join(e.work, "spool-"+name), "--spool.store-timeout=1s"}
	}
	var all []*replica
	start := func(name string, args ...string) (*replica, error) {
		r, err := newReplica(name, e.bin, e.work, args, e.ports)
		if err != nil {
			return nil, err
		}
		if err := r.start(ctx); err != nil {
			return nil, err
		}
		all = append(all, r)
		return r, nil
	}
	defer func() {
		for _, r := range all {
			took, serr := r.stop(20 * time.Second)
			fmt.Fprintf(out, "nines %s: SIGTERM → exited in %s, %v\n", r.name, took.Round(time.Millisecond), exitStatus(serr))
			if serr != nil && err == nil {
				err = fmt.Errorf("nines %s: %w", r.name, serr)
			}
		}
	}()
	onCluster := "--clickhouse.cluster=" + cl.Name
	var a, b, single, singleB *replica
	for _, s := range []struct {
		r    **replica
		name string
		args []string
	}{
		{&a, "a", e.replicaArgs("a", append(spool("a"), onCluster, dsn(1, 2))...)},
		{&b, "b", e.replicaArgs("b", append(spool("b"), onCluster, dsn(1, 2))...)},
		{&single, "single", e.replicaArgs("single", spool("single")...)},
		{&singleB, "single-b", e.replicaArgs("single-b", spool("single-b")...)},
	} {
		if *s.r, err = start(s.name, s.args...); err != nil {
			return err
		}
	}

	rng := rand.New(rand.NewPCG(c.seed, 17))
	base := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	groups := genStream(rng, c.groups, c.episodes, base)
	// Each group goes to one nines of each pair (even groups to a, odd to
	// b), in order: what either pair stores follows from the notifications
	// alone, so that the two runs can be compared figure by figure. (Two
	// nines receiving the same group in different orders is the fault
	// test's subject, not this one's.)
	var perA, perB [][]*note
	notes := 0
	for i, g := range groups {
		if i%2 == 0 {
			perA = append(perA, order(rng, g, false))
		} else {
			perB = append(perB, order(rng, g, false))
		}
		for _, ep := range g.episodes {
			notes += len(ep.notes)
		}
	}
	fmt.Fprintf(out, "cluster: seed %d, %d groups, %d notifications, split between nines a and b (cluster, through server 1) and the same between nines single and single-b (one server), over %s\n",
		c.seed, len(groups), notes, c.window)
	// The stream starts once every nines has its schema (on the cluster,
	// ON CLUSTER statements take seconds), so that server 1 dies under
	// writes, not under migrations.
	for _, r := range all {
		if err := r.current().WaitReady(ctx, r.base+"/-/ready", 2*time.Minute); err != nil {
			return fmt.Errorf("nines %s: %w", r.name, err)
		}
	}

	var (
		clusterCounts, singleCounts counts
		ackedMu                     sync.Mutex
		acked                       = map[*note]bool{}
		client                      = &http.Client{Timeout: 30 * time.Second}
	)
	newSender := func(r *replica, c *counts, record bool) *sender {
		return &sender{r: r, token: e.token, client: client, c: c, acked: func(n *note) {
			if record {
				ackedMu.Lock()
				acked[n] = true
				ackedMu.Unlock()
			}
		}}
	}

	began := time.Now()
	faults := make(chan error, 1)
	var (
		faultLog         []string
		killed, restarts time.Time
	)
	go func() {
		faults <- func() error {
			if !sleepUntil(ctx, began.Add(c.window/3)) {
				return ctx.Err()
			}
			if err := cl.KillServer(1); err != nil {
				return err
			}
			killed = time.Now()
			faultLog = append(faultLog, fmt.Sprintf("ClickHouse server 1 killed -9 at +%s, dead for %s", time.Since(began).Round(time.Second), c.outage))
			if !sleepUntil(ctx, time.Now().Add(c.outage)) {
				return ctx.Err()
			}
			restarts = time.Now()
			return cl.StartServer(ctx, 1)
		}()
	}()
	var wg sync.WaitGroup
	wg.Go(func() { newSender(a, &clusterCounts, true).deliver(ctx, perA, c.window) })
	wg.Go(func() { newSender(b, &clusterCounts, true).deliver(ctx, perB, c.window) })
	wg.Go(func() { newSender(single, &singleCounts, false).deliver(ctx, perA, c.window) })
	wg.Go(func() { newSender(singleB, &singleCounts, false).deliver(ctx, perB, c.window) })
	wg.Wait()
	if err := endStream(ctx, faults, began, all, out); err != nil {
		return err
	}
	// Log first: the incidents follow once the deriver of each run has
	// applied what its nines answered.
	for _, r := range []*replica{a, b, single, singleB} {
		if err := harness.Sync(ctx, client, r.base, e.apiToken, 3*time.Minute); err != nil {
			return fmt.Errorf("replica %s: %w", r.name, err)
		}
	}

	// Server 1 catches up: both servers then hold the same rows.
	rows, err := caughtUp(ctx, cl, "chaos")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "server 1 caught up: rows per table on both servers %s\n", rows)
	// Timeline events stored while server 1 was dead (inserted_at_ms is
	// nines' flush time) went through server 2: nines failed over, it did
	// not only spool.
	n, err := harness.NewSQL(fmt.Sprintf("127.0.0.1:%d", cl.Servers[1].HTTP), time.Minute).Query(ctx,
		fmt.Sprintf("SELECT count() FROM chaos.incident_events WHERE inserted_at_ms > %d AND inserted_at_ms < %d", killed.UnixMilli(), restarts.UnixMilli()))
	if err != nil {
		return err
	}
	failedOver := strings.TrimSpace(n)
	fmt.Fprintf(out, "events stored through server 2 while server 1 was dead: %s (must be more than 0)\n", failedOver)

	// A nines reading through server 2 alone.
	reader, err := start("reader", e.replicaArgs("reader", onCluster, dsn(2))...)
	if err != nil {
		return err
	}
	if err := reader.current().WaitReady(ctx, reader.base+"/-/ready", 60*time.Second); err != nil {
		return err
	}
	incs, err := fetchIncidents(client, reader.base)
	if err != nil {
		return fmt.Errorf("read incidents through server 2: %w", err)
	}
	ackedMu.Lock()
	v := verify(groups, incs, acked)
	ackedMu.Unlock()
	want, err := fetchIncidents(client, single.base)
	if err != nil {
		return fmt.Errorf("read incidents of the single-server run: %w", err)
	}
	sameIncidents, firstDiff := equalIncidents(incs, want)
	// Availability over a window that ends before now, so that both
	// answers are of the same instant.
	q := url.Values{"from": {base.Add(-time.Hour).Format(time.RFC3339)}, "to": {time.Now().Add(-time.Second).Truncate(time.Second).Format(time.RFC3339)}}
	var gotAv, wantAv any
	if err := harness.GetJSON(ctx, client, reader.base+"/api/v1/availability?"+q.Encode(), &gotAv); err != nil {
		return err
	}
	if err := harness.GetJSON(ctx, client, single.base+"/api/v1/availability?"+q.Encode(), &wantAv); err != nil {
		return err
	}
	sameAvailability := reflect.DeepEqual(gotAv, wantAv)

	for _, f := range faultLog {
		fmt.Fprintln(out, "fault:", f)
	}
	fmt.Fprintln(out, "cluster:", clusterCounts.summary())
	fmt.Fprintf(out, "lost %d (must be 0), duplicated %d (must be 0)\n", v.lost, v.duplicated)
	fmt.Fprintf(out, "incidents expected %d, found through server 2 %d, mismatches %d; single-server run %d, equal: %v; availability equal: %v\n",
		v.expected, v.found, len(v.mismatches), len(want), sameIncidents, sameAvailability)
	for i, m := range v.mismatches {
		if i == 20 {
			fmt.Fprintf(out, "  … and %d more\n", len(v.mismatches)-20)
			break
		}
		fmt.Fprintln(out, "  mismatch:", m)
	}
	if v.lost > 0 || v.duplicated > 0 || len(v.mismatches) > 0 || clusterCounts.rejected.Load() > 0 || !sameIncidents || !sameAvailability || failedOver == "0" {
		fmt.Fprintln(out, "FAIL")
		if !sameAvailability {
			fmt.Fprintf(out, "availability through server 2: %v\nsingle server: %v\n", gotAv, wantAv)
		}
		if !sameIncidents {
			fmt.Fprintf(out, "first difference: %s\n", firstDiff)
		}
		return fmt.Errorf("cluster test failed: lost %d, duplicated %d, mismatches %d, rejected %d, incidents equal %v, availability equal %v, events stored during the outage %s",
			v.lost, v.duplicated, len(v.mismatches), clusterCounts.rejected.Load(), sameIncidents, sameAvailability, failedOver)
	}
	fmt.Fprintln(out, "PASS")
	return nil
}

// caughtUp waits until both servers hold the same number of rows in every
// table of db (after SYSTEM SYNC REPLICA on each), and says how many.
func caughtUp(ctx context.Context, cl *harness.Cluster, db string) (string, error) {
	var last []string
	for deadline := time.Now().Add(2 * time.Minute); ; {
		var counts [2][]string
		for i, s := range cl.Servers {
			sql := harness.NewSQL(fmt.Sprintf("127.0.0.1:%d", s.HTTP), time.Minute)
			for _, t := range clusterTables {
				if _, err := sql.Query(ctx, "SYSTEM SYNC REPLICA "+db+"."+t); err != nil {
					return "", err
				}
				n, err := sql.Query(ctx, "SELECT count() FROM "+db+"."+t)
				if err != nil {
					return "", err
				}
				counts[i] = append(counts[i], t+" "+strings.TrimSpace(n))
			}
		}
		if reflect.DeepEqual(counts[0], counts[1]) {
			return strings.Join(counts[0], ", "), nil
		}
		last = []string{strings.Join(counts[0], ", "), strings.Join(counts[1], ", ")}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("server 1 did not catch up: server 1 has %s; server 2 has %s", last[0], last[1])
		}
		if !sleepUntil(ctx, time.Now().Add(500*time.Millisecond)) {
			return "", ctx.Err()
		}
	}
}

// equalIncidents compares two runs' incidents, whatever their order, and
// describes the first difference: their states, times and alerts, and the
// timeline entries the alerts make (opened, alert fired and resolved,
// reopened, resolved). What depends on when or in which order the deriver
// saw notifications is left out: incidents a late notification merged
// away (without alerts), and entries stamped with the deriver's clock
// (split, merged, and those of an incident made to agree with alerts
// stored ahead of it, as after a failover to a replica that lagged).
func equalIncidents(a, b []*stored) (bool, string) {
	norm := func(s []*stored) []stored {
		var out []stored
		for _, inc := range s {
			if len(inc.Alerts) == 0 {
				continue
			}
			c := *inc
			c.Timeline = nil
			for _, e := range inc.Timeline {
				switch e.Kind {
				case "opened", "alert_fired", "alert_resolved", "reopened", "resolved":
					c.Timeline = append(c.Timeline, e)
				}
			}
			out = append(out, c)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return out
	}
	na, nb := norm(a), norm(b)
	if reflect.DeepEqual(na, nb) {
		return true, ""
	}
	for i := range min(len(na), len(nb)) {
		if !reflect.DeepEqual(na[i], nb[i]) {
			ja, _ := json.Marshal(na[i])
			jb, _ := json.Marshal(nb[i])
			return false, fmt.Sprintf("cluster %s\nsingle  %s", ja, jb)
		}
	}
	return false, fmt.Sprintf("%d incidents against %d", len(na), len(nb))
}
