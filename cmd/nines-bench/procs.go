package main

import (
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
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// procStats reads a process's CPU time (user + system) and peak resident
// set (VmHWM) from /proc.
func procStats(pid int) (cpu time.Duration, peakRSS int64, err error) {
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
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(st), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("/proc/%d/status VmHWM: %w", pid, err)
			}
			peakRSS = kb << 10
		}
	}
	return cpu, peakRSS, nil
}

// resetPeakRSS restarts VmHWM from the current resident set, so that a
// phase's peak does not include an earlier one.
func resetPeakRSS(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// usage is a process's consumption over a phase.
type usage struct {
	pid     int
	cpu0    time.Duration
	CPU     time.Duration
	PeakRSS int64
}

func startUsage(pid int) *usage {
	u := &usage{pid: pid}
	if pid <= 0 {
		return u
	}
	_ = resetPeakRSS(pid) // best effort: without it the peak covers the process's life
	u.cpu0, _, _ = procStats(pid)
	return u
}

func (u *usage) stop() {
	if u.pid <= 0 {
		return
	}
	cpu, peak, err := procStats(u.pid)
	if err != nil {
		return
	}
	u.CPU, u.PeakRSS = cpu-u.cpu0, peak
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// child is a server the bench started.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string // file holding its output
	done chan error
}

func startChild(name, logPath string, env []string, bin string, args ...string) (*child, error) {
	f, err := os.Create(logPath)
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
	c := &child{name: name, cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() {
		c.done <- cmd.Wait()
		f.Close()
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// waitReady polls url until it answers 200, the child exits or ctx ends.
func (c *child) waitReady(ctx context.Context, url string, timeout time.Duration) error {
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
			return fmt.Errorf("%s exited during start-up (%v); last lines of %s:\n%s", c.name, err, c.log, tail(c.log, 15))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready at %s within %v; last lines of %s:\n%s", c.name, url, timeout, c.log, tail(c.log, 15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits, then kills after timeout.
func (c *child) stop(timeout time.Duration) error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		c.done <- err
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.Sys().(syscall.WaitStatus).Signaled() {
			return nil
		}
		return err
	case <-time.After(timeout):
		_ = c.cmd.Process.Kill()
		err := <-c.done
		c.done <- err
		return fmt.Errorf("%s did not stop within %v of SIGTERM: killed", c.name, timeout)
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
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

// buildNines compiles ./cmd/nines from the module at dir into out.
func buildNines(ctx context.Context, dir, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/nines")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/nines: %w\n%s", err, b)
	}
	return nil
}

// clickhousectl drives deploy/clickhouse/dev/clickhousectl.
func clickhousectl(ctx context.Context, script string, args ...string) error {
	cmd := exec.CommandContext(ctx, script, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", filepath.Base(script), strings.Join(args, " "), err, b)
	}
	return nil
}

// pidFromFile reads a pid file, 0 if it cannot.
func pidFromFile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// machineLoad describes how busy the machine is, from /proc/loadavg and
// /proc/pressure/cpu (the share of time some runnable task waited for a
// CPU): figures taken on a machine other work keeps busy are low.
func machineLoad() string {
	var parts []string
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			parts = append(parts, "load average "+strings.Join(f[:3], " "))
		}
	}
	if b, err := os.ReadFile("/proc/pressure/cpu"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "some "); ok {
				for _, kv := range strings.Fields(rest) {
					if v, ok := strings.CutPrefix(kv, "avg60="); ok {
						parts = append(parts, "CPU pressure "+v+"% (60 s)")
					}
				}
			}
		}
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, ", ")
}
