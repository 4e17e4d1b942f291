package chstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ninesops/nines/incidents"
)

// errClosed is returned by writes to a closed store.
var errClosed = fmt.Errorf("%w: store closed", incidents.ErrUnavailable)

// batcher merges concurrent writes into few flushes (group commit). Writes
// join the newest pending group; a single goroutine (run) flushes the
// oldest group once the previous flush has finished and either the group
// has waited interval since its first write or holds maxRows rows. Under
// light load a write waits about interval; under heavy load groups grow
// while the previous flush runs, so the number of INSERTs stays low.
type batcher struct {
	interval time.Duration
	maxRows  int
	timeout  time.Duration
	flush    func(ctx context.Context, reqs []*request) error

	wake    chan struct{} // buffered(1): a group may be ready, or closing
	stopped chan struct{} // closed when run returns

	mu     sync.Mutex
	queue  []*group // pending groups, oldest first; only the last one grows
	closed bool
}

// request is one Write call's rows.
type request struct {
	rows     rowSet
	canceled bool // the caller gave up before its group's flush started
}

// group is the requests flushed together. done is closed after the flush;
// err is its outcome, shared by every request of the group.
type group struct {
	reqs    []*request
	rows    int
	first   time.Time // when the first request joined
	started bool
	done    chan struct{}
	err     error
}

func newBatcher(interval time.Duration, maxRows int, timeout time.Duration, flush func(context.Context, []*request) error) *batcher {
	return &batcher{
		interval: interval,
		maxRows:  maxRows,
		timeout:  timeout,
		flush:    flush,
		wake:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
	}
}

func (b *batcher) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// write queues r and waits for the flush that contains it. If ctx ends
// first, write returns ctx's error; r is then dropped if its flush has not
// started, and written anyway if it has.
func (b *batcher) write(ctx context.Context, r *request) error {
	n := r.rows.len()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return errClosed
	}
	var (
		g    *group
		wake bool // run may have to act: a new group, or a full one
	)
	if k := len(b.queue); k > 0 && (b.queue[k-1].rows == 0 || b.queue[k-1].rows+n <= b.maxRows) {
		g = b.queue[k-1]
	} else {
		g = &group{first: time.Now(), done: make(chan struct{})}
		b.queue = append(b.queue, g)
		wake = true
	}
	g.reqs = append(g.reqs, r)
	g.rows += n
	wake = wake || g.rows >= b.maxRows
	b.mu.Unlock()
	if wake {
		b.signal()
	}

	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
	}
	b.mu.Lock()
	if !g.started {
		r.canceled = true
		g.rows -= n
	}
	b.mu.Unlock()
	return ctx.Err()
}

// run flushes groups until the batcher is closed and drained.
func (b *batcher) run() {
	defer close(b.stopped)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			closed := b.closed
			b.mu.Unlock()
			if closed {
				return
			}
			<-b.wake
			continue
		}
		g := b.queue[0]
		wait := time.Until(g.first.Add(b.interval))
		if !b.closed && len(b.queue) == 1 && g.rows < b.maxRows && wait > 0 {
			b.mu.Unlock()
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-b.wake:
				timer.Stop()
			}
			continue
		}
		b.queue = b.queue[1:]
		g.started = true
		var reqs []*request
		for _, r := range g.reqs {
			if !r.canceled {
				reqs = append(reqs, r)
			}
		}
		b.mu.Unlock()

		if len(reqs) > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
			g.err = b.flush(ctx, reqs)
			if g.err != nil && ctx.Err() != nil && !errors.Is(g.err, incidents.ErrUnavailable) {
				g.err = fmt.Errorf("%w: flush took over %v: %w", incidents.ErrUnavailable, b.timeout, g.err)
			}
			cancel()
		}
		close(g.done)
	}
}

// close flushes what is pending and stops run. Later writes fail.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
	<-b.stopped
}
