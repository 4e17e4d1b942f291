package chstore

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// migrationFiles holds the schema, one versioned file per change:
// migrations/NNNN_name.sql. A file may hold several statements separated by
// semicolons. Placeholders: ${database} is the quoted database name and
// ${on_cluster} is " ON CLUSTER name" or empty. With a cluster, Migrate
// also makes every MergeTree-family table replicated (see replicated) and
// runs ALTERs on one server, which the replicated tables pass on
// (onOneServer): migrations are written once, with plain engines. Every
// statement must be idempotent (CREATE TABLE IF NOT EXISTS, …): two
// processes may apply the same migration at once. ClickHouse 18.16 has no
// ADD COLUMN IF NOT EXISTS, so an ADD COLUMN that fails because the
// column exists counts as applied.
//
// A migration is immutable once shipped: change the schema with a new
// one. Each applied migration's checksum is recorded in
// schema_migrations, Migrate reports one whose file changed since, and
// TestShippedMigrationsAreUnchanged compares the files with the committed
// list testdata/migrations.sum.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one parsed migration file.
type migration struct {
	version    uint32
	name       string
	statements []string
	checksum   string // of the statements, comments and spacing aside
}

// loadMigrations reads and orders the embedded migrations.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("list migrations: %w", err)
	}
	var ms []migration
	seen := map[uint32]string{}
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || v == 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", base)
		}
		if other, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", other, base, v)
		}
		seen[uint32(v)] = base
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", base, err)
		}
		stmts := splitStatements(string(b))
		if len(stmts) == 0 {
			return nil, fmt.Errorf("migration %s: no statement", base)
		}
		ms = append(ms, migration{version: uint32(v), name: strings.TrimSuffix(base, ".sql"), statements: stmts, checksum: checksum(stmts)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// checksum identifies what statements do: SHA-256 of their code, with
// comments dropped and blanks collapsed, so that editing a comment does
// not count as a change.
func checksum(statements []string) string {
	h := sha256.New()
	for _, st := range statements {
		h.Write([]byte(normalizeSQL(st)))
		h.Write([]byte{';'})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// normalizeSQL drops comments and blanks outside quotes, but for one
// space between two words.
func normalizeSQL(sql string) string {
	var b strings.Builder
	space := false
	word := func(c byte) bool {
		return c == '_' || c == '$' || c == '{' || c == '}' || c == '\'' || c == '"' || c == '`' || c == '.' ||
			'0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80
	}
	emit := func(s string) {
		if space && b.Len() > 0 && word(b.String()[b.Len()-1]) && word(s[0]) {
			b.WriteByte(' ')
		}
		space = false
		b.WriteString(s)
	}
	for i := 0; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for ; j < len(sql) && sql[j] != c; j++ {
				if sql[j] == '\\' {
					j++
				}
			}
			emit(sql[i:min(j+1, len(sql))])
			i = j
		case strings.HasPrefix(sql[i:], "--"):
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(sql)
			}
			space = true
		case strings.HasPrefix(sql[i:], "/*"):
			if j := strings.Index(sql[i+2:], "*/"); j >= 0 {
				i += j + 3
			} else {
				i = len(sql)
			}
			space = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			space = true
		default:
			emit(sql[i : i+1])
		}
	}
	return b.String()
}

// splitStatements splits SQL on semicolons outside quotes, backquotes and
// comments, and drops statements that hold only comments and blanks.
func splitStatements(sql string) []string {
	var (
		out   []string
		start int
		code  bool // the current statement has more than comments and blanks
	)
	for i := 0; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == '\'' || c == '"' || c == '`':
			code = true
			// Skip to the closing quote; a backslash escapes one byte.
			for i++; i < len(sql) && sql[i] != c; i++ {
				if sql[i] == '\\' {
					i++
				}
			}
		case strings.HasPrefix(sql[i:], "--"):
			if j := strings.IndexByte(sql[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(sql)
			}
		case strings.HasPrefix(sql[i:], "/*"):
			if j := strings.Index(sql[i+2:], "*/"); j >= 0 {
				i += j + 3
			} else {
				i = len(sql)
			}
		case c == ';':
			if code {
				out = append(out, strings.TrimSpace(sql[start:i]))
			}
			start, code = i+1, false
		case c != ' ' && c != '\t' && c != '\n' && c != '\r':
			code = true
		}
	}
	if code {
		out = append(out, strings.TrimSpace(sql[start:]))
	}
	return out
}

