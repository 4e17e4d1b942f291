// Package lease decides which one of several replicas acts, without
// compare-and-swap, on a store that records heartbeats: the chat sender and
// the deriver each hold one.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Defaults.
const (
	DefaultTTL       = 15 * time.Second
	DefaultHeartbeat = 3 * time.Second
)

// Store knows how to record lease heartbeats and list live holders.
type Store interface {
	// Heartbeat records that holder is alive at at, for the lease name.
	Heartbeat(ctx context.Context, name, holder string, at time.Time) error
	// LeaseHolders lists, sorted, the holders of name whose latest
	// heartbeat is at or after since.
	LeaseHolders(ctx context.Context, name string, since time.Time) ([]string, error)
}

// Lease decides whether this replica leads, without
// compare-and-swap: every replica writes a heartbeat row every beat, and
// the leader is the live holder (heartbeat within ttl) with the smallest
// ID. IDs start with the process's start time, so the oldest live replica
// leads and a replica that starts later never preempts a live leader.
//
// A leader fences itself: it counts as leader only until ttl − 2×beat
// after its last successful heartbeat-and-check, while the others wait for
// ttl after that heartbeat before they take over. Between the two, nobody
// sends. Should clocks disagree by more than that margin, the intent rows
// and the look-up before every re-send still keep a message from being
// posted twice (see README.md).
//
// Each stretch of leadership is a term, numbered by this replica: the term
// changes whenever leadership lapsed in between, however briefly, so that
// the holder never carries on with a round (or with knowledge) from a
// term in which another replica may have led. Fence gives the holder the
// term and the instant its leadership ends unless renewed; every external
// call (a Slack post, a write of derived incidents) checks both just before it starts and carries that instant as its
// deadline.
type Lease struct {
	store  Store
	name   string
	holder string
	ttl    time.Duration
	beat   time.Duration
	now    func() time.Time
	log    *slog.Logger
	onFlip func(leader bool)

	mu    sync.Mutex
	until time.Time // leader until then
	term  uint64    // this replica's current or last term
	was   bool
	flip  chan struct{} // buffered(1): leadership may have changed
}

// New returns the lease name of store for holder (see NewHolderID).
// onFlip, if set, is told when this replica starts or stops leading.
func New(store Store, name, holder string, ttl, beat time.Duration, now func() time.Time, log *slog.Logger, onFlip func(bool)) *Lease {
	return &Lease{store: store, name: name, holder: holder, ttl: ttl, beat: beat, now: now, log: log.With("lease", name), onFlip: onFlip, flip: make(chan struct{}, 1)}
}

// Flip is signalled whenever leadership may have changed.
func (l *Lease) Flip() <-chan struct{} { return l.flip }

// NewHolderID returns a lease holder ID that sorts by start time: Unix
// milliseconds, then the host name and a random suffix for uniqueness.
func NewHolderID(now time.Time) string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' {
			return r
		}
		return '_'
	}, host)
	var b [4]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return fmt.Sprintf("%013d-%s-%s", now.UnixMilli(), host, hex.EncodeToString(b[:]))
}

// Run heartbeats until ctx ends.
func (l *Lease) Run(ctx context.Context) {
	t := time.NewTicker(l.beat)
	defer t.Stop()
	for {
		l.check(ctx)
		select {
		case <-ctx.Done():
			l.mu.Lock()
			l.until = time.Time{}
			l.mu.Unlock()
			l.changed()
			return
		case <-t.C:
		}
	}
}

// check writes a heartbeat and reads who leads.
func (l *Lease) check(ctx context.Context) {
	at := l.now()
	cctx, cancel := context.WithTimeout(ctx, l.beat)
	defer cancel()
	if err := l.store.Heartbeat(cctx, l.name, l.holder, at); err != nil {
		l.log.Warn("lease heartbeat failed", "err", err)
		l.changed()
		return
	}
	holders, err := l.store.LeaseHolders(cctx, l.name, at.Add(-l.ttl))
	if err != nil {
		l.log.Warn("lease check failed", "err", err)
		l.changed()
		return
	}
	leader := len(holders) > 0 && holders[0] == l.holder
	l.mu.Lock()
	if leader {
		if !l.now().Before(l.until) {
			// Not leading until now, or lapsed (a slow check, a
			// paused process): another replica may have led
			// meanwhile. A new term begins.
			l.term++
		}
		l.until = at.Add(l.ttl - 2*l.beat)
	} else {
		l.until = time.Time{}
	}
	l.mu.Unlock()
	l.changed()
}

// changed reports a possible flip to onFlip and wakes waiters.
func (l *Lease) changed() {
	now := l.Leader()
	l.mu.Lock()
	flipped := now != l.was
	l.was = now
	l.mu.Unlock()
	if flipped && l.onFlip != nil {
		l.onFlip(now)
	}
	select {
	case l.flip <- struct{}{}:
	default:
	}
}

// Leader reports whether this replica may send now.
func (l *Lease) Leader() bool {
	_, _, ok := l.Fence()
	return ok
}

// Fence reports whether this replica may send now, in which term, and
// until when: no call may start, and none should still be under way, at
// or after until unless a heartbeat renews it within the same term.
func (l *Lease) Fence() (term uint64, until time.Time, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term, l.until, l.now().Before(l.until)
}
