package chstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/ClickHouse/clickhouse-go/v2"
	chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/journal"
)

var (
	_ journal.Log     = (*Store)(nil)
	_ journal.Results = (*Store)(nil)
	_ journal.Cursors = (*Store)(nil)
)

// The log's tables: nines writes logTable (0045); oldLogTable (0040)
// holds what earlier versions wrote, read until retention has emptied it.
const (
	logTable    = "notification_log_v2"
	oldLogTable = "notification_log"
)

// bothLogs makes q, a SELECT of one log table, read both: q with {table}
// and {size} (a record's body size) filled in for each, joined by UNION
// ALL, and args for both.
func bothLogs(q string, args ...any) (string, []any) {
	newer := strings.NewReplacer("{table}", logTable, "{size}", "body_size").Replace(q)
	older := strings.NewReplacer("{table}", oldLogTable, "{size}", "toUInt32(length(body))").Replace(q)
	return newer + "\nUNION ALL\n" + older, append(append([]any{}, args...), args...)
}

// logRow is one record of notification_log_v2.
type logRow struct {
	day  time.Time
	ms   int64
	hash string
	kind string
	body string
}

const insertLog = `INSERT INTO ` + logTable + ` (day, inserted_ms, hash, kind, body, body_size)`

// AppendLog stores records in notification_log (journal.Log). Concurrent
// calls share INSERTs (group commit, as Write); it returns once the
// INSERT holding its records has succeeded. The records' times are those
// of the INSERT (see flushLog), not rec.At. The bodies are not copied:
// they must not change after the call (journal.Log).
func (s *Store) AppendLog(ctx context.Context, recs []journal.Record) error {
	rows := make([]logRow, len(recs))
	for i, r := range recs {
		at := r.At.UTC()
		rows[i] = logRow{
			day: time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC),
			ms:  at.UnixMilli(), hash: r.Hash, kind: string(r.Kind), body: bodyString(r.Body),
		}
	}
	if err := s.logBatcher.write(ctx, &request{rows: rowSet{log: rows}}); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, fault.ErrUnavailable) {
			return fmt.Errorf("append %d records: %w: %w", len(recs), fault.ErrUnavailable, err)
		}
		return fmt.Errorf("append %d records: %w", len(recs), err)
	}
	return nil
}

// bodyString is b as a string, without copying it: a stored
// notification can be tens of kilobytes, and the INSERT copies it anyway.
// The caller never changes b (journal.Log's contract).
func bodyString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// logClock stamps the log's INSERTs and knows which are under way. Its
// stamps only grow (a millisecond after the last one at least, whatever
// the clock says), so each INSERT of this process has a time of its own,
// and any INSERT still to come will be stamped after every record already
// visible. INSERTs run side by side, so one stamped earlier may become
// visible after one stamped later: ReadLog reads nothing from the oldest
// INSERT under way on, so that a reader never passes a record of this
// process that is not visible yet. (Other replicas' INSERTs are not known
// here: the deriver's look back covers those.)
type logClock struct {
	mu       sync.Mutex
	last     int64         // the latest stamp given
	inflight map[int64]int // stamps of INSERTs under way
	// hold, if set, runs after an INSERT is stamped and before it is
	// sent (tests).
	hold func(ms int64)
}

// begin stamps an INSERT about to be sent at now.
func (c *logClock) begin(now time.Time) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ms := max(now.UnixMilli(), c.last+1)
	c.last = ms
	if c.inflight == nil {
		c.inflight = map[int64]int{}
	}
	c.inflight[ms]++
	return ms
}

// end says that the INSERT stamped ms has finished.
func (c *logClock) end(ms int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[ms]--; c.inflight[ms] <= 0 {
		delete(c.inflight, ms)
	}
}

// horizon returns the stamp of the oldest INSERT under way: every record
// of this process stamped before it is visible. ok is false when none is
// under way.
func (c *logClock) horizon() (ms int64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for at := range c.inflight {
		if !ok || at < ms {
			ms, ok = at, true
		}
	}
	return ms, ok
}

// flushLog inserts the log records of reqs in one INSERT. Each record's
// time becomes the moment this INSERT is sent (see logClock), whatever it
// was when appended: a reader that has read past a time then sees every
// record up to it once the INSERTs under way finish, however long a
// record waited for its batch.
func (s *Store) flushLog(ctx context.Context, reqs []*request) error {
	var rows []logRow
	for _, r := range reqs {
		rows = append(rows, r.rows.log...)
	}
	ms := s.logClock.begin(s.now())
	defer s.logClock.end(ms)
	now := time.UnixMilli(ms).UTC()
	for i := range rows {
		rows[i].ms = ms
		rows[i].day = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	}
	if s.logClock.hold != nil {
		s.logClock.hold(ms)
	}
	size := func(i int) int { return len(rows[i].body) }
	return s.insertColumns(ctx, logTable, insertLog, len(rows), size, func(b chdriver.Batch, lo, hi int) error {
		rows := rows[lo:hi]
		return appendColumns(b,
			column(rows, func(r *logRow) time.Time { return r.day }),
			column(rows, func(r *logRow) int64 { return r.ms }),
			column(rows, func(r *logRow) string { return r.hash }),
			column(rows, func(r *logRow) string { return r.kind }),
			column(rows, func(r *logRow) string { return r.body }),
			column(rows, func(r *logRow) uint32 { return uint32(min(len(r.body), math.MaxUint32)) }),
		)
	})
}

