package chstore

import chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"

// ConnOf gives the external tests the store's connection, to check what is
// stored.
func ConnOf(s *Store) chdriver.Conn { return s.conn }
