package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
)

// alertmanagerBinary finds the real Alertmanager, or skips (or fails under
// `make test`) saying what is missing.
func alertmanagerBinary(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("NINES_TEST_ALERTMANAGER")
	if bin == "" {
		bin = "/usr/bin/prometheus-alertmanager"
	}
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("acceptance test: Alertmanager not found at %s (set NINES_TEST_ALERTMANAGER or run `make test`)", bin)
		if os.Getenv("NINES_REQUIRE_INTEGRATION") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// syncWriter lets the server's logger and the test share a buffer.
type syncWriter struct {
	mu  sync.Mutex
	buf *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// nines is a nines server started in-process with run().
type nines struct {
	t        *testing.T
	base     string
	apiToken string
	done     chan error
	stderr   *bytes.Buffer
}

func startNines(t *testing.T, dsn string, extra ...string) *nines {
	t.Helper()
	return startNinesAt(t, freePort(t), dsn, extra...)
}

// startNinesAt starts nines on addr, for tests that must know the address
// before nines starts (--web.external-url).
func startNinesAt(t *testing.T, addr, dsn string, extra ...string) *nines {
	t.Helper()
	dir := t.TempDir()
	n := &nines{t: t, base: "http://" + addr, apiToken: "api-secret-token", done: make(chan error, 1), stderr: &bytes.Buffer{}}
	args := withDefaults(append([]string{"serve"}, extra...), "--storage.path="+t.TempDir(),
		"--web.listen-address="+addr,
		"--clickhouse.dsn="+dsn,
		"--clickhouse.flush-interval=20ms",
		"--webhook.bearer-token-file="+writeFile(t, dir, "webhook.token", "s3cr3t-token\n"),
		"--api.token-file="+writeFile(t, dir, "api.token", n.apiToken+"\n"),
		"--log.level=warn",
		// The spool is always on: a notification ClickHouse takes longer
		// than this to store is spooled (answered 200, stored later). These
		// tests read what they posted at once, so the wait is long; those
		// about the spool set their own.
		"--spool.store-timeout=1m",
	)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { n.done <- run(ctx, args, io.Discard, &syncWriter{buf: n.stderr}, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-n.done:
			if err != nil {
				t.Errorf("nines exited with %v; log:\n%s", err, n.stderr)
			}
		case <-time.After(40 * time.Second):
			t.Error("nines did not stop within 40s of cancel")
		}
	})
	n.waitReady()
	return n
}

func (n *nines) waitReady() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-n.done:
			n.t.Fatalf("nines exited early: %v", err)
		default:
		}
		resp, err := http.Get(n.base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.t.Fatal("nines not ready within 30s")
}

