package chtest

import (
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Server is a private ClickHouse server of one test, for tests that stop
// and start it (outages) and so must not use the shared test server. Its
// data lives under the test's temporary directory and survives Stop and
// Start; it is stopped when the test ends.
type Server struct {
	t         testing.TB
	dir, ctl  string
	tcp, http int

	mu      sync.Mutex
	running bool
}

// ServerOption configures a private server before it starts.
type ServerOption func(etc string) error

// WithUser adds a user with a password (allowed from loopback), for tests
// of DSNs that carry credentials.
func WithUser(name, password string) ServerOption {
	return func(etc string) error {
		if err := os.MkdirAll(filepath.Join(etc, "users.d"), 0o700); err != nil {
			return err
		}
		var b strings.Builder
		b.WriteString("<?xml version=\"1.0\"?>\n<yandex><users><")
		_ = xml.EscapeText(&b, []byte(name))
		b.WriteString("><password>")
		_ = xml.EscapeText(&b, []byte(password))
		b.WriteString("</password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></")
		_ = xml.EscapeText(&b, []byte(name))
		b.WriteString("></users></yandex>\n")
		return os.WriteFile(filepath.Join(etc, "users.d", name+".xml"), []byte(b.String()), 0o600)
	}
}

// StartServer starts a private server on free loopback ports with
// deploy/clickhouse/dev/clickhousectl. It skips the test when
// clickhouse-server is not installed, or fails it when
// NINES_REQUIRE_INTEGRATION=1.
//
// On the chDB engine the test is skipped, saying why: it stops and starts
// a server process of its own, and chDB is ClickHouse embedded in a
// library, not a server that a test can run privately and stop. The same
// scenarios run on ClickHouse 18.16 in the same `make test`.
func StartServer(t testing.TB, opts ...ServerOption) *Server {
	t.Helper()
	if Engine(t) == EngineChDB {
		t.Skip("not on chDB: this test runs, stops and restarts a private ClickHouse server process, which chDB (an embedded library) cannot be; it runs on ClickHouse 18.16 in the same `make test`")
	}
	if _, err := os.Stat("/usr/sbin/clickhouse-server"); err != nil {
		if _, err := exec.LookPath("clickhouse-server"); err != nil {
			msg := "integration test: clickhouse-server is not installed (run `make deps`)"
			if os.Getenv(RequireEnv) == "1" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	s := &Server{t: t, dir: filepath.Join(t.TempDir(), "clickhouse"), ctl: clickhousectl(t)}
	s.tcp, s.http = freePort(t), freePort(t)
	for _, o := range opts {
		if err := o(filepath.Join(s.dir, "etc")); err != nil {
			t.Fatalf("configure clickhouse: %v", err)
		}
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Addr is the server's native protocol address.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.tcp) }

// DSN returns a DSN for database db on the server.
func (s *Server) DSN(db string) string {
	return "clickhouse://" + s.Addr() + "/" + db + "?dial_timeout=2s"
}

// Dir is where the server keeps its configuration, data and logs.
func (s *Server) Dir() string { return s.dir }

// Start starts the server (again) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	out, err := exec.Command(s.ctl, "start", s.dir, strconv.Itoa(s.tcp), strconv.Itoa(s.http)).CombinedOutput()
	if err != nil {
		s.t.Fatalf("start clickhouse: %v\n%s", err, out)
	}
	s.running = true
}

// Stop stops the server; Start brings it back with its data.
func (s *Server) Stop() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return
	}
	out, err := exec.Command(s.ctl, "stop", s.dir).CombinedOutput()
	if err != nil {
		s.t.Errorf("stop clickhouse: %v\n%s", err, out)
	}
	s.running = false
}

// clickhousectl finds deploy/clickhouse/dev/clickhousectl from this file's
// place in the repository.
func clickhousectl(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("chtest: cannot find the repository")
	}
	p := filepath.Join(filepath.Dir(file), "..", "..", "deploy", "clickhouse", "dev", "clickhousectl")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("chtest: %v", err)
	}
	return p
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(fmt.Errorf("free port: %w", err))
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
