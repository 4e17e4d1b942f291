package chstore

import (
	chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ConnOf gives the external tests the store's connection, to check what is
// stored.
func ConnOf(s *Store) chdriver.Conn { return s.conn }

// MigrationVersions lists the versions of the embedded migrations.
func MigrationVersions() ([]uint32, error) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, err
	}
	var out []uint32
	for _, m := range ms {
		out = append(out, m.version)
	}
	return out, nil
}

// CollapseSQL is the first two steps of the availability query alone (the
// candidates of a window, their versions collapsed) for every service, for
// the benchmark: every column is used, so that none is left unread. It
// binds @lo, @hi and @now.
func CollapseSQL() string {
	return "SELECT count(), uniqExact(svc), toUInt64(sum(imp)), sum(cityHash64(cause)), sum(t0 + ack0 + res0), " +
		"sum(arraySum(ps)), sum(arraySum(pe)) FROM (" + collapsedSQL("") + ")"
}

// Replicated is the cluster rewrite of a migration statement.
func Replicated(stmt, db string) string { return replicated(stmt, db) }

// CreateTables lists the CREATE TABLE statements of the embedded
// migrations, placeholders left in.
func CreateTables() ([]string, error) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		for _, st := range m.statements {
			if createTableRe.MatchString(st) {
				out = append(out, st)
			}
		}
	}
	return out, nil
}

// HoldLogInserts makes f run after each INSERT of the log is stamped and
// before it is sent. Set it before the first append.
func HoldLogInserts(s *Store, f func(ms int64)) { s.logClock.hold = f }

// BodiesBlockRows is how many bodies of the log ClickHouse sends a block.
const BodiesBlockRows = bodiesBlockRows
