package availability

import (
	"fmt"
	"time"

	"github.com/ninesops/nines/incidents"
)

// Config is the `availability:` section of nines' YAML config file.
type Config struct {
	// ImpactWeights say how much of an instant's downtime an incident of
	// each impact costs.
	ImpactWeights ImpactWeights `yaml:"impact_weights"`
	// Windows are the default windows of overviews such as
	// GET /api/v1/services/{name}. Default: 1h, 24h, 7d, 30d.
	Windows []string `yaml:"windows"`
}

// ImpactWeights weigh downtime by impact, each between 0 and 1. A nil
// weight takes its default: outage 1, degraded 0, none 0. (Pointers tell
// "not set" from an explicit 0.)
type ImpactWeights struct {
	Outage   *float64 `yaml:"outage"`
	Degraded *float64 `yaml:"degraded"`
	None     *float64 `yaml:"none"`
}

// Default weights and windows.
const (
	DefaultOutageWeight   = 1.0
	DefaultDegradedWeight = 0.0
	DefaultNoneWeight     = 0.0
)

// DefaultWindows are the windows of overviews unless configured.
func DefaultWindows() []string { return []string{"1h", "24h", "7d", "30d"} }

// DefaultConfig returns the configuration used when the file says nothing.
func DefaultConfig() Config {
	var c Config
	c.defaults()
	return c
}

func (c *Config) defaults() {
	set := func(p **float64, v float64) {
		if *p == nil {
			*p = &v
		}
	}
	set(&c.ImpactWeights.Outage, DefaultOutageWeight)
	set(&c.ImpactWeights.Degraded, DefaultDegradedWeight)
	set(&c.ImpactWeights.None, DefaultNoneWeight)
	if len(c.Windows) == 0 {
		c.Windows = DefaultWindows()
	}
}

// Validate applies defaults and names the first bad field.
func (c *Config) Validate() error {
	c.defaults()
	for _, w := range []struct {
		name string
		v    float64
	}{
		{"outage", *c.ImpactWeights.Outage},
		{"degraded", *c.ImpactWeights.Degraded},
		{"none", *c.ImpactWeights.None},
	} {
		if !(w.v >= 0 && w.v <= 1) {
			return fmt.Errorf("availability.impact_weights.%s: must be between 0 and 1, got %v", w.name, w.v)
		}
	}
	now := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, s := range c.Windows {
		if _, err := ParseWindow(s, now, time.UTC); err != nil {
			return fmt.Errorf("availability.windows[%d]: unknown window %q", i, s)
		}
	}
	return nil
}

// Weight returns the weight of an impact; unset weights have their
// defaults.
func (w ImpactWeights) Weight(i incidents.Impact) float64 {
	pick := func(p *float64, def float64) float64 {
		if p == nil {
			return def
		}
		return *p
	}
	switch i {
	case incidents.ImpactOutage:
		return pick(w.Outage, DefaultOutageWeight)
	case incidents.ImpactDegraded:
		return pick(w.Degraded, DefaultDegradedWeight)
	default:
		return pick(w.None, DefaultNoneWeight)
	}
}
