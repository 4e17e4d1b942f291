package chstore

import (
	"context"
	"regexp"
	"strings"
	"time"
)

// addedColumn is a column a migration adds: its table, its name, and the
// clause that adds it (ADD COLUMN name type …).
type addedColumn struct {
	table, name, clause string
}

var alterTable = regexp.MustCompile(`^(?i)ALTER\s+TABLE\s+\$\{database\}\.(\w+)\s+\$\{on_cluster\}\s+`)

// addedColumns returns the columns stmt adds, one per ADD COLUMN clause of
// an ALTER TABLE, comment lines aside.
func addedColumns(stmt string) []addedColumn {
	var code []string
	for _, line := range strings.Split(stmt, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			code = append(code, line)
		}
	}
	sql := strings.Join(strings.Fields(strings.Join(code, " ")), " ")
	m := alterTable.FindStringSubmatchIndex(sql)
	if m == nil {
		return nil
	}
	table := sql[m[2]:m[3]]
	var out []addedColumn
	for _, clause := range splitTopLevel(sql[m[1]:], ',') {
		clause = strings.TrimSpace(clause)
		f := strings.Fields(clause)
		if len(f) >= 4 && strings.EqualFold(f[0], "ADD") && strings.EqualFold(f[1], "COLUMN") {
			out = append(out, addedColumn{table: table, name: strings.Trim(f[2], "`"), clause: clause})
		}
	}
	return out
}

// splitTopLevel splits s on sep outside parentheses and quotes.
func splitTopLevel(s string, sep byte) []string {
	var (
		out   []string
		depth int
		start int
	)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'' || c == '"' || c == '`':
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// ensureColumns adds again every column the migrations add that the
// database lacks. Migrations record themselves once their statements have
// run, but on a replicated cluster ClickHouse 18.16 can lose one of two
// different ALTERs of a table made at the same moment by two nines
// migrating at once, leaving a migration recorded and its column missing
// (and every INSERT of the table failing). It costs one query when nothing
// is missing, and issues no DDL then (a nines restarting while a server of
// the cluster is down must not wait for it).
func (s *Store) ensureColumns(ctx context.Context, ms []migration, ddl func(string) string) error {
	const op = "migrate"
	var want []addedColumn
	for _, m := range ms {
		for _, st := range m.statements {
			want = append(want, addedColumns(st)...)
		}
	}
	if len(want) == 0 {
		return nil
	}
	for attempt := 0; ; attempt++ {
		s.metrics.op(op)
		rows, err := s.conn.Query(ctx, `SELECT table, name FROM system.columns WHERE database = ?`, s.db)
		if err != nil {
			return s.fail(ctx, op, err, "list columns")
		}
		have := map[[2]string]bool{}
		for rows.Next() {
			var t, n string
			if err := rows.Scan(&t, &n); err != nil {
				rows.Close()
				return s.fail(ctx, op, err, "list columns")
			}
			have[[2]string{t, n}] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.fail(ctx, op, err, "list columns")
		}
		var missing []addedColumn
		for _, c := range want {
			if !have[[2]string{c.table, c.name}] {
				missing = append(missing, c)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		if attempt == 5 {
			return s.fail(ctx, op, errMissingColumn{missing[0]}, "migrations recorded, column missing")
		}
		for _, c := range missing {
			s.log.Warn("migration recorded but its column is missing (a lost concurrent ALTER): adding it again", "table", c.table, "column", c.name)
			s.metrics.op(op)
			if err := execDDL(ctx, s.conn, ddl("ALTER TABLE ${database}."+c.table+" ${on_cluster} "+c.clause)); err != nil {
				return s.fail(ctx, op, err, "add column %s.%s again", c.table, c.name)
			}
		}
		// Let the replicas' metadata settle before looking again.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type errMissingColumn struct{ c addedColumn }

func (e errMissingColumn) Error() string {
	return "column " + e.c.table + "." + e.c.name + " is still missing after adding it again"
}
