package chat

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

// Lease defaults.
const (
	DefaultLeaseTTL       = 15 * time.Second
	DefaultLeaseHeartbeat = 3 * time.Second
	// leaseName names the chat sender's lease in the leases table.
	leaseName = "chat-sender"
)

// lease decides whether this replica is the chat leader, without
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
// the sender never carries on with a round (or with knowledge) from a
// term in which another replica may have led. fence gives the sender the
// term and the instant its leadership ends unless renewed; every Slack
// call checks both just before it starts and carries that instant as its
// deadline.
type lease struct {
	store  Leases
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

func newLease(store Leases, holder string, ttl, beat time.Duration, now func() time.Time, log *slog.Logger, onFlip func(bool)) *lease {
	return &lease{store: store, holder: holder, ttl: ttl, beat: beat, now: now, log: log, onFlip: onFlip, flip: make(chan struct{}, 1)}
}

// newHolderID returns a lease holder ID that sorts by start time: Unix
// milliseconds, then the host name and a random suffix for uniqueness.
func newHolderID(now time.Time) string {
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

// run heartbeats until ctx ends.
func (l *lease) run(ctx context.Context) {
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
func (l *lease) check(ctx context.Context) {
	at := l.now()
	cctx, cancel := context.WithTimeout(ctx, l.beat)
	defer cancel()
	if err := l.store.Heartbeat(cctx, leaseName, l.holder, at); err != nil {
		l.log.Warn("chat lease heartbeat failed", "err", err)
		l.changed()
		return
	}
	holders, err := l.store.LeaseHolders(cctx, leaseName, at.Add(-l.ttl))
	if err != nil {
		l.log.Warn("chat lease check failed", "err", err)
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
func (l *lease) changed() {
	now := l.leader()
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

// leader reports whether this replica may send now.
func (l *lease) leader() bool {
	_, _, ok := l.fence()
	return ok
}

// fence reports whether this replica may send now, in which term, and
// until when: no call may start, and none should still be under way, at
// or after until unless a heartbeat renews it within the same term.
func (l *lease) fence() (term uint64, until time.Time, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term, l.until, l.now().Before(l.until)
}
