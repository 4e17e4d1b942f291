package chat

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ninesops/nines/incidents"
)

// Defaults of Config.
const (
	DefaultOperationsChannel = "#operations"
	DefaultFlapInterval      = 5 * time.Minute
	DefaultPollInterval      = time.Second
	DefaultLookback          = 5 * time.Minute
	DefaultChannelInterval   = time.Second
	DefaultDigestCadence     = CadenceWeekly
	DefaultDigestWeekday     = "monday"
	DefaultDigestAt          = "09:00"
)

// Rule destinations with a meaning of their own; any other value is a
// channel name (#name) or ID.
const (
	DestOperations = "operations"
	DestOwner      = "owner"
)

// Digest cadences.
const (
	CadenceWeekly = "weekly"
	CadenceDaily  = "daily"
	CadenceOff    = "off"
)

// Config is the `chat:` section of nines' YAML config file.
type Config struct {
	// OperationsChannel hears about every incident the rules let through
	// (DefaultOperationsChannel).
	OperationsChannel string `yaml:"operations_channel"`
	// GrafanaURL, when set, links each incident to its service's
	// dashboard (<grafana_url>/d/<uid>) unless the catalog gives the
	// service a dashboard_url.
	GrafanaURL string `yaml:"grafana_url"`
	// FlapInterval bounds alert churn in a thread: at most one reply per
	// incident and channel per interval, later changes summarized with a
	// count (DefaultFlapInterval).
	FlapInterval time.Duration `yaml:"flap_interval"`
	// Rules filter where incidents go. A destination (operations, owner or
	// a channel) that no rule names gets every incident when it is
	// operations or owner; one that rules name gets the incidents that at
	// least one of its rules matches. Once an incident's message is
	// posted in a channel it is kept up to date there whatever the rules.
	Rules []Rule `yaml:"rules"`
	// Webhooks are incoming-webhook URLs for channels without the bot:
	// posts only (the opening and the resolve), no updates, no threads.
	Webhooks []Webhook `yaml:"webhooks"`
	// Digest schedules the availability report.
	Digest DigestConfig `yaml:"digest"`
	// PollInterval is how often the sender looks for new timeline events
	// (DefaultPollInterval).
	PollInterval time.Duration `yaml:"poll_interval"`
	// Lookback is how far behind its cursor the sender re-reads events,
	// for writes still in flight and clocks that differ between replicas
	// (DefaultLookback).
	Lookback time.Duration `yaml:"lookback"`
	// ChannelInterval is the least time between two writes to one channel
	// (DefaultChannelInterval: Slack allows about one message per second
	// per channel).
	ChannelInterval time.Duration `yaml:"channel_interval"`
}

// Rule lets incidents through to one destination. Every condition set
// must hold.
type Rule struct {
	// Channel is operations, owner, or a channel (#name or ID).
	Channel string `yaml:"channel"`
	// MinImpact is the least impact: none, degraded or outage.
	MinImpact *incidents.Impact `yaml:"min_impact"`
	// Services, when set, lists the services matched.
	Services []string `yaml:"services"`
	// States, when set, lists the states matched (firing, acknowledged,
	// resolved) when the incident is first routed.
	States []incidents.State `yaml:"states"`
	// Labels, when set, must all equal the incident's common labels
	// (e.g. severity: critical).
	Labels map[string]string `yaml:"labels"`
}

// Webhook is an incoming-webhook URL for a channel: give url or url_file,
// not both.
type Webhook struct {
	Channel string `yaml:"channel"`
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
}

// DigestConfig schedules the availability digest.
type DigestConfig struct {
	// Cadence is weekly, daily or off (DefaultDigestCadence).
	Cadence string `yaml:"cadence"`
	// Weekday is the day of weekly digests (DefaultDigestWeekday).
	Weekday string `yaml:"weekday"`
	// At is the local time of day, HH:MM (DefaultDigestAt).
	At string `yaml:"at"`
	// TimeZone names the zone of At; empty means the catalog's.
	TimeZone string `yaml:"timezone"`
}

