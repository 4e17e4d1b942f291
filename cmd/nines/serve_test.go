package main

import (
	"strings"
	"testing"
)

func TestEnvName(t *testing.T) {
	tests := map[string]string{
		"clickhouse.dsn":            "NINES_CLICKHOUSE_DSN",
		"webhook.bearer-token-file": "NINES_WEBHOOK_BEARER_TOKEN_FILE",
		"web.listen-address":        "NINES_WEB_LISTEN_ADDRESS",
	}
	for flag, want := range tests {
		if got := envName(flag); got != want {
			t.Errorf("envName(%s) = %s, want %s", flag, got, want)
		}
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	env := map[string]string{"NINES_CLICKHOUSE_DSN": "clickhouse://env:9000/x", "NINES_WEB_LISTEN_ADDRESS": "127.0.0.1:1"}
	fs, o := serveFlags(&strings.Builder{})
	// The flag wins over the environment; unset flags come from it.
	if err := parseFlags(fs, []string{"--web.listen-address=127.0.0.1:2"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if o.store.dsn != "clickhouse://env:9000/x" || o.listen != "127.0.0.1:2" {
		t.Errorf("dsn %q listen %q", o.store.dsn, o.listen)
	}
	fs, _ = serveFlags(&strings.Builder{})
	err := parseFlags(fs, nil, func(k string) string {
		if k == "NINES_WEBHOOK_MAX_BODY_BYTES" {
			return "lots"
		}
		return ""
	})
	if err == nil || !strings.Contains(err.Error(), "NINES_WEBHOOK_MAX_BODY_BYTES") {
		t.Errorf("bad env value: err = %v, want it named", err)
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