// Migrate brings the schema up to date: it applies, in order, every
// embedded migration that schema_migrations does not list, and records it.
// It is safe to run again and from several processes at once: statements
// are idempotent, and a migration applied twice is recorded twice, which
// readers of schema_migrations ignore (DISTINCT).
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	const op = "migrate"
	replacer := strings.NewReplacer("${database}", quoteIdent(s.db), "${on_cluster}", s.onCluster())
	ddl := func(stmt string) string {
		if s.cluster == "" {
			return replacer.Replace(stmt)
		}
		if isAlter(stmt) {
			return onOneServer(stmt, s.db)
		}
		return replacer.Replace(replicated(stmt, s.db))
	}
	if s.cluster != "" {
		if err := s.refuseUnreplicated(ctx); err != nil {
			return err
		}
	}

	// An up-to-date schema_migrations is left alone: on a cluster, every
	// DDL statement waits for every server, and a nines that restarts
	// while one is down must not.
	ready, err := s.migrationsTableReady(ctx)
	if err != nil {
		return err
	}
	if !ready {
		s.metrics.op(op)
		create := ddl(`CREATE TABLE IF NOT EXISTS ${database}.schema_migrations ${on_cluster}
(
    version    UInt32,
    name       String,
    applied_at DateTime('UTC'),
    checksum   String
)
ENGINE = ReplacingMergeTree
ORDER BY version`)
		if err := execDDL(ctx, s.conn, create); err != nil {
			return s.fail(ctx, op, err, "create schema_migrations")
		}
		// Databases created before checksums were recorded.
		s.metrics.op(op)
		addChecksum := ddl("ALTER TABLE ${database}.schema_migrations ${on_cluster} ADD COLUMN checksum String")
		if err := execDDL(ctx, s.conn, addChecksum); err != nil {
			return s.fail(ctx, op, err, "add checksum to schema_migrations")
		}
	}

	applied, err := s.appliedMigrations(ctx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if sums, ok := applied[m.version]; ok {
			for _, sum := range sums {
				if sum != "" && sum != m.checksum {
					s.log.Error("migration changed after it was applied to this database: its file must not be edited; "+
						"restore it and change the schema with a new migration",
						"migration", m.name, "applied_checksum", sum, "file_checksum", m.checksum)
					s.metrics.fail("migration_changed")
				}
			}
			continue
		}
		log := s.log.With("migration", m.name)
		log.Info("applying migration")
		for i, stmt := range m.statements {
			s.metrics.op(op)
			if err := execDDL(ctx, s.conn, ddl(stmt)); err != nil {
				return s.fail(ctx, op, err, "migration %s statement %d", m.name, i+1)
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return err
		}
	}
	if err := s.ensureColumns(ctx, ms, ddl); err != nil {
		return err
	}
	for v := range applied {
		if len(ms) == 0 || v > ms[len(ms)-1].version {
			s.log.Warn("database has a migration this binary does not know; is a newer version running?", "version", v)
		}
	}
	return nil
}

// What ADD COLUMN of an existing column fails with: ILLEGAL_COLUMN on
// ClickHouse 18.16, DUPLICATE_COLUMN on current releases.
const (
	codeIllegalColumn   = 44
	codeDuplicateColumn = 15
)

// columnExists reports whether err is an ADD COLUMN of a column that
// exists already.
func columnExists(err error) bool {
	var exc *clickhouse.Exception
	if !errors.As(err, &exc) {
		return false
	}
	return exc.Code == codeDuplicateColumn || (exc.Code == codeIllegalColumn && strings.Contains(exc.Message, "already exists"))
}

// appliedMigrations returns the versions schema_migrations lists, each
// with the checksums recorded for it (empty for rows written before
// checksums were recorded).
func (s *Store) appliedMigrations(ctx context.Context) (map[uint32][]string, error) {
	const op = "migrate"
	s.metrics.op(op)
	rows, err := s.conn.Query(ctx, "SELECT version, groupUniqArray(checksum) FROM schema_migrations GROUP BY version")
	if err != nil {
		return nil, s.fail(ctx, op, err, "read schema_migrations")
	}
	defer rows.Close()
	applied := map[uint32][]string{}
	for rows.Next() {
		var (
			v    uint32
			sums []string
		)
		if err := rows.Scan(&v, &sums); err != nil {
			return nil, s.fail(ctx, op, err, "read schema_migrations")
		}
		applied[v] = sums
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "read schema_migrations")
	}
	return applied, nil
}

func (s *Store) recordMigration(ctx context.Context, m migration) error {
	const op = "migrate"
	s.metrics.op(op)
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, applied_at, checksum)")
	if err != nil {
		return s.fail(ctx, op, err, "record migration %s", m.name)
	}
	defer b.Close()
	if err := b.Append(m.version, m.name, s.now().UTC(), m.checksum); err != nil {
		return s.fail(ctx, op, err, "record migration %s", m.name)
	}
	if err := b.Send(); err != nil {
		return s.fail(ctx, op, err, "record migration %s", m.name)
	}
	return nil
}
