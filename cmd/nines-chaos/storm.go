package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ninesops/nines/cmd/internal/harness"
)

// The storm test: a burst of new groups, each its own notification with
// one new firing alert, posted to one nines (no spool: ClickHouse is up,
// so nines must store them itself) at an even rate over a short window,
// as a large outage makes Alertmanager do. Every notification must be
// answered 2xx at the first try (no 5xx, no 4xx, no refused connection)
// and every group must then have exactly one firing incident, with its
// alert, through the API.

type stormConfig struct {
	common
	groups      int
	window      time.Duration
	concurrency int
}

func parseStorm(args []string, out io.Writer) (stormConfig, error) {
	fs := flag.NewFlagSet("nines-chaos storm", flag.ContinueOnError)
	fs.SetOutput(out)
	var c stormConfig
	c.register(fs)
	fs.IntVar(&c.groups, "groups", 20000, "new groups, one notification each")
	fs.DurationVar(&c.window, "duration", time.Minute, "how long the notifications are spread over")
	fs.IntVar(&c.concurrency, "concurrency", 64, "most notifications in flight at once (Alertmanager's parallel sends)")
	return c, fs.Parse(args)
}

// stormGroup is the one notification of a storm group.
func stormGroup(i int, base time.Time) (*group, []byte) {
	g := &group{name: fmt.Sprintf("Storm%06d", i), service: "storm"}
	g.key = fmt.Sprintf(`{}:{alertname=%q}`, g.name)
	labels := map[string]string{"alertname": g.name, "service": g.service, "severity": "critical", "instance": "host-1", "note": noteLabel}
	o := &occ{fp: fingerprint(labels), labels: labels, start: base.Add(time.Duration(i) * time.Second)}
	g.episodes = []*episode{{occs: []*occ{o}}}
	return g, webhookBody(g, &note{group: g, firing: []*occ{o}})
}

func runStorm(ctx context.Context, c stormConfig, out io.Writer) (err error) {
	if c.groups < 1 || c.window <= 0 || c.concurrency < 1 {
		return errors.New("--groups and --concurrency must be at least 1 and --duration positive")
	}
	e, err := setup(ctx, c.common, out)
	if err != nil {
		return err
	}
	defer func() { e.teardown(err != nil) }()
	r, stop, err := e.readyReplica(ctx, out)
	if err != nil {
		return err
	}
	defer stop(&err)

	// Start times one second apart, ending an hour ago.
	base := time.Now().Add(-time.Hour - time.Duration(c.groups)*time.Second).Truncate(time.Second)
	groups := make([]*group, c.groups)
	bodies := make([][]byte, c.groups)
	for i := range groups {
		groups[i], bodies[i] = stormGroup(i, base)
	}
	fmt.Fprintf(out, "storm: %d new groups over %s, at most %d in flight\n", c.groups, c.window, c.concurrency)

	var (
		ok, bad, failed atomic.Int64
		lat             latencies
		firstMu         sync.Mutex
		first           []string // the first few failures, for the report
		client          = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: c.concurrency}}
		wg              sync.WaitGroup
		slots           = make(chan struct{}, c.concurrency)
	)
	note := func(format string, args ...any) {
		firstMu.Lock()
		if len(first) < 10 {
			first = append(first, fmt.Sprintf(format, args...))
		}
		firstMu.Unlock()
	}
	began := time.Now()
	for i, body := range bodies {
		if !sleepUntil(ctx, began.Add(time.Duration(float64(c.window)*float64(i)/float64(c.groups)))) {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/api/v1/alerts", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+e.token)
			t := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				failed.Add(1)
				note("%s: %v", groups[i].name, err)
				return
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				bad.Add(1)
				note("%s: HTTP %d: %s", groups[i].name, resp.StatusCode, b)
				return
			}
			lat.add(time.Since(t))
			ok.Add(1)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	took := time.Since(began)
	d := lat.take()
	fmt.Fprintf(out, "sent %d in %s: 2xx %d, other answers %d (must be 0), transport errors %d (must be 0); latency p50 %s p99 %s max %s\n",
		c.groups, took.Round(100*time.Millisecond), ok.Load(), bad.Load(), failed.Load(),
		percentile(d, 0.5).Round(time.Millisecond), percentile(d, 0.99).Round(time.Millisecond), percentile(d, 1).Round(time.Millisecond))
	for _, f := range first {
		fmt.Fprintln(out, "  failed:", f)
	}

	// Every group's incident, through the API, once derived.
	derived := time.Now()
	if err := harness.Sync(ctx, client, r.base, e.apiToken, 3*time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(out, "the deriver had applied the storm %s after the last answer\n", time.Since(derived).Round(100*time.Millisecond))
	list, err := harness.Incidents[stored](ctx, client, r.base)
	if err != nil {
		return fmt.Errorf("read incidents: %w", err)
	}
	v := stormVerify(groups, list)
	fmt.Fprintf(out, "incidents expected %d, found %d, missing %d (must be 0), extra %d (must be 0), wrong %d (must be 0)\n",
		len(groups), len(list), v.missing, v.extra, len(v.mismatches))
	for i, m := range v.mismatches {
		if i == 10 {
			fmt.Fprintf(out, "  … and %d more\n", len(v.mismatches)-10)
			break
		}
		fmt.Fprintln(out, "  mismatch:", m)
	}
	if bad.Load() > 0 || failed.Load() > 0 || v.missing > 0 || v.extra > 0 || len(v.mismatches) > 0 {
		fmt.Fprintln(out, "FAIL")
		return fmt.Errorf("storm test failed: %d non-2xx answers, %d transport errors, %d groups without their incident, %d extra, %d wrong",
			bad.Load(), failed.Load(), v.missing, v.extra, len(v.mismatches))
	}
	fmt.Fprintln(out, "PASS")
	return nil
}

type stormVerdict struct {
	missing, extra int
	mismatches     []string
}

// stormVerify checks that each group has exactly one incident, firing,
// of its service, started when its alert started, and nothing else.
func stormVerify(groups []*group, list []stored) stormVerdict {
	var v stormVerdict
	byKey := map[string][]stored{}
	for _, inc := range list {
		byKey[inc.GroupKey] = append(byKey[inc.GroupKey], inc)
	}
	for _, g := range groups {
		found := byKey[g.key]
		delete(byKey, g.key)
		if len(found) == 0 {
			v.missing++
			v.mismatches = append(v.mismatches, g.name+": no incident")
			continue
		}
		if len(found) > 1 {
			v.extra += len(found) - 1
			v.mismatches = append(v.mismatches, fmt.Sprintf("%s: %d incidents", g.name, len(found)))
		}
		inc := found[0]
		start := g.episodes[0].occs[0].start
		switch {
		case inc.State != "firing":
			v.mismatches = append(v.mismatches, fmt.Sprintf("%s: incident %s is %s, want firing", g.name, inc.ID, inc.State))
		case inc.Service != g.service:
			v.mismatches = append(v.mismatches, fmt.Sprintf("%s: incident %s of service %q, want %q", g.name, inc.ID, inc.Service, g.service))
		case inc.StartedAt == nil || !inc.StartedAt.Equal(start):
			v.mismatches = append(v.mismatches, fmt.Sprintf("%s: incident %s started at %v, want %v", g.name, inc.ID, inc.StartedAt, start))
		}
	}
	for k, incs := range byKey {
		v.extra += len(incs)
		v.mismatches = append(v.mismatches, fmt.Sprintf("incident %s of an unknown group %s", incs[0].ID, k))
	}
	return v
}