// afterClause selects the records after p in the log's order.
const afterClause = `(inserted_ms > ? OR (inserted_ms = ? AND hash > ?))`

// ReadLog asks ClickHouse for bodies in blocks of at most bodiesBlockRows
// rows and about bodiesBlockBytes: the driver decodes a whole block into
// one buffer before its rows are copied out, so a page of bodies in one
// block took up to twice the page again; and it grows that buffer row by
// row (by a quarter at a time once large), so a block of 16 bodies of a
// storm's 42 kB allocated about five times the block while decoding it
// (a sixth of all the bytes nines allocated in the storm). A block of one
// large body is allocated once, at its size.
const (
	bodiesBlockRows  = 16
	bodiesBlockBytes = 64 << 10
)

// bodiesBlock is the max_block_size for bodies of at most largest bytes.
func bodiesBlock(largest int64) int {
	return int(min(bodiesBlockRows, max(1, bodiesBlockBytes/max(largest, 1))))
}

// ReadLog returns the records after p (journal.Log): first their keys and
// sizes, then the bodies of those wanted, so that records already applied
// and large pages cost no transfer. It stops before the oldest of this
// process's INSERTs still under way (logClock).
func (s *Store) ReadLog(ctx context.Context, after journal.Position, maxRows int, maxBytes int64, want func(journal.Record) bool) ([]journal.Record, error) {
	const op = "query_notification_log"
	s.metrics.op(op)
	ms := after.At.UnixMilli()
	before := int64(math.MaxInt64)
	if h, ok := s.logClock.horizon(); ok {
		before = h
	}
	keysQ, keysArgs := bothLogs(`SELECT inserted_ms, hash, kind, {size} AS size FROM {table} WHERE `+afterClause+` AND inserted_ms < ?`,
		ms, ms, after.Hash, before)
	rows, err := s.conn.Query(ctx, `SELECT inserted_ms, hash, kind, size FROM (`+keysQ+`) ORDER BY inserted_ms, hash LIMIT ?`,
		append(keysArgs, maxRows)...)
	if err != nil {
		return nil, s.fail(ctx, op, err, "read the notification log")
	}
	var (
		recs   []journal.Record
		wanted = map[string]int{}
		bytes  int64
		large  int64 // the largest body wanted
	)
	for rows.Next() {
		var (
			at         int64
			hash, kind string
			size       uint32
		)
		if err := rows.Scan(&at, &hash, &kind, &size); err != nil {
			rows.Close()
			return nil, s.fail(ctx, op, err, "read the notification log")
		}
		r := journal.Record{At: time.UnixMilli(at).UTC(), Hash: hash, Kind: journal.Kind(kind)}
		if want == nil || want(r) {
			if len(wanted) > 0 && bytes+int64(size) > maxBytes {
				break
			}
			bytes += int64(size)
			large = max(large, int64(size))
			wanted[hash] = len(recs)
		}
		recs = append(recs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "read the notification log")
	}
	if len(wanted) == 0 {
		return recs, nil
	}
	last := recs[len(recs)-1]
	keys, err := newKeyTable("hash")
	if err != nil {
		return nil, err
	}
	for h := range wanted {
		if err := keys.add(h); err != nil {
			return nil, err
		}
	}
	lastMS := last.At.UnixMilli()
	bodiesQ, bodiesArgs := bothLogs(`SELECT hash, body FROM {table} WHERE `+afterClause+` AND inserted_ms <= ? AND hash IN (SELECT hash FROM keys)`,
		ms, ms, after.Hash, lastMS)
	bodies, err := s.conn.Query(clickhouse.Context(keys.context(ctx), clickhouse.WithSettings(clickhouse.Settings{"max_block_size": bodiesBlock(large)})), bodiesQ, bodiesArgs...)
	if err != nil {
		return nil, s.fail(ctx, op, err, "read the notification log")
	}
	defer bodies.Close()
	for bodies.Next() {
		var (
			hash string
			body []byte // the driver's copy of the row, not copied again
		)
		if err := bodies.Scan(&hash, &body); err != nil {
			return nil, s.fail(ctx, op, err, "read the notification log")
		}
		if i, ok := wanted[hash]; ok {
			recs[i].Body = body
		}
	}
	if err := bodies.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "read the notification log")
	}
	for _, i := range wanted {
		if recs[i].Body == nil {
			// Gone between the two queries: only retention drops
			// records, and never this recent.
			return nil, fmt.Errorf("%w: notification log record %s vanished while read", fault.ErrUnavailable, recs[i].Hash)
		}
	}
	return recs, nil
}