func (n *nines) do(method, path, token string, body any) (int, []byte) {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type incidentsPage struct {
	Incidents []struct {
		ID         string     `json:"id"`
		Service    string     `json:"service"`
		Title      string     `json:"title"`
		Impact     string     `json:"impact"`
		State      string     `json:"state"`
		StartedAt  *time.Time `json:"started_at"`
		ResolvedAt *time.Time `json:"resolved_at"`
		Alerts     []struct {
			Fingerprint string     `json:"fingerprint"`
			Status      string     `json:"status"`
			EndsAt      *time.Time `json:"ends_at"`
		} `json:"alerts"`
	} `json:"incidents"`
}

// sync waits until nines' deriver has applied everything nines answered
// 2xx for so far (POST /api/v1/sync): notifications are logged first and
// derived into incidents a moment later.
//
// Without an API token (nines started without one) it does nothing: the
// caller polls.
func (n *nines) sync() {
	n.t.Helper()
	if n.apiToken == "" {
		return
	}
	if code, b := n.do("POST", "/api/v1/sync", n.apiToken, nil); code != http.StatusOK {
		n.t.Fatalf("sync: %d %s", code, b)
	}
}

func (n *nines) incidents() incidentsPage {
	n.t.Helper()
	n.sync()
	code, b := n.do("GET", "/api/v1/incidents", "", nil)
	if code != http.StatusOK {
		n.t.Fatalf("list: %d %s", code, b)
	}
	var p incidentsPage
	if err := json.Unmarshal(b, &p); err != nil {
		n.t.Fatal(err)
	}
	return p
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// startAlertmanager runs the real Alertmanager with a webhook receiver
// pointing at nines, as a user would configure it.
func startAlertmanager(t *testing.T, ninesBase string) string {
	t.Helper()
	return startAlertmanagerConfig(t, alertmanagerConfig(ninesBase, "2s", "1h"))
}

// alertmanagerConfig routes every alert to nines' webhook, grouped by
// alertname and service, with the given group and repeat intervals.
func alertmanagerConfig(ninesBase, groupInterval, repeatInterval string) string {
	return fmt.Sprintf(`route:
  receiver: nines
  group_by: ['alertname', 'service']
  group_wait: 1s
  group_interval: %s
  repeat_interval: %s
receivers:
  - name: nines
    webhook_configs:
      - url: %s/api/v1/alerts
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: s3cr3t-token
`, groupInterval, repeatInterval, ninesBase)
}

// startAlertmanagerConfig runs the real Alertmanager with the
// configuration cfg and returns its base URL.
func startAlertmanagerConfig(t *testing.T, cfg string) string {
	t.Helper()
	bin := alertmanagerBinary(t)
	dir := t.TempDir()
	addr := freePort(t)
	cmd := exec.Command(bin,
		"--config.file="+writeFile(t, dir, "alertmanager.yml", cfg),
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
		"--log.level=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	eventually(t, 20*time.Second, "alertmanager ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

func postAlerts(t *testing.T, amBase string, alerts []map[string]any) {
	t.Helper()
	b, _ := json.Marshal(alerts)
	resp, err := http.Post(amBase+"/api/v2/alerts", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("alertmanager said %d: %s", resp.StatusCode, body)
	}
}

// TestAcceptanceAlertmanager drives the whole pipeline: alerts pushed into
// a real Alertmanager reach nines over its webhook, open incidents in a
// real ClickHouse, and resolve with the alerts' own end time.
func TestAcceptanceAlertmanager(t *testing.T) {
	dsn := chtest.Database(t)
	alertmanagerBinary(t)
	n := startNines(t, dsn)
	am := startAlertmanager(t, n.base)

	start := time.Now().Add(-2 * time.Minute).UTC().Truncate(time.Second)
	checkout := map[string]any{
		"labels":       map[string]string{"alertname": "CheckoutDown", "service": "checkout", "severity": "critical", "team": "payments"},
		"annotations":  map[string]string{"summary": "Checkout service is down", "runbook_url": "https://runbooks.example.com/checkout-down"},
		"startsAt":     start.Format(time.RFC3339),
		"generatorURL": "http://prometheus:9090/graph?g0.expr=up",
	}
	search := map[string]any{
		"labels":      map[string]string{"alertname": "HighLatency", "job": "search", "instance": "search-1:8080", "severity": "warning"},
		"annotations": map[string]string{"summary": "p99 latency above 500ms"},
		"startsAt":    start.Format(time.RFC3339),
	}
	postAlerts(t, am, []map[string]any{checkout, search})

	var page incidentsPage
	eventually(t, 30*time.Second, "two incidents to open", func() bool {
		page = n.incidents()
		return len(page.Incidents) == 2
	})
	got := map[string]string{}
	for _, inc := range page.Incidents {
		got[inc.Service] = inc.Impact + "/" + inc.State + "/" + fmt.Sprint(len(inc.Alerts))
		if inc.StartedAt == nil || !inc.StartedAt.Equal(start) {
			t.Errorf("%s started_at = %v, want %v", inc.Service, inc.StartedAt, start)
		}
	}
	// The search alert has no service label: its job names the service.
	want := map[string]string{"checkout": "outage/firing/1", "search": "degraded/firing/1"}
	for svc, w := range want {
		if got[svc] != w {
			t.Errorf("%s = %q, want %q (all: %v)", svc, got[svc], w, got)
		}
	}

	// Resolving by API needs the API token.
	var searchID string
	for _, inc := range page.Incidents {
		if inc.Service == "search" {
			searchID = inc.ID
		}
	}
	if code, b := n.do("POST", "/api/v1/incidents/"+searchID+"/resolve", "", nil); code != http.StatusUnauthorized {
		t.Errorf("resolve without token: %d %s, want 401", code, b)
	}
	if code, b := n.do("POST", "/api/v1/incidents/"+searchID+"/ack", n.apiToken, map[string]string{"actor": "alice"}); code != http.StatusOK || !strings.Contains(string(b), `"state":"acknowledged"`) {
		t.Errorf("ack: %d %s", code, b)
	}

	// The checkout alert ends: Alertmanager sends the resolve, and the
	// incident ends at the alert's endsAt, not when nines heard of it.
	end := time.Now().Add(-30 * time.Second).UTC().Truncate(time.Second)
	checkout["endsAt"] = end.Format(time.RFC3339)
	postAlerts(t, am, []map[string]any{checkout})
	eventually(t, 30*time.Second, "checkout to resolve", func() bool {
		for _, inc := range n.incidents().Incidents {
			if inc.Service == "checkout" && inc.State == "resolved" {
				if inc.ResolvedAt == nil || !inc.ResolvedAt.Equal(end) {
					t.Fatalf("resolved_at = %v, want %v", inc.ResolvedAt, end)
				}
				return true
			}
		}
		return false
	})
	code, b := n.do("GET", "/api/v1/incidents/"+searchID, "", nil)
	if code != http.StatusOK || !strings.Contains(string(b), `"kind":"acknowledged"`) {
		t.Errorf("get search incident: %d %s", code, b)
	}
}
