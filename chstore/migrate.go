package chstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrationFiles holds the schema, one versioned file per change:
// migrations/NNNN_name.sql. A file may hold several statements separated by
// semicolons. Placeholders: ${database} is the quoted database name and
// ${on_cluster} is " ON CLUSTER name" or empty. Every statement must be
// idempotent (CREATE TABLE IF NOT EXISTS, ADD COLUMN IF NOT EXISTS, …):
// two processes may apply the same migration at once.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one parsed migration file.
type migration struct {
	version    uint32
	name       string
	statements []string
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
		ms = append(ms, migration{version: uint32(v), name: strings.TrimSuffix(base, ".sql"), statements: stmts})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
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

	s.metrics.op(op)
	create := replacer.Replace(`CREATE TABLE IF NOT EXISTS ${database}.schema_migrations ${on_cluster}
(
    version    UInt32,
    name       String,
    applied_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY version`)
	if err := execDDL(ctx, s.conn, create); err != nil {
		return s.fail(ctx, op, err, "create schema_migrations")
	}

	applied, err := s.appliedMigrations(ctx)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		log := s.log.With("migration", m.name)
		log.Info("applying migration")
		for i, stmt := range m.statements {
			s.metrics.op(op)
			if err := execDDL(ctx, s.conn, replacer.Replace(stmt)); err != nil {
				return s.fail(ctx, op, err, "migration %s statement %d", m.name, i+1)
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return err
		}
	}
	for v := range applied {
		if len(ms) == 0 || v > ms[len(ms)-1].version {
			s.log.Warn("database has a migration this binary does not know; is a newer version running?", "version", v)
		}
	}
	return nil
}

func (s *Store) appliedMigrations(ctx context.Context) (map[uint32]bool, error) {
	const op = "migrate"
	s.metrics.op(op)
	rows, err := s.conn.Query(ctx, "SELECT DISTINCT version FROM schema_migrations")
	if err != nil {
		return nil, s.fail(ctx, op, err, "read schema_migrations")
	}
	defer rows.Close()
	applied := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, s.fail(ctx, op, err, "read schema_migrations")
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "read schema_migrations")
	}
	return applied, nil
}

func (s *Store) recordMigration(ctx context.Context, m migration) error {
	const op = "migrate"
	s.metrics.op(op)
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, applied_at)")
	if err != nil {
		return s.fail(ctx, op, err, "record migration %s", m.name)
	}
	defer b.Close()
	if err := b.Append(m.version, m.name, s.now().UTC()); err != nil {
		return s.fail(ctx, op, err, "record migration %s", m.name)
	}
	if err := b.Send(); err != nil {
		return s.fail(ctx, op, err, "record migration %s", m.name)
	}
	return nil
}
