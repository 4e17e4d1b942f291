// Package spool keeps Alertmanager notifications on local disk while the
// incident store cannot take them, so that nines can still answer 2xx, and
// replays them in arrival order once the store is back.
//
// A Spool sits in front of the incident service as the webhook's Ingester.
// Each notification first goes to the service with a deadline; if the
// store is unavailable or too slow, the notification is appended to the
// spool and fsynced before Ingest returns nil. While anything is spooled,
// new notifications are spooled too, so that a group's notifications are
// applied in the order they arrived. Run replays the spool in order and
// records its progress in a checkpoint file after each applied batch, so a
// restart replays at most one batch twice; that is harmless, because
// applying a notification again changes nothing. The spool is bounded by
// size and by the age of its oldest notification: when full, Ingest fails
// with an error wrapping incidents.ErrUnavailable, the webhook answers 503
// and Alertmanager retries later.
package spool

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ninesops/nines/incidents"
)

// Ingester knows how to store a notification durably.
type Ingester interface {
	Ingest(ctx context.Context, n incidents.Notification) error
}

// StoredIngester is an Ingester that also takes notifications in their
// stored form (incidents.MarshalNotification), as the spool has them, all
// at once (journal.Journal): that saves encoding them again, and a replay
// is one INSERT per batch rather than one per notification. The order of
// notifications does not matter to it.
type StoredIngester interface {
	Ingester
	IngestStored(ctx context.Context, bodies [][]byte) error
}

// next hands a notification, whose stored form is body, to the next
// Ingester. n returns it decoded; it is called only if the next Ingester
// is not a StoredIngester.
func (s *Spool) next(ctx context.Context, n func() (*incidents.Notification, error), body []byte) error {
	if si, ok := s.o.Next.(StoredIngester); ok {
		return si.IngestStored(ctx, [][]byte{body})
	}
	d, err := n()
	if err != nil {
		return fmt.Errorf("%w: %w", incidents.ErrInvalid, err)
	}
	return s.o.Next.Ingest(ctx, *d)
}

// Defaults for Options.
const (
	// DefaultTimeout is short: a notification ClickHouse does not take
	// within it is answered from the spool (one fsync), so that a slow
	// ClickHouse never slows Alertmanager's webhook down.
	DefaultTimeout       = 30 * time.Millisecond
	DefaultReplayTimeout = 30 * time.Second
	DefaultMaxBytes      = 1 << 30
	DefaultMaxAge        = 24 * time.Hour
	DefaultSegmentBytes  = 16 << 20
	DefaultReplayBatch   = 512
	DefaultReplayWorkers = 128
	DefaultRetryMin      = 100 * time.Millisecond
	DefaultRetryMax      = 10 * time.Second
)

// replayBatchBytes bounds the bytes of spooled records read and replayed
// at once (but for one larger record).
const replayBatchBytes = 4 << 20

// maxAttempts is how often a spooled notification is replayed when it
// fails with an error that is neither "unavailable" nor "invalid" (a bug,
// most likely) before it is put aside in the dead-letter file, rather than
// block every notification behind it.
const maxAttempts = 5