// PutResults records commands' results (journal.Results).
func (s *Store) PutResults(ctx context.Context, rs []journal.Result) error {
	return s.insert(ctx, "command_results", `INSERT INTO command_results (id, incident_id, status, message, at_ms)`, len(rs),
		func(appendRow func(...any) error) error {
			for _, r := range rs {
				if err := appendRow(r.ID, r.Incident, r.Status, r.Message, r.At.UnixMilli()); err != nil {
					return err
				}
			}
			return nil
		})
}

// Results reads commands' results by ID (journal.Results).
func (s *Store) Results(ctx context.Context, ids []string) (map[string]journal.Result, error) {
	const op = "query_command_results"
	s.metrics.op(op)
	out := map[string]journal.Result{}
	if len(ids) == 0 {
		return out, nil
	}
	keys, err := newKeyTable("id")
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := keys.add(id); err != nil {
			return nil, err
		}
	}
	rows, err := s.conn.Query(keys.context(ctx), `SELECT id, incident_id, status, message, at_ms FROM command_results
WHERE id IN (SELECT id FROM keys) ORDER BY at_ms`)
	if err != nil {
		return nil, s.fail(ctx, op, err, "read command results")
	}
	defer rows.Close()
	for rows.Next() {
		var (
			r  journal.Result
			at int64
		)
		if err := rows.Scan(&r.ID, &r.Incident, &r.Status, &r.Message, &at); err != nil {
			return nil, s.fail(ctx, op, err, "read command results")
		}
		r.At = time.UnixMilli(at).UTC()
		if _, ok := out[r.ID]; !ok { // the first result counts
			out[r.ID] = r
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "read command results")
	}
	return out, nil
}

// LogCursor returns the deriver's stored cursor (journal.Cursors). The
// position's hash is not kept: a cursor names an instant.
func (s *Store) LogCursor(ctx context.Context, name string) (journal.Position, bool, error) {
	at, ok, err := s.ChatCursor(ctx, name)
	return journal.Position{At: at}, ok, err
}

// SetLogCursor stores the deriver's cursor (journal.Cursors), in the
// table of every singleton's cursor.
func (s *Store) SetLogCursor(ctx context.Context, name string, p journal.Position, at time.Time) error {
	return s.insert(ctx, "chat_cursors", `INSERT INTO chat_cursors (name, position_ms, at_ms, version)`, 1,
		func(appendRow func(...any) error) error {
			ms := at.UnixMilli()
			return appendRow(name, p.At.UnixMilli(), ms, uint64(max(ms, 0)))
		})
}

// DropLogBefore drops the notification log's days before day (retention):
// whole partitions, since 18.16 has no TTL, of both the log and the one
// earlier versions wrote. It returns the days dropped.
func (s *Store) DropLogBefore(ctx context.Context, day time.Time) ([]string, error) {
	const op = "drop_notification_log"
	s.metrics.op(op)
	rows, err := s.conn.Query(ctx, `SELECT DISTINCT table, partition FROM system.parts
WHERE database = ? AND table IN (?, ?) AND active AND partition < ? ORDER BY partition, table`,
		s.db, logTable, oldLogTable, day.UTC().Format("2006-01-02"))
	if err != nil {
		return nil, s.fail(ctx, op, err, "list the notification log's days")
	}
	type part struct{ table, partition string }
	var parts []part
	for rows.Next() {
		var p part
		if err := rows.Scan(&p.table, &p.partition); err != nil {
			rows.Close()
			return nil, s.fail(ctx, op, err, "list the notification log's days")
		}
		parts = append(parts, p)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "list the notification log's days")
	}
	var dropped []string
	for _, p := range parts {
		if _, err := time.Parse("2006-01-02", p.partition); err != nil {
			continue // not a day: never drop what is not understood
		}
		if err := s.conn.Exec(ctx, "ALTER TABLE "+p.table+" DROP PARTITION '"+p.partition+"'"); err != nil { // a replicated table passes it on
			return dropped, s.fail(ctx, op, err, "drop the notification log's day %s", p.partition)
		}
		if len(dropped) == 0 || dropped[len(dropped)-1] != p.partition {
			dropped = append(dropped, p.partition)
		}
	}
	return dropped, nil
}

// DropDatabase drops the store's whole database: `nines replay` uses it to
// remove its scratch database. It refuses a database whose name does not
// say it is a scratch one.
func (s *Store) DropDatabase(ctx context.Context) error {
	if !strings.Contains(s.db, "_replay_") {
		return fmt.Errorf("%w: refusing to drop database %s: not a replay's scratch database", fault.ErrInvalid, s.db)
	}
	if err := s.conn.Exec(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(s.db)+s.onCluster()); err != nil {
		return s.fail(ctx, "drop_database", err, "drop database %s", s.db)
	}
	return nil
}
