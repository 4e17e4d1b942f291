// Package harness owns what nines' benchmark (cmd/nines-bench) and fault
// and soak tests (cmd/nines-chaos) need to run programs as processes:
// finding the module and building nines, free loopback ports, child
// processes with their logs (start, wait until ready, stop, kill, the
// log's last lines), CPU and memory from /proc, a private ClickHouse
// run by deploy/clickhouse/dev/clickhousectl, and a private replicated
// cluster run by deploy/clickhouse/dev/clusterctl. It is for those programs
// only (Linux, loopback).
package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RepoRoot finds the module root (the directory holding go.mod) from the
// working directory up.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// BuildNines compiles ./cmd/nines of the module at root into out, static
// and without local paths.
func BuildNines(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/nines")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/nines: %w\n%s", err, b)
	}
	return nil
}

// FreePort returns a loopback port nobody listens on now.
func FreePort() (int, error) { return (*Ports)(nil).Free() }

// FreeAddr is FreePort as host:port.
func FreeAddr() (string, error) { return (*Ports)(nil).FreeAddr() }

// Ports hands out free loopback ports: any (a nil or zero Ports) or, on a
// machine others share, only those from..to.
type Ports struct {
	from, to, next int
}

// ParsePorts reads FROM-TO; empty means any free port.
func ParsePorts(s string) (*Ports, error) {
	if s == "" {
		return &Ports{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	from, err1 := strconv.Atoi(a)
	to, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || from <= 0 || to < from || to > 65535 {
		return nil, fmt.Errorf("ports %q: want FROM-TO, e.g. 19810-19819", s)
	}
	return &Ports{from: from, to: to, next: from}, nil
}

// Listen opens a loopback listener on the next free port.
func (p *Ports) Listen() (net.Listener, error) {
	if p == nil || p.from == 0 {
		return net.Listen("tcp", "127.0.0.1:0")
	}
	for ; p.next <= p.to; p.next++ {
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p.next)); err == nil {
			p.next++
			return l, nil
		}
	}
	return nil, fmt.Errorf("no free port left in %d-%d", p.from, p.to)
}

// Free returns a port nobody listens on now.
func (p *Ports) Free() (int, error) {
	l, err := p.Listen()
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreeN returns n different ports nobody listens on now: all are held
// open until the last is found (ports picked one after the other by the
// system may repeat once closed: a server was once given one port for
// both TCP and HTTP).
func (p *Ports) FreeN(n int) ([]int, error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := p.Listen()
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreeAddr is Free as host:port.
func (p *Ports) FreeAddr() (string, error) {
	port, err := p.Free()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(port), nil
}

// Tail returns the last n lines of a file, or why it cannot.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Child is a program the harness started, its output going to a log file.
type Child struct {
	Name string
	Log  string // the file holding its output

	cmd  *exec.Cmd
	done chan error // receives the exit once, and holds it for the next reader
}

// Start starts bin with args, its environment extended by env, appending
// its output to logPath (so that a restarted program keeps one log).
func Start(name, logPath string, env []string, bin string, args ...string) (*Child, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &Child{Name: name, Log: logPath, cmd: cmd, done: make(chan error, 1)}
	go func() {
		c.done <- cmd.Wait()
		f.Close()
	}()
	return c, nil
}

// PID returns the process ID.
func (c *Child) PID() int { return c.cmd.Process.Pid }

// exited returns the exit, once the process has ended.
func (c *Child) exited() error {
	err := <-c.done
	c.done <- err
	return err
}

// WaitReady polls url until it answers 200; it fails when the process
// exits, timeout passes or ctx ends, with the log's last lines.
func (c *Child) WaitReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-c.done:
			c.done <- err
			return fmt.Errorf("%s exited during start-up (%v); last lines of %s:\n%s", c.Name, err, c.Log, Tail(c.Log, 20))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s within %v; last lines of %s:\n%s", c.Name, url, timeout, c.Log, Tail(c.Log, 20))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop sends SIGTERM and waits for the exit, killing the process after
// timeout. It returns how long that took and the exit (nil for status 0;
// see Signaled).
func (c *Child) Stop(timeout time.Duration) (time.Duration, error) {
	began := time.Now()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return 0, err
	}
	select {
	case err := <-c.done:
		c.done <- err
		return time.Since(began), err
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		c.exited()
		return time.Since(began), fmt.Errorf("%s did not exit within %v of SIGTERM: killed", c.Name, timeout)
	}
}

// Kill sends SIGKILL and waits for the process to die.
func (c *Child) Kill() {
	_ = c.cmd.Process.Kill()
	c.exited()
}

// Signaled reports whether a Stop's error is only that a signal ended the
// process (programs without a SIGTERM handler).
func Signaled(err error) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled()
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// ProcStats reads a process's CPU time (user + system) and peak resident
// set (VmHWM) from /proc.
func ProcStats(pid int) (cpu time.Duration, peakRSS int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	// fields[0] is the state (field 3): utime and stime are fields 14, 15.
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	cpu = time.Duration(utime+stime) * time.Second / clockTicks
	peakRSS, err = statusKB(pid, "VmHWM")
	return cpu, peakRSS, err
}

// RSS reads a process's resident set size from /proc.
func RSS(pid int) (int64, error) { return statusKB(pid, "VmRSS") }

// statusKB reads one "Name:  123 kB" line of /proc/PID/status, in bytes.
func statusKB(pid int, name string) (int64, error) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, name, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, name)
}

