package chstore

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/ext"
	chcolumn "github.com/ClickHouse/clickhouse-go/v2/lib/column"

	"github.com/ninesops/nines/incidents"
)

// Keys that select rows (group keys, services, incident IDs, fingerprints)
// travel beside a query as external data: a temporary table the server
// reads as `keys`, sent in the native protocol's data blocks. The query
// text stays the same size however many keys a batch holds and however
// long each is. Bound into the text (`x IN ('…', …)`) they broke
// ClickHouse's max_query_size (256 KiB on 18.16) with about 9,000 new
// incidents in one flush, or with a single group key of 256 KiB.
//
// A query filters with `(a, b) IN (SELECT a, b FROM keys)`, and with
// `service IN (SELECT service FROM keys)` as well where service leads the
// table's sort key, so that only the granules of those services are read.

// keyTable is the external table `keys`: String columns, but for a column
// named version, which is UInt64.
type keyTable struct {
	t *ext.Table
}

func newKeyTable(cols ...string) (*keyTable, error) {
	opts := make([]func(*ext.Table) error, 0, len(cols))
	for _, c := range cols {
		typ := chcolumn.Type("String")
		if c == "version" {
			typ = "UInt64"
		}
		opts = append(opts, ext.Column(c, typ))
	}
	t, err := ext.NewTable("keys", opts...)
	if err != nil {
		return nil, fmt.Errorf("key table: %w", err)
	}
	return &keyTable{t: t}, nil
}

// add appends one row, a value per column.
func (k *keyTable) add(values ...any) error {
	if err := k.t.Append(values...); err != nil {
		return fmt.Errorf("key table: %w", err)
	}
	return nil
}

// context returns ctx carrying the table to the next query; a nil table
// adds nothing.
func (k *keyTable) context(ctx context.Context) context.Context {
	if k == nil {
		return ctx
	}
	return clickhouse.Context(ctx, clickhouse.WithExternalTable(k.t))
}

// stringKeys is a one-column key table holding values.
func stringKeys(col string, values []string) (*keyTable, error) {
	k, err := newKeyTable(col)
	if err != nil {
		return nil, err
	}
	for _, v := range values {
		if err := k.add(v); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// refKeys is a key table of (group_key, service) pairs, the set of refs
// wanted, for `(group_key, service) IN (SELECT group_key, service FROM
// keys)`.
func refKeys(refs []incidents.GroupRef) (*keyTable, map[incidents.GroupRef]bool, error) {
	k, err := newKeyTable("group_key", "service")
	if err != nil {
		return nil, nil, err
	}
	want := make(map[incidents.GroupRef]bool, len(refs))
	for _, r := range refs {
		if want[r] {
			continue
		}
		want[r] = true
		if err := k.add(r.GroupKey, r.Service); err != nil {
			return nil, nil, err
		}
	}
	return k, want, nil
}

// refsFilter selects the rows of the refs of a refKeys table.
const refsFilter = `service IN (SELECT service FROM keys) AND (group_key, service) IN (SELECT group_key, service FROM keys)`

// idsFilter selects the rows of the (service, id) pairs of a key table.
const idsFilter = `service IN (SELECT service FROM keys) AND (service, id) IN (SELECT service, id FROM keys)`
