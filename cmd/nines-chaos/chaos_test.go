package main

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"testing"
)

// lockedBuffer lets the test print the harness's output as it goes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// runShort runs a short version of a test; it skips when what it needs is
// missing (a nines without the spool flags, or no ClickHouse), unless
// NINES_REQUIRE_INTEGRATION=1 and ClickHouse is what is missing.
func runShort(t *testing.T, args ...string) {
	t.Helper()
	var out lockedBuffer
	err := run(t.Context(), args, &out)
	t.Log("\n" + out.b.String())
	switch {
	case errors.Is(err, errSkip):
		if os.Getenv("NINES_REQUIRE_INTEGRATION") == "1" && !bytes.Contains([]byte(err.Error()), []byte("spool")) {
			t.Fatal(err)
		}
		t.Skip(err)
	case err != nil:
		t.Fatal(err)
	}
}

// TestChaosShort is the short fault test of `make test`: 5 seconds of
// ClickHouse outage and one kill -9, over a 40-second stream.
func TestChaosShort(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: not with -short")
	}
	runShort(t, "chaos", "--groups=30", "--episodes=2", "--duration=40s", "--outage=5s", "--kill=true")
}

// TestPauseShort is the short paused-leader test of `make test`: the chat
// leader stopped once for 20 seconds (NINES_CHAOS_PORTS=FROM-TO keeps it to
// those ports).
func TestPauseShort(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: not with -short")
	}
	runShort(t, "pause", "--pauses=1", "--pause=20s", "--ports="+os.Getenv("NINES_CHAOS_PORTS"))
}

// TestStormShort is the short storm of `make test`: 2,000 new groups in
// 10 seconds, each answered 2xx at the first try and each with its incident.
func TestStormShort(t *testing.T) {
	if testing.Short() {
		t.Skip("storm test: not with -short")
	}
	runShort(t, "storm", "--groups=2000", "--duration=10s", "--ports="+os.Getenv("NINES_CHAOS_PORTS"))
}

// TestSoakShort is the short soak test of `make test`: 40 seconds at 100
// notifications per second, memory and goroutines must stay flat.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: not with -short")
	}
	runShort(t, "soak", "--duration=40s", "--rate=100", "--groups=200")
}

// TestMemoryShort is the short memory test of `make test`: 24
// notifications of 9.4 MB at once (226 MB) must leave nines' peak RSS
// under 384 MiB (it was 1.5 GB for 16 before the bytes in flight were
// bounded), each answered 2xx (after 503s) and each with its incident.
func TestMemoryShort(t *testing.T) {
	if testing.Short() {
		t.Skip("memory test: not with -short")
	}
	runShort(t, "memory", "--notifications=24", "--ports="+os.Getenv("NINES_CHAOS_PORTS"))
}

// TestClusterShort is the short cluster failover test of `make test`: a
// replicated ClickHouse cluster (ZooKeeper, two servers), server 1 killed
// -9 for 6 seconds of a 24-second stream (NINES_CLUSTER_CHAOS_PORTS keeps
// it to those ports).
func TestClusterShort(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: not with -short")
	}
	runShort(t, "cluster", "--groups=30", "--episodes=2", "--duration=24s", "--outage=6s", "--ports="+os.Getenv("NINES_CLUSTER_CHAOS_PORTS"))
}
