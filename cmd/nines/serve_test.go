package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
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
