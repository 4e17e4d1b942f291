package incidents

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Config says how alert notifications become incidents. It is the
// `incidents:` section of nines' YAML config file.
type Config struct {
	// ServiceLabels are the labels naming an alert's service, first match
	// wins. Default: service, then job.
	ServiceLabels []string `yaml:"service_labels"`
	// DefaultService receives alerts that name no service. Never dropped.
	DefaultService string `yaml:"default_service"`
	// GroupBy, when set, groups alerts into incidents by these labels
	// instead of by Alertmanager's groupKey.
	GroupBy []string `yaml:"group_by"`
	// SeverityLabel names the label mapped to an impact. Default: severity.
	SeverityLabel string `yaml:"severity_label"`
	// Impacts maps severity values to impacts. Default: critical → outage,
	// warning → degraded.
	Impacts map[string]Impact `yaml:"impacts"`
	// DefaultImpact is the impact of any other severity. Default: none.
	DefaultImpact Impact `yaml:"default_impact"`
	// ReopenWindow is how long after resolving a group's new firing alert
	// reopens the incident instead of starting a new one. Default: 30m.
	ReopenWindow time.Duration `yaml:"reopen_window"`
}

// DefaultConfig returns the configuration used when the file says nothing.
func DefaultConfig() Config {
	var c Config
	c.defaults()
	return c
}

func (c *Config) defaults() {
	if len(c.ServiceLabels) == 0 {
		c.ServiceLabels = []string{"service", "job"}
	}
	if c.DefaultService == "" {
		c.DefaultService = "unknown"
	}
	if c.SeverityLabel == "" {
		c.SeverityLabel = "severity"
	}
	if c.Impacts == nil {
		c.Impacts = map[string]Impact{"critical": ImpactOutage, "warning": ImpactDegraded}
	}
	if c.ReopenWindow == 0 {
		c.ReopenWindow = 30 * time.Minute
	}
}

// Validate applies defaults and names the first bad field.
func (c *Config) Validate() error {
	c.defaults()
	for i, l := range c.ServiceLabels {
		if strings.TrimSpace(l) == "" {
			return fmt.Errorf("incidents.service_labels[%d]: empty label name", i)
		}
	}
	for i, l := range c.GroupBy {
		if strings.TrimSpace(l) == "" {
			return fmt.Errorf("incidents.group_by[%d]: empty label name", i)
		}
	}
	if c.ReopenWindow < 0 {
		return fmt.Errorf("incidents.reopen_window: must not be negative, got %s", c.ReopenWindow)
	}
	return nil
}

// ServiceResolver maps an alert's labels to a service when its own labels
// do not name one; the service catalog's label matchers implement it.
type ServiceResolver func(labels map[string]string) (string, bool)

// service names the alert's service: the first service label, else a
// catalog match, else the remaining service labels in order, else the
// default service.
func (c *Config) service(labels map[string]string, resolve ServiceResolver) string {
	if v := labels[c.ServiceLabels[0]]; v != "" {
		return v
	}
	if resolve != nil {
		if s, ok := resolve(labels); ok && s != "" {
			return s
		}
	}
	for _, l := range c.ServiceLabels[1:] {
		if v := labels[l]; v != "" {
			return v
		}
	}
	return c.DefaultService
}

// impact maps an alert's severity label to its impact.
func (c *Config) impact(labels map[string]string) Impact {
	if i, ok := c.Impacts[strings.ToLower(labels[c.SeverityLabel])]; ok {
		return i
	}
	return c.DefaultImpact
}

// groupKey is the grouping key of an alert in a notification.
func (c *Config) groupKey(n *Notification, labels map[string]string) string {
	if len(c.GroupBy) == 0 {
		return n.GroupKey
	}
	names := append([]string(nil), c.GroupBy...)
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("{")
	for i, name := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", name, labels[name])
	}
	b.WriteString("}")
	return b.String()
}
