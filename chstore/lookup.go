package chstore

import (
	"context"
	"sync"
	"time"

	"github.com/ninesops/nines/incidents"
)

// lookups merges concurrent Latest and Recent calls into few queries. The service
// asks for a group's latest incident whenever the group is not in its
// cache, which during an alert storm is nearly every notification: one
// query each would cost ClickHouse a few milliseconds of planning apiece
// and keep it busy answering "nothing yet". Instead a single goroutine
// (run) answers every ref asked for while the previous query ran with one
// query, so there is at most one lookup in flight and no added wait when
// the store is idle.
type lookups struct {
	query   func(ctx context.Context, refs []incidents.GroupRef) (map[incidents.GroupRef][]*incidents.Incident, error)
	timeout time.Duration

	wake    chan struct{} // buffered(1): a lookup is pending, or closing
	stopped chan struct{} // closed when run returns

	mu      sync.Mutex
	pending *lookup // gathering refs for the next query
	closed  bool
}

// lookup is the refs answered by one query. done is closed once res and
// err are set.
type lookup struct {
	refs  []incidents.GroupRef
	asked map[incidents.GroupRef]int // callers that asked for each ref
	done  chan struct{}
	res   map[incidents.GroupRef][]*incidents.Incident
	err   error
}

func newLookups(timeout time.Duration, query func(context.Context, []incidents.GroupRef) (map[incidents.GroupRef][]*incidents.Incident, error)) *lookups {
	return &lookups{query: query, timeout: timeout, wake: make(chan struct{}, 1), stopped: make(chan struct{})}
}

// recent queues refs for the next query and waits for its answer: each
// ref's recent incidents, newest first. Each caller gets a map of its own
// refs; incidents asked for by several callers of one query are cloned
// for all but the first, so that no two callers share one.
func (l *lookups) recent(ctx context.Context, refs []incidents.GroupRef) (map[incidents.GroupRef][]*incidents.Incident, error) {
	if len(refs) == 0 {
		return map[incidents.GroupRef][]*incidents.Incident{}, nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errClosed
	}
	p := l.pending
	if p == nil {
		p = &lookup{asked: map[incidents.GroupRef]int{}, done: make(chan struct{})}
		l.pending = p
	}
	for _, r := range refs {
		if p.asked[r] == 0 {
			p.refs = append(p.refs, r)
		}
		p.asked[r]++
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}

	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.err != nil {
		return nil, p.err
	}
	out := make(map[incidents.GroupRef][]*incidents.Incident, len(refs))
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range refs {
		incs := p.res[r]
		if len(incs) == 0 {
			continue
		}
		if _, dup := out[r]; dup {
			continue
		}
		// The first caller to collect the incidents takes them; later
		// ones get copies.
		if p.asked[r] < 0 {
			c := make([]*incidents.Incident, len(incs))
			for i, inc := range incs {
				c[i] = inc.Clone()
			}
			incs = c
		}
		p.asked[r] = -1
		out[r] = incs
	}
	return out, nil
}

// run answers pending lookups, one query at a time, until closed.
func (l *lookups) run() {
	defer close(l.stopped)
	for {
		l.mu.Lock()
		p, closed := l.pending, l.closed
		l.pending = nil
		l.mu.Unlock()
		if p == nil {
			if closed {
				return
			}
			<-l.wake
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
		p.res, p.err = l.query(ctx, p.refs)
		if retryable(ctx, p.err) { // a read: always safe to repeat
			p.res, p.err = l.query(ctx, p.refs)
		}
		cancel()
		close(p.done)
	}
}

// close answers what is pending and stops run. Later lookups fail.
func (l *lookups) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	<-l.stopped
}
