// Package journal is nines' log-first intake. The webhook validates a
// notification, appends it as it came to a durable log (a ClickHouse
// table written by group commit, behind the local spool) and answers 2xx;
// people's actions go into the same log as commands. One deriver at a time
// (the replica holding the "deriver" lease) reads the log and applies it
// with the incident lifecycle (incidents.Service), which keeps its state in
// memory and writes incident versions, alerts and events in large batches.
// Other replicas only append and serve reads: no two processes ever write
// the same incident, so nothing needs merging.
//
// Incidents are a function of the set of alert occurrences and the ordered
// actions (incidents.Config.Derive), so the order in which the deriver
// reads notifications does not change them, and reading one twice changes
// nothing: a new deriver simply starts a little before where the last one
// stopped (DefaultOverlap).
package journal

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ninesops/nines/answer"
	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// Kind says what a Record holds.
type Kind string

// Record kinds.
const (
	KindNotification Kind = "notification" // incidents.MarshalNotification
	KindCommand      Kind = "command"      // an incidents.Command as JSON
)

// Record is one entry of the log.
type Record struct {
	// At is when it was appended, as the appending replica's clock says.
	At time.Time
	// Hash identifies the content: the hex SHA-256 of Kind and Body.
	Hash string
	Kind Kind
	Body []byte
}

// Position is a place in the log, which is ordered by (At in
// milliseconds, Hash).
type Position struct {
	At   time.Time
	Hash string
}

// Before reports whether p comes before q.
func (p Position) Before(q Position) bool {
	a, b := p.At.UnixMilli(), q.At.UnixMilli()
	return a < b || (a == b && p.Hash < q.Hash)
}

// Of returns r's position.
func Of(r Record) Position { return Position{At: r.At, Hash: r.Hash} }

// Log knows how to append records durably and read them in order.
type Log interface {
	// AppendLog stores recs durably (concurrent calls may share one
	// INSERT). An error wrapping fault.ErrUnavailable means "try again".
	// The bodies must not change after the call: the log may keep them
	// (and an INSERT under way may still read them after ctx ends).
	AppendLog(ctx context.Context, recs []Record) error
	// ReadLog returns the records after p in order: at most maxRows of
	// them, with the bodies of those want wants (want sees them without
	// body; nil wants all), no more than maxBytes of bodies in all (at
	// least one). The others come without Body.
	ReadLog(ctx context.Context, after Position, maxRows int, maxBytes int64, want func(Record) bool) ([]Record, error)
}

// Result is what the deriver made of a command.
type Result struct {
	ID       string
	Incident string // the incident the command left, when Status is "ok"
	Status   string // "ok", or the kind of error: see statusOf
	Message  string
	At       time.Time
}

// Results knows how to record and read commands' results.
type Results interface {
	PutResults(ctx context.Context, rs []Result) error
	Results(ctx context.Context, ids []string) (map[string]Result, error)
}

// Incidents knows how to read an incident (the store).
type Incidents interface {
	Get(ctx context.Context, id string) (*incidents.Incident, error)
}

// DefaultWait bounds how long an action waits for the deriver's answer.
const DefaultWait = 10 * time.Second

// Front knows how to wait until the notifications it holds at the call
// are logged (spool.Spool).
type Front interface {
	Barrier(ctx context.Context) error
}

// Options configure a Journal.
type Options struct {
	Log       Log
	Results   Results
	Incidents Incidents
	// Front, if set, holds notifications in front of the log (the
	// spool): Sync first waits until it has logged what it held.
	Front Front
	// Wait bounds how long an action waits for its result (DefaultWait).
	Wait   time.Duration
	Now    func() time.Time
	Logger *slog.Logger
}

// Journal is the front of the log: it appends notifications (as the
// webhook's and the spool's alerts.Ingester) and people's actions (as the
// API's, the pages' and chat's incidents.Mutator), and wakes the deriver
// of this process, if it leads.
type Journal struct {
	log       Log
	results   Results
	incidents Incidents
	front     Front
	wait      time.Duration
	now       func() time.Time
	logger    *slog.Logger

	wake chan struct{} // buffered(1): something was appended here

	mu      sync.Mutex
	waiters map[string]chan Result
}

