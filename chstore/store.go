// Package chstore is nines' ClickHouse adapter: the one storage backend,
// implementing the narrow ports that the domain packages declare (each
// consumer declares the interface it uses; chstore never defines them).
// It owns the ClickHouse schema (versioned migrations embedded in the
// binary), batches concurrent writes into few large INSERTs, and reads
// mutable rows without trusting that ReplacingMergeTree merges have
// happened. It is the only package that imports clickhouse-go; no domain
// package imports it (cmd wires it in).
//
// Which file implements which port:
//
//	store.go         Open, Ping, Close; the Store type
//	write.go         incidents.Store (Write), with batch.go (group commit)
//	read.go          incidents.Store and incidents.Reader (Get, Latest, List, Timeline)
//	owners.go        incidents.AlertOwnerFinder (AlertOwners)
//	outages.go       incidents.OutageFinder (OpenOutages: cascades)
//	reconcile.go     alerts.OpenIncidentLister (OpenIncidentsFromAlerts)
//	availability.go  availability.Source (Downtime, Daily, SeenServices)
//	daily_services.go availability.ManyDailySource (DailyServices: many services' days)
//	recent.go        web.Incidents (RecentByService: many services' latest incidents)
//	dashboards.go    dashboards.Queries (DashboardQueries: the text of
//	                 availability.go's and read.go's queries, with Grafana's
//	                 macros where the store binds values)
//	changes.go       changes.Store (RecordChange, Changes, SetCause, Causes, DORA)
//	                 and changes.Incidents (OpenIncidentsOfServices)
//	journal.go       journal.Log (AppendLog, ReadLog, with batch.go), journal.Results,
//	                 journal.Cursors; retention (DropLogBefore)
//	chat.go          chat.Events, chat.Ledger, chat.Leases (and lease.Store)
//	collector.go     collector.IncidentCounter (IncidentCounts)
//	lookup.go        coalesces concurrent Latest lookups into one query
//	migrate.go       the schema: Migrate and migrations/
//	cluster.go       the schema on a cluster: replicated tables, unreplicated ones refused
//	metrics.go       the store's own metrics
//
// A new query for a domain goes in that domain's file here, behind a
// method the domain's port declares; see docs/architecture.md.
//
// Every statement is valid on ClickHouse 18.16 (Debian's package) and on
// current releases (26.7, as chDB): INSERTs name their columns and go
// through batches, tables use the modern MergeTree syntax, and subqueries
// that are joined carry aliases. The tests run on both (chtest). The store
// speaks the native protocol (clickhouse:// DSNs) or ClickHouse's HTTP
// interface (http:// and https://, not answered by 18.16); see Options.DSN.
package chstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// Defaults for Options.
const (
	DefaultDatabase         = "nines"
	DefaultFlushInterval    = 10 * time.Millisecond
	DefaultMaxFlushInterval = time.Second
	DefaultBusyRows         = 20000
	// busyLogRecords is the rate of notifications and actions logged a
	// second from which the deriver's writes wait MaxFlushInterval (from
	// half of it they wait longer than deriverFlushInterval): the deriver gives
	// way to the webhooks while they are busy, and catches up once they
	// are not.
	busyLogRecords = 500
	// deriverFlushInterval is the least the deriver's writes wait for
	// others under light load: a few pages a second then share INSERTs
	// (ClickHouse's CPU per notification at 200 a second 6.2 → 4.7 ms),
	// and an incident appears at most that much later.
	deriverFlushInterval = 100 * time.Millisecond
	DefaultMaxBatchRows  = 50000
	DefaultDialTimeout   = 5 * time.Second
	// DefaultFlushTimeout bounds one flush (all of its INSERTs).
	DefaultFlushTimeout = 30 * time.Second
)