// ResetPeakRSS restarts VmHWM from the current resident set, so that a
// phase's peak does not include an earlier one.
func ResetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// ClickHouse is a private ClickHouse server run by clickhousectl
// (deploy/clickhouse/dev/clickhousectl) in Dir on loopback ports.
type ClickHouse struct {
	Ctl       string // path of clickhousectl
	Dir       string
	TCP, HTTP int
}

// NewClickHouse is a server of the module at root in dir, on ports from p
// (nil: any free ones).
func NewClickHouse(root, dir string, p *Ports) (*ClickHouse, error) {
	ports, err := p.FreeN(2)
	if err != nil {
		return nil, err
	}
	return newClickHouse(root, dir, ports[0], ports[1]), nil
}

func newClickHouse(root, dir string, tcp, http int) *ClickHouse {
	return &ClickHouse{Ctl: filepath.Join(root, "deploy", "clickhouse", "dev", "clickhousectl"), Dir: dir, TCP: tcp, HTTP: http}
}

// Addr is the native protocol's address.
func (c *ClickHouse) Addr() string { return "127.0.0.1:" + strconv.Itoa(c.TCP) }

// Start starts the server (clickhousectl waits until it answers).
func (c *ClickHouse) Start(ctx context.Context) error {
	return c.ctl(ctx, "start", c.Dir, strconv.Itoa(c.TCP), strconv.Itoa(c.HTTP))
}

// Stop stops the server.
func (c *ClickHouse) Stop(ctx context.Context) error { return c.ctl(ctx, "stop", c.Dir) }

// PID returns the server's process ID from its pid file, 0 when it is not
// running.
func (c *ClickHouse) PID() int {
	b, err := os.ReadFile(filepath.Join(c.Dir, "clickhouse-server.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 {
		return 0
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
		return 0
	}
	return pid
}

func (c *ClickHouse) ctl(ctx context.Context, args ...string) error {
	if b, err := exec.CommandContext(ctx, c.Ctl, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(c.Ctl), strings.Join(args, " "), err, b)
	}
	return nil
}