// New builds a Journal.
func New(o Options) (*Journal, error) {
	if o.Log == nil || o.Results == nil || o.Incidents == nil {
		return nil, errors.New("journal: Log, Results and Incidents are required")
	}
	if o.Wait <= 0 {
		o.Wait = DefaultWait
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Journal{
		log: o.Log, results: o.Results, incidents: o.Incidents, front: o.Front, wait: o.Wait, now: o.Now, logger: o.Logger,
		wake: make(chan struct{}, 1), waiters: map[string]chan Result{},
	}, nil
}

// NewRecord makes the record of body, appended at at.
func NewRecord(kind Kind, body []byte, at time.Time) Record {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write(body)
	return Record{At: at.UTC(), Hash: hex.EncodeToString(h.Sum(nil)), Kind: kind, Body: body}
}

// Ingest appends a notification to the log. It returns nil once the log
// holds it durably.
func (j *Journal) Ingest(ctx context.Context, n incidents.Notification) error {
	body, err := incidents.MarshalNotification(n)
	if err != nil {
		return fmt.Errorf("%w: %w", fault.ErrInvalid, err)
	}
	if err := j.IngestStored(ctx, [][]byte{body}); err != nil {
		return fmt.Errorf("group %s: %w", n.GroupKey, err)
	}
	return nil
}

// IngestStored appends notifications given in their stored form
// (incidents.MarshalNotification), as the spool keeps them, in one go:
// the records Ingest makes of them. The bodies must not change after.
func (j *Journal) IngestStored(ctx context.Context, bodies [][]byte) error {
	now := j.now()
	recs := make([]Record, len(bodies))
	for i, b := range bodies {
		recs[i] = NewRecord(KindNotification, b, now)
	}
	if err := j.log.AppendLog(ctx, recs); err != nil {
		return fmt.Errorf("log notifications (%d): %w", len(recs), err)
	}
	j.signal()
	return nil
}

func (j *Journal) signal() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// Acknowledge marks the incident as being worked on by actor.
func (j *Journal) Acknowledge(ctx context.Context, id, actor string) (*incidents.Incident, error) {
	return j.Do(ctx, incidents.Command{Kind: incidents.CommandAcknowledge, Incident: id, Actor: actor})
}

// Resolve closes the incident by hand.
func (j *Journal) Resolve(ctx context.Context, id, actor string) (*incidents.Incident, error) {
	return j.Do(ctx, incidents.Command{Kind: incidents.CommandResolve, Incident: id, Actor: actor})
}

// AddNote adds a note to the incident's timeline.
func (j *Journal) AddNote(ctx context.Context, id, actor, text string) (*incidents.Incident, error) {
	return j.Do(ctx, incidents.Command{Kind: incidents.CommandNote, Incident: id, Actor: actor, Text: text})
}

// AddEvent adds an event of kind to the incident's timeline.
func (j *Journal) AddEvent(ctx context.Context, id string, kind incidents.EventKind, actor, text string) (*incidents.Incident, error) {
	return j.Do(ctx, incidents.Command{Kind: incidents.CommandAnnotate, Incident: id, Event: kind, Actor: actor, Text: text})
}

// Open opens an incident by hand.
func (j *Journal) Open(ctx context.Context, req incidents.OpenRequest) (*incidents.Incident, error) {
	return j.Do(ctx, incidents.Command{Kind: incidents.CommandOpen, Open: &req, Actor: req.Actor})
}

// Link records by hand that the incident was caused by upstreamID.
func (j *Journal) Link(ctx context.Context, id, upstreamID, actor string) (*incidents.Incident, error) {
	return j.Do(ctx, incidents.Command{Kind: incidents.CommandLink, Incident: id, Upstream: upstreamID, Actor: actor})
}

// Unlink removes the incident's upstream cause by hand.
func (j *Journal) Unlink(ctx context.Context, id, actor string) (*incidents.Incident, error) {
	return j.Do(ctx, incidents.Command{Kind: incidents.CommandUnlink, Incident: id, Actor: actor})
}

// NotDowntime marks a period of the incident as not downtime, with a
// reason (incidents.MarkNotDowntime).
func (j *Journal) NotDowntime(ctx context.Context, id string, r incidents.NotDowntimeRequest) (*incidents.Incident, error) {
	c := incidents.Command{Kind: incidents.CommandNotDowntime, Incident: id, Actor: r.Actor, Text: r.Reason}
	if !r.From.IsZero() || !r.To.IsZero() {
		c.Period = &incidents.Period{Start: r.From.UTC(), End: r.To.UTC()}
	}
	return j.Do(ctx, c)
}

// WithdrawNotDowntime withdraws the mark made at markedAt, with a reason
// (incidents.WithdrawNotDowntime).
func (j *Journal) WithdrawNotDowntime(ctx context.Context, id string, markedAt time.Time, actor, reason string) (*incidents.Incident, error) {
	return j.Do(ctx, incidents.Command{Kind: incidents.CommandWithdrawNotDowntime, Incident: id, Mark: &markedAt, Actor: actor, Text: reason})
}

// ResolveStale resolves alerts Alertmanager no longer reports (the
// reconciler's alerts.StaleResolver).
func (j *Journal) ResolveStale(ctx context.Context, id string, ends map[string]time.Time, actor string) (*incidents.Incident, error) {
	return j.Do(ctx, incidents.Command{Kind: incidents.CommandResolveStale, Incident: id, Ends: ends, Actor: actor})
}

// Do logs c (giving it an ID and the time now) and waits until the
// deriver has applied it: it returns the incident c left, or the error
// the lifecycle gave (an invalid transition wraps fault.ErrConflict). If no
// result comes within the wait, the error wraps fault.ErrUnavailable: the
// command is logged and will still be applied.
func (j *Journal) Do(ctx context.Context, c incidents.Command) (*incidents.Incident, error) {
	c.ID = newCommandID()
	c.At = j.now().UTC()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("%w: encode command: %w", fault.ErrInvalid, err)
	}
	done := make(chan Result, 1)
	j.mu.Lock()
	j.waiters[c.ID] = done
	j.mu.Unlock()
	defer func() {
		j.mu.Lock()
		delete(j.waiters, c.ID)
		j.mu.Unlock()
	}()
	if err := j.log.AppendLog(ctx, []Record{NewRecord(KindCommand, body, c.At)}); err != nil {
		return nil, fmt.Errorf("log %s: %w", c.Kind, err)
	}
	j.signal()
	r, err := j.await(ctx, c.ID, done)
	if err != nil {
		return nil, err
	}
	if err := r.err(); err != nil {
		return nil, err
	}
	if r.Incident == "" {
		return nil, nil // a sync
	}
	return j.incidents.Get(ctx, r.Incident)
}

