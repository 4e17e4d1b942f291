package chstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/ninesops/nines/fault"
)

// errClosed is returned by writes to a closed store.
var errClosed = fmt.Errorf("%w: store closed", fault.ErrUnavailable)

// batcher merges concurrent writes into few flushes (group commit). Writes
// join the newest pending group; a single goroutine (run) flushes the
// oldest group once the previous flush has finished and either the group
// has waited its linger since its first write or holds maxRows rows.
//
// The linger adapts to the load. ClickHouse wants few large INSERTs (about
// one a second per table under load), Alertmanager wants a quick answer,
// and the two only conflict when writes are many: while the write rate
// (rows per second, averaged over about a second) is at most half of
// busyRows, a write waits interval, so that a light load is answered in
// milliseconds; from busyRows on it waits maxInterval, so that a storm
// makes about one INSERT per table per maxInterval; in between the linger
// grows geometrically from one to the other. Flushes also start at least
// a linger apart. Under heavy load groups grow while the previous flush
// runs, and a group is flushed at once when it holds maxRows rows, which
// bounds memory.
type batcher struct {
	interval    time.Duration // linger under light load
	maxInterval time.Duration // linger from busyRows rows/s on
	busyRows    float64
	maxRows     int
	timeout     time.Duration
	flush       func(ctx context.Context, reqs []*request) error
	// slots holds a token per flush in flight (cap: how many may run at
	// once); inflight waits for them on close.
	slots    chan struct{}
	inflight sync.WaitGroup

	wake    chan struct{} // buffered(1): a group may be ready, or closing
	stopped chan struct{} // closed when run returns

	// leader, if set, is the batcher whose write rate the linger follows
	// instead of this one's (follow).
	leader *batcher

	mu        sync.Mutex
	queue     []*group // pending groups, oldest first; only the last one grows
	closed    bool
	rate      rateMeter // rows written per second
	lastFlush time.Time // when the latest flush started
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

// newBatcher returns a batcher whose linger is always interval; adapt
// makes it depend on the load.
func newBatcher(interval time.Duration, maxRows int, timeout time.Duration, flush func(context.Context, []*request) error) *batcher {
	return &batcher{
		interval:    interval,
		maxInterval: interval,
		maxRows:     maxRows,
		timeout:     timeout,
		flush:       flush,
		slots:       make(chan struct{}, 1),
		wake:        make(chan struct{}, 1),
		stopped:     make(chan struct{}),
	}
}

// parallel lets n flushes run at once (1 by default): INSERTs of
// different groups go to ClickHouse side by side, so that a few writers
// waiting on each other's INSERTs are not limited to one round trip at a
// time. Order between flushes does not matter: a writer whose next rows
// depend on its earlier ones waits for their flush first.
func (b *batcher) parallel(n int) {
	b.slots = make(chan struct{}, max(n, 1))
}

// adapt makes the linger grow from interval to maxInterval as the write
// rate grows from busyRows/2 to busyRows rows per second.
func (b *batcher) adapt(maxInterval time.Duration, busyRows int) {
	b.maxInterval = max(maxInterval, b.interval)
	b.busyRows = float64(busyRows)
}

// follow makes the linger depend on another batcher's write rate (with
// adapt's bounds, busy counting that batcher's rows): the deriver's
// writes follow the log's, so that the deriver gives way to the webhooks
// while they are busy (long lingers, few large INSERTs, CPU left to
// answer them) and catches up at full speed once they are not. The other
// batcher's lock is taken inside this one's, never the other way round.
func (b *batcher) follow(leader *batcher) { b.leader = leader }

// linger is how long a group waits for company at the current write rate.
// Must hold b.mu.
func (b *batcher) linger(now time.Time) time.Duration {
	if b.maxInterval <= b.interval || b.busyRows <= 0 {
		return b.interval
	}
	var rate float64
	if l := b.leader; l != nil {
		l.mu.Lock()
		rate = l.rate.perSecond(now)
		l.mu.Unlock()
	} else {
		rate = b.rate.perSecond(now)
	}
	// The interval at half the busy rate or less, the maximum at the busy
	// rate or more, geometric in between.
	x := math.Log2(rate/b.busyRows) + 1 // 0 at busyRows/2, 1 at busyRows
	switch {
	case x <= 0:
		return b.interval
	case x >= 1:
		return b.maxInterval
	}
	lo, hi := math.Log(float64(b.interval)), math.Log(float64(b.maxInterval))
	return time.Duration(math.Exp(lo + x*(hi-lo)))
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
	b.rate.add(time.Now(), n)
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
	defer b.inflight.Wait()
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
		now := time.Now()
		// A group is due a linger after its first write, and a linger
		// after the previous flush started: otherwise the few writes
		// that arrive while a long flush runs (their writers' peers all
		// wait on that flush) would make a flush of their own, and a
		// storm would alternate big and tiny INSERTs.
		linger := b.linger(now)
		due := g.first.Add(linger)
		if next := b.lastFlush.Add(linger); next.After(due) {
			due = next
		}
		wait := due.Sub(now)
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
		b.mu.Unlock()
		// A slot for the flush: with all of them busy, the group keeps
		// gathering writes meanwhile.
		b.slots <- struct{}{}
		b.mu.Lock()
		b.queue = b.queue[1:]
		g.started = true
		b.lastFlush = time.Now()
		var reqs []*request
		for _, r := range g.reqs {
			if !r.canceled {
				reqs = append(reqs, r)
			}
		}
		b.mu.Unlock()
		b.inflight.Add(1)
		go func() {
			defer b.inflight.Done()
			defer func() { <-b.slots }()
			b.flushGroup(g, reqs)
		}()
	}
}

