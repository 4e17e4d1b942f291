package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ninesops/nines/cmd/internal/harness"
)

// The memory test: many large notifications at once (each near the
// webhook's 10 MB body limit, as a group with huge labels makes) must not
// make nines' resident memory grow with their number: the bytes of
// notifications in flight (--webhook.max-inflight-bytes), the deriver's
// pages and the groups it keeps are all bounded by bytes. Every
// notification is retried as Alertmanager would (503 means later) until
// answered 2xx, and must then have its incident.

type memoryConfig struct {
	common
	notifications int
	alerts        int
	labelBytes    int
	maxRSS        int64
}

func parseMemory(args []string, out io.Writer) (memoryConfig, error) {
	fs := flag.NewFlagSet("nines-chaos memory", flag.ContinueOnError)
	fs.SetOutput(out)
	var c memoryConfig
	c.register(fs)
	fs.IntVar(&c.notifications, "notifications", 32, "large notifications sent at once, each a new group")
	fs.IntVar(&c.alerts, "alerts", 9, "alerts per notification")
	fs.IntVar(&c.labelBytes, "label-bytes", 1<<20, "bytes of one label value of each alert")
	fs.Int64Var(&c.maxRSS, "max-rss-mib", 384, "peak resident memory allowed, MiB (the Kubernetes manifests limit nines to 512 MiB)")
	return c, fs.Parse(args)
}

func runMemory(ctx context.Context, c memoryConfig, out io.Writer) (err error) {
	if c.notifications < 1 || c.alerts < 1 {
		return errors.New("--notifications and --alerts must be at least 1")
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
	bodies := make([][]byte, c.notifications)
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	for i := range bodies {
		bodies[i] = bigNotification(i, c.alerts, c.labelBytes, start)
	}
	fmt.Fprintf(out, "memory: %d notifications of %.1f MB at once (%d alerts, %d-byte labels), %.0f MB in all\n",
		c.notifications, float64(len(bodies[0]))/1e6, c.alerts, c.labelBytes, float64(c.notifications*len(bodies[0]))/1e6)

	client := &http.Client{Timeout: 2 * time.Minute}
	var (
		wg       sync.WaitGroup
		ok, busy atomic.Int64
		firstErr atomic.Pointer[error]
	)
	began := time.Now()
	for _, body := range bodies {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.base+"/api/v1/alerts", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+e.token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusOK:
					ok.Add(1)
					return
				case resp.StatusCode >= 500: // Alertmanager retries
					busy.Add(1)
					time.Sleep(500 * time.Millisecond)
				default:
					err := fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
					firstErr.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return fmt.Errorf("memory: %w", *p)
	}
	if err := harness.Sync(ctx, client, r.base, e.apiToken, 3*time.Minute); err != nil {
		return err
	}
	_, peak, err := harness.ProcStats(r.pid())
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "answered 2xx %d of %d in %s (%d answers 503 first, retried); peak RSS %.0f MiB (must be at most %d MiB)\n",
		ok.Load(), c.notifications, time.Since(began).Round(100*time.Millisecond), busy.Load(), float64(peak)/(1<<20), c.maxRSS)
	list, err := harness.Incidents[stored](ctx, client, r.base)
	if err != nil {
		return fmt.Errorf("read incidents: %w", err)
	}
	groups := map[string]bool{}
	for _, inc := range list {
		if strings.HasPrefix(inc.Service, "memory-") {
			groups[inc.Service] = true
		}
	}
	fmt.Fprintf(out, "incidents found for %d of %d groups\n", len(groups), c.notifications)
	var problems []string
	if int(ok.Load()) != c.notifications {
		problems = append(problems, fmt.Sprintf("%d of %d answered 2xx", ok.Load(), c.notifications))
	}
	if len(groups) != c.notifications {
		problems = append(problems, fmt.Sprintf("incidents for %d of %d groups", len(groups), c.notifications))
	}
	if peak > c.maxRSS<<20 {
		problems = append(problems, fmt.Sprintf("peak RSS %.0f MiB over %d MiB", float64(peak)/(1<<20), c.maxRSS))
	}
	if len(problems) > 0 {
		fmt.Fprintln(out, "FAIL")
		return fmt.Errorf("memory test failed: %s", strings.Join(problems, "; "))
	}
	fmt.Fprintln(out, "PASS")
	return nil
}

// bigNotification is a new group's notification of alerts alerts, each
// with a label of labelBytes bytes.
func bigNotification(i, alerts, labelBytes int, start time.Time) []byte {
	var as []map[string]any
	for j := range alerts {
		as = append(as, map[string]any{
			"status": "firing", "fingerprint": fmt.Sprintf("%08x%08x", i, j),
			"labels": map[string]string{"alertname": "Big", "service": fmt.Sprintf("memory-%03d", i), "instance": fmt.Sprint(j),
				"blob": strings.Repeat("x", labelBytes)},
			"annotations": map[string]string{}, "startsAt": start.Format(time.RFC3339), "endsAt": "0001-01-01T00:00:00Z",
		})
	}
	b, _ := json.Marshal(map[string]any{
		"version": "4", "status": "firing", "receiver": "nines", "groupKey": fmt.Sprintf(`{}:{alertname="Big",n="%d"}`, i),
		"groupLabels": map[string]string{}, "commonLabels": map[string]string{}, "commonAnnotations": map[string]string{},
		"externalURL": "http://alertmanager", "alerts": as,
	})
	return b
}
