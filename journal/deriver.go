package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/lease"
)

// Deriver defaults.
const (
	// LeaseName names the deriver's lease (and its cursor).
	LeaseName = "deriver"
	// DefaultOverlap is how far before its cursor a new deriver starts
	// reading, and how late a record may become visible (a slow INSERT,
	// clocks of replicas that disagree) and still be read by the tail.
	DefaultOverlap = 30 * time.Second
	// DefaultPoll is how often the deriver looks for records that other
	// replicas appended (its own wake it at once).
	DefaultPoll = 200 * time.Millisecond
	// DefaultPageRows and DefaultPageBytes bound one read of the log, and
	// so the deriver's memory: what a page holds (bodies, decoded alerts,
	// the incidents and rows derived from them) stays in memory until its
	// writes are flushed, a second under load. Storm of new groups: pages
	// of 8 MB peaked at 339–367 MB of RSS, of 4 MB at 258 MB, catching up
	// in 7.4 s rather than 5–6.
	DefaultPageRows        = 2000
	DefaultPageBytes int64 = 4 << 20
	// DefaultWorkers is how many notifications are applied at once: the
	// service serializes work per group, and concurrent writes share
	// INSERTs.
	DefaultWorkers = 512
	// DefaultPipeline is how many pages of notifications are applied at
	// once: the next page is read and applied while the writes of the
	// last are flushed, so that the two share INSERTs.
	DefaultPipeline = 2
)

// Applier knows how to apply notifications and commands to incidents
// (incidents.Service).
type Applier interface {
	Ingest(ctx context.Context, n incidents.Notification) error
	Do(ctx context.Context, c incidents.Command) (*incidents.Incident, error)
	// Forget drops what it holds in memory (another deriver may have led).
	Forget()
	// Prefetch reads what the notifications about to be applied need
	// from the store, in one go.
	Prefetch(ctx context.Context, ns []incidents.Notification) error
	// LinkPending links incidents the last notifications opened to an
	// upstream outage stored alongside them (cascades within a batch).
	LinkPending(ctx context.Context)
}

// Retainer knows how to drop the log's days before a day (retention).
type Retainer interface {
	DropLogBefore(ctx context.Context, day time.Time) ([]string, error)
}

// Cursors knows how to keep the deriver's cursor.
type Cursors interface {
	LogCursor(ctx context.Context, name string) (Position, bool, error)
	SetLogCursor(ctx context.Context, name string, p Position, at time.Time) error
}

// DeriverOptions configure a Deriver.
type DeriverOptions struct {
	Log     Log
	Results Results
	Cursors Cursors
	Leases  lease.Store
	Applier Applier
	// Journal, if set, is this process's front: the deriver wakes when it
	// appends and answers its waiting callers directly.
	Journal *Journal
	// Retainer and Retention, if set, make the leader drop the log's
	// days older than Retention (checked hourly).
	Retainer  Retainer
	Retention time.Duration
	// Holder names this replica in the lease (lease.NewHolderID).
	Holder              string
	LeaseTTL, LeaseBeat time.Duration
	Overlap, Poll       time.Duration
	PageRows, Workers   int
	Pipeline            int
	PageBytes           int64
	Now                 func() time.Time
	Logger              *slog.Logger
	Registerer          prometheus.Registerer
}

// Deriver applies the log to incidents while this replica holds the
// deriver lease.
type Deriver struct {
	o       DeriverOptions
	lease   *lease.Lease
	log     *slog.Logger
	metrics *deriverMetrics

	mu     sync.Mutex
	pos    Position // everything up to here is applied (this term)
	caught bool     // the tail reached the end of the log

	drain    chan struct{} // closed by Stop: finish what is logged, then stop
	stopOnce sync.Once
	done     chan struct{} // closed when Run returns
}

type deriverMetrics struct {
	applied  *prometheus.CounterVec
	refused  prometheus.Counter
	lag      prometheus.Gauge
	leader   prometheus.Gauge
	failures prometheus.Counter
}

