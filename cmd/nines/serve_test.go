package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// TestEnvironmentIsOptIn: only the variables deployments use set flags;
// the flag wins over its variable, and a bad value names the variable.
// (Not parallel: it sets the process' environment, as kingpin reads it.)
func TestEnvironmentIsOptIn(t *testing.T) {
	t.Setenv("NINES_CLICKHOUSE_DSN", "clickhouse://env:9000/x")
	t.Setenv("NINES_WEB_LISTEN_ADDRESS", "127.0.0.1:1")
	t.Setenv("NINES_LOG_FORMAT", "json")
	// Variables of flags that do not opt in are ignored.
	t.Setenv("NINES_WEBHOOK_MAX_BODY_BYTES", "lots")
	t.Setenv("NINES_CATALOG_FILE", "/nonexistent/catalog.yml")
	c := newCLI(io.Discard, io.Discard, nil)
	if _, err := c.parse([]string{"serve", "--web.listen-address=127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	o := c.serve
	if o.store.dsn != "clickhouse://env:9000/x" || strings.Join(*o.web.WebListenAddresses, ",") != "127.0.0.1:2" {
		t.Errorf("dsn %q listen %q, want the DSN from the environment and the address from the flag", o.store.dsn, *o.web.WebListenAddresses)
	}
	if o.maxBody != 10<<20 || o.catalogFile != "" {
		t.Errorf("max body %d, catalog %q: read from variables nines does not read", o.maxBody, o.catalogFile)
	}
	if got := c.logConfig.Format.String(); got != "json" {
		t.Errorf("log format %q, want json from NINES_LOG_FORMAT", got)
	}

	t.Setenv("NINES_LOG_LEVEL", "loud")
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"serve"}, &stdout, &stderr, nil)
	if err == nil || !strings.Contains(err.Error(), "NINES_LOG_LEVEL") || exitCode(err) != 2 {
		t.Errorf("bad NINES_LOG_LEVEL: err = %v, want a usage error naming it", err)
	}

	// The help shows each variable next to its flag.
	stdout.Reset()
	if err := run(t.Context(), []string{"serve", "--help"}, &stdout, &stderr, nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{envDSN, envCluster, envListen, envLogLevel, envLogFormat} {
		if !strings.Contains(stdout.String(), "($"+v+")") {
			t.Errorf("serve --help does not show $%s", v)
		}
	}
}

// TestChangeRecordIgnoresNinesVersion: docker-compose.yml's NINES_VERSION
// is an image tag; it is not the version a change records.
func TestChangeRecordIgnoresNinesVersion(t *testing.T) {
	t.Setenv("NINES_VERSION", "v9.9.9")
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"change", "record", "--service=checkout", "--dry-run"}, &stdout, &stderr, nil)
	if err != nil {
		t.Fatalf("change record --dry-run: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stdout.String(), "v9.9.9") || !strings.Contains(stdout.String(), "would record") {
		t.Errorf("change record --dry-run said %q: want a change without NINES_VERSION's version", stdout.String())
	}
}

func TestLoadConfigStrict(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "config.yml", "incidents:\n  reopen_window: 10m\n  severity_labels: x\n")
	if _, err := loadConfig(p); err == nil || !strings.Contains(err.Error(), "severity_labels") {
		t.Errorf("unknown field: err = %v, want it named", err)
	}
	p = writeFile(t, dir, "ok.yml", "incidents:\n  reopen_window: 10m\n  impacts: {page: outage}\n")
	cfg, err := loadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Incidents.ReopenWindow.Minutes() != 10 || cfg.Incidents.Impacts["page"].String() != "outage" {
		t.Errorf("config = %+v", cfg.Incidents)
	}
	p = writeFile(t, dir, "bad.yml", "incidents:\n  impacts: {page: disaster}\n")
	if _, err := loadConfig(p); err == nil || !strings.Contains(err.Error(), "disaster") {
		t.Errorf("bad impact: err = %v", err)
	}
}

