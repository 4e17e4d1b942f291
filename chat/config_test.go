package chat

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ninesops/nines/incidents"
)

func TestConfigDefaults(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.OperationsChannel != "#operations" || c.FlapInterval != 5*time.Minute || c.Digest.Cadence != "weekly" ||
		c.Digest.Weekday != "monday" || c.Digest.At != "09:00" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
operations_channel: "#ops"
grafana_url: https://grafana.example.com
flap_interval: 2m
rules:
  - {channel: owner, min_impact: degraded}
  - {channel: operations, min_impact: outage, states: [firing]}
  - {channel: "#leads", services: [checkout], labels: {team: payments}}
webhooks:
  - {channel: "#web-ops", url: "https://hooks.slack.com/services/T/B/x"}
digest: {cadence: daily, at: "08:30", timezone: Europe/Stockholm}
`
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(src)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.FlapInterval != 2*time.Minute || *c.Rules[0].MinImpact != incidents.ImpactDegraded || c.Rules[1].States[0] != incidents.StateFiring {
		t.Errorf("config = %+v", c)
	}
	urls, err := c.WebhookURLs()
	if err != nil || urls["#web-ops"] == "" {
		t.Errorf("webhook URLs = %v, %v", urls, err)
	}
}

func TestConfigErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "hook")
	if err := os.WriteFile(file, []byte("not a url\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"operations channel", func(c *Config) { c.OperationsChannel = "operations" }, "chat.operations_channel"},
		{"grafana url", func(c *Config) { c.GrafanaURL = "grafana:3000" }, "chat.grafana_url"},
		{"negative flap", func(c *Config) { c.FlapInterval = -time.Second }, "chat.flap_interval"},
		{"rule without channel", func(c *Config) { c.Rules = []Rule{{}} }, "chat.rules[0].channel"},
		{"rule channel", func(c *Config) { c.Rules = []Rule{{Channel: "ops team"}} }, "chat.rules[0].channel"},
		{"rule state", func(c *Config) { c.Rules = []Rule{{Channel: "owner", States: []incidents.State{"open"}}} }, "chat.rules[0].states[0]"},
		{"webhook url and file", func(c *Config) {
			c.Webhooks = []Webhook{{Channel: "#a", URL: "https://x", URLFile: "/f"}}
		}, "chat.webhooks[0]"},
		{"webhook twice", func(c *Config) {
			c.Webhooks = []Webhook{{Channel: "#a", URL: "https://x"}, {Channel: "#a", URL: "https://y"}}
		}, "chat.webhooks[1].channel"},
		{"digest cadence", func(c *Config) { c.Digest.Cadence = "monthly" }, "chat.digest.cadence"},
		{"digest weekday", func(c *Config) { c.Digest.Weekday = "someday" }, "chat.digest.weekday"},
		{"digest at", func(c *Config) { c.Digest.At = "9am" }, "chat.digest.at"},
		{"digest zone", func(c *Config) { c.Digest.TimeZone = "Mars/Olympus" }, "chat.digest.timezone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	c := DefaultConfig()
	c.Webhooks = []Webhook{{Channel: "#a", URLFile: file}}
	if _, err := c.WebhookURLs(); err == nil || strings.Contains(err.Error(), "not a url") {
		t.Errorf("WebhookURLs with a bad file = %v, want an error that does not show the secret", err)
	}
}

func TestSchedule(t *testing.T) {
	sto, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		t.Skip("no time zone data")
	}
	// Monday 2026-11-23.
	mon9 := time.Date(2026, 11, 23, 9, 0, 0, 0, sto)
	tests := []struct {
		name      string
		d         DigestConfig
		now       time.Time
		last      time.Time
		next      time.Time
		wantNoSch bool
	}{
		{"weekly, just due", DigestConfig{Cadence: "weekly", Weekday: "monday", At: "09:00", TimeZone: "Europe/Stockholm"},
			mon9, mon9, mon9.AddDate(0, 0, 7), false},
		{"weekly, a minute early", DigestConfig{Cadence: "weekly", Weekday: "monday", At: "09:00", TimeZone: "Europe/Stockholm"},
			mon9.Add(-time.Minute), mon9.AddDate(0, 0, -7), mon9, false},
		{"weekly, midweek", DigestConfig{Cadence: "weekly", Weekday: "mon", At: "09:00", TimeZone: "Europe/Stockholm"},
			mon9.AddDate(0, 0, 3), mon9, mon9.AddDate(0, 0, 7), false},
		{"daily", DigestConfig{Cadence: "daily", Weekday: "monday", At: "09:00", TimeZone: "Europe/Stockholm"},
			mon9.Add(-time.Hour), mon9.AddDate(0, 0, -1), mon9, false},
		{"off", DigestConfig{Cadence: "off", Weekday: "monday", At: "09:00"}, mon9, time.Time{}, time.Time{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc, err := tc.d.schedule(time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantNoSch {
				if sc != nil {
					t.Error("want no schedule")
				}
				return
			}
			if got := sc.last(tc.now); !got.Equal(tc.last) {
				t.Errorf("last(%v) = %v, want %v", tc.now, got, tc.last)
			}
			if got := sc.next(tc.now); !got.Equal(tc.next) {
				t.Errorf("next(%v) = %v, want %v", tc.now, got, tc.next)
			}
		})
	}
	// Across the change to winter time the digest stays at 09:00 local.
	sc, _ := DigestConfig{Cadence: "weekly", Weekday: "monday", At: "09:00", TimeZone: "Europe/Stockholm"}.schedule(nil)
	oct := time.Date(2026, 10, 26, 12, 0, 0, 0, sto) // the Monday after the change
	if got := sc.last(oct); got.Hour() != 9 || got.Day() != 26 {
		t.Errorf("last after DST = %v", got)
	}
}

func TestRoute(t *testing.T) {
	outage, degraded := incidents.ImpactOutage, incidents.ImpactDegraded
	inc := func(service string, impact incidents.Impact, state incidents.State) *incidents.Incident {
		return &incidents.Incident{Service: service, Impact: impact, State: state, Labels: map[string]string{"team": "payments"}}
	}
	tests := []struct {
		name  string
		rules []Rule
		inc   *incidents.Incident
		owner string
		want  []string
	}{
		{"no rules: operations and owner", nil, inc("checkout", degraded, "firing"), "#checkout", []string{"#operations", "#checkout"}},
		{"no owner channel", nil, inc("search", outage, "firing"), "", []string{"#operations"}},
		{"owner is operations", nil, inc("ops", outage, "firing"), "#operations", []string{"#operations"}},
		{"degraded to the owner only", []Rule{{Channel: "owner", MinImpact: &degraded}, {Channel: "operations", MinImpact: &outage}},
			inc("checkout", degraded, "firing"), "#checkout", []string{"#checkout"}},
		{"outage to both", []Rule{{Channel: "owner", MinImpact: &degraded}, {Channel: "operations", MinImpact: &outage}},
			inc("checkout", outage, "firing"), "#checkout", []string{"#operations", "#checkout"}},
		{"impact none to neither", []Rule{{Channel: "owner", MinImpact: &degraded}, {Channel: "operations", MinImpact: &outage}},
			inc("checkout", incidents.ImpactNone, "firing"), "#checkout", []string{}},
		{"unnamed destination keeps its default", []Rule{{Channel: "operations", MinImpact: &outage}},
			inc("checkout", degraded, "firing"), "#checkout", []string{"#checkout"}},
		{"a rule's own channel", []Rule{{Channel: "#leads", Services: []string{"checkout"}, Labels: map[string]string{"team": "payments"}}},
			inc("checkout", degraded, "firing"), "#checkout", []string{"#operations", "#checkout", "#leads"}},
		{"a rule's own channel, other service", []Rule{{Channel: "#leads", Services: []string{"checkout"}}},
			inc("search", degraded, "firing"), "", []string{"#operations"}},
		{"state filter", []Rule{{Channel: "operations", States: []incidents.State{"firing"}}},
			inc("checkout", outage, "resolved"), "#checkout", []string{"#checkout"}},
		{"label filter", []Rule{{Channel: "owner", Labels: map[string]string{"team": "web"}}},
			inc("checkout", outage, "firing"), "#checkout", []string{"#operations"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Rules = tc.rules
			if got := c.Route(tc.inc, tc.owner); !slices.Equal(got, tc.want) {
				t.Errorf("Route = %v, want %v", got, tc.want)
			}
		})
	}
}
