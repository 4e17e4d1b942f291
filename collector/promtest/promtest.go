// Package promtest runs Debian's Prometheus tools for integration tests:
// a real Prometheus server that scrapes a test's target, queries through its
// HTTP API, and promtool. Tests that need a missing binary skip with a
// message, or fail when NINES_REQUIRE_INTEGRATION=1.
package promtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Environment variables read by this package.
const (
	// PrometheusEnv names the prometheus binary (default: prometheus on
	// PATH, /usr/bin/prometheus on Debian).
	PrometheusEnv = "NINES_TEST_PROMETHEUS"
	// PromtoolEnv names the promtool binary (default: promtool on PATH).
	PromtoolEnv = "NINES_TEST_PROMTOOL"
	// RequireEnv, set to 1, turns a missing binary into a failure.
	RequireEnv = "NINES_REQUIRE_INTEGRATION"
)

// Prometheus returns the prometheus binary, or skips the test.
func Prometheus(t testing.TB) string {
	t.Helper()
	return binary(t, PrometheusEnv, "prometheus")
}

// Promtool returns the promtool binary, or skips the test.
func Promtool(t testing.TB) string {
	t.Helper()
	return binary(t, PromtoolEnv, "promtool")
}

func binary(t testing.TB, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s not found but %s=1: install Debian's prometheus package or set %s", name, RequireEnv, env)
	}
	t.Skipf("integration test: %s not found; install Debian's prometheus package or set %s", name, env)
	return ""
}

// lockedBuffer collects a process's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start runs a Prometheus server that scrapes target (host:port, path
// /metrics) every second as job "nines", waits until it is ready, and
// returns its base URL. It stops when the test ends; its output is logged
// if the test failed.
func Start(t testing.TB, target string) string {
	t.Helper()
	return StartConfig(t, fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: nines
    static_configs:
      - targets: [%q]
`, target), nil)
}

// StartConfig runs a Prometheus server with the configuration cfg, beside
// files (name → contents, e.g. the rule files cfg names), waits until it
// is ready, and returns its base URL. It stops when the test ends.
func StartConfig(t testing.TB, cfg string, files map[string]string) string {
	t.Helper()
	bin := Prometheus(t)
	dir := t.TempDir()
	files = maps.Clone(files)
	if files == nil {
		files = map[string]string{}
	}
	files["prometheus.yml"] = cfg
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
	)
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30s: %v\n%s", err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Sample is one series of an instant query's answer.
type Sample struct {
	Metric map[string]string
	Value  float64
}

// Query runs an instant query through Prometheus' HTTP API.
func Query(t testing.TB, base, q string) []Sample {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"` // [time, "value"]
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	if body.Status != "success" {
		t.Fatalf("query %s: %s %s", q, body.Status, body.Error)
	}
	out := make([]Sample, 0, len(body.Data.Result))
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("query %s: value %v: %v", q, r.Value[1], err)
		}
		out = append(out, Sample{Metric: r.Metric, Value: v})
	}
	return out
}

// Await runs Query until it returns at least n series, for up to a minute
// (Prometheus needs a scrape or two), and returns the last answer.
func Await(t testing.TB, base, q string, n int) []Sample {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got := Query(t, base, q)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute, %s has %d series, want %d: %v", q, len(got), n, got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