// Options configure a Store.
type Options struct {
	// DSN names the server, the protocol and the database:
	//   - clickhouse://[user[:password]@]host:port[/database][?params]: the
	//     native protocol (port 9000, or 9440 with secure=true);
	//   - http://[user[:password]@]host:port[/database][?params] and
	//     https://…: ClickHouse's HTTP interface (ports 8123 and 8443), as
	//     ClickHouse Cloud and many managed services expose it. ClickHouse
	//     18.16 does not answer the driver over HTTP: use clickhouse:// there.
	// The database defaults to DefaultDatabase and is created if missing.
	// Parameters are those of clickhouse-go (dial_timeout, compress, …).
	DSN string
	// Cluster, if set, adds ON CLUSTER to every DDL statement and makes
	// Migrate create replicated tables (cluster.go).
	Cluster string
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// Registerer registers the store's metrics; nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
	// FlushInterval is how long a write waits for others to join its batch
	// under light load (DefaultFlushInterval).
	FlushInterval time.Duration
	// MaxFlushInterval is how long a write waits for others to join its
	// batch under heavy load (DefaultMaxFlushInterval). The log's writes
	// wait it from BusyRows rows per second on, so that ClickHouse gets
	// about one INSERT of the log per MaxFlushInterval; between BusyRows/2
	// and BusyRows the wait grows from FlushInterval to MaxFlushInterval.
	// The deriver's writes follow the log's rate, not their own, with
	// busyLogRecords: the deriver gives way to busy webhooks. A
	// MaxFlushInterval below FlushInterval counts as FlushInterval: the
	// wait is then fixed.
	MaxFlushInterval time.Duration
	// BusyRows is the rate of the log's writes, in rows per second, at
	// which they wait MaxFlushInterval (DefaultBusyRows).
	BusyRows int
	// MaxBatchRows flushes a batch as soon as it holds this many rows, all
	// tables together (DefaultMaxBatchRows).
	MaxBatchRows int
	// FlushTimeout bounds one flush (DefaultFlushTimeout).
	FlushTimeout time.Duration
	// DialTimeout bounds connecting to ClickHouse (DefaultDialTimeout; a
	// dial_timeout in the DSN is used when this is zero).
	DialTimeout time.Duration
	// Now is the clock (time.Now). Batching timers use real time.
	Now func() time.Time
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxFlushInterval <= 0 {
		o.MaxFlushInterval = DefaultMaxFlushInterval
	}
	if o.BusyRows <= 0 {
		o.BusyRows = DefaultBusyRows
	}
	if o.MaxBatchRows <= 0 {
		o.MaxBatchRows = DefaultMaxBatchRows
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = DefaultFlushTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// chOptions parses the DSN into clickhouse-go options.
func (o *Options) chOptions() (*clickhouse.Options, error) {
	if o.DSN == "" {
		return nil, fmt.Errorf("%w: clickhouse dsn is required", fault.ErrInvalid)
	}
	dsn := o.DSN
	if u, err := url.Parse(dsn); err == nil {
		switch u.Scheme {
		case "clickhouse", "http":
		case "https":
			// https means TLS: the driver wants it said twice.
			if q := u.Query(); !q.Has("secure") {
				q.Set("secure", "true")
				u.RawQuery = q.Encode()
				dsn = u.String()
			}
		default:
			return nil, fmt.Errorf("%w: clickhouse dsn: scheme %q: want clickhouse://, http:// or https://", incidents.ErrInvalid, u.Scheme)
		}
	}
	co, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: clickhouse dsn: %w", fault.ErrInvalid, err)
	}
	if co.Auth.Database == "" {
		co.Auth.Database = DefaultDatabase
	}
	if !identRe.MatchString(co.Auth.Database) {
		return nil, fmt.Errorf("%w: clickhouse database %q: want letters, digits and underscores", fault.ErrInvalid, co.Auth.Database)
	}
	if o.Cluster != "" && !identRe.MatchString(o.Cluster) {
		return nil, fmt.Errorf("%w: clickhouse cluster %q: want letters, digits and underscores", fault.ErrInvalid, o.Cluster)
	}
	switch {
	case o.DialTimeout > 0:
		co.DialTimeout = o.DialTimeout
	case co.DialTimeout == 0:
		co.DialTimeout = DefaultDialTimeout
	}
	co.Logger = slog.New(quietDriver{o.Logger.Handler()}).With("component", "clickhouse-go")
	// A flush of a storm's batch grows a connection's buffer to tens of
	// megabytes; without this every pooled connection would keep its own.
	co.FreeBufOnConnRelease = true
	co.DialStrategy = (&stickyDial{}).dial
	return co, nil
}

// Store implements incidents.Store and incidents.Reader on ClickHouse.
//
// Other files of this package may query the same tables through conn, whose
// default database is db, wrapping errors with s.fail so that unreachable
// servers are reported as fault.ErrUnavailable.
type Store struct {
	conn    chdriver.Conn // pool of native connections; default database db
	db      string        // database holding the tables
	cluster string        // ON CLUSTER name for DDL, or empty
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	batcher *batcher
	// logBatcher writes notification_log: apart from batcher, so that
	// the webhook's answer never waits for a flush of derived rows.
	logBatcher *batcher
	logClock   logClock
	lookups    *lookups
	opened     openedCache

	closeOnce sync.Once
	closeErr  error
}

var (
	_ incidents.Store  = (*Store)(nil)
	_ incidents.Reader = (*Store)(nil)
)

// Open connects to ClickHouse, creates the database if it is missing and
// starts the write batcher. It does not migrate: call Migrate. An
// unreachable server is reported as an error wrapping
// fault.ErrUnavailable.
func Open(ctx context.Context, opts Options) (*Store, error) {
	opts.defaults()
	co, err := opts.chOptions()
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:      co.Auth.Database,
		cluster: opts.Cluster,
		log:     opts.Logger.With("component", "chstore", "database", co.Auth.Database),
		now:     opts.Now,
		metrics: newMetrics(opts.Registerer),
	}
	if err := s.ensureDatabase(ctx, *co); err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(co)
	if err != nil {
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	s.conn = conn
	s.sayVersion(ctx)
	s.logBatcher = newBatcher(opts.FlushInterval, opts.MaxBatchRows, opts.FlushTimeout, s.flushLog)
	s.logBatcher.adapt(opts.MaxFlushInterval, opts.BusyRows)
	// The deriver is the one writer of incidents, a page at a time: its
	// writes linger with the log's load, not their own (batcher.follow).
	s.batcher = newBatcher(max(opts.FlushInterval, deriverFlushInterval), opts.MaxBatchRows, opts.FlushTimeout, s.flush)
	s.batcher.adapt(opts.MaxFlushInterval, busyLogRecords)
	s.batcher.follow(s.logBatcher)
	// The deriver's writes may run two at once, the log's four: ReadLog
	// never reads past an INSERT of the log still under way (logClock).
	s.batcher.parallel(2)
	s.logBatcher.parallel(4)
	go s.batcher.run()
	go s.logBatcher.run()
	s.lookups = newLookups(opts.FlushTimeout, s.latest)
	go s.lookups.run()
	return s, nil
}

// ensureDatabase creates the database through a connection without a
// default database: connecting to a missing one fails at the handshake.
func (s *Store) ensureDatabase(ctx context.Context, co clickhouse.Options) error {
	co.Auth.Database = ""
	conn, err := clickhouse.Open(&co)
	if err != nil {
		return fmt.Errorf("open clickhouse: %w", err)
	}
	defer conn.Close()

	var n uint64
	s.metrics.op("check_database")
	err = conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", s.db).Scan(&n)
	if err != nil {
		return s.fail(ctx, "check_database", err, "check database %s", s.db)
	}
	if n > 0 {
		// Exists: do not require the right to create databases.
		return nil
	}
	s.metrics.op("create_database")
	q := "CREATE DATABASE IF NOT EXISTS " + quoteIdent(s.db) + s.onCluster()
	if err := execDDL(ctx, conn, q); err != nil {
		return s.fail(ctx, "create_database", err, "create database %s", s.db)
	}
	s.log.Info("created database")
	return nil
}

// Ping checks that ClickHouse answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	s.metrics.op("ping")
	if err := s.conn.Ping(ctx); err != nil {
		return s.fail(ctx, "ping", err, "ping clickhouse")
	}
	return nil
}