// Options configure a Spool.
type Options struct {
	// Dir holds the spool's files; it is created if missing. Required.
	Dir string
	// Next stores notifications (the incident service). Required.
	Next Ingester
	// Timeout bounds the direct attempt before a notification is spooled.
	Timeout time.Duration
	// ReplayTimeout bounds the replay of one notification.
	ReplayTimeout time.Duration
	// MaxBytes bounds the spooled bytes; MaxAge the age of the oldest
	// spooled notification. Past either, Ingest fails (503).
	MaxBytes int64
	MaxAge   time.Duration
	// SegmentBytes is the size at which a new segment file is started.
	SegmentBytes int64
	// ReplayBatch is how many notifications are replayed between
	// checkpoints; ReplayWorkers how many groups are replayed at once
	// (each group's notifications in order).
	ReplayBatch   int
	ReplayWorkers int
	// RetryMin and RetryMax bound the back-off between replay attempts
	// while the store is unavailable.
	RetryMin, RetryMax time.Duration
	Logger             *slog.Logger
	// Registerer receives the spool's metrics; nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o *Options) defaults() {
	setDefault(&o.Timeout, DefaultTimeout)
	setDefault(&o.ReplayTimeout, DefaultReplayTimeout)
	setDefault(&o.MaxBytes, DefaultMaxBytes)
	setDefault(&o.MaxAge, DefaultMaxAge)
	setDefault(&o.SegmentBytes, DefaultSegmentBytes)
	setDefault(&o.ReplayBatch, DefaultReplayBatch)
	setDefault(&o.ReplayWorkers, DefaultReplayWorkers)
	setDefault(&o.RetryMin, DefaultRetryMin)
	setDefault(&o.RetryMax, DefaultRetryMax)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

func (o *Options) validate() error {
	switch {
	case o.Dir == "":
		return errors.New("spool: a directory is required")
	case o.Next == nil:
		return errors.New("spool: an ingester is required")
	case o.SegmentBytes < 4096:
		return fmt.Errorf("spool: segment size %d is below 4096 bytes", o.SegmentBytes)
	case o.MaxBytes < o.SegmentBytes:
		return fmt.Errorf("spool: max bytes %d is below the segment size %d", o.MaxBytes, o.SegmentBytes)
	case o.RetryMax < o.RetryMin:
		return fmt.Errorf("spool: retry max %s is below retry min %s", o.RetryMax, o.RetryMin)
	}
	return nil
}

// Spool is a durable, bounded queue of notifications in front of an
// Ingester. It implements alerts.Ingester.
type Spool struct {
	o       Options
	log     *slog.Logger
	metrics *metrics
	lock    *os.File

	// syncMu is held while fsyncing the segment being appended to, or
	// switching to a new one. It is taken before mu.
	syncMu sync.Mutex
	synced int64 // bytes of this process' appends known to be on disk

	mu      sync.Mutex
	segs    []segment // oldest first; the last is appended to
	w       *os.File  // the last segment, open for appending
	written int64     // bytes appended by this process
	readSeq uint64    // checkpoint: the next record to apply
	readOff int64
	records int64     // records from the checkpoint on
	bytes   int64     // bytes from the checkpoint on (headers of segments excluded)
	oldest  time.Time // when the record at the checkpoint was accepted
	closed  bool
	full    bool // the last append was refused for lack of room
	lastErr string

	wake chan struct{} // buffered(1): something was appended

	// replayMu makes one replayer at a time (Run, Drain).
	replayMu sync.Mutex
	failures map[position]int // under failMu: attempts of records failing oddly
	failMu   sync.Mutex
	rf       *os.File // segment being replayed, under replayMu
	rfSeq    uint64
	// batchBytes is replayBatchBytes, but for tests of its edges.
	batchBytes int
	// ours is where this process' appends start: every record from it on
	// is a stored form this process encoded (MarshalNotification), so the
	// replay need not check that it decodes. Records before it, spooled
	// by an earlier process (or another version), are checked.
	ours position
}

type segment struct {
	seq  uint64
	size int64 // bytes, magic included
}

type position struct {
	seq uint64
	off int64
}

// Open opens the spool in o.Dir, creating it if needed. An existing spool
// is checked: a torn record at its end (from a crash while appending) is
// cut off, damaged records elsewhere are counted and will be skipped, both
// with a warning. Two processes cannot open one spool.
func Open(o Options) (*Spool, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	lock, err := lockDir(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	s := &Spool{
		o: o, log: o.Logger.With("component", "spool"), lock: lock,
		wake: make(chan struct{}, 1), failures: map[position]int{}, batchBytes: replayBatchBytes,
	}
	s.metrics = newMetrics(o.Registerer, s)
	if err := s.recover(); err != nil {
		_ = unlockDir(lock)
		return nil, fmt.Errorf("spool %s: %w", o.Dir, err)
	}
	last := s.segs[len(s.segs)-1]
	s.ours = position{last.seq, last.size}
	return s, nil
}

// recover loads the spool's state from disk.
func (s *Spool) recover() error {
	cp, err := readCheckpoint(s.o.Dir)
	haveCP := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		// Replaying from the start is only slower: every notification
		// applies idempotently.
		s.log.Warn("spool checkpoint unreadable: replaying every spooled notification again", "err", err)
	}
	seqs, err := listSegments(s.o.Dir)
	if err != nil {
		return err
	}
	// A checkpoint names a record boundary of an existing segment (see
	// commit). One that does not was damaged or edited: trusting it could
	// delete or skip notifications answered 2xx, so the spool replays
	// everything it holds instead (too much is harmless, too little is
	// not).
	if haveCP && len(seqs) > 0 {
		if reason := s.checkCheckpoint(cp, seqs); reason != "" {
			s.log.Error("spool checkpoint does not match the segments: replaying every spooled notification again",
				"checkpoint", fmt.Sprintf("segment=%x offset=%d", cp.seq, cp.off), "problem", reason, "segments", len(seqs))
			s.metrics.mismatch.Inc()
			haveCP = false
		}
	}
	if !haveCP {
		cp = position{}
	}
	for len(seqs) > 0 && seqs[0] < cp.seq {
		// Consumed before a crash interrupted the clean-up.
		if err := os.Remove(filepath.Join(s.o.Dir, segmentName(seqs[0]))); err != nil {
			return err
		}
		seqs = seqs[1:]
	}
	if len(seqs) == 0 {
		seq := max(cp.seq, 1)
		f, err := createSegment(s.o.Dir, seq)
		if err != nil {
			return err
		}
		s.w = f
		s.segs = []segment{{seq: seq, size: int64(len(segmentMagic))}}
		s.readSeq, s.readOff = seq, int64(len(segmentMagic))
		return writeCheckpoint(s.o.Dir, position{s.readSeq, s.readOff})
	}
	s.readSeq, s.readOff = seqs[0], int64(len(segmentMagic))
	if seqs[0] == cp.seq {
		s.readOff = max(cp.off, s.readOff)
	}
	for i, seq := range seqs {
		last := i == len(seqs)-1
		size, err := s.scanSegment(seq, last)
		if err != nil {
			return err
		}
		if size < 0 {
			continue // unusable, set aside
		}
		s.segs = append(s.segs, segment{seq: seq, size: size})
	}
	if len(s.segs) == 0 || s.segs[len(s.segs)-1].seq != seqs[len(seqs)-1] {
		// The last segment was set aside: append to a new one.
		seq := seqs[len(seqs)-1] + 1
		f, err := createSegment(s.o.Dir, seq)
		if err != nil {
			return err
		}
		s.w = f
		s.segs = append(s.segs, segment{seq: seq, size: int64(len(segmentMagic))})
	} else {
		last := s.segs[len(s.segs)-1]
		f, err := os.OpenFile(filepath.Join(s.o.Dir, segmentName(last.seq)), os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		s.w = f
	}
	if !slices.ContainsFunc(s.segs, func(g segment) bool { return g.seq == s.readSeq }) {
		s.readSeq, s.readOff = s.segs[0].seq, int64(len(segmentMagic))
	}
	if s.records > 0 {
		s.log.Info("spool holds notifications from before the restart: replaying them",
			"notifications", s.records, "bytes", s.bytes, "oldest", s.oldest)
	}
	return nil
}

// checkCheckpoint returns why cp is not a record boundary of one of the
// segments seqs, or "" if it is one.
func (s *Spool) checkCheckpoint(cp position, seqs []uint64) string {
	if !slices.Contains(seqs, cp.seq) {
		return fmt.Sprintf("segment %s does not exist", segmentName(cp.seq))
	}
	b, err := os.ReadFile(filepath.Join(s.o.Dir, segmentName(cp.seq)))
	if err != nil {
		return err.Error()
	}
	magic := len(segmentMagic)
	switch {
	case cp.off < int64(magic) && len(b) >= magic:
		return "offset inside the segment header"
	case cp.off > int64(len(b)):
		return fmt.Sprintf("offset past the end of the segment (%d bytes)", len(b))
	}
	for off := magic; off <= len(b); {
		if int64(off) == cp.off {
			return ""
		}
		if int64(off) > cp.off || off == len(b) {
			break
		}
		size, _, _, st := parse(b[off:])
		if st == parseOK {
			off += size
			continue
		}
		skip := resync(b[off:])
		if skip < 0 {
			// Damaged to the end: the replay moves past it, to the
			// end of the segment (see readBatch).
			skip = len(b) - off
		}
		off += skip
	}
	return "offset is not the start of a record"
}

// scanSegment counts the records of one segment from the checkpoint on and
// cuts a torn record off the end of the last one. It returns the
// segment's size, or -1 when it is not a segment and was set aside.
func (s *Spool) scanSegment(seq uint64, last bool) (int64, error) {
	path := filepath.Join(s.o.Dir, segmentName(seq))
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	magic := int64(len(segmentMagic))
	if len(b) < len(segmentMagic) {
		if last && strings.HasPrefix(segmentMagic, string(b)) {
			// Created, then a crash before its header was on disk.
			if err := writeHeader(path, true); err != nil {
				return 0, err
			}
			return magic, nil
		}
		s.log.Error("spool segment is too short for a spool header: set aside", "file", path, "bytes", len(b))
		s.metrics.corrupt.Inc()
		return -1, os.Rename(path, path+".bad")
	}
	if string(b[:len(segmentMagic)]) != segmentMagic {
		// Records carry their own checksums: a damaged header costs only
		// the header. Write it again and read the records.
		s.log.Warn("spool segment header is damaged: repairing it and reading its records", "file", path,
			"header", fmt.Sprintf("%q", b[:len(segmentMagic)]))
		s.metrics.corrupt.Inc()
		if err := writeHeader(path, false); err != nil {
			return 0, err
		}
		copy(b, segmentMagic)
	}
	from := magic
	if seq == s.readSeq {
		from = min(max(s.readOff, magic), int64(len(b)))
	}
	if seq < s.readSeq {
		from = int64(len(b))
	}
	off := from
	for off < int64(len(b)) {
		size, at, _, st := parse(b[off:])
		if st == parseOK {
			if s.records == 0 {
				s.oldest = at
			}
			s.records++
			off += int64(size)
			continue
		}
		skip := resync(b[off:])
		if skip >= 0 {
			s.log.Warn("spool: skipping damaged bytes", "file", path, "offset", off, "bytes", skip)
			s.metrics.corrupt.Inc()
			off += int64(skip)
			continue
		}
		if last {
			// Either nines stopped while appending this record (its
			// webhook was not answered 2xx, and Alertmanager retries it),
			// or the file was truncated or damaged after the fact (then
			// a notification answered 2xx is lost). Which one cannot be
			// told from the bytes.
			s.log.Warn("spool: the last segment ends in an incomplete record: cut off. If nines stopped while appending it, "+
				"its webhook was not answered 2xx and Alertmanager retries it; if the file was truncated or damaged, "+
				"a notification answered 2xx is lost",
				"file", path, "offset", off, "bytes", int64(len(b))-off)
			if err := truncateFile(path, off); err != nil {
				return 0, err
			}
			b = b[:off]
		} else {
			s.log.Warn("spool: skipping damaged bytes at the end of a segment", "file", path, "offset", off, "bytes", int64(len(b))-off)
		}
		s.metrics.corrupt.Inc()
		break
	}
	s.bytes += int64(len(b)) - from
	return int64(len(b)), nil
}

// Ingest stores n through the next Ingester when nothing is spooled and
// the store answers within the timeout; otherwise it spools n. It returns
// nil only once n is stored or spooled durably, an error wrapping
// incidents.ErrUnavailable when the spool is full, and the next
// Ingester's error when a retry cannot help (incidents.ErrInvalid).
func (s *Spool) Ingest(ctx context.Context, n incidents.Notification) error {
	body, err := incidents.MarshalNotification(n)
	if err != nil {
		return fmt.Errorf("%w: %w", incidents.ErrInvalid, err)
	}
	return s.IngestStoredForm(ctx, n.GroupKey, body)
}

// IngestStoredForm is Ingest for a notification given in its stored form
// (incidents.MarshalNotification), as the webhook writes it: only that
// form is held while the request waits for the store (an Ingester that is
// not a StoredIngester gets it decoded, as a replay does). body must not
// change after.
func (s *Spool) IngestStoredForm(ctx context.Context, groupKey string, body []byte) error {
	if s.pending() == 0 {
		dctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
		err := s.next(dctx, func() (*incidents.Notification, error) {
			d, err := incidents.UnmarshalNotification(body)
			return &d, err
		}, body)
		cancel()
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil, !retryable(err):
			return err
		}
		if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, incidents.ErrUnavailable) {
			// Slow, not down: the spool answers until it has caught up.
			s.log.Debug("incident store slower than the spool's timeout: spooling notifications", "group_key", groupKey, "timeout", s.o.Timeout)
		} else {
			s.log.Warn("incident store unavailable: spooling notifications", "group_key", groupKey, "err", err)
			s.setLastErr(err)
		}
	}
	return s.append(body)
}

