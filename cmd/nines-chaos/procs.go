package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// repoRoot finds the module root from the working directory.
func repoRoot() (string, error) {
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

// buildNines builds ./cmd/nines into dir.
func buildNines(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "nines")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/nines")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/nines: %w\n%s", err, out)
	}
	return bin, nil
}

// hasFlags reports whether `nines serve` knows every flag in names.
func hasFlags(ctx context.Context, bin string, names ...string) (bool, error) {
	out, _ := exec.CommandContext(ctx, bin, "serve", "-h").CombinedOutput()
	if len(out) == 0 {
		return false, fmt.Errorf("%s serve -h printed nothing", bin)
	}
	for _, n := range names {
		if !strings.Contains(string(out), "-"+n+" ") {
			return false, nil
		}
	}
	return true, nil
}

// ports hands out free loopback ports: any (from 0) or, when the machine
// is shared, only those from..to (--ports).
type ports struct {
	from, to, next int
}

func parsePorts(s string) (*ports, error) {
	if s == "" {
		return &ports{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	from, err1 := strconv.Atoi(a)
	to, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || from <= 0 || to < from || to > 65535 {
		return nil, fmt.Errorf("--ports %q: want FROM-TO, e.g. 19810-19819", s)
	}
	return &ports{from: from, to: to, next: from}, nil
}

// listen opens a loopback listener on the next free port.
func (p *ports) listen() (net.Listener, error) {
	if p.from == 0 {
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

func (p *ports) free() (int, error) {
	l, err := p.listen()
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// clickhouse is a private ClickHouse server run by clickhousectl.
type clickhouse struct {
	ctl, dir  string
	tcp, http int
}

func newClickHouse(root, dir string, p *ports) (*clickhouse, error) {
	tcp, err := p.free()
	if err != nil {
		return nil, err
	}
	http, err := p.free()
	if err != nil {
		return nil, err
	}
	return &clickhouse{ctl: filepath.Join(root, "deploy", "clickhouse", "dev", "clickhousectl"), dir: dir, tcp: tcp, http: http}, nil
}

func (c *clickhouse) addr() string { return "127.0.0.1:" + strconv.Itoa(c.tcp) }

func (c *clickhouse) start(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, c.ctl, "start", c.dir, strconv.Itoa(c.tcp), strconv.Itoa(c.http)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("start clickhouse: %w: %s", err, out)
	}
	return nil
}

func (c *clickhouse) stop() error {
	out, err := exec.Command(c.ctl, "stop", c.dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("stop clickhouse: %w: %s", err, out)
	}
	return nil
}

// replica is one nines process.
type replica struct {
	name, bin, base string
	args            []string
	logPath         string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
}

func newReplica(name, bin, workDir string, args []string, p *ports) (*replica, error) {
	port, err := p.free()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	return &replica{
		name: name, bin: bin, base: "http://" + addr,
		args:    append([]string{"serve", "--web.listen-address=" + addr}, args...),
		logPath: filepath.Join(workDir, "nines-"+name+".log"),
	}, nil
}

// start starts the process and waits until it is ready.
func (r *replica) start(ctx context.Context) error {
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(r.bin, r.args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", r.name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	r.mu.Lock()
	r.cmd, r.exited = cmd, exited
	r.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("nines %s exited while starting: %v; log %s:\n%s", r.name, err, r.logPath, tail(r.logPath, 20))
		default:
		}
		if resp, err := http.Get(r.base + "/-/healthy"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nines %s not up; log %s:\n%s", r.name, r.logPath, tail(r.logPath, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to die.
func (r *replica) kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	_ = cmd.Process.Kill()
	<-exited
}

// stop sends SIGTERM and returns how the process ended and how long that
// took.
func (r *replica) stop(timeout time.Duration) (time.Duration, error) {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	began := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case err := <-exited:
		return time.Since(began), err
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-exited
		return time.Since(began), fmt.Errorf("nines %s did not exit within %s of SIGTERM", r.name, timeout)
	}
}

// pid returns the process ID.
func (r *replica) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cmd.Process.Pid
}

// metric reads one unlabelled sample from /metrics.
func (r *replica) metric(name string) (float64, error) {
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", name)
}

// rss reads the resident set size of the process from /proc.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
