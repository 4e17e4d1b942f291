// Package changes records what changed in services — deploys, rollbacks,
// config changes, feature flags, scaling — and answers the first question
// of every incident: what changed? It ranks the changes near an incident as
// suspects, and measures delivery (DORA figures) from the same store.
package changes

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// Kind is what sort of change it was.
type Kind string

// Kinds of change.
const (
	KindDeploy      Kind = "deploy"
	KindRollback    Kind = "rollback"
	KindConfig      Kind = "config"
	KindFeatureFlag Kind = "feature_flag"
	KindScale       Kind = "scale"
)

// Status is where a change is.
type Status string

// Statuses of a change.
const (
	StatusStarted    Status = "started"
	StatusSucceeded  Status = "succeeded"
	StatusFailed     Status = "failed"
	StatusRolledBack Status = "rolled_back"
)

// Change is one recorded change to a service.
type Change struct {
	// ID is the client's idempotency key: recording the same ID again
	// updates the change (e.g. its status) instead of adding one.
	ID          string `json:"id"`
	Service     string `json:"service"`
	Kind        Kind   `json:"kind"`
	Version     string `json:"version,omitempty"`
	Commit      string `json:"commit,omitempty"`
	Environment string `json:"environment,omitempty"`
	Status      Status `json:"status"`
	// Rollout is the fraction of traffic or instances the change reached,
	// 0 < Rollout ≤ 1 (a canary at 5% is 0.05).
	Rollout     float64   `json:"rollout"`
	Actor       string    `json:"actor,omitempty"`
	At          time.Time `json:"at"`
	URL         string    `json:"url,omitempty"`
	Description string    `json:"description,omitempty"`
	// RecordedAt is when nines stored this version of the change.
	RecordedAt time.Time `json:"recorded_at"`
}

var (
	kinds    = map[Kind]bool{KindDeploy: true, KindRollback: true, KindConfig: true, KindFeatureFlag: true, KindScale: true}
	statuses = map[Status]bool{StatusStarted: true, StatusSucceeded: true, StatusFailed: true, StatusRolledBack: true}
	idRe     = regexp.MustCompile(`^[A-Za-z0-9._:/@-]{1,200}$`)
)

// Normalize applies defaults and validates the change, naming the bad
// field. now stamps a change with no time; an empty ID is derived from the
// service, kind, version and time, so retries of the same call agree.
func (c *Change) Normalize(now time.Time) error {
	c.Service = strings.TrimSpace(c.Service)
	if c.Service == "" {
		return invalid("service: required")
	}
	if len(c.Service) > 200 {
		return invalid("service: longer than 200 characters")
	}
	if c.Kind == "" {
		c.Kind = KindDeploy
	}
	if !kinds[c.Kind] {
		return invalid("kind: %q is not one of deploy, rollback, config, feature_flag, scale", c.Kind)
	}
	if c.Status == "" {
		c.Status = StatusSucceeded
	}
	if !statuses[c.Status] {
		return invalid("status: %q is not one of started, succeeded, failed, rolled_back", c.Status)
	}
	if c.Rollout == 0 {
		c.Rollout = 1
	}
	if c.Rollout < 0 || c.Rollout > 1 {
		return invalid("rollout: want a fraction in (0, 1], got %g", c.Rollout)
	}
	if c.At.IsZero() {
		c.At = now
	}
	c.At = c.At.UTC().Truncate(time.Millisecond)
	if c.At.After(now.Add(5 * time.Minute)) {
		return invalid("at: %s is in the future", c.At.Format(time.RFC3339))
	}
	if c.At.Year() < 2000 {
		return invalid("at: %s is too far in the past", c.At.Format(time.RFC3339))
	}
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			return invalid("url: want an http(s) URL, got %q", c.URL)
		}
	}
	if c.ID == "" {
		c.ID = "chg-" + incidents.StableHash(c.Service, string(c.Kind), c.Version, c.Environment, fmt.Sprint(c.At.UnixMilli()))[:20]
	}
	if !idRe.MatchString(c.ID) {
		return invalid("id: want 1 to 200 of A-Z a-z 0-9 . _ : / @ -, got %q", c.ID)
	}
	for name, v := range map[string]string{"version": c.Version, "commit": c.Commit, "environment": c.Environment, "actor": c.Actor} {
		if len(v) > 500 {
			return invalid("%s: longer than 500 characters", name)
		}
	}
	if len(c.Description) > 10_000 {
		return invalid("description: longer than 10000 characters")
	}
	return nil
}

// Partial reports whether the change reached only part of the service.
func (c Change) Partial() bool { return c.Rollout < 1 }

// Label is a short human description: "checkout v1.4.2 at 50%".
func (c Change) Label() string {
	s := c.Service
	if c.Version != "" {
		s += " " + c.Version
	} else if c.Commit != "" {
		s += " " + shortCommit(c.Commit)
	}
	if c.Kind != KindDeploy {
		s += " (" + strings.ReplaceAll(string(c.Kind), "_", " ") + ")"
	}
	if c.Partial() {
		s += fmt.Sprintf(" at %g%%", c.Rollout*100)
	}
	return s
}

func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{fault.ErrInvalid}, args...)...)
}