// NewDeriver builds a Deriver.
func NewDeriver(o DeriverOptions) (*Deriver, error) {
	if o.Log == nil || o.Results == nil || o.Cursors == nil || o.Leases == nil || o.Applier == nil {
		return nil, errors.New("deriver: Log, Results, Cursors, Leases and Applier are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Holder == "" {
		o.Holder = lease.NewHolderID(o.Now())
	}
	setDefault(&o.LeaseTTL, lease.DefaultTTL)
	setDefault(&o.LeaseBeat, lease.DefaultHeartbeat)
	setDefault(&o.Overlap, DefaultOverlap)
	setDefault(&o.Poll, DefaultPoll)
	setDefault(&o.PageRows, DefaultPageRows)
	setDefault(&o.PageBytes, DefaultPageBytes)
	setDefault(&o.Workers, DefaultWorkers)
	setDefault(&o.Pipeline, DefaultPipeline)
	reg := o.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	f := promauto.With(reg)
	d := &Deriver{o: o, log: o.Logger.With("component", "deriver"), drain: make(chan struct{}), done: make(chan struct{}), metrics: &deriverMetrics{
		applied: f.NewCounterVec(prometheus.CounterOpts{
			Name: "nines_deriver_records_applied_total",
			Help: "Records of the notification log applied by this replica's deriver, by kind.",
		}, []string{"kind"}),
		refused: f.NewCounter(prometheus.CounterOpts{
			Name: "nines_deriver_records_refused_total",
			Help: "Records of the notification log the lifecycle refused for good (they stay in the log: fix the cause and run nines replay).",
		}),
		lag: f.NewGauge(prometheus.GaugeOpts{
			Name: "nines_deriver_lag_seconds",
			Help: "How far the deriver is behind the newest record it has read (0 when caught up; only on the leader).",
		}),
		leader: f.NewGauge(prometheus.GaugeOpts{
			Name: "nines_deriver_leader",
			Help: "1 while this replica derives incidents from the log.",
		}),
		failures: f.NewCounter(prometheus.CounterOpts{
			Name: "nines_deriver_failures_total",
			Help: "Rounds of the deriver that failed (the store was unavailable) and were retried.",
		}),
	}}
	d.lease = lease.New(o.Leases, LeaseName, o.Holder, o.LeaseTTL, o.LeaseBeat, o.Now, d.log, func(leader bool) {
		if leader {
			d.metrics.leader.Set(1)
		} else {
			d.metrics.leader.Set(0)
		}
	})
	return d, nil
}

func setDefault[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Run derives while this replica leads, until ctx ends or Stop.
func (d *Deriver) Run(ctx context.Context) error {
	defer close(d.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	leaseCtx, stop := context.WithCancel(ctx)
	defer stop()
	wg.Go(func() { d.lease.Run(leaseCtx) })
	if d.o.Retainer != nil && d.o.Retention > 0 {
		wg.Go(func() { d.retain(leaseCtx) })
	}
	for {
		if term, _, ok := d.lease.Fence(); ok {
			d.lead(ctx, term)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.drain:
			return nil
		case <-d.lease.Flip():
		}
	}
}

// Stop makes Run apply what the log holds (if this replica leads) and
// return: call it on shutdown, after the webhook has stopped and the
// spool has been drained into the log. It returns when Run has, or when
// ctx ends (Run's own context must then end it).
func (d *Deriver) Stop(ctx context.Context) error {
	d.stopOnce.Do(func() { close(d.drain) })
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("deriver: stopped before applying the whole log (the next deriver will): %w", context.Cause(ctx))
	}
}

func (d *Deriver) draining() bool {
	select {
	case <-d.drain:
		return true
	default:
		return false
	}
}

// retain drops, while this replica leads, the log's days older than the
// retention: as soon as it leads, then hourly.
func (d *Deriver) retain(ctx context.Context) {
	var last time.Time
	for {
		if d.lease.Leader() && d.o.Now().Sub(last) >= time.Hour {
			last = d.o.Now()
			before := d.o.Now().Add(-d.o.Retention).UTC().Truncate(24 * time.Hour)
			dropped, err := d.o.Retainer.DropLogBefore(ctx, before)
			if err != nil && ctx.Err() == nil {
				d.log.Warn("notification log retention failed", "err", err)
			}
			if len(dropped) > 0 {
				d.log.Info("notification log: days dropped (retention)", "days", len(dropped), "first", dropped[0], "last", dropped[len(dropped)-1])
			}
		}
		if !sleep(ctx, time.Minute, nil) {
			return
		}
	}
}

// Leader reports whether this replica derives now.
func (d *Deriver) Leader() bool { return d.lease.Leader() }

// CaughtUp reports whether this replica leads and has applied every
// record it could see when it last looked.
func (d *Deriver) CaughtUp() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.caught && d.lease.Leader()
}

// leading reports whether this replica still leads in term.
func (d *Deriver) leading(term uint64) bool {
	t, _, ok := d.lease.Fence()
	return ok && t == term
}

// lead derives for one term: from a little before the stored cursor, it
// tails the log, and every so often reads again the last Overlap of it for
// records that became visible late.
func (d *Deriver) lead(ctx context.Context, term uint64) {
	d.o.Applier.Forget()
	start, err := d.start(ctx, term)
	if err != nil {
		return
	}
	d.log.Info("deriving incidents from the log", "from", start.At)
	t := tail{pos: start, seen: map[string]time.Time{}}
	// Pages still being applied finish before another term begins.
	defer func() { _ = d.reap(ctx, &t, 0) }()
	var (
		saved     Position
		savedAt   time.Time
		lastSweep = d.o.Now()
		backoff   = d.o.Poll
	)
	for ctx.Err() == nil && d.leading(term) {
		n, last, err := d.round(ctx, term, &t, t.pos)
		if err == nil && n > 0 && t.pos.Before(last) {
			t.pos = last
		}
		if err == nil && n == 0 {
			// At the end of the log: what is being applied first.
			err = d.reap(ctx, &t, 0)
		}
		if err == nil && d.o.Now().Sub(lastSweep) >= d.o.Overlap/4 {
			// Look again at the recent past.
			err = d.sweep(ctx, term, &t)
			lastSweep = d.o.Now()
		}
		d.mu.Lock()
		d.pos, d.caught = t.applied(), err == nil && n == 0 && len(t.inflight) == 0
		d.mu.Unlock()
		if err != nil {
			d.metrics.failures.Inc()
			if ctx.Err() == nil {
				d.log.Warn("deriver round failed, retrying", "err", err, "retry_in", backoff)
			}
			sleep(ctx, backoff, nil)
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = d.o.Poll
		if at := t.applied(); at != saved && d.o.Now().Sub(savedAt) >= time.Second && d.leading(term) {
			if err := d.o.Cursors.SetLogCursor(ctx, LeaseName, at, d.o.Now()); err == nil {
				saved, savedAt = at, d.o.Now()
			}
		}
		t.prune(t.pos.At.Add(-2 * d.o.Overlap))
		if n == 0 && d.draining() {
			// The tail is at the end; a last look at the recent past.
			err := d.sweep(ctx, term, &t)
			if rerr := d.reap(ctx, &t, 0); err == nil {
				err = rerr
			}
			if err == nil {
				_ = d.o.Cursors.SetLogCursor(ctx, LeaseName, t.pos, d.o.Now())
				return
			}
			continue
		}
		if n == 0 {
			d.metrics.lag.Set(0)
			var wake <-chan struct{}
			if d.o.Journal != nil {
				wake = d.o.Journal.wake
			}
			sleep(ctx, d.o.Poll, wake)
		}
	}
}

// start reads where to begin: Overlap before the stored cursor.
func (d *Deriver) start(ctx context.Context, term uint64) (Position, error) {
	backoff := d.o.Poll
	for {
		p, ok, err := d.o.Cursors.LogCursor(ctx, LeaseName)
		if err == nil {
			if !ok {
				return Position{}, nil
			}
			return Position{At: p.At.Add(-d.o.Overlap)}, nil
		}
		d.log.Warn("read the deriver's cursor", "err", err)
		if !sleep(ctx, backoff, nil) || !d.leading(term) {
			return Position{}, err
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// tail is the deriver's progress in a term: records applied, by hash,
// with their times; the position up to which all are read; and the pages
// of notifications being applied (the deriver's pipeline), oldest first.
type tail struct {
	pos      Position
	inflight []*page
	unlinked int // pages applied since the last LinkPending

	mu   sync.Mutex
	seen map[string]time.Time
}

// page is a page of notifications being applied.
type page struct {
	from Position // where its read began: all before it is applied
	done chan struct{}
	err  error
}

func (t *tail) isSeen(hash string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.seen[hash]
	return ok
}

func (t *tail) see(r Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seen[r.Hash] = r.At
}

func (t *tail) prune(before time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for h, at := range t.seen {
		if at.Before(before) {
			delete(t.seen, h)
		}
	}
}

// applied is the position before which every record is applied.
func (t *tail) applied() Position {
	if len(t.inflight) > 0 {
		return t.inflight[0].from
	}
	return t.pos
}

// linkEvery is how many pages the pipeline applies at most before it
// empties, so that what they opened is linked to upstream outages they
// stored (Applier.LinkPending, which must not run while a page is half
// applied: an incident would be looked at before its upstream outage, a
// few records later, is stored).
const linkEvery = 4

// reap waits until at most keep pages are being applied, oldest first.
// When none is left, it links what they opened. If one failed, it waits
// for all, moves the tail back to where the first failed page began (what
// was applied after it is seen, and skipped), and returns its error.
func (d *Deriver) reap(ctx context.Context, t *tail, keep int) error {
	var failed *page
	for len(t.inflight) > keep || (failed != nil && len(t.inflight) > 0) {
		p := t.inflight[0]
		<-p.done
		t.inflight = t.inflight[1:]
		if p.err != nil && failed == nil {
			failed = p
		}
	}
	if failed != nil {
		if failed.from.Before(t.pos) {
			t.pos = failed.from
		}
		return failed.err
	}
	if len(t.inflight) == 0 && t.unlinked > 0 {
		d.o.Applier.LinkPending(ctx)
		t.unlinked = 0
	}
	return nil
}

// round reads the page after from and applies its records not yet seen.
// It returns how many records the page held and the position of its last
// one: not the records, whose bodies go once they are decoded.
// A page of notifications only is applied in the background (the
// pipeline: Pipeline pages at most); one with commands waits for those.
func (d *Deriver) round(ctx context.Context, term uint64, t *tail, from Position) (int, Position, error) {
	unseen := func(r Record) bool { return !t.isSeen(r.Hash) }
	recs, err := d.o.Log.ReadLog(ctx, from, d.o.PageRows, d.o.PageBytes, unseen)
	if err != nil || len(recs) == 0 {
		return 0, from, err
	}
	d.metrics.lag.Set(max(0, d.o.Now().Sub(recs[len(recs)-1].At).Seconds()))
	var (
		fresh    []Record
		commands bool
	)
	for _, r := range recs {
		if r.Body != nil && unseen(r) {
			fresh = append(fresh, r)
			commands = commands || r.Kind == KindCommand
		}
	}
	last := Of(recs[len(recs)-1])
	if !commands && d.o.Pipeline > 1 {
		keep := d.o.Pipeline - 1
		if t.unlinked >= linkEvery {
			keep = 0
		}
		if err := d.reap(ctx, t, keep); err != nil {
			return len(recs), from, err
		}
		if !d.leading(term) {
			return len(recs), from, fmt.Errorf("%w: lost the deriver lease", fault.ErrUnavailable)
		}
		p := &page{from: from, done: make(chan struct{})}
		t.inflight = append(t.inflight, p)
		t.unlinked++
		go func() {
			defer close(p.done)
			p.err = d.notifications(ctx, fresh, t)
		}()
		return len(recs), last, nil
	}
	if err := d.reap(ctx, t, 0); err != nil {
		return len(recs), from, err
	}
	if err := d.apply(ctx, term, fresh, t); err != nil {
		return len(recs), from, err
	}
	return len(recs), last, nil
}

// sweep applies the records of the Overlap before the tail's position
// that became visible after the tail passed their place (settle up to
// the tail), once the pages being applied are done.
func (d *Deriver) sweep(ctx context.Context, term uint64, t *tail) error {
	if err := d.reap(ctx, t, 0); err != nil {
		return err
	}
	return d.settle(ctx, term, t, t.pos)
}

// settle applies the records of the Overlap before until that the tail
// passed before they became visible: an INSERT of another replica that
// started earlier but finished later than one the tail has read. Before a
// command (until is the command's place): what was logged before it was
// logged is visible by then, so a command (a sync among them) applies
// after it. Periodically up to the tail (sweep). No page may be half
// applied (apply links cascades).
func (d *Deriver) settle(ctx context.Context, term uint64, t *tail, until Position) error {
	unseen := func(r Record) bool { return !t.isSeen(r.Hash) }
	from := Position{At: until.At.Add(-d.o.Overlap)}
	for {
		recs, err := d.o.Log.ReadLog(ctx, from, d.o.PageRows, d.o.PageBytes, func(r Record) bool {
			return unseen(r) && Of(r).Before(until)
		})
		if err != nil {
			return err
		}
		var fresh []Record
		more := len(recs) == d.o.PageRows
		for _, r := range recs {
			if !Of(r).Before(until) {
				more = false
				break
			}
			if r.Body != nil && unseen(r) {
				fresh = append(fresh, r)
			}
		}
		if err := d.apply(ctx, term, fresh, t); err != nil || !more {
			return err
		}
		from = Of(recs[len(recs)-1])
	}
}

// apply applies recs in order: notifications in between commands
// concurrently (their order does not matter), commands one at a time.
func (d *Deriver) apply(ctx context.Context, term uint64, recs []Record, t *tail) error {
	for len(recs) > 0 {
		if !d.leading(term) {
			return fmt.Errorf("%w: lost the deriver lease", fault.ErrUnavailable)
		}
		i := 0
		for i < len(recs) && recs[i].Kind != KindCommand {
			i++
		}
		if err := d.notifications(ctx, recs[:i], t); err != nil {
			return err
		}
		if i > 0 {
			d.o.Applier.LinkPending(ctx)
		}
		recs = recs[i:]
		if len(recs) == 0 {
			break
		}
		if err := d.settle(ctx, term, t, Of(recs[0])); err != nil {
			return err
		}
		if err := d.command(ctx, recs[0]); err != nil {
			return err
		}
		t.see(recs[0])
		recs = recs[1:]
	}
	return nil
}

// notifications applies recs concurrently, after reading what they need
// from the store in one go. Those applied are marked seen even when
// another fails, so that a retry does only the rest. It takes recs'
// bodies: each is dropped once decoded, so that a page's raw bytes do not
// stay while its notifications are applied.
func (d *Deriver) notifications(ctx context.Context, recs []Record, t *tail) error {
	type decoded struct {
		r Record
		n incidents.Notification
	}
	var (
		todo []decoded
		ns   []incidents.Notification
	)
	for i := range recs {
		r := recs[i]
		if r.Kind != KindNotification {
			d.refuse(r, fmt.Errorf("unknown record kind %q", r.Kind))
			t.see(r)
			continue
		}
		n, err := incidents.UnmarshalNotification(r.Body)
		if err != nil {
			d.refuse(r, err)
			t.see(r)
			continue
		}
		// The decoded notification holds copies: the body may go.
		r.Body, recs[i].Body = nil, nil
		todo = append(todo, decoded{r, n})
		ns = append(ns, n)
	}
	if len(todo) == 0 {
		return nil
	}
	if err := d.o.Applier.Prefetch(ctx, ns); err != nil {
		return err
	}
	ns = nil
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  = make(chan decoded)
	)
	for range min(d.o.Workers, len(todo)) {
		wg.Go(func() {
			for x := range next {
				err := d.notification(ctx, x.r, x.n)
				if err == nil {
					t.see(x.r)
					continue
				}
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	for i := range todo {
		next <- todo[i]
		todo[i] = decoded{} // let what is applied go
	}
	close(next)
	wg.Wait()
	return first
}

// notification applies notification n, decoded from record r. One the
// lifecycle refuses for good is counted and skipped: it stays in the log.
func (d *Deriver) notification(ctx context.Context, r Record, n incidents.Notification) error {
	if err := d.o.Applier.Ingest(ctx, n); err != nil {
		if permanent(err) {
			d.refuse(r, err)
			return nil
		}
		return err
	}
	d.metrics.applied.WithLabelValues(string(KindNotification)).Inc()
	return nil
}

// command applies one command record and records its result, unless a
// result is stored already (an earlier deriver applied it).
func (d *Deriver) command(ctx context.Context, r Record) error {
	var c incidents.Command
	if err := json.Unmarshal(r.Body, &c); err != nil || c.ID == "" {
		d.refuse(r, fmt.Errorf("decode command: %v", err))
		return nil
	}
	done, err := d.o.Results.Results(ctx, []string{c.ID})
	if err != nil {
		return err
	}
	if res, ok := done[c.ID]; ok {
		d.answer(res)
		return nil
	}
	inc, err := d.o.Applier.Do(ctx, c)
	if err != nil && !permanent(err) {
		return err
	}
	res := resultOf(c.ID, inc, err, d.o.Now())
	if err := d.o.Results.PutResults(ctx, []Result{res}); err != nil {
		return err
	}
	d.metrics.applied.WithLabelValues(string(KindCommand)).Inc()
	d.answer(res)
	return nil
}

func (d *Deriver) answer(r Result) {
	if d.o.Journal != nil {
		d.o.Journal.applied(r)
	}
}

func (d *Deriver) refuse(r Record, err error) {
	d.metrics.refused.Inc()
	d.log.Error("log record refused by the lifecycle: it stays in the log", "hash", r.Hash, "at", r.At, "kind", r.Kind, "err", err)
}

// permanent reports whether err will not go away by trying again.
func permanent(err error) bool {
	if errors.Is(err, fault.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	for _, s := range statuses {
		if errors.Is(err, s.kind) {
			return true
		}
	}
	return false
}

// sleep waits d, or until wake or ctx; it reports whether ctx is still
// alive.
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}
