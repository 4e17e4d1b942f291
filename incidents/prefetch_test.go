package incidents

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// lookupCounter counts the store's lookups of groups.
type lookupCounter struct {
	*memStore
	mu      sync.Mutex
	lookups int
}

func (c *lookupCounter) Latest(ctx context.Context, refs []GroupRef) (map[GroupRef]*Incident, error) {
	c.mu.Lock()
	c.lookups++
	c.mu.Unlock()
	return c.memStore.Latest(ctx, refs)
}

// TestPrefetchReadsAPageInOneLookup: the deriver hands a page of
// notifications to Prefetch before it applies them side by side; the
// groups they need are then read in one query, not one each, and applying
// them gives the same incidents as without.
func TestPrefetchReadsAPageInOneLookup(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	var ns []Notification
	for i := range 50 {
		gk := fmt.Sprintf(`{}:{alertname="Down%d"}`, i)
		ns = append(ns, Notification{Receiver: "nines", Status: AlertFiring, GroupKey: gk, Alerts: []Alert{{
			Fingerprint: fmt.Sprint("fp", i), Status: AlertFiring, StartsAt: t0,
			Labels: map[string]string{"alertname": fmt.Sprint("Down", i), "service": "api", "severity": "critical"},
		}}})
	}
	run := func(prefetch bool) (int, int) {
		store := &lookupCounter{memStore: newMemStore()}
		svc, err := NewService(Options{Store: store, Now: func() time.Time { return t0.Add(time.Minute) }})
		if err != nil {
			t.Fatal(err)
		}
		if prefetch {
			if err := svc.Prefetch(t.Context(), ns); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for _, n := range ns {
			wg.Go(func() {
				if err := svc.Ingest(t.Context(), n); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		return store.lookups, len(store.all())
	}
	lookups, incs := run(true)
	if lookups != 1 {
		t.Errorf("with Prefetch: %d lookups for a page of %d new groups, want 1", lookups, len(ns))
	}
	_, want := run(false)
	if incs != want || incs != len(ns) {
		t.Errorf("with Prefetch: %d incidents, without: %d, want %d", incs, want, len(ns))
	}
}