// DefaultConfig returns the configuration used when the file says nothing.
func DefaultConfig() Config {
	var c Config
	c.defaults()
	return c
}

func (c *Config) defaults() {
	if c.OperationsChannel == "" {
		c.OperationsChannel = DefaultOperationsChannel
	}
	if c.FlapInterval == 0 {
		c.FlapInterval = DefaultFlapInterval
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Lookback == 0 {
		c.Lookback = DefaultLookback
	}
	if c.ChannelInterval == 0 {
		c.ChannelInterval = DefaultChannelInterval
	}
	if c.Digest.Cadence == "" {
		c.Digest.Cadence = DefaultDigestCadence
	}
	if c.Digest.Weekday == "" {
		c.Digest.Weekday = DefaultDigestWeekday
	}
	if c.Digest.At == "" {
		c.Digest.At = DefaultDigestAt
	}
}

// Validate applies defaults and names the first bad field.
func (c *Config) Validate() error {
	c.defaults()
	if err := checkChannel(c.OperationsChannel); err != nil {
		return fmt.Errorf("chat.operations_channel: %w", err)
	}
	if c.GrafanaURL != "" {
		if u, err := url.Parse(c.GrafanaURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("chat.grafana_url: want an http(s) URL, got %q", c.GrafanaURL)
		}
	}
	for name, d := range map[string]time.Duration{
		"flap_interval": c.FlapInterval, "poll_interval": c.PollInterval,
		"lookback": c.Lookback, "channel_interval": c.ChannelInterval,
	} {
		if d < 0 {
			return fmt.Errorf("chat.%s: must not be negative, got %s", name, d)
		}
	}
	for i, r := range c.Rules {
		p := fmt.Sprintf("chat.rules[%d]", i)
		switch r.Channel {
		case "":
			return fmt.Errorf("%s.channel: required (operations, owner or a channel)", p)
		case DestOperations, DestOwner:
		default:
			if err := checkChannel(r.Channel); err != nil {
				return fmt.Errorf("%s.channel: %w", p, err)
			}
		}
		for j, st := range r.States {
			if _, err := incidents.ParseState(string(st)); err != nil {
				return fmt.Errorf("%s.states[%d]: %w", p, j, err)
			}
		}
		for j, s := range r.Services {
			if strings.TrimSpace(s) == "" {
				return fmt.Errorf("%s.services[%d]: empty service name", p, j)
			}
		}
	}
	seen := map[string]bool{}
	for i, w := range c.Webhooks {
		p := fmt.Sprintf("chat.webhooks[%d]", i)
		if err := checkChannel(w.Channel); err != nil {
			return fmt.Errorf("%s.channel: %w", p, err)
		}
		if seen[w.Channel] {
			return fmt.Errorf("%s.channel: %s has two webhooks", p, w.Channel)
		}
		seen[w.Channel] = true
		if (w.URL == "") == (w.URLFile == "") {
			return fmt.Errorf("%s: give url or url_file, not both or neither", p)
		}
		if w.URL != "" {
			if err := checkWebhookURL(w.URL); err != nil {
				return fmt.Errorf("%s.url: %w", p, err)
			}
		}
	}
	if _, err := c.Digest.schedule(nil); err != nil {
		return err
	}
	return nil
}

// WebhookURLs returns the incoming-webhook URL of each channel that has
// one, reading url_file entries. The URLs are secrets: errors never show
// them.
func (c *Config) WebhookURLs() (map[string]string, error) {
	out := make(map[string]string, len(c.Webhooks))
	for i, w := range c.Webhooks {
		u := w.URL
		if w.URLFile != "" {
			b, err := os.ReadFile(w.URLFile)
			if err != nil {
				return nil, fmt.Errorf("chat.webhooks[%d].url_file: %w", i, err)
			}
			u = strings.TrimSpace(string(b))
			if err := checkWebhookURL(u); err != nil {
				return nil, fmt.Errorf("chat.webhooks[%d].url_file: %s: %w", i, w.URLFile, err)
			}
		}
		out[w.Channel] = u
	}
	return out, nil
}

func checkWebhookURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http(s) URL")
	}
	return nil
}

