package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

// proc is nines run in-process with a handle to stop it, as SIGTERM does.
type proc struct {
	base   string
	cancel context.CancelFunc
	done   chan error
	stderr *syncWriter
}

func startProc(t *testing.T, addr, dsn string, extra ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	p := &proc{base: "http://" + addr, done: make(chan error, 1), stderr: &syncWriter{buf: &bytes.Buffer{}}}
	args := withDefaults(append([]string{"serve"}, extra...), "--storage.path="+t.TempDir(), "--web.listen-address="+addr, "--clickhouse.dsn="+dsn,
		"--webhook.bearer-token-file="+writeFile(t, dir, "webhook.token", webhookToken),
		"--api.token-file="+writeFile(t, dir, "api.token", apiToken), "--log.level=warn")
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- run(ctx, args, io.Discard, p.stderr, nil) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(p.base + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("nines exited: %v\n%s", err, p.log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nines not ready\n%s", p.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return p
}

func (p *proc) log() string {
	p.stderr.mu.Lock()
	defer p.stderr.mu.Unlock()
	return p.stderr.buf.String()
}

// stop cancels run's context, as SIGTERM does, and returns its result and
// how long it took.
func (p *proc) stop() (error, time.Duration) {
	began := time.Now()
	p.cancel()
	return <-p.done, time.Since(began)
}

// notificationFor is a webhook body that opens its own incident.
func notificationFor(i int) (groupKey string, body []byte) {
	gk := fmt.Sprintf(`{}:{alertname="Load%d"}`, i)
	n := map[string]any{
		"version": "4", "status": "firing", "receiver": "nines", "groupKey": gk,
		"groupLabels": map[string]string{"alertname": fmt.Sprintf("Load%d", i)},
		"alerts": []map[string]any{{
			"status": "firing", "fingerprint": fmt.Sprintf("fp%06d", i),
			"labels":   map[string]string{"alertname": fmt.Sprintf("Load%d", i), "service": "load", "severity": "critical"},
			"startsAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
			"endsAt":   "0001-01-01T00:00:00Z",
		}},
	}
	b, _ := json.Marshal(n)
	return gk, b
}

// load posts notifications from workers goroutines until they fail, and
// returns the group keys that were answered 2xx, and any answer that was
// neither 2xx nor a refused connection.
func load(base string, workers int) (accepted []string, bad []string) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		next int
	)
	client := &http.Client{Timeout: 30 * time.Second}
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				gk, body := notificationFor(i)
				req, _ := http.NewRequest("POST", base+"/api/v1/alerts", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+webhookToken)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return // the server stopped accepting
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode/100 == 2 {
					accepted = append(accepted, gk)
				} else {
					bad = append(bad, fmt.Sprintf("%d %s", resp.StatusCode, b))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return accepted, bad
}

// stored checks that every accepted group key has its incident.
func stored(t *testing.T, dsn string, accepted []string) {
	t.Helper()
	s, err := chstore.Open(t.Context(), chstore.Options{DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	refs := make([]incidents.GroupRef, len(accepted))
	for i, gk := range accepted {
		refs[i] = incidents.GroupRef{GroupKey: gk, Service: "load"}
	}
	got, err := s.Latest(t.Context(), refs)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, r := range refs {
		if got[r] == nil {
			lost++
			if lost <= 5 {
				t.Errorf("accepted %s is not stored", r.GroupKey)
			}
		}
	}
	t.Logf("%d notifications answered 2xx, %d stored, %d lost", len(accepted), len(accepted)-lost, lost)
	if lost > 0 {
		t.Errorf("%d notifications answered 2xx were lost", lost)
	}
}

// TestShutdownUnderLoad cancels run (SIGTERM) while notifications pour in:
// nines stops accepting, finishes what is in flight, drains its spool,
// lets the deriver apply what it can and returns nil within
// --web.shutdown-timeout, all steps together; every notification it
// answered 2xx is stored, once the next start has applied what the
// deriver had no time for.
func TestShutdownUnderLoad(t *testing.T) {
	dsn := chtest.Database(t)
	addr := freePort(t)
	// A long flush interval leaves batches pending at the moment of
	// shutdown.
	p := startProc(t, addr, dsn, "--clickhouse.flush-interval=300ms", "--web.shutdown-timeout=20s")
	settled(p.base, http.DefaultClient, nil)
	results := make(chan [2][]string, 1)
	go func() {
		a, b := load(p.base, 16)
		results <- [2][]string{a, b}
	}()
	time.Sleep(1500 * time.Millisecond)
	err, took := p.stop()
	if err != nil {
		t.Fatalf("run returned %v; log:\n%s", err, p.log())
	}
	// One deadline for every step; closing the store after it takes a
	// moment more.
	if took > 21*time.Second {
		t.Errorf("shutdown took %s, over the 20s timeout (and a second to close)", took)
	}
	r := <-results
	accepted, bad := r[0], r[1]
	if len(bad) > 0 {
		t.Errorf("%d answers neither 2xx nor a refused connection during shutdown, e.g. %s", len(bad), bad[0])
	}
	if len(accepted) < 10 {
		t.Fatalf("only %d notifications accepted: no load", len(accepted))
	}
	if _, err := http.Get(p.base + "/-/healthy"); err == nil {
		t.Error("still accepting connections after run returned")
	}
	t.Logf("shutdown took %s", took)
	p = startProc(t, addr, dsn)
	began := time.Now()
	eventually(t, 90*time.Second, "the next start to apply the log", func() bool {
		code, _ := (&nines{t: t, base: p.base}).do("POST", "/api/v1/sync", apiToken, nil)
		return code == http.StatusOK
	})
	t.Logf("the next start applied what was left %s after it began", time.Since(began).Round(time.Millisecond))
	if err, _ := p.stop(); err != nil {
		t.Errorf("second run: %v", err)
	}
	stored(t, dsn, accepted)
}

// TestShutdownWithSpool stops ClickHouse, loads nines (which spools),
// shuts it down (the spool cannot drain: it stays on disk), then starts
// ClickHouse and nines again on the same spool: every notification
// answered 2xx ends up stored. It needs the spool flags in serve.
func TestShutdownWithSpool(t *testing.T) {
	srv := chtest.StartServer(t)
	dsn := srv.DSN("shutdown")
	spoolDir := t.TempDir()
	addr := freePort(t)
	args := []string{"--spool.dir=" + spoolDir, "--web.shutdown-timeout=5s", "--clickhouse.dial-timeout=1s", "--clickhouse.flush-interval=50ms"}
	p := startProc(t, addr, dsn, args...)
	srv.Stop()
	results := make(chan [2][]string, 1)
	go func() {
		a, b := load(p.base, 8)
		results <- [2][]string{a, b}
	}()
	time.Sleep(1500 * time.Millisecond)
	err, took := p.stop()
	if err != nil {
		t.Fatalf("run returned %v; log:\n%s", err, p.log())
	}
	r := <-results
	accepted, bad := r[0], r[1]
	if len(bad) > 0 {
		t.Errorf("%d answers neither 2xx nor a refused connection, e.g. %s", len(bad), bad[0])
	}
	t.Logf("%d notifications spooled while ClickHouse was down; shutdown took %s", len(accepted), took)
	if took > 12*time.Second {
		t.Errorf("shutdown took %s: over the 5s timeout twice (server, then spool)", took)
	}
	srv.Start()
	p = startProc(t, addr, dsn, args...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			t.Fatal(err)
		}
		var ready struct {
			Spool struct{ Records int64 } `json:"spool"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&ready)
		resp.Body.Close()
		if ready.Spool.Records == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool not replayed: %d left", ready.Spool.Records)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The spool replayed into the log; the deriver may still be applying
	// it (a shutdown lets it run only --web.shutdown-timeout; the next
	// start would go on).
	began := time.Now()
	eventually(t, 90*time.Second, "the deriver to apply the log", func() bool {
		code, _ := (&nines{t: t, base: p.base}).do("POST", "/api/v1/sync", apiToken, nil)
		return code == http.StatusOK
	})
	t.Logf("the deriver applied them %s after the spool was replayed", time.Since(began).Round(time.Millisecond))
	if err, _ := p.stop(); err != nil {
		t.Errorf("second run: %v", err)
	}
	stored(t, dsn, accepted)
}