func retryable(err error) bool {
	return errors.Is(err, incidents.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

func (s *Spool) pending() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// append spools a notification's stored form and waits until it is on
// disk.
func (s *Spool) append(body []byte) error {
	now := s.o.Now()
	rec, err := framePayload(body, now)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if err := s.refuseLocked(int64(len(rec)), now); err != nil {
		s.mu.Unlock()
		return err
	}
	if last := s.segs[len(s.segs)-1]; last.size+int64(len(rec)) > s.o.SegmentBytes && last.size > int64(len(segmentMagic)) {
		s.mu.Unlock()
		if err := s.rotate(); err != nil {
			return fmt.Errorf("%w: spool: start a segment: %w", incidents.ErrUnavailable, err)
		}
		s.mu.Lock()
		if err := s.refuseLocked(int64(len(rec)), now); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	last := &s.segs[len(s.segs)-1]
	if _, err := s.w.Write(rec); err != nil {
		// Take back a partial write (a full disk, say), so that the
		// next append does not follow garbage.
		_ = s.w.Truncate(last.size)
		s.mu.Unlock()
		return fmt.Errorf("%w: spool write: %w", incidents.ErrUnavailable, err)
	}
	last.size += int64(len(rec))
	s.written += int64(len(rec))
	end := s.written
	if s.records == 0 {
		s.oldest = now
	}
	s.records++
	s.bytes += int64(len(rec))
	s.full = false
	s.mu.Unlock()
	if err := s.syncTo(end); err != nil {
		// The record may well be on disk and will be replayed; the sender
		// retries anyway, which is harmless.
		return fmt.Errorf("%w: spool fsync: %w", incidents.ErrUnavailable, err)
	}
	s.metrics.appends.Inc()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// refuseLocked returns why a record of size bytes cannot be spooled now,
// or nil. Must hold s.mu.
func (s *Spool) refuseLocked(size int64, now time.Time) error {
	var err error
	switch {
	case s.closed:
		return fmt.Errorf("%w: spool closed", incidents.ErrUnavailable)
	case s.bytes+size > s.o.MaxBytes:
		err = fmt.Errorf("%w: spool full: %d bytes waiting for the store (limit %d)", incidents.ErrUnavailable, s.bytes, s.o.MaxBytes)
	case s.records > 0 && now.Sub(s.oldest) > s.o.MaxAge:
		err = fmt.Errorf("%w: spool full: its oldest notification has waited %s for the store (limit %s)",
			incidents.ErrUnavailable, now.Sub(s.oldest).Round(time.Second), s.o.MaxAge)
	default:
		return nil
	}
	s.metrics.refused.Inc()
	s.full = true
	s.lastErr = err.Error()
	return err
}

// syncTo returns once the first end bytes appended by this process are on
// disk. Concurrent callers share one fsync (group commit).
func (s *Spool) syncTo(end int64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.synced >= end {
		return nil
	}
	s.mu.Lock()
	f, cur := s.w, s.written
	s.mu.Unlock()
	if err := f.Sync(); err != nil {
		return err
	}
	s.synced = cur
	return nil
}

// rotate makes appends go to a new segment.
func (s *Spool) rotate() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rotateLocked()
}

// rotateLocked starts a new segment. Must hold s.syncMu and s.mu.
func (s *Spool) rotateLocked() error {
	if s.closed {
		return errors.New("spool closed")
	}
	last := s.segs[len(s.segs)-1]
	if last.size <= int64(len(segmentMagic)) {
		return nil
	}
	if err := s.w.Sync(); err != nil {
		return err
	}
	s.synced = s.written
	f, err := createSegment(s.o.Dir, last.seq+1)
	if err != nil {
		return err
	}
	_ = s.w.Close()
	s.w = f
	s.segs = append(s.segs, segment{seq: last.seq + 1, size: int64(len(segmentMagic))})
	return nil
}

// Run replays spooled notifications whenever there are any, until ctx
// ends. While the store is unavailable it retries with back-off.
func (s *Spool) Run(ctx context.Context) error {
	backoff := s.o.RetryMin
	for {
		if s.pending() == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-s.wake:
				continue
			}
		}
		n, err := s.replayBatch(ctx)
		if err == nil {
			backoff = s.o.RetryMin
			if n > 0 && s.pending() == 0 {
				s.log.Debug("spool drained: notifications go straight to the store again")
			}
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		s.setLastErr(err)
		s.log.Warn("spool replay failed: will retry", "retry_in", backoff.String(), "waiting", s.pending(), "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, s.o.RetryMax)
	}
}

// Barrier returns once every notification spooled before the call has
// been handed on to the store (or put aside as a dead letter), or wraps
// incidents.ErrUnavailable when ctx ends first: for a sync, which must
// count what the spool still holds.
func (s *Spool) Barrier(ctx context.Context) error {
	s.mu.Lock()
	last := s.segs[len(s.segs)-1]
	target := position{last.seq, last.size}
	s.mu.Unlock()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		done := s.records == 0 || s.readSeq > target.seq || (s.readSeq == target.seq && s.readOff >= target.off)
		waiting := s.records
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: spool: %d notifications not yet handed on to the store: %w", incidents.ErrUnavailable, waiting, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// Drain replays until nothing is spooled or ctx ends, for a clean
// shutdown. What is left stays on disk for the next start.
func (s *Spool) Drain(ctx context.Context) error {
	backoff := s.o.RetryMin
	for s.pending() > 0 {
		if _, err := s.replayBatch(ctx); err != nil {
			s.setLastErr(err)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("spool: %d notifications left for the next start: %w", s.pending(), ctx.Err())
			case <-t.C:
			}
			backoff = min(backoff*2, s.o.RetryMax)
		}
	}
	return nil
}

// replayBatch applies the next batch of spooled notifications and moves
// the checkpoint past them. It returns how many it applied.
func (s *Spool) replayBatch(ctx context.Context) (int, error) {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	recs, end, err := s.readBatch(s.o.ReplayBatch)
	if err != nil {
		return 0, fmt.Errorf("read spool: %w", err)
	}
	s.mu.Lock()
	moved := end != position{s.readSeq, s.readOff}
	if !moved && s.records > 0 {
		// Nothing readable is left although records are counted: never
		// expected, but spinning on it would be worse than recounting.
		s.log.Warn("spool: counted records that cannot be read; resetting the count", "records", s.records)
		s.records, s.bytes, s.oldest = 0, 0, time.Time{}
	}
	s.mu.Unlock()
	if !moved {
		return 0, nil
	}
	if err := s.apply(ctx, recs); err != nil {
		return 0, err
	}
	if err := s.commit(end, len(recs)); err != nil {
		return 0, fmt.Errorf("spool checkpoint: %w", err)
	}
	return len(recs), nil
}

// readBatch reads up to limit records from the checkpoint on. It returns
// them and the position after what it consumed, which may lie past
// damaged bytes it skipped. Payloads spooled before this process opened
// the spool are checked (incidents.CheckStored), not decoded: records
// whose payload does not decode (a checksum that holds over bytes that
// are not a notification, from another version, say) carry the payload
// and the error instead of a body. This process' own records are stored
// forms it encoded itself.
func (s *Spool) readBatch(limit int) ([]record, position, error) {
	s.mu.Lock()
	pos := position{s.readSeq, s.readOff}
	segs := slices.Clone(s.segs)
	s.mu.Unlock()
	var (
		recs  []record
		bytes int
		// want is how many bytes the next read must at least take: all
		// of a record larger than the batch's room.
		want int64
		// whole makes reads take the rest of the segment: the reader
		// resyncs after damaged bytes over all of it.
		whole bool
	)
	// full: the batch holds limit records, or replayBatchBytes of them (at
	// least one record, however large), which bounds the replay's memory.
	full := func() bool { return len(recs) >= limit || (len(recs) > 0 && bytes >= s.batchBytes) }
	i := slices.IndexFunc(segs, func(g segment) bool { return g.seq == pos.seq })
	for i >= 0 && i < len(segs) && !full() {
		seg := segs[i]
		if pos.off >= seg.size {
			if i == len(segs)-1 {
				break
			}
			i++
			pos = position{segs[i].seq, int64(len(segmentMagic))}
			whole = false
			continue
		}
		// Read what the batch has room for, not the rest of the segment
		// (up to --spool.segment-bytes): the records' bodies point into
		// what is read until the batch is applied.
		end := seg.size
		if !whole {
			end = min(seg.size, pos.off+max(int64(s.batchBytes-bytes), want, headerSize))
		}
		want = 0
		b, err := s.readAt(seg.seq, pos.off, end)
		if err != nil {
			return nil, position{}, err
		}
		off := 0
		for off < len(b) && !full() {
			size, at, payload, st := parse(b[off:])
			if st != parseOK && end < seg.size {
				// The segment goes on past what was read: read again from
				// here, all of a record cut short, or the rest of the
				// segment to resync over damaged bytes.
				if st == parseShort {
					want = headerSize
					if len(b)-off >= headerSize {
						want += int64(binary.BigEndian.Uint32(b[off : off+4]))
					}
				} else {
					whole = true
				}
				break
			}
			if st != parseOK {
				skip := resync(b[off:])
				if skip < 0 {
					skip = len(b) - off
				}
				s.log.Warn("spool: skipping damaged bytes", "segment", segmentName(seg.seq), "offset", pos.off+int64(off), "bytes", skip)
				s.metrics.corrupt.Inc()
				off += skip
				continue
			}
			r := record{seq: seg.seq, off: pos.off + int64(off), end: pos.off + int64(off+size), acceptedAt: at}
			var bad error
			if !s.spooledHere(position{r.seq, r.off}) {
				bad = incidents.CheckStored(payload)
			}
			if bad != nil {
				// Kept as a dead letter by apply, bytes and all.
				r.payload, r.decodeErr = slices.Clone(payload), bad
			} else {
				r.body = payload
			}
			recs = append(recs, r)
			bytes += size
			off += size
		}
		pos.off += int64(off)
	}
	return recs, pos, nil
}

// spooledHere reports whether the record at p was appended by this
// process (from s.ours on).
func (s *Spool) spooledHere(p position) bool {
	return p.seq > s.ours.seq || (p.seq == s.ours.seq && p.off >= s.ours.off)
}

// readAt reads segment seq from off to end.
func (s *Spool) readAt(seq uint64, off, end int64) ([]byte, error) {
	if s.rf == nil || s.rfSeq != seq {
		if s.rf != nil {
			_ = s.rf.Close()
			s.rf = nil
		}
		f, err := os.Open(filepath.Join(s.o.Dir, segmentName(seq)))
		if err != nil {
			return nil, err
		}
		s.rf, s.rfSeq = f, seq
	}
	b := make([]byte, end-off)
	if _, err := s.rf.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

// apply replays recs. A StoredIngester takes their stored forms all at
// once, in spool order and without decoding them (it does not mind the
// order). Otherwise, or when it refuses the batch as a whole, they are
// decoded and replayed one at a time: different groups at once, each
// group's in order. apply fails if any could not be applied and should be
// retried; the whole batch is then replayed again, which is harmless.
func (s *Spool) apply(ctx context.Context, recs []record) error {
	todo := make([]*record, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		if r.decodeErr != nil {
			if err := s.putAsideUndecodable(r); err != nil {
				return err
			}
			continue
		}
		todo = append(todo, r)
	}
	if si, ok := s.o.Next.(StoredIngester); ok && len(todo) > 0 {
		bodies := make([][]byte, len(todo))
		for i, r := range todo {
			bodies[i] = r.body
		}
		ictx, cancel := context.WithTimeout(ctx, s.o.ReplayTimeout)
		err := si.IngestStored(ictx, bodies)
		cancel()
		switch {
		case err == nil:
			s.metrics.replayed.Add(float64(len(bodies)))
			return nil
		case retryable(err), ctx.Err() != nil:
			return err
		}
		// Refused as a whole: one at a time below, to find which.
		s.log.Warn("spool: a replayed batch was refused; replaying it one notification at a time", "notifications", len(bodies), "err", err)
	}
	var order []string
	groups := map[string][]*record{}
	for _, r := range todo {
		n, err := r.notification()
		if err != nil {
			if err := s.putAsideUndecodable(r); err != nil {
				return err
			}
			continue
		}
		if _, ok := groups[n.GroupKey]; !ok {
			order = append(order, n.GroupKey)
		}
		groups[n.GroupKey] = append(groups[n.GroupKey], r)
	}
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
		sem      = make(chan struct{}, s.o.ReplayWorkers)
	)
	for _, k := range order {
		list := groups[k]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, r := range list {
				if err := s.applyOne(ctx, r); err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// putAsideUndecodable puts aside r, whose payload does not decode.
func (s *Spool) putAsideUndecodable(r *record) error {
	s.metrics.rejected.Inc()
	return s.putAside(r, r.decodeErr, "spool: a spooled notification does not decode: put aside as a dead letter")
}

func (s *Spool) applyOne(ctx context.Context, r *record) error {
	ictx, cancel := context.WithTimeout(ctx, s.o.ReplayTimeout)
	err := s.next(ictx, r.notification, r.body)
	cancel()
	switch {
	case err == nil:
		s.metrics.replayed.Inc()
		return nil
	case errors.Is(err, incidents.ErrInvalid):
		return s.putAside(r, err, "spool: the store refuses a spooled notification: put aside as a dead letter")
	case retryable(err), ctx.Err() != nil:
		return err
	}
	s.failMu.Lock()
	p := position{r.seq, r.off}
	s.failures[p]++
	attempts := s.failures[p]
	s.failMu.Unlock()
	if attempts < maxAttempts {
		return err
	}
	if err := s.putAside(r, err, "spool: a spooled notification keeps failing: put aside as a dead letter", "attempts", attempts); err != nil {
		return err
	}
	s.failMu.Lock()
	delete(s.failures, p)
	s.failMu.Unlock()
	return nil
}

// putAside keeps r in the dead-letter file, so that the replay can move
// past it without losing it. If that fails, it returns the error, and r is
// replayed again later.
func (s *Spool) putAside(r *record, cause error, msg string, args ...any) error {
	var n incidents.Notification
	if d, err := r.notification(); err == nil {
		n = *d
	} // else r.payload holds the bytes
	d := DeadLetter{AcceptedAt: r.acceptedAt, FailedAt: s.o.Now(), Reason: cause.Error(), Notification: n, Payload: r.payload}
	if err := appendDeadLetters(s.o.Dir, d); err != nil {
		s.log.Error("spool: cannot put a notification aside; will retry", "group_key", n.GroupKey, "err", err, "cause", cause)
		return fmt.Errorf("%w: %w", err, cause)
	}
	s.metrics.deadLetters.Inc()
	s.log.Error(msg, append(args, "group_key", n.GroupKey, "alerts", len(n.Alerts), "err", cause,
		"file", filepath.Join(s.o.Dir, deadLetterFile), "see", "nines spool inspect")...)
	return nil
}

// commit moves the checkpoint to end, past n records, and deletes the
// segments left behind. A drained spool starts a fresh segment, so that
// its files do not grow without end.
func (s *Spool) commit(end position, n int) error {
	if err := writeCheckpoint(s.o.Dir, end); err != nil {
		return err
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bytes -= s.distanceLocked(position{s.readSeq, s.readOff}, end)
	s.readSeq, s.readOff = end.seq, end.off
	s.records -= int64(n)
	s.full = false
	if s.records == 0 {
		s.oldest = time.Time{}
	} else if at, ok := s.peekLocked(end); ok {
		s.oldest = at
	}
	last := s.segs[len(s.segs)-1]
	if s.records == 0 && end.seq == last.seq && end.off >= last.size && last.size > int64(len(segmentMagic)) {
		if err := s.rotateLocked(); err == nil {
			next := position{s.segs[len(s.segs)-1].seq, int64(len(segmentMagic))}
			if err := writeCheckpoint(s.o.Dir, next); err == nil {
				s.readSeq, s.readOff = next.seq, next.off
			}
		}
	}
	for len(s.segs) > 1 && s.segs[0].seq < s.readSeq {
		if s.rf != nil && s.rfSeq == s.segs[0].seq {
			_ = s.rf.Close()
			s.rf = nil
		}
		if err := os.Remove(filepath.Join(s.o.Dir, segmentName(s.segs[0].seq))); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("spool: cannot remove a replayed segment", "err", err)
			break
		}
		s.segs = s.segs[1:]
	}
	return nil
}

// distanceLocked is the number of record bytes from a to b.
func (s *Spool) distanceLocked(a, b position) int64 {
	var d int64
	for _, g := range s.segs {
		if g.seq < a.seq || g.seq > b.seq {
			continue
		}
		from, to := int64(len(segmentMagic)), g.size
		if g.seq == a.seq {
			from = a.off
		}
		if g.seq == b.seq {
			to = b.off
		}
		d += max(to-from, 0)
	}
	return d
}

// peekLocked returns when the first record at or after p was accepted.
func (s *Spool) peekLocked(p position) (time.Time, bool) {
	for _, g := range s.segs {
		if g.seq < p.seq {
			continue
		}
		off := int64(len(segmentMagic))
		if g.seq == p.seq {
			off = p.off
		}
		if off+headerSize > g.size {
			continue
		}
		f, err := os.Open(filepath.Join(s.o.Dir, segmentName(g.seq)))
		if err != nil {
			return time.Time{}, false
		}
		var h [headerSize]byte
		_, err = f.ReadAt(h[:], off)
		_ = f.Close()
		if err != nil {
			return time.Time{}, false
		}
		return time.UnixMilli(int64(binary.BigEndian.Uint64(h[8:16]))).UTC(), true
	}
	return time.Time{}, false
}

// Close syncs and closes the spool's files. What is spooled stays for the
// next Open. Ingest fails with incidents.ErrUnavailable once the spool is
// closed, unless the store takes the notification directly.
func (s *Spool) Close() error {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.w.Sync()
	if cerr := s.w.Close(); err == nil {
		err = cerr
	}
	if s.rf != nil {
		_ = s.rf.Close()
	}
	if uerr := unlockDir(s.lock); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("close spool: %w", err)
	}
	return nil
}

// Status is what the spool holds, for readiness detail.
type Status struct {
	// Records and Bytes are what waits for the store.
	Records int64 `json:"records"`
	Bytes   int64 `json:"bytes"`
	// OldestAgeSeconds is how long the oldest waited; 0 when empty.
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	// Full reports that new notifications are refused (503).
	Full bool `json:"full"`
	// LastError is the last reason the store or the spool failed.
	LastError string `json:"last_error,omitempty"`
}

// Status returns what the spool holds now.
func (s *Spool) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Now()
	st := Status{Records: s.records, Bytes: s.bytes, LastError: s.lastErr}
	if s.records > 0 {
		st.OldestAgeSeconds = now.Sub(s.oldest).Seconds()
	}
	st.Full = s.closed || s.full || s.bytes >= s.o.MaxBytes || (s.records > 0 && now.Sub(s.oldest) > s.o.MaxAge)
	return st
}

func (s *Spool) setLastErr(err error) {
	s.mu.Lock()
	s.lastErr = err.Error()
	s.mu.Unlock()
}

type metrics struct {
	appends, replayed, refused, corrupt, rejected, deadLetters, mismatch prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Spool) *metrics {
	f := promauto.With(reg)
	gauge := func(name, help string, v func(Status) float64) {
		f.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return v(s.Status()) })
	}
	gauge("nines_spool_records", "Notifications spooled on disk, waiting for the incident store.",
		func(st Status) float64 { return float64(st.Records) })
	gauge("nines_spool_bytes", "Bytes spooled on disk, waiting for the incident store.",
		func(st Status) float64 { return float64(st.Bytes) })
	dead := deadLetterGauge{dir: s.o.Dir}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nines_spool_dead_letters",
		Help: "Notifications kept in the spool's dead-letter file: answered 2xx, refused by the store, waiting for an operator (nines spool inspect, nines spool replay); -1 if the file cannot be read.",
	}, dead.value)
	gauge("nines_spool_oldest_age_seconds", "How long the oldest spooled notification has waited; 0 when none waits.",
		func(st Status) float64 { return st.OldestAgeSeconds })
	return &metrics{
		appends: f.NewCounter(prometheus.CounterOpts{
			Name: "nines_spool_appends_total", Help: "Notifications spooled because the incident store was unavailable or busy spooling.",
		}),
		replayed: f.NewCounter(prometheus.CounterOpts{
			Name: "nines_spool_replayed_total", Help: "Spooled notifications applied to the incident store.",
		}),
		refused: f.NewCounter(prometheus.CounterOpts{
			Name: "nines_spool_refused_total", Help: "Notifications refused (503) because the spool was full.",
		}),
		corrupt: f.NewCounter(prometheus.CounterOpts{
			Name: "nines_spool_corrupt_records_total", Help: "Torn or damaged spool records skipped.",
		}),
		rejected: f.NewCounter(prometheus.CounterOpts{
			Name: "nines_spool_rejected_total", Help: "Spooled records whose payload, although its checksum is right, does not decode (kept as dead letters).",
		}),
		deadLetters: f.NewCounter(prometheus.CounterOpts{
			Name: "nines_spool_dead_letters_total",
			Help: "Spooled notifications put aside in the dead-letter file because the store refused them or they kept failing (see nines spool inspect).",
		}),
		mismatch: f.NewCounter(prometheus.CounterOpts{
			Name: "nines_spool_checkpoint_mismatches_total",
			Help: "Checkpoints found not to match the spool's segments on start; the spool was then replayed from an earlier point.",
		}),
	}
}

