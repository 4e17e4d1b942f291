package chstore

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/ninesops/nines/fault"
)

// stickyDial opens every connection to the server of the DSN that the
// last one went to, and moves on to the next server (in the DSN's order,
// round) only when that one does not answer. On a replicated cluster a
// nines so reads from the server it writes to: when the first server
// comes back after nines moved to the second, nines stays on the second,
// which has everything, rather than spreading its connections over a
// server that is still catching up and one that is not (clickhouse-go's
// in_order strategy would send new connections back to the first).
type stickyDial struct{ current atomic.Int64 }

func (d *stickyDial) dial(ctx context.Context, _ int, opt *clickhouse.Options, dial clickhouse.Dial) (clickhouse.DialResult, error) {
	n := len(opt.Addr)
	if n == 0 {
		return clickhouse.DialResult{}, clickhouse.ErrAcquireConnNoAddress
	}
	start := int(d.current.Load()) % n
	var err error
	for i := range n {
		k := (start + i) % n
		r, e := dial(ctx, opt.Addr[k], opt)
		if e == nil {
			d.current.Store(int64(k))
			return r, nil
		}
		err = e
	}
	return clickhouse.DialResult{}, err
}

// KeeperPath is where the replicated tables of database db keep their
// replication state in ClickHouse Keeper (or ZooKeeper): one path per
// shard and table, '{shard}' being each server's macro.
func KeeperPath(db, table string) string {
	return "/clickhouse/tables/{shard}/" + db + "." + table
}

var (
	createTableRe = regexp.MustCompile(`(?is)\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\$\{database\}\.([A-Za-z_][A-Za-z0-9_]*)`)
	engineRe      = regexp.MustCompile(`(?i)\bENGINE\s*=\s*([A-Za-z]*MergeTree)\b`)
)

// replicated rewrites a migration's CREATE TABLE of a MergeTree-family
// engine (MergeTree, ReplacingMergeTree(version), …) into its replicated
// twin, ReplicatedReplacingMergeTree('<KeeperPath>', '{replica}',
// version): the same migrations create plain tables on one server and
// replicated ones on a cluster. Other statements, other engines and
// engines that are replicated already are returned as they are. The
// syntax is that of ClickHouse 18.16 and of current releases alike.
func replicated(stmt, db string) string {
	create := createTableRe.FindStringSubmatchIndex(stmt)
	if create == nil {
		return stmt
	}
	table := stmt[create[2]:create[3]]
	loc := engineRe.FindStringSubmatchIndex(stmt[create[1]:])
	if loc == nil {
		return stmt
	}
	start, nameStart, nameEnd := create[1]+loc[0], create[1]+loc[2], create[1]+loc[3]
	name := stmt[nameStart:nameEnd]
	if strings.HasPrefix(strings.ToLower(name), "replicated") {
		return stmt
	}
	end, args := nameEnd, ""
	if rest := strings.TrimLeft(stmt[nameEnd:], " \t\r\n"); strings.HasPrefix(rest, "(") {
		open := len(stmt) - len(rest)
		close := matchingParen(stmt, open)
		if close < 0 {
			return stmt // unbalanced: let the server say what is wrong
		}
		args, end = strings.TrimSpace(stmt[open+1:close]), close+1
	}
	engine := "ENGINE = Replicated" + name + "('" + KeeperPath(db, table) + "', '{replica}'"
	if args != "" {
		engine += ", " + args
	}
	return stmt[:start] + engine + ")" + stmt[end:]
}

// isAlter reports whether a migration statement is an ALTER.
func isAlter(stmt string) bool {
	return strings.HasPrefix(strings.ToUpper(normalizeSQL(stmt)), "ALTER ")
}

// onOneServer is an ALTER of a migration on a cluster: run on the server
// nines is connected to, without ON CLUSTER. Every table nines has on a
// cluster is replicated (refuseUnreplicated), and a replicated table
// passes its ALTERs (columns, mutations) on to its other replicas itself,
// through Keeper, also to a replica that is down at the time. ON CLUSTER
// would add nothing but trouble: ClickHouse 18.16's distributed DDL leaves
// an ALTER of a replicated table unfinished when it fails on the replica
// that runs it (a column another nines has just added), and the statement
// then waits out distributed_ddl_task_timeout.
func onOneServer(stmt, db string) string {
	return strings.NewReplacer("${database}", quoteIdent(db), "${on_cluster}", "").Replace(stmt)
}

// matchingParen returns the index of the parenthesis closing the one at
// open, quotes aside, or -1.
func matchingParen(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'', '"', '`':
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i
			}
		}
	}
	return -1
}

// refuseUnreplicated fails when the database holds MergeTree-family
// tables that are not replicated: nines was started on a cluster over a
// database made by a single-server nines (or by hand). Migrating would
// leave a silent mix of replicated and unreplicated tables, each server
// with its own copy of the latter; nines does not convert tables.
func (s *Store) refuseUnreplicated(ctx context.Context) error {
	const op = "migrate"
	s.metrics.op(op)
	rows, err := s.conn.Query(ctx, `SELECT name, engine FROM system.tables
WHERE database = ? AND engine LIKE '%MergeTree' AND engine NOT LIKE 'Replicated%'
ORDER BY name`, s.db)
	if err != nil {
		return s.fail(ctx, op, err, "list the tables of %s", s.db)
	}
	defer rows.Close()
	var plain []string
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			return s.fail(ctx, op, err, "list the tables of %s", s.db)
		}
		plain = append(plain, name+" ("+engine+")")
	}
	if err := rows.Err(); err != nil {
		return s.fail(ctx, op, err, "list the tables of %s", s.db)
	}
	if len(plain) == 0 {
		return nil
	}
	s.metrics.fail("unreplicated_tables")
	return fmt.Errorf("%w: clickhouse cluster %s: database %s holds tables that are not replicated: %s; "+
		"nines creates replicated tables on a cluster and does not convert existing ones: "+
		"use a new database and copy the data into it (deploy/clickhouse/CLUSTER.md, \"Moving a single-server database\"), "+
		"or run without --clickhouse.cluster",
		fault.ErrConflict, s.cluster, s.db, strings.Join(plain, ", "))
}

// migrationsTableReady reports whether schema_migrations exists with its
// checksum column.
func (s *Store) migrationsTableReady(ctx context.Context) (bool, error) {
	const op = "migrate"
	s.metrics.op(op)
	var n uint64
	err := s.conn.QueryRow(ctx, `SELECT count() FROM system.columns
WHERE database = ? AND table = 'schema_migrations' AND name = 'checksum'`, s.db).Scan(&n)
	if err != nil {
		return false, s.fail(ctx, op, err, "check schema_migrations")
	}
	return n > 0, nil
}
