package chstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	chdriver "github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// clusterDSN is the DSN of db over the given servers, in that order:
// clickhouse-go connects to the first that answers.
func clusterDSN(db string, addrs ...string) string {
	return "clickhouse://" + strings.Join(addrs, ",") + "/" + db + "?dial_timeout=2s"
}

func onCluster(o *chstore.Options) { o.Cluster = chtest.ClusterName }

// serverConn is a connection to one server of the cluster alone.
func serverConn(t *testing.T, addr string) chdriver.Conn {
	t.Helper()
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func exec(t *testing.T, conn chdriver.Conn, q string) {
	t.Helper()
	if err := conn.Exec(t.Context(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func count(t *testing.T, conn chdriver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(t.Context(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// engines returns table → engine of db on one server.
func engines(t *testing.T, conn chdriver.Conn, db string) map[string]string {
	t.Helper()
	rows, err := conn.Query(t.Context(), "SELECT name, engine FROM system.tables WHERE database = ?", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		out[name] = engine
	}
	return out
}

// syncReplica waits until the server has fetched every part of db's
// table that its replication queue knows of.
func syncReplica(t *testing.T, conn chdriver.Conn, db, table string) {
	t.Helper()
	exec(t, conn, "SYSTEM SYNC REPLICA `"+db+"`."+table)
}

// TestClusterMigrationsCreateReplicatedTables: three nines migrate a new
// database at once, two through server 1 and one through server 2, with
// --clickhouse.cluster. Every table is then replicated on both servers,
// and what one server stores the other serves.
func TestClusterMigrationsCreateReplicatedTables(t *testing.T) {
	t.Parallel()
	addrs := chtest.Cluster(t)
	db := chtest.ClusterDatabase(t)
	stores := []*testStore{
		openStore(t, clusterDSN(db, addrs[0], addrs[1]), onCluster),
		openStore(t, clusterDSN(db, addrs[0], addrs[1]), onCluster),
		openStore(t, clusterDSN(db, addrs[1], addrs[0]), onCluster),
	}
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Go(func() {
			if err := s.Migrate(t.Context()); err != nil {
				t.Errorf("concurrent migrate on the cluster: %v", err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if err := stores[2].Migrate(t.Context()); err != nil {
		t.Errorf("migrate again: %v", err)
	}

	one, two := engines(t, serverConn(t, addrs[0]), db), engines(t, serverConn(t, addrs[1]), db)
	if len(one) < 10 || !maps(one, two) {
		t.Fatalf("tables differ between the servers or are missing:\n server 1: %v\n server 2: %v", one, two)
	}
	for table, engine := range one {
		if !strings.HasPrefix(engine, "Replicated") {
			t.Errorf("table %s has engine %s, want a replicated one", table, engine)
		}
	}
	// The ALTERs, run on one server, reached the other.
	columns := func(addr string) string {
		var cols string
		q := "SELECT toString(groupArray(concat(table, '.', name, ' ', type))) FROM (SELECT table, name, type FROM system.columns WHERE database = ? ORDER BY table, name)"
		if err := serverConn(t, addr).QueryRow(t.Context(), q, db).Scan(&cols); err != nil {
			t.Fatal(err)
		}
		return cols
	}
	if c1, c2 := columns(addrs[0]), columns(addrs[1]); c1 != c2 || !strings.Contains(c1, "incident_events.impact Int8") || !strings.Contains(c1, "schema_migrations.checksum String") {
		t.Errorf("columns differ between the servers or lack the migrations' ALTERs:\n server 1: %s\n server 2: %s", c1, c2)
	}
	versions := func(addr string) []uint32 {
		conn := serverConn(t, addr)
		syncReplica(t, conn, db, "schema_migrations")
		rows, err := conn.Query(t.Context(), "SELECT DISTINCT version FROM `"+db+"`.schema_migrations ORDER BY version")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var vs []uint32
		for rows.Next() {
			var v uint32
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			vs = append(vs, v)
		}
		return vs
	}
	want, err := chstore.MigrationVersions()
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range addrs {
		if got := versions(addr); !slices.Equal(got, want) {
			t.Errorf("server %s lists migrations %v, want %v", addr, got, want)
		}
	}

	inc := newIncident("g", "replicated", t0)
	stores[0].write(t, incidents.Change{Incident: inc})
	syncReplica(t, serverConn(t, addrs[1]), db, "incidents")
	syncReplica(t, serverConn(t, addrs[1]), db, "incident_segments")
	checkIncident(t, stores[2].get(t, inc.ID), stored(inc))
}

func maps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestClusterRefusesUnreplicatedTables: a database made by a
// single-server nines is not silently mixed with replicated tables.
func TestClusterRefusesUnreplicatedTables(t *testing.T) {
	t.Parallel()
	addrs := chtest.Cluster(t)
	db := chtest.ClusterDatabase(t)
	plain := openStore(t, clusterDSN(db, addrs[0]))
	if err := plain.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := engines(t, serverConn(t, addrs[0]), db)

	err := openStore(t, clusterDSN(db, addrs[0], addrs[1]), onCluster).Migrate(t.Context())
	if err == nil {
		t.Fatal("migrate with a cluster over unreplicated tables succeeded, want it refused")
	}
	for _, want := range []string{"not replicated", "incidents (ReplacingMergeTree)", "does not convert", "CLUSTER.md"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if !errors.Is(err, fault.ErrConflict) {
		t.Errorf("error %v is not a conflict", err)
	}
	if after := engines(t, serverConn(t, addrs[0]), db); !maps(before, after) {
		t.Errorf("the refused migration changed the tables:\n before %v\n after %v", before, after)
	}
}

// TestClusterInsertDeduplication: a replicated table drops a block
// identical to one of the last it stored (replicated_deduplication_window).
// An incident version sent again (a retried flush, a replayed spool) is
// dropped on the second try, which is what nines wants; two different
// batches are both kept, even when they carry the same incident: versions
// differ in their version and update time. Event rows carry the time of
// their flush (inserted_at_ms), so a retried event is stored again, not
// dropped, and readers take one row per event ID.
func TestClusterInsertDeduplication(t *testing.T) {
	t.Parallel()
	addrs := chtest.Cluster(t)
	db := chtest.ClusterDatabase(t)
	s := openStore(t, clusterDSN(db, addrs[0], addrs[1]), onCluster)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	two := serverConn(t, addrs[1])
	rows := func(table string) uint64 {
		t.Helper()
		syncReplica(t, two, db, table)
		return count(t, two, "SELECT count() FROM `"+db+"`."+table)
	}
	reader := openStore(t, clusterDSN(db, addrs[1]), onCluster)
	timeline := func(inc *incidents.Incident, want ...incidents.Event) {
		t.Helper()
		syncReplica(t, two, db, "incident_events")
		got, err := reader.Timeline(t.Context(), inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(got, want, func(a, b incidents.Event) bool { return a.ID == b.ID }) {
			t.Errorf("timeline on server 2 = %+v, want %+v", got, want)
		}
	}

	inc := newIncident("g", "dedup", t0)
	opened := incidents.Event{ID: incidents.EventID("opened"), IncidentID: inc.ID, At: t0, Kind: incidents.EventOpened, Actor: incidents.ActorAlertmanager}
	first := incidents.Change{Incident: inc, Events: []incidents.Event{opened}}
	s.write(t, first)
	s.write(t, first) // the same batch again: a retry
	if got := rows("incidents"); got != 1 {
		t.Errorf("incidents rows after a retried batch = %d, want 1 (the retry deduplicated)", got)
	}
	if got := rows("incident_events"); got != 2 {
		t.Errorf("event rows after a retried batch = %d, want 2 (inserted_at_ms differs)", got)
	}
	timeline(inc, opened)

	// The next version of the same incident, and another event of the same
	// kind at the same time: different rows, both kept.
	next := version(inc, 2, incidents.StateFiring, inc.Title)
	again := opened
	again.ID = incidents.EventID("opened-again")
	s.write(t, incidents.Change{Incident: next, Events: []incidents.Event{again}})
	if got := rows("incidents"); got != 2 {
		t.Errorf("incidents rows after a second version = %d, want 2", got)
	}
	timeline(inc, opened, again)
	checkIncident(t, reader.get(t, inc.ID), stored(next))
}

// TestClusterReadsFromTheServerWrittenTo: server 2 lags (it fetches
// nothing). A nines that lists the servers in the same order as the one
// that wrote reads what was just written, from server 1; a nines that
// reads server 2 first does not, until server 2 catches up. This is why
// every nines must list the servers in the same order (CLUSTER.md).
func TestClusterReadsFromTheServerWrittenTo(t *testing.T) {
	t.Parallel()
	addrs := chtest.Cluster(t)
	db := chtest.ClusterDatabase(t)
	writer := openStore(t, clusterDSN(db, addrs[0], addrs[1]), onCluster)
	if err := writer.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	two := serverConn(t, addrs[1])
	for _, table := range []string{"incidents", "incident_segments", "incident_alerts"} {
		exec(t, two, fmt.Sprintf("SYSTEM STOP FETCHES `%s`.%s", db, table))
	}
	sameOrder := openStore(t, clusterDSN(db, addrs[0], addrs[1]), onCluster)
	otherOrder := openStore(t, clusterDSN(db, addrs[1], addrs[0]), onCluster)

	inc := newIncident("g", "lag", t0)
	writer.write(t, incidents.Change{Incident: inc})
	checkIncident(t, sameOrder.get(t, inc.ID), stored(inc))
	if _, err := otherOrder.Get(t.Context(), inc.ID); !errors.Is(err, fault.ErrNotFound) {
		t.Fatalf("read from the lagging server: %v, want not found (else this test shows nothing)", err)
	}

	for _, table := range []string{"incidents", "incident_segments", "incident_alerts"} {
		exec(t, two, fmt.Sprintf("SYSTEM START FETCHES `%s`.%s", db, table))
		syncReplica(t, two, db, table)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		got, err := otherOrder.Get(ctx, inc.ID)
		if err == nil {
			checkIncident(t, got, stored(inc))
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("server 2 never caught up: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReplicatedDDLParsesOnCurrentClickHouse: chDB cannot run as a cluster
// (no Keeper), so current ClickHouse is asked what it can say here: every
// rewritten CREATE TABLE, ON CLUSTER included, parses (formatQuery) and
// keeps its replicated engine and arguments. On ClickHouse 18.16 the
// cluster tests above create the tables for real.
func TestReplicatedDDLParsesOnCurrentClickHouse(t *testing.T) {
	t.Parallel()
	if chtest.Engine(t) != chtest.EngineChDB {
		t.Skip("formatQuery is current ClickHouse's; 18.16 runs the DDL in the cluster tests")
	}
	s := openStore(t, chtest.Database(t))
	stmts, err := chstore.CreateTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range stmts {
		ddl := strings.NewReplacer("${database}", "`nines`", "${on_cluster}", " ON CLUSTER "+chtest.ClusterName).Replace(chstore.Replicated(st, "nines"))
		var formatted string
		if err := chstore.ConnOf(s.Store).QueryRow(t.Context(), "SELECT formatQuery(?)", ddl).Scan(&formatted); err != nil {
			t.Errorf("current ClickHouse does not parse\n%s\n: %v", ddl, err)
			continue
		}
		if !strings.Contains(formatted, "ON CLUSTER nines_cluster") || !strings.Contains(formatted, "ENGINE = Replicated") || !strings.Contains(formatted, "'{replica}'") {
			t.Errorf("formatted DDL lost its cluster or engine:\n%s", formatted)
		}
	}
}