// Sync returns once the deriver has applied everything this replica
// accepted before the call, spooled or logged (and what other replicas
// logged before it), a barrier for scripts and tests that read right
// after they write. It waits for the Front to log what it holds, then
// logs a command that changes nothing and waits for its result.
func (j *Journal) Sync(ctx context.Context) error {
	if j.front != nil {
		wctx, cancel := context.WithTimeout(ctx, j.wait)
		err := j.front.Barrier(wctx)
		cancel()
		if err != nil {
			return err
		}
	}
	// Records are ordered by time, then hash: a later millisecond puts
	// the barrier after everything logged so far.
	time.Sleep(2 * time.Millisecond)
	_, err := j.Do(ctx, incidents.Command{Kind: incidents.CommandSync})
	return err
}

// ServeSync answers POST /api/v1/sync once Sync returns: 200, or 503 if
// the deriver did not get there within the wait.
func (j *Journal) ServeSync(w http.ResponseWriter, r *http.Request) {
	if err := j.Sync(r.Context()); err != nil {
		answer.Error(w, j.logger, err)
		return
	}
	answer.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// await waits for the result of command id: from this process's deriver
// (done), or read from the store, where another replica's deriver puts it.
func (j *Journal) await(ctx context.Context, id string, done <-chan Result) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, j.wait)
	defer cancel()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case r := <-done:
			return r, nil
		case <-poll.C:
			got, err := j.results.Results(ctx, []string{id})
			if err != nil {
				if ctx.Err() != nil {
					continue
				}
				j.logger.Debug("read command result", "id", id, "err", err)
				continue
			}
			if r, ok := got[id]; ok {
				return r, nil
			}
		case <-ctx.Done():
			return Result{}, fmt.Errorf("%w: the action is recorded but the deriver has not applied it yet (%s): it will be", fault.ErrUnavailable, context.Cause(ctx))
		}
	}
}

// applied hands r to the caller waiting in this process, if any.
func (j *Journal) applied(r Result) {
	j.mu.Lock()
	done := j.waiters[r.ID]
	j.mu.Unlock()
	if done != nil {
		select {
		case done <- r:
		default:
		}
	}
}

func newCommandID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "cmd-" + hex.EncodeToString(b[:])
}

// Result statuses for errors, by kind.
var statuses = []struct {
	status string
	kind   error
}{
	{"conflict", fault.ErrConflict},
	{"not_found", fault.ErrNotFound},
	{"invalid", fault.ErrInvalid},
	{"too_large", fault.ErrTooLarge},
	{"unsupported", fault.ErrUnsupported},
}

// resultOf is the Result of applying command id.
func resultOf(id string, inc *incidents.Incident, err error, at time.Time) Result {
	if err == nil {
		r := Result{ID: id, Status: "ok", At: at}
		if inc != nil {
			r.Incident = inc.ID
		}
		return r
	}
	st := "error"
	for _, s := range statuses {
		if errors.Is(err, s.kind) {
			st = s.status
			break
		}
	}
	return Result{ID: id, Status: st, Message: err.Error(), At: at}
}

// err is the error r stands for, of the same kind as the deriver's.
func (r Result) err() error {
	if r.Status == "ok" {
		return nil
	}
	for _, s := range statuses {
		if r.Status == s.status {
			return resultError{kind: s.kind, msg: r.Message}
		}
	}
	return errors.New(r.Message)
}

// resultError is a deriver's error as its result carries it: the same
// message, of the same kind.
type resultError struct {
	kind error
	msg  string
}

func (e resultError) Error() string { return e.msg }
func (e resultError) Unwrap() error { return e.kind }
