package chstore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
)

func TestReplicatedRewritesMergeTreeEngines(t *testing.T) {
	const path = "'/clickhouse/tables/{shard}/nines.t', '{replica}'"
	tests := []struct {
		name, in, want string
	}{
		{"with a version", "CREATE TABLE IF NOT EXISTS ${database}.t ${on_cluster} (a String, v UInt64)\nENGINE = ReplacingMergeTree(version)\nORDER BY a",
			"CREATE TABLE IF NOT EXISTS ${database}.t ${on_cluster} (a String, v UInt64)\nENGINE = ReplicatedReplacingMergeTree(" + path + ", version)\nORDER BY a"},
		{"without parentheses", "CREATE TABLE IF NOT EXISTS ${database}.t (a String) ENGINE = ReplacingMergeTree ORDER BY a",
			"CREATE TABLE IF NOT EXISTS ${database}.t (a String) ENGINE = ReplicatedReplacingMergeTree(" + path + ") ORDER BY a"},
		{"empty parentheses", "CREATE TABLE ${database}.t (a String) ENGINE=MergeTree() ORDER BY a",
			"CREATE TABLE ${database}.t (a String) ENGINE = ReplicatedMergeTree(" + path + ") ORDER BY a"},
		{"plain MergeTree, lower case", "create table if not exists ${database}.t (a String) engine = MergeTree order by a",
			"create table if not exists ${database}.t (a String) ENGINE = ReplicatedMergeTree(" + path + ") order by a"},
		{"nested and quoted arguments", "CREATE TABLE ${database}.t (d Date, a String, s Int8) ENGINE = CollapsingMergeTree(s) PARTITION BY (toYYYYMM(d), ')') ORDER BY a",
			"CREATE TABLE ${database}.t (d Date, a String, s Int8) ENGINE = ReplicatedCollapsingMergeTree(" + path + ", s) PARTITION BY (toYYYYMM(d), ')') ORDER BY a"},
		{"old syntax", "CREATE TABLE ${database}.t (d Date, a String) ENGINE = MergeTree(d, (a, d), 8192)",
			"CREATE TABLE ${database}.t (d Date, a String) ENGINE = ReplicatedMergeTree(" + path + ", d, (a, d), 8192)"},
		{"leading comments", "-- ENGINE: what it is\n-- a table\nCREATE TABLE IF NOT EXISTS ${database}.t (a String) ENGINE = SummingMergeTree ORDER BY a",
			"-- ENGINE: what it is\n-- a table\nCREATE TABLE IF NOT EXISTS ${database}.t (a String) ENGINE = ReplicatedSummingMergeTree(" + path + ") ORDER BY a"},
	}
	for _, tc := range tests {
		if got := replicated(tc.in, "nines"); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	unchanged := []string{
		"CREATE TABLE ${database}.t (a String) ENGINE = ReplicatedReplacingMergeTree('/x', '{replica}', v) ORDER BY a",
		"CREATE TABLE ${database}.t (a String) ENGINE = Memory",
		"CREATE TABLE ${database}.t AS ${database}.u ENGINE = Distributed(c, db, u, rand())",
		"ALTER TABLE ${database}.t ${on_cluster} ADD COLUMN b String",
		"ALTER TABLE ${database}.t UPDATE a = 'MergeTree' WHERE 1",
		"CREATE VIEW ${database}.v AS SELECT * FROM ${database}.t",
	}
	for _, in := range unchanged {
		if got := replicated(in, "nines"); got != in {
			t.Errorf("replicated(%q) = %q, want it unchanged", in, got)
		}
	}
}

func TestAltersRunOnOneServer(t *testing.T) {
	tests := []struct {
		stmt  string
		alter bool
	}{
		{"ALTER TABLE ${database}.t ${on_cluster} ADD COLUMN b String", true},
		{"-- why\n/* how */ alter table ${database}.t ${on_cluster}\n  UPDATE a = 1 WHERE 1", true},
		{"CREATE TABLE IF NOT EXISTS ${database}.t ${on_cluster} (a String) ENGINE = MergeTree ORDER BY a", false},
		{"-- ALTER TABLE in a comment\nCREATE TABLE ${database}.t (a String) ENGINE = Memory", false},
	}
	for _, tc := range tests {
		if got := isAlter(tc.stmt); got != tc.alter {
			t.Errorf("isAlter(%q) = %v, want %v", tc.stmt, got, tc.alter)
		}
	}
	if got, want := onOneServer("ALTER TABLE ${database}.t ${on_cluster} ADD COLUMN b String", "nines"), "ALTER TABLE `nines`.t  ADD COLUMN b String"; got != want {
		t.Errorf("onOneServer = %q, want %q", got, want)
	}
}

// TestEveryShippedTableIsReplicatedOnACluster holds for every migration,
// those of the future included: each CREATE TABLE of a MergeTree-family
// engine becomes replicated, with a Keeper path of its own table.
func TestEveryShippedTableIsReplicatedOnACluster(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	tables := 0
	for _, m := range ms {
		for _, st := range m.statements {
			create := createTableRe.FindStringSubmatch(st)
			if create == nil {
				continue
			}
			tables++
			got := replicated(st, "db")
			if !strings.Contains(got, "ENGINE = Replicated") || !strings.Contains(got, "'"+KeeperPath("db", create[1])+"', '{replica}'") {
				t.Errorf("%s: table %s not made replicated:\n%s", m.name, create[1], got)
			}
			if normalizeSQL(replicated(got, "db")) != normalizeSQL(got) {
				t.Errorf("%s: rewriting twice changes the statement again", m.name)
			}
		}
	}
	if tables < 10 {
		t.Errorf("found %d CREATE TABLE statements in the migrations, want every table", tables)
	}
}

// TestStickyDialStaysWhereItMoved: connections go to the first server
// until it fails, then to the next, and stay there when the first comes
// back, until that one fails in turn.
func TestStickyDialStaysWhereItMoved(t *testing.T) {
	down := map[string]bool{}
	var dialed []string
	dial := func(_ context.Context, addr string, _ *clickhouse.Options) (clickhouse.DialResult, error) {
		dialed = append(dialed, addr)
		if down[addr] {
			return clickhouse.DialResult{}, errors.New(addr + " refused")
		}
		return clickhouse.DialResult{}, nil
	}
	opt := &clickhouse.Options{Addr: []string{"ch-1", "ch-2"}}
	var d stickyDial
	steps := []struct {
		down []string
		want []string // servers dialed, in order
		fail bool
	}{
		{nil, []string{"ch-1"}, false},
		{[]string{"ch-1"}, []string{"ch-1", "ch-2"}, false},
		{nil, []string{"ch-2"}, false}, // ch-1 is back: stay on ch-2
		{[]string{"ch-2"}, []string{"ch-2", "ch-1"}, false},
		{[]string{"ch-1", "ch-2"}, []string{"ch-1", "ch-2"}, true},
	}
	for i, s := range steps {
		down, dialed = map[string]bool{}, nil
		for _, a := range s.down {
			down[a] = true
		}
		_, err := d.dial(t.Context(), i, opt, dial)
		if (err != nil) != s.fail || !slices.Equal(dialed, s.want) {
			t.Errorf("step %d (down %v): dialed %v, err %v; want %v, failing %v", i, s.down, dialed, err, s.want, s.fail)
		}
	}
}
