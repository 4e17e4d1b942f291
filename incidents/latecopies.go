package incidents

import (
	"context"
	"fmt"
	"maps"
)

// RecentPerGroup bounds how many of a group's most recent incidents a
// RecentReader returns.
const RecentPerGroup = 8

// RecentReader knows each group's most recently opened incidents, newest
// first (at most RecentPerGroup). A Service whose store implements it
// loads a group's earlier incidents that a late notification may still
// change (see keepResolvedFor) beside its latest, so that after a restart
// the group derives as it would have in the memory of a process that
// never stopped: the same episodes, the same IDs.
type RecentReader interface {
	Recent(ctx context.Context, refs []GroupRef) (map[GroupRef][]*Incident, error)
}

// AlertOwnerFinder knows which incidents of a group hold alert
// occurrences. A Service whose store implements it keeps late copies of an
// earlier incident's alerts out of the group's newer incident even when it
// never saw the earlier one: after a restart, or when another replica
// handled it.
type AlertOwnerFinder interface {
	// AlertOwners returns, by ref and alert key (Alert.Key), the ID of the
	// ref's incident that holds each occurrence asked for; occurrences no
	// incident holds are absent.
	AlertOwners(ctx context.Context, want map[GroupRef][]Alert) (map[GroupRef]map[string]string, error)
}

// closeLateCopies looks up the alerts of refs that are unknown to the
// ref's cached incident and started before it: late copies of an earlier
// incident's alerts, or alerts of this one that started earlier but
// arrived later. The store tells which: those an earlier incident holds
// join the ref's closed set, so that the lifecycle leaves them out.
func (s *Service) closeLateCopies(ctx context.Context, refs []GroupRef, byRef map[GroupRef][]Alert) error {
	if s.owners == nil {
		return nil
	}
	want := map[GroupRef][]Alert{}
	for _, ref := range refs {
		e := s.cached(ref)
		if e.inc == nil || e.inc.StartedAt.IsZero() {
			continue
		}
		known := make(map[string]bool, len(e.inc.Alerts))
		for _, a := range e.inc.Alerts {
			known[a.Key()] = true
		}
		for _, a := range byRef[ref] {
			if k := a.Key(); !known[k] && !e.closed[k] && a.StartsAt.Before(e.inc.StartedAt) {
				want[ref] = append(want[ref], a)
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	got, err := s.owners.AlertOwners(ctx, want)
	if err != nil {
		return fmt.Errorf("look up earlier incidents: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ref, owners := range got {
		e := s.cache.at(ref)
		if e == nil || e.inc == nil {
			continue
		}
		var closed map[string]bool
		for k, id := range owners {
			if id == e.inc.ID {
				continue
			}
			if closed == nil {
				closed = make(map[string]bool, len(e.closed)+len(owners))
				maps.Copy(closed, e.closed)
			}
			closed[k] = true
		}
		if closed != nil {
			ne := *e
			ne.closed = closed
			s.cache.put(ref, &ne)
			s.metrics.lateCopies.Add(float64(len(closed) - len(e.closed)))
		}
	}
	return nil
}
