package chstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// fakeLatest answers lookups after delay and records the refs of each.
type fakeLatest struct {
	delay time.Duration
	err   error

	mu      sync.Mutex
	queries [][]incidents.GroupRef
}

func (f *fakeLatest) query(_ context.Context, refs []incidents.GroupRef) (map[incidents.GroupRef][]*incidents.Incident, error) {
	f.mu.Lock()
	f.queries = append(f.queries, append([]incidents.GroupRef(nil), refs...))
	f.mu.Unlock()
	time.Sleep(f.delay)
	if f.err != nil {
		return nil, f.err
	}
	out := map[incidents.GroupRef][]*incidents.Incident{}
	for _, r := range refs {
		if r.Service != "none" {
			out[r] = []*incidents.Incident{{ID: "inc-" + r.GroupKey, GroupKey: r.GroupKey, Service: r.Service}}
		}
	}
	return out, nil
}

// latestVia asks l for refs' latest incidents, as Store.Latest does.
func latestVia(l *lookups, ctx context.Context, refs []incidents.GroupRef) (map[incidents.GroupRef]*incidents.Incident, error) {
	recent, err := l.recent(ctx, refs)
	if err != nil {
		return nil, err
	}
	out := map[incidents.GroupRef]*incidents.Incident{}
	for r, incs := range recent {
		out[r] = incs[0]
	}
	return out, nil
}

func startLookups(t *testing.T, f *fakeLatest) *lookups {
	l := newLookups(time.Minute, f.query)
	go l.run()
	t.Cleanup(l.close)
	return l
}

func TestLookupsMergeConcurrentCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeLatest{delay: 10 * time.Millisecond}
		l := startLookups(t, f)
		var wg sync.WaitGroup
		// One lookup runs alone; 50 more arrive while it runs and are
		// answered together by the next query.
		got := make([]map[incidents.GroupRef]*incidents.Incident, 51)
		ask := func(i int, refs ...incidents.GroupRef) {
			wg.Go(func() {
				m, err := latestVia(l, t.Context(), refs)
				if err != nil {
					t.Errorf("latest: %v", err)
				}
				got[i] = m
			})
		}
		ask(0, incidents.GroupRef{GroupKey: "g0", Service: "s"})
		time.Sleep(time.Millisecond)
		for i := 1; i <= 50; i++ {
			ask(i, incidents.GroupRef{GroupKey: fmt.Sprintf("g%d", i), Service: "s"},
				incidents.GroupRef{GroupKey: "shared", Service: "s"},
				incidents.GroupRef{GroupKey: "missing", Service: "none"})
		}
		wg.Wait()
		if len(f.queries) != 2 || len(f.queries[0]) != 1 || len(f.queries[1]) != 52 {
			var sizes []int
			for _, q := range f.queries {
				sizes = append(sizes, len(q))
			}
			t.Fatalf("query sizes %v, want [1 52] (50 refs, one shared ref and one missing, each once)", sizes)
		}
		if len(got[0]) != 1 || got[0][incidents.GroupRef{GroupKey: "g0", Service: "s"}] == nil {
			t.Errorf("first caller got %v", got[0])
		}
		shared := map[*incidents.Incident]bool{}
		for i := 1; i <= 50; i++ {
			if len(got[i]) != 2 {
				t.Errorf("caller %d got %d incidents, want its own and the shared one", i, len(got[i]))
			}
			s := got[i][incidents.GroupRef{GroupKey: "shared", Service: "s"}]
			if s == nil || shared[s] {
				t.Errorf("caller %d: shared incident %p missing or not its own copy", i, s)
			}
			shared[s] = true
		}
	})
}

func TestLookupsShareError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		l := startLookups(t, &fakeLatest{err: boom})
		if _, err := latestVia(l, t.Context(), []incidents.GroupRef{{GroupKey: "g", Service: "s"}}); !errors.Is(err, boom) {
			t.Errorf("latest = %v, want %v", err, boom)
		}
	})
}

func TestLookupsCallerGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := startLookups(t, &fakeLatest{delay: time.Second})
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if _, err := latestVia(l, ctx, []incidents.GroupRef{{GroupKey: "g", Service: "s"}}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("latest = %v, want the caller's deadline", err)
		}
	})
}

func TestLookupsAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLookups(time.Minute, (&fakeLatest{}).query)
		go l.run()
		l.close()
		if _, err := latestVia(l, t.Context(), []incidents.GroupRef{{GroupKey: "g", Service: "s"}}); !errors.Is(err, fault.ErrUnavailable) {
			t.Errorf("latest after close = %v, want ErrUnavailable", err)
		}
		if m, err := latestVia(l, t.Context(), nil); err != nil || len(m) != 0 {
			t.Errorf("latest of nothing = %v, %v", m, err)
		}
	})
}
