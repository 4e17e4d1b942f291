package incidents

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCacheBoundedByBytes: however big the notifications, the groups a
// Service keeps in memory stay within its byte budget once they are
// handled, and the groups it dropped are read back from the store, so
// that resolving them resolves their one incident.
func TestCacheBoundedByBytes(t *testing.T) {
	const budget = 8 << 20
	tests := []struct {
		name                 string
		notes, alerts, bytes int // notifications (in parallel), alerts each, annotation bytes per alert
		wantEvicted          bool
	}{
		{"16 notifications of 1 alert with 1 MB", 16, 1, 1 << 20, true},
		{"16 notifications of 1,000 alerts with 1 KB", 16, 1000, 1 << 10, true},
		{"4 notifications of 1 alert with 1 MB, under the budget", 4, 1, 1 << 20, false},
		{"2,000 small groups", 2000, 1, 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			store := newMemStore()
			svc, err := NewService(Options{Store: store, CacheBytes: budget, Now: func() time.Time { return t0.Add(time.Hour) }})
			if err != nil {
				t.Fatal(err)
			}
			big := strings.Repeat("x", tt.bytes)
			group := func(i int, resolved bool) Notification {
				var alerts []Alert
				for j := range tt.alerts {
					end := time.Time{}
					if resolved {
						end = t0.Add(time.Minute)
					}
					a := alert(fmt.Sprintf("fp%d-%d", i, j), fmt.Sprintf("Big%d", i), "svc", "critical", t0, end)
					a.Annotations["description"] = big
					alerts = append(alerts, a)
				}
				return note(fmt.Sprintf(`{}:{alertname="Big%d"}`, i), alerts...)
			}
			ingestAll := func(resolved bool) {
				var wg sync.WaitGroup
				for i := range tt.notes {
					wg.Go(func() {
						if err := svc.Ingest(ctx, group(i, resolved)); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
			}
			ingestAll(false)
			held := tt.notes * tt.alerts * tt.bytes
			if got := svc.CacheBytes(); got > budget {
				t.Errorf("after %d notifications holding %d bytes of annotations: cache estimate %d bytes, over the budget of %d", tt.notes, held, got, budget)
			}
			svc.mu.Lock()
			n := svc.cache.len()
			svc.mu.Unlock()
			if evicted := n < tt.notes; evicted != tt.wantEvicted {
				t.Errorf("%d of %d groups held, want evicted %v", n, tt.notes, tt.wantEvicted)
			}
			if !tt.wantEvicted && int(svc.CacheBytes()) < held {
				t.Errorf("cache estimate %d bytes is below the %d bytes of annotations it holds", svc.CacheBytes(), held)
			}
			ingestAll(true)
			incs := store.all()
			if len(incs) != tt.notes {
				t.Fatalf("%d incidents for %d groups", len(incs), tt.notes)
			}
			for _, inc := range incs {
				if inc.State != StateResolved || len(inc.Alerts) != tt.alerts {
					t.Errorf("incident %s of %s: %s with %d alerts, want resolved with %d", inc.ID, inc.GroupKey, inc.State, len(inc.Alerts), tt.alerts)
				}
			}
			if got := svc.CacheBytes(); got > budget {
				t.Errorf("after resolving: cache estimate %d bytes, over the budget of %d", got, budget)
			}
		})
	}
}

// TestCacheEstimateIsTheHeap: --incidents.cache-bytes is what the groups
// held take on the heap, not a figure that undercounts Go's maps by half.
// Groups of 1, 8 and 64 alerts, decoded from the log as the deriver reads
// them, are held by a Service; the heap they take is at most a quarter
// above the cache's estimate, and at least half of it.
func TestCacheEstimateIsTheHeap(t *testing.T) {
	ctx := context.Background()
	for _, alerts := range []int{1, 8, 64} {
		t.Run(fmt.Sprintf("alerts=%d", alerts), func(t *testing.T) {
			const groups = 400
			now := t0.Add(time.Hour)
			bodies := storedGroups(t, groups, alerts)
			svc, err := NewService(Options{Config: DefaultConfig(), Store: nullStore{}, Now: func() time.Time { return now }, CacheBytes: 1 << 40, CacheSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			before := heapInUse()
			for _, b := range bodies {
				n, err := UnmarshalNotification(b)
				if err != nil {
					t.Fatal(err)
				}
				if err := svc.Ingest(ctx, n); err != nil {
					t.Fatal(err)
				}
			}
			held := heapInUse() - before
			runtime.KeepAlive(bodies) // not freed while measuring
			est := svc.CacheBytes()
			if r := float64(held) / float64(est); r < 0.5 || r > 1.25 {
				t.Errorf("%d groups of %d alerts take %d bytes of heap; the cache estimates %d (heap/estimate %.2f, want 0.5–1.25: the estimate may err upwards, at most twofold)", groups, alerts, held, est, r)
			}
			runtime.KeepAlive(svc)
		})
	}
}

// storedGroups returns the stored forms of the first notifications of
// groups groups of alerts alerts each (benchGroup), as the log holds them.
func storedGroups(t *testing.T, groups, alerts int) [][]byte {
	t.Helper()
	bodies := make([][]byte, 0, groups)
	for g := range groups {
		b, err := MarshalNotification(benchGroup(g, alerts, t0)[0])
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	return bodies
}

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
