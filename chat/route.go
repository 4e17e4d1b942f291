package chat

import (
	"slices"

	"github.com/ninesops/nines/incidents"
)

// Route returns the channels an incident goes to, in a stable order: the
// operations channel, the owner's channel (ownerChannel, empty when the
// service has none), then channels that only rules name, each once. It is
// a pure function of the configuration, the incident and the catalog's
// answer, so every replica routes alike.
func (c *Config) Route(inc *incidents.Incident, ownerChannel string) []string {
	type dest struct {
		ruled, matched bool
	}
	dests := map[string]*dest{}
	var order []string
	add := func(ch string) *dest {
		if d, ok := dests[ch]; ok {
			return d
		}
		d := &dest{}
		dests[ch] = d
		order = append(order, ch)
		return d
	}
	ops := c.OperationsChannel
	if ops == "" {
		ops = DefaultOperationsChannel
	}
	add(ops)
	if ownerChannel != "" {
		add(ownerChannel)
	}
	for _, r := range c.Rules {
		var ch string
		switch r.Channel {
		case DestOperations:
			ch = ops
		case DestOwner:
			ch = ownerChannel
		default:
			ch = r.Channel
		}
		if ch == "" {
			continue
		}
		d := add(ch)
		d.ruled = true
		if r.Matches(inc) {
			d.matched = true
		}
	}
	out := make([]string, 0, len(order))
	for _, ch := range order {
		if d := dests[ch]; !d.ruled || d.matched {
			out = append(out, ch)
		}
	}
	return out
}

// Matches reports whether every condition of the rule holds for inc.
func (r Rule) Matches(inc *incidents.Incident) bool {
	if r.MinImpact != nil && inc.Impact < *r.MinImpact {
		return false
	}
	if len(r.Services) > 0 && !slices.Contains(r.Services, inc.Service) {
		return false
	}
	if len(r.States) > 0 && !slices.Contains(r.States, inc.State) {
		return false
	}
	for k, v := range r.Labels {
		if inc.Labels[k] != v {
			return false
		}
	}
	return true
}
