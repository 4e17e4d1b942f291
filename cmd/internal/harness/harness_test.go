package harness_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/cmd/internal/harness"
)

func TestChildLifecycle(t *testing.T) {
	t.Parallel()
	log := filepath.Join(t.TempDir(), "child.log")
	// A program without a SIGTERM handler: the signal ends it.
	c, err := harness.Start("sleeper", log, []string{"GREETING=hello"}, "/bin/sh", "-c", `echo "$GREETING"; exec sleep 30`)
	if err != nil {
		t.Fatal(err)
	}
	if c.PID() <= 0 {
		t.Errorf("PID = %d", c.PID())
	}
	deadline := time.Now().Add(5 * time.Second)
	for harness.Tail(log, 1) != "hello" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := harness.Tail(log, 1); got != "hello" {
		t.Errorf("Tail = %q, want the child's output", got)
	}
	if rss, err := harness.RSS(c.PID()); err != nil || rss <= 0 {
		t.Errorf("RSS = %d, %v", rss, err)
	}
	took, err := c.Stop(5 * time.Second)
	if !harness.Signaled(err) || took > 5*time.Second {
		t.Errorf("Stop = %v, %v; want ended by the signal at once", took, err)
	}

	// Restarted on the same log, killed.
	c, err = harness.Start("sleeper", log, nil, "/bin/sh", "-c", `echo again; exec sleep 30`)
	if err != nil {
		t.Fatal(err)
	}
	c.Kill()
	if b, _ := os.ReadFile(log); !strings.HasPrefix(string(b), "hello\n") {
		t.Errorf("a restart truncated the log: %q", b)
	}
}

func TestWaitReady(t *testing.T) {
	t.Parallel()
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ready.Close()
	dir := t.TempDir()
	c, err := harness.Start("server", filepath.Join(dir, "ok.log"), nil, "/bin/sh", "-c", "exec sleep 30")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Kill()
	if err := c.WaitReady(context.Background(), ready.URL, 5*time.Second); err != nil {
		t.Errorf("WaitReady on a ready server: %v", err)
	}

	// A program that dies during start-up: the error shows its last words.
	dead, err := harness.Start("crasher", filepath.Join(dir, "crash.log"), nil, "/bin/sh", "-c", "echo cannot bind; exit 3")
	if err != nil {
		t.Fatal(err)
	}
	err = dead.WaitReady(context.Background(), "http://127.0.0.1:1/", 5*time.Second)
	if err == nil || !strings.Contains(err.Error(), "exited during start-up") || !strings.Contains(err.Error(), "cannot bind") {
		t.Errorf("WaitReady on a dead child = %v", err)
	}
	if _, err := dead.Stop(time.Second); err == nil || harness.Signaled(err) {
		t.Errorf("Stop of a child that exited 3 = %v, want its exit status", err)
	}
}

func TestProcessFigures(t *testing.T) {
	t.Parallel()
	cpu, peak, err := harness.ProcStats(os.Getpid())
	if err != nil || cpu < 0 || peak <= 0 {
		t.Errorf("ProcStats = %v, %d, %v", cpu, peak, err)
	}
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "internal", "harness", "harness.go")); err != nil {
		t.Errorf("RepoRoot = %s: %v", root, err)
	}
	if addr, err := harness.FreeAddr(); err != nil || !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Errorf("FreeAddr = %q, %v", addr, err)
	}
}

func TestIncidentsPages(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("cursor") {
		case "":
			_, _ = w.Write([]byte(`{"incidents":[{"id":"inc-1"},{"id":"inc-2"}],"next_cursor":"c2"}`))
		case "c2":
			_, _ = w.Write([]byte(`{"incidents":[{"id":"inc-3"}],"next_cursor":""}`))
		default:
			http.Error(w, `{"error":"bad cursor"}`, http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	type inc struct {
		ID string `json:"id"`
	}
	got, err := harness.Incidents[inc](context.Background(), srv.Client(), srv.URL)
	if err != nil || len(got) != 3 || got[2].ID != "inc-3" {
		t.Errorf("Incidents = %v, %v; want inc-1, inc-2, inc-3", got, err)
	}
	var v any
	if err := harness.GetJSON(context.Background(), srv.Client(), srv.URL+"/?cursor=x", &v); err == nil || !strings.Contains(err.Error(), "bad cursor") {
		t.Errorf("GetJSON of a 400 = %v, want the body in the error", err)
	}
}