// runtimeAfter starts nines serve with flags (ClickHouse need not answer:
// nines serves /-/healthy while it waits) and returns the Go memory limit
// and GC percentage once it is up, then puts back what it found.
func runtimeAfter(t *testing.T, flags ...string) (memLimit int64, gcPercent int) {
	t.Helper()
	debug.SetMemoryLimit(math.MaxInt64)
	prevGC := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prevGC)
	dir := t.TempDir()
	listen := freePort(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var stderr syncWriter
	stderr.buf = &bytes.Buffer{}
	go func() {
		done <- run(ctx, append([]string{"serve", "--storage.path=" + dir, "--web.listen-address=" + listen,
			"--clickhouse.dsn=clickhouse://" + freePort(t) + "/nines", "--clickhouse.dial-timeout=1s",
			"--webhook.bearer-token-file=" + writeFile(t, dir, "webhook.token", webhookToken+"\n")}, flags...), io.Discard, &stderr, nil)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("nines exited with %v; log:\n%s", err, stderr.buf)
		}
	}()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get("http://" + listen + "/-/healthy"); err == nil {
			resp.Body.Close()
			gc := debug.SetGCPercent(100)
			return debug.SetMemoryLimit(-1), gc
		}
	}
	t.Fatalf("nines did not answer /-/healthy within 20s; log:\n%s", stderr.buf)
	return 0, 0
}

// TestAutoGoMemLimit: as Prometheus does, nines serve gives the Go heap a
// soft limit of --auto-gomemlimit.ratio of the container's (or the
// machine's) memory, so that a storm makes the garbage collector work
// harder before the container is OOM-killed; GOMEMLIMIT wins, the flag
// turns it off, and a ratio out of (0, 1] is a usage error naming it.
// (Not parallel: the limit is the process's, and it sets the environment.)
func TestAutoGoMemLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	t.Cleanup(func() { debug.SetMemoryLimit(math.MaxInt64) })
	limitAfter := func(t *testing.T, flags ...string) int64 {
		t.Helper()
		limit, _ := runtimeAfter(t, flags...)
		return limit
	}

	whole := limitAfter(t, "--auto-gomemlimit.ratio=1")
	if whole == math.MaxInt64 || whole <= 0 {
		t.Fatalf("--auto-gomemlimit.ratio=1: the Go memory limit is %d, want the container's or the machine's memory", whole)
	}
	if got := limitAfter(t); math.Abs(float64(got)/float64(whole)-0.9) > 0.01 {
		t.Errorf("by default: the Go memory limit is %d, want 0.9 of %d", got, whole)
	}
	if got := limitAfter(t, "--auto-gomemlimit.ratio=0.5"); math.Abs(float64(got)/float64(whole)-0.5) > 0.01 {
		t.Errorf("--auto-gomemlimit.ratio=0.5: the Go memory limit is %d, want half of %d", got, whole)
	}
	if got := limitAfter(t, "--no-auto-gomemlimit"); got != math.MaxInt64 {
		t.Errorf("--no-auto-gomemlimit: the Go memory limit is %d, want none", got)
	}
	t.Setenv("GOMEMLIMIT", "300MiB")
	if got := limitAfter(t); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set (the runtime read it at start): nines changed the limit to %d", got)
	}
	t.Setenv("GOMEMLIMIT", "")
	err := run(t.Context(), []string{"serve", "--auto-gomemlimit.ratio=1.5", "--webhook.allow-unauthenticated", "--clickhouse.dsn=clickhouse://127.0.0.1:1/nines"}, io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "--auto-gomemlimit.ratio") || exitCode(err) != 2 {
		t.Errorf("--auto-gomemlimit.ratio=1.5: err = %v, want a usage error naming the flag", err)
	}
}

// TestRuntimeGOGC: nines sets the garbage collector's GOGC to
// --runtime.gogc (lower than Go's 100 by default, as Prometheus), unless
// GOGC is in the environment; 0 is a usage error naming the flag. (Not
// parallel, as TestAutoGoMemLimit.)
func TestRuntimeGOGC(t *testing.T) {
	t.Setenv("GOGC", "")
	if _, got := runtimeAfter(t); got != defaultGOGC {
		t.Errorf("by default: GOGC is %d, want %d", got, defaultGOGC)
	}
	if _, got := runtimeAfter(t, "--runtime.gogc=80"); got != 80 {
		t.Errorf("--runtime.gogc=80: GOGC is %d", got)
	}
	t.Setenv("GOGC", "120")
	if _, got := runtimeAfter(t, "--runtime.gogc=80"); got != 100 {
		t.Errorf("with GOGC set (the runtime read it at start): nines changed GOGC to %d", got)
	}
	t.Setenv("GOGC", "")
	err := run(t.Context(), []string{"serve", "--runtime.gogc=0", "--webhook.allow-unauthenticated", "--clickhouse.dsn=clickhouse://127.0.0.1:1/nines"}, io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "--runtime.gogc") || exitCode(err) != 2 {
		t.Errorf("--runtime.gogc=0: err = %v, want a usage error naming the flag", err)
	}
}