// GetJSON reads GET u into v; an answer other than 200 is an error that
// shows its body.
func GetJSON(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", u, resp.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// Sync waits until the deriver has applied everything the nines at base
// answered 2xx for (POST /api/v1/sync with the API token), trying again
// while it answers 503, up to timeout.
func Sync(ctx context.Context, client *http.Client, base, apiToken string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/sync", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("sync: HTTP %d: %s", resp.StatusCode, b)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the deriver did not catch up within %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Incidents reads every incident through the API of the nines at base,
// 1,000 a page, each into a T: a struct with the API's JSON fields the
// caller reads.
func Incidents[T any](ctx context.Context, client *http.Client, base string) ([]T, error) {
	var (
		all    []T
		cursor string
	)
	for {
		var page struct {
			Incidents  []T    `json:"incidents"`
			NextCursor string `json:"next_cursor"`
		}
		if err := GetJSON(ctx, client, base+"/api/v1/incidents?limit=1000&cursor="+url.QueryEscape(cursor), &page); err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		all = append(all, page.Incidents...)
		if page.NextCursor == "" {
			return all, nil
		}
		cursor = page.NextCursor
	}
}

// SQL runs plain statements on ClickHouse's HTTP interface, so that the
// programs need not import the driver (only chstore does).
type SQL struct {
	base   string // http://host:port
	client *http.Client
}

// NewSQL is a client of the HTTP interface at addr (host:port), each
// statement bounded by timeout.
func NewSQL(addr string, timeout time.Duration) *SQL {
	return &SQL{base: "http://" + addr, client: &http.Client{Timeout: timeout}}
}

// Query runs q and returns what the server answered (its default format,
// TSV).
func (c *SQL) Query(ctx context.Context, q string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/", strings.NewReader(q))
	if err != nil {
		return "", err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("clickhouse: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("clickhouse: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse: %s: HTTP %d: %s", q, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

// Cluster is a private replicated ClickHouse cluster run by clusterctl
// (deploy/clickhouse/dev/clusterctl) in Dir: ZooKeeper and two servers,
// two replicas of one shard of the cluster Name. Servers[i] is server i+1;
// each has clickhousectl's layout in Dir/ch1 and Dir/ch2.
type Cluster struct {
	Ctl     string // path of clusterctl
	Dir     string
	Name    string
	ZK      int
	Servers [2]*ClickHouse
	inter   [2]int
}

// NewCluster is a cluster of the module at root in dir, on ports from p
// (nil: any free ones).
func NewCluster(root, dir string, p *Ports) (*Cluster, error) {
	c := &Cluster{Ctl: filepath.Join(root, "deploy", "clickhouse", "dev", "clusterctl"), Dir: dir, Name: "nines_cluster"}
	ports, err := p.FreeN(1 + 3*len(c.Servers))
	if err != nil {
		return nil, err
	}
	c.ZK = ports[0]
	for i := range c.Servers {
		tcp, http, inter := ports[1+3*i], ports[2+3*i], ports[3+3*i]
		c.Servers[i] = newClickHouse(root, filepath.Join(dir, "ch"+strconv.Itoa(i+1)), tcp, http)
		c.inter[i] = inter
	}
	return c, nil
}

// Addrs are the servers' native addresses, in the given order of servers
// (1 and 2), comma-separated as a DSN lists them.
func (c *Cluster) Addrs(servers ...int) string {
	var out []string
	for _, n := range servers {
		out = append(out, c.Servers[n-1].Addr())
	}
	return strings.Join(out, ",")
}

// Start starts ZooKeeper and both servers (clusterctl waits until they
// answer).
func (c *Cluster) Start(ctx context.Context) error {
	args := []string{"start", c.Dir, strconv.Itoa(c.ZK)}
	for i, s := range c.Servers {
		args = append(args, strconv.Itoa(s.TCP), strconv.Itoa(s.HTTP), strconv.Itoa(c.inter[i]))
	}
	return c.ctl(ctx, args...)
}

// Stop stops both servers and ZooKeeper.
func (c *Cluster) Stop(ctx context.Context) error { return c.ctl(ctx, "stop", c.Dir) }

// StartServer starts server n (1 or 2) again.
func (c *Cluster) StartServer(ctx context.Context, n int) error {
	return c.ctl(ctx, "start-server", c.Dir, strconv.Itoa(n))
}

// KillServer kills server n (1 or 2) with SIGKILL, as a crash would.
func (c *Cluster) KillServer(n int) error {
	pid := c.Servers[n-1].PID()
	if pid == 0 {
		return fmt.Errorf("clickhouse server %d is not running", n)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || strings.Contains(string(b), ") Z ") {
			return nil
		}
	}
	return fmt.Errorf("clickhouse server %d (pid %d) survived SIGKILL", n, pid)
}

func (c *Cluster) ctl(ctx context.Context, args ...string) error {
	if b, err := exec.CommandContext(ctx, c.Ctl, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("clusterctl %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}