// checkChannel accepts #name or a Slack channel ID.
func checkChannel(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty channel")
	case strings.ContainsAny(s, " \t\n,<>&"):
		return fmt.Errorf("channel %q: want #name or a channel ID", s)
	case strings.HasPrefix(s, "#") && len(s) > 1:
		return nil
	case isChannelID(s):
		return nil
	}
	return fmt.Errorf("channel %q: want #name or a channel ID such as C0123ABCD", s)
}

// isChannelID reports whether s looks like a Slack conversation ID.
func isChannelID(s string) bool {
	if len(s) < 2 || !strings.ContainsRune("CGD", rune(s[0])) {
		return false
	}
	for _, r := range s[1:] {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// schedule parses the digest settings; loc is the fallback time zone
// (nil: UTC). It returns a nil schedule when the digest is off.
func (d DigestConfig) schedule(loc *time.Location) (*schedule, error) {
	sc := &schedule{}
	switch d.Cadence {
	case CadenceOff:
		return nil, nil
	case CadenceWeekly, CadenceDaily:
		sc.daily = d.Cadence == CadenceDaily
	default:
		return nil, fmt.Errorf("chat.digest.cadence: want weekly, daily or off, got %q", d.Cadence)
	}
	wd, ok := weekdays[strings.ToLower(d.Weekday)]
	if !ok {
		return nil, fmt.Errorf("chat.digest.weekday: want a day such as monday, got %q", d.Weekday)
	}
	sc.weekday = wd
	t, err := time.Parse("15:04", d.At)
	if err != nil {
		return nil, fmt.Errorf("chat.digest.at: want HH:MM, got %q", d.At)
	}
	sc.hour, sc.minute = t.Hour(), t.Minute()
	sc.loc = loc
	if d.TimeZone != "" {
		if sc.loc, err = time.LoadLocation(d.TimeZone); err != nil {
			return nil, fmt.Errorf("chat.digest.timezone: %w", err)
		}
	}
	if sc.loc == nil {
		sc.loc = time.UTC
	}
	return sc, nil
}

var weekdays = map[string]time.Weekday{
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// schedule says when digests are due.
type schedule struct {
	daily        bool
	weekday      time.Weekday
	hour, minute int
	loc          *time.Location
}

// last returns the latest due time at or before now.
func (s *schedule) last(now time.Time) time.Time {
	n := now.In(s.loc)
	t := time.Date(n.Year(), n.Month(), n.Day(), s.hour, s.minute, 0, 0, s.loc)
	if s.daily {
		if t.After(n) {
			t = time.Date(n.Year(), n.Month(), n.Day()-1, s.hour, s.minute, 0, 0, s.loc)
		}
		return t
	}
	back := (int(n.Weekday()) - int(s.weekday) + 7) % 7
	t = time.Date(n.Year(), n.Month(), n.Day()-back, s.hour, s.minute, 0, 0, s.loc)
	if t.After(n) {
		t = time.Date(n.Year(), n.Month(), n.Day()-back-7, s.hour, s.minute, 0, 0, s.loc)
	}
	return t
}

// next returns the first due time after now.
func (s *schedule) next(now time.Time) time.Time {
	l := s.last(now).In(s.loc)
	if s.daily {
		return time.Date(l.Year(), l.Month(), l.Day()+1, s.hour, s.minute, 0, 0, s.loc)
	}
	return time.Date(l.Year(), l.Month(), l.Day()+7, s.hour, s.minute, 0, 0, s.loc)
}