// Close flushes pending writes, stops the batcher and closes the
// connections. Writes after Close fail with fault.ErrUnavailable.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.logBatcher.close()
		s.batcher.close()
		s.lookups.close()
		if err := s.conn.Close(); err != nil {
			s.closeErr = fmt.Errorf("close clickhouse: %w", err)
		}
	})
	return s.closeErr
}

func (s *Store) onCluster() string {
	if s.cluster == "" {
		return ""
	}
	return " ON CLUSTER " + quoteIdent(s.cluster)
}

func quoteIdent(name string) string { return "`" + name + "`" }

// fail counts an error of op and wraps err with context. Errors that mean
// ClickHouse cannot serve now (network, dial and connection errors,
// overload, deadlines) also wrap fault.ErrUnavailable, so that callers
// answer 503 and get retried; the caller's own context being canceled is
// reported as that cancellation.
func (s *Store) fail(ctx context.Context, op string, err error, format string, args ...any) error {
	s.metrics.fail(op)
	what := fmt.Sprintf(format, args...)
	switch {
	case errors.Is(ctx.Err(), context.Canceled) && errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: %w", what, ctx.Err())
	case unavailable(err):
		return fmt.Errorf("%s: %w: %w", what, fault.ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Server error codes that mean "try again later" rather than "your query is
// wrong": timeouts, overload, too many parts, read-only replicas, network
// trouble between servers.
var transientCodes = map[int32]bool{
	159: true, // TIMEOUT_EXCEEDED
	164: true, // READONLY
	202: true, // TOO_MANY_SIMULTANEOUS_QUERIES
	203: true, // NO_FREE_CONNECTION
	209: true, // SOCKET_TIMEOUT
	210: true, // NETWORK_ERROR
	241: true, // MEMORY_LIMIT_EXCEEDED
	242: true, // TABLE_IS_READ_ONLY
	252: true, // TOO_MANY_PARTS
	285: true, // TOO_FEW_LIVE_REPLICAS
	319: true, // UNKNOWN_STATUS_OF_INSERT
	425: true, // SYSTEM_ERROR
	999: true, // KEEPER_EXCEPTION
}

// unavailable reports whether err means ClickHouse cannot be reached or
// cannot serve right now.
func unavailable(err error) bool {
	var (
		netErr net.Error
		exc    *clickhouse.Exception
	)
	switch {
	case err == nil:
		return false
	case errors.As(err, &exc):
		return transientCodes[exc.Code]
	case errors.As(err, &netErr),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, clickhouse.ErrAcquireConnTimeout),
		errors.Is(err, clickhouse.ErrConnectionClosed),
		errors.Is(err, errClosed),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	// The driver reports some broken connections with plain errors.
	return strings.Contains(err.Error(), "closed connection")
}

// Server error codes of a concurrent CREATE … IF NOT EXISTS: older servers
// report a table or database being created by another query instead of
// waiting for it.
const (
	codeTableAlreadyExists    = 57
	codeDatabaseAlreadyExists = 82
)

// Server error codes of a replica still applying an ALTER that another
// server ran (on a cluster, migrations ALTER replicated tables on one
// server and the others follow, a moment later): the column is not there
// yet, or the replica's metadata is behind Keeper's.
const (
	codeNoSuchColumnInTable = 16
	codeUnfinished          = 341
	codeCannotAssignAlter   = 517
)

// codeMultipleExpressionsForAlias is what ClickHouse 18.16 answers an ALTER
// that adds columns with defaults while another process's same ALTER of
// the same table is being applied ("Different expressions with the same
// alias resolved_at_millis_tmp", seen in TestMigrateTwiceAndConcurrently):
// once the other is done, the retry finds the columns there, and counts as
// applied.
const codeMultipleExpressionsForAlias = 179

// ddlRetryCodes are the errors execDDL waits out.
var ddlRetryCodes = map[int32]bool{
	codeTableAlreadyExists:    true,
	codeDatabaseAlreadyExists: true,
	codeNoSuchColumnInTable:   true,
	codeUnfinished:            true,
	codeCannotAssignAlter:     true,

	codeMultipleExpressionsForAlias: true,
}

// execDDL runs an idempotent DDL statement, retrying for a few seconds
// when another process is running the same statement at the same moment,
// or a replica is still applying another server's ALTER.
func execDDL(ctx context.Context, conn chdriver.Conn, q string) error {
	var err error
	for attempt := range 20 {
		if err = conn.Exec(ctx, q); err == nil {
			return nil
		}
		// ClickHouse 18.16 knows no ADD COLUMN IF NOT EXISTS, so migrations
		// add columns plainly and "already exists" counts as done (a rerun,
		// or another replica migrating at once).
		if columnExists(err) {
			return nil
		}
		var exc *clickhouse.Exception
		if !errors.As(err, &exc) || !ddlRetryCodes[exc.Code] {
			return err
		}
		t := time.NewTimer(time.Duration(attempt+1) * 50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	return err
}
