package chtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// The replicated test cluster that `make test` starts with
// deploy/clickhouse/dev/clusterctl: ZooKeeper and two ClickHouse 18.16
// servers, two replicas of one shard.
const (
	// ClusterEnv lists the cluster's servers' native addresses, server 1
	// first, comma-separated: 127.0.0.1:19510,127.0.0.1:19520.
	ClusterEnv = "NINES_TEST_CLUSTER"
	// ClusterName is the cluster's name in the servers' remote_servers.
	ClusterName = "nines_cluster"
)

// Cluster returns the test cluster's server addresses, server 1 first. It
// skips on chDB, which cannot run as a cluster, and when the cluster is
// not configured (fails instead when NINES_REQUIRE_INTEGRATION=1).
func Cluster(t testing.TB) []string {
	t.Helper()
	if Engine(t) == EngineChDB {
		t.Skip("chDB (current ClickHouse embedded) cannot run as a cluster: no Keeper, no interserver port")
	}
	v := os.Getenv(ClusterEnv)
	if v == "" {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s not set but %s=1: run `make test`, or deploy/dev/with-cluster DIR ZK TCP1 HTTP1 IS1 TCP2 HTTP2 IS2 -- CMD", ClusterEnv, RequireEnv)
		}
		t.Skipf("integration test: %s not set; run `make test` to start the test cluster", ClusterEnv)
	}
	addrs := strings.Split(v, ",")
	if len(addrs) != 2 {
		t.Fatalf("%s=%q: want two addresses", ClusterEnv, v)
	}
	return addrs
}

// ClusterDatabase returns the name of a uniquely named database that does
// not exist yet on the test cluster; it is dropped on every server (with
// its tables' replication state in ZooKeeper) when the test ends.
func ClusterDatabase(t testing.TB) string {
	t.Helper()
	addrs := Cluster(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("random database name: %v", err)
	}
	name := "nines_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		conn, err := clickhouse.Open(&clickhouse.Options{Addr: addrs, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Logf("could not drop test database %s (left behind): %v", name, err)
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+name+"` ON CLUSTER "+ClusterName); err != nil {
			t.Logf("could not drop test database %s (left behind): %v", name, err)
		}
	})
	return name
}
