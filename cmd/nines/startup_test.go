package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
)

// forward accepts on ln and pipes each connection to upstream, until ln
// closes.
func forward(t *testing.T, ln net.Listener, upstream string) {
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	})
}

// TestServeWaitsForClickHouse starts nines while ClickHouse cannot be
// reached: it stays up, answers /-/healthy, says it is not ready, and
// spools a webhook (200); once ClickHouse answers, it becomes ready and
// the spooled notification becomes an incident.
func TestServeWaitsForClickHouse(t *testing.T) {
	dsn := chtest.Unmigrated(t) // clickhouse://ADDR/DB?…
	chAddr := chtest.Addr(t)
	// Where nines will find ClickHouse: nothing listens there yet.
	addr := freePort(t)
	dsn = strings.Replace(dsn, chAddr, addr, 1)

	dir := t.TempDir()
	listen := freePort(t)
	base := "http://" + listen
	var stderr syncWriter
	stderr.buf = &bytes.Buffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// No --spool.dir: the spool is on by default, in <storage.path>/spool.
		done <- run(ctx, []string{"serve", "--storage.path=" + dir + "/data", "--web.listen-address=" + listen, "--clickhouse.dsn=" + dsn,
			"--clickhouse.dial-timeout=1s", "--clickhouse.flush-interval=20ms",
			"--spool.store-timeout=1s",
			"--webhook.bearer-token-file=" + writeFile(t, dir, "webhook.token", webhookToken+"\n")}, io.Discard, &stderr, nil)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("nines exited with %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("nines did not stop")
		}
	})
	status := func(path string) int {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	eventually(t, 20*time.Second, "nines to answer /-/healthy while ClickHouse is down", func() bool {
		select {
		case err := <-done:
			t.Fatalf("nines exited while ClickHouse was down: %v\n%s", err, stderr.String())
		default:
		}
		return status("/-/healthy") == 200
	})
	if code := status("/-/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("/-/ready = %d while ClickHouse is down, want 503", code)
	}
	start := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	req, _ := http.NewRequest("POST", base+"/api/v1/alerts", bytes.NewReader(webhookNote(`{}:{alertname="Early"}`,
		inputAlert("early", map[string]string{"alertname": "Early", "service": "early"}, start, "0001-01-01T00:00:00Z", "firing"))))
	req.Header.Set("Authorization", "Bearer "+webhookToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("webhook while ClickHouse is down: %d %s, want 200 (spooled)", resp.StatusCode, b)
	}
	if entries, err := os.ReadDir(filepath.Join(dir, "data", "spool")); err != nil || len(entries) == 0 {
		t.Errorf("<storage.path>/spool: %v, %d entries: want the spool there by default", err, len(entries))
	}

	// ClickHouse comes up.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	forward(t, ln, chAddr)
	eventually(t, 60*time.Second, "nines to become ready once ClickHouse answers", func() bool { return status("/-/ready") == 200 })
	n := &nines{t: t, base: base}
	eventually(t, 20*time.Second, "the spooled notification to become an incident", func() bool {
		return len(listService(t, n, "early")) == 1
	})
	if !strings.Contains(stderr.String(), "ClickHouse unavailable at start") {
		t.Errorf("the wait was not logged:\n%s", stderr.String())
	}
}
