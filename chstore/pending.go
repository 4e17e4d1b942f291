package chstore

import (
	"context"
)

// PendingMigrations names, in order, the embedded migrations that
// schema_migrations does not list: what Migrate would apply. It changes
// nothing (nines migrate --dry-run).
func (s *Store) PendingMigrations(ctx context.Context) ([]string, error) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return nil, err
	}
	const op = "migrate"
	s.metrics.op(op)
	var exists uint8
	if err := s.conn.QueryRow(ctx, "EXISTS TABLE "+quoteIdent(s.db)+".schema_migrations").Scan(&exists); err != nil {
		return nil, s.fail(ctx, op, err, "look for schema_migrations")
	}
	applied := map[uint32][]string{}
	if exists == 1 {
		if applied, err = s.appliedMigrations(ctx); err != nil {
			return nil, err
		}
	}
	var pending []string
	for _, m := range ms {
		if _, ok := applied[m.version]; !ok {
			pending = append(pending, m.name)
		}
	}
	return pending, nil
}