// flushGroup flushes reqs, the live requests of g, and releases g's
// writers with the outcome.
func (b *batcher) flushGroup(g *group, reqs []*request) {
	if len(reqs) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		g.err = b.flush(ctx, reqs)
		if retryable(ctx, g.err) {
			// A connection that broke (the server closed it while
			// idle, say) fails a flush that the next one would
			// pass: try once more. Every row is an idempotent
			// version, so rows the first try stored do no harm.
			g.err = b.flush(ctx, reqs)
		}
		if g.err != nil && ctx.Err() != nil && !errors.Is(g.err, fault.ErrUnavailable) {
			g.err = fmt.Errorf("%w: flush took over %v: %w", fault.ErrUnavailable, b.timeout, g.err)
		}
		cancel()
	}
	close(g.done)
}

// retryable reports whether err, from an operation that may be repeated
// safely, is worth one immediate retry: the store was unavailable for a
// reason other than running out of time or being closed.
func retryable(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && errors.Is(err, fault.ErrUnavailable) &&
		!errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, errClosed)
}

// rateMeter estimates a rate of events per second: an exponentially
// weighted average with a time constant of one second, so that a burst
// counts for about as long as it lasts and is forgotten a few seconds
// later.
type rateMeter struct {
	rate    float64   // per second, as of at
	at      time.Time // last update
	pending float64   // counted since at
}

const rateTau = time.Second

// add counts n events at now.
func (m *rateMeter) add(now time.Time, n int) {
	m.pending += float64(n)
	m.update(now)
}

// update folds what was counted into the average once enough time has
// passed for the interval to mean something.
func (m *rateMeter) update(now time.Time) {
	if m.at.IsZero() {
		m.at = now
		return
	}
	dt := now.Sub(m.at)
	if dt < 10*time.Millisecond {
		return
	}
	alpha := 1 - math.Exp(-float64(dt)/float64(rateTau))
	m.rate += alpha * (m.pending/dt.Seconds() - m.rate)
	m.pending, m.at = 0, now
}

// perSecond returns the average as of now.
func (m *rateMeter) perSecond(now time.Time) float64 {
	m.update(now)
	return m.rate
}

// close flushes what is pending and stops run. Later writes fail.
func (b *batcher) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
	<-b.stopped
}
