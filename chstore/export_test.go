package chstore

import chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"

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