// deadLetterGauge counts the dead letters, reading the file again only
// when its size changed (nines spool replay may rewrite it).
type deadLetterGauge struct {
	dir  string
	mu   sync.Mutex
	size int64
	n    float64
}

func (g *deadLetterGauge) value() float64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	st, err := os.Stat(filepath.Join(g.dir, deadLetterFile))
	if errors.Is(err, os.ErrNotExist) {
		g.size, g.n = 0, 0
		return 0
	}
	if err != nil {
		return -1
	}
	if st.Size() != g.size {
		n, err := countDeadLetters(g.dir)
		if err != nil {
			return -1
		}
		g.size, g.n = st.Size(), float64(n)
	}
	return g.n
}

// Files.

func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), segmentSuffix)
		if !ok || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(name, 16, 64)
		if err != nil {
			continue
		}
		seqs = append(seqs, seq)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	return seqs, nil
}

// createSegment creates segment seq with its header, durably.
func createSegment(dir string, seq uint64) (*os.File, error) {
	path := filepath.Join(dir, segmentName(seq))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write([]byte(segmentMagic)); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

// writeHeader writes the segment header at the start of path, durably:
// over what is there (a damaged header), or, with truncate, as all the
// file holds (a torn one).
func writeHeader(path string, truncate bool) error {
	flag := os.O_WRONLY
	if truncate {
		flag |= os.O_TRUNC
	}
	f, err := os.OpenFile(path, flag, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteAt([]byte(segmentMagic), 0)
	return syncClose(f, err)
}

// syncClose fsyncs and closes f, unless err (the outcome of writing it)
// is set, and returns the first error.
func syncClose(f *os.File, err error) error {
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

const checkpointFile = "checkpoint"

func readCheckpoint(dir string) (position, error) {
	b, err := os.ReadFile(filepath.Join(dir, checkpointFile))
	if err != nil {
		return position{}, err
	}
	var p position
	if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "segment=%x offset=%d", &p.seq, &p.off); err != nil || p.off < 0 {
		return position{}, fmt.Errorf("checkpoint %q: want segment=<hex> offset=<n>", strings.TrimSpace(string(b)))
	}
	return p, nil
}

// writeCheckpoint records p durably: a new file, fsynced, renamed over the
// old one, and the directory fsynced.
func writeCheckpoint(dir string, p position) error {
	tmp := filepath.Join(dir, checkpointFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "segment=%x offset=%d\n", p.seq, p.off); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, checkpointFile)); err != nil {
		return err
	}
	return syncDir(dir)
}
