package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ninesops/nines/cmd/internal/harness"
)

// buildNines builds ./cmd/nines into dir.
func buildNines(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "nines")
	return bin, harness.BuildNines(ctx, root, bin)
}

// hasFlags reports whether `nines serve` knows every flag in names.
func hasFlags(ctx context.Context, bin string, names ...string) (bool, error) {
	out, _ := exec.CommandContext(ctx, bin, "serve", "-h").CombinedOutput()
	if len(out) == 0 {
		return false, fmt.Errorf("%s serve -h printed nothing", bin)
	}
	for _, n := range names {
		// kingpin's help: --name=PLACEHOLDER, --name="default", --[no-]name.
		if !strings.Contains(string(out), "--"+n+"=") && !strings.Contains(string(out), "--[no-]"+n+" ") {
			return false, nil
		}
	}
	return true, nil
}

// replica is one nines process, which may be killed and started again.
type replica struct {
	name, bin, base string
	args            []string
	logPath         string

	mu    sync.Mutex
	child *harness.Child
}

func newReplica(name, bin, workDir string, args []string, p *harness.Ports) (*replica, error) {
	addr, err := p.FreeAddr()
	if err != nil {
		return nil, err
	}
	return &replica{
		name: name, bin: bin, base: "http://" + addr,
		args:    append([]string{"serve", "--web.listen-address=" + addr}, args...),
		logPath: filepath.Join(workDir, "nines-"+name+".log"),
	}, nil
}

func (r *replica) current() *harness.Child {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.child
}

// start starts the process and waits until it is ready.
func (r *replica) start(ctx context.Context) error {
	c, err := harness.Start("nines "+r.name, r.logPath, nil, r.bin, r.args...)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.child = c
	r.mu.Unlock()
	return c.WaitReady(ctx, r.base+"/-/healthy", 60*time.Second)
}

// kill sends SIGKILL and waits for the process to die.
func (r *replica) kill() { r.current().Kill() }

// stop sends SIGTERM and returns how the process ended and how long that
// took.
func (r *replica) stop(timeout time.Duration) (time.Duration, error) {
	return r.current().Stop(timeout)
}

// pid returns the process ID.
func (r *replica) pid() int { return r.current().PID() }

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
