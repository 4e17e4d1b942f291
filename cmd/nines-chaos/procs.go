package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ninesops/nines/chat/slacktest"
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

// chaosChatConfig makes the chat sender quick, for tests that count its
// messages.
const chaosChatConfig = `chat:
  operations_channel: "#operations"
  poll_interval: 200ms
  channel_interval: 50ms
`

// fakeSlack starts a fake Slack on one of the test's ports and returns the
// replica flags that post to it, and how to stop it.
func (e *env) fakeSlack() (*slacktest.Fake, []string, func(), error) {
	l, err := e.ports.Listen()
	if err != nil {
		return nil, nil, nil, err
	}
	const slackToken = "xoxb-chaos"
	fake, srv := slacktest.Serve(l, slackToken)
	fake.AddChannel("#operations")
	files := map[string]string{"slack.token": slackToken + "\n", "chat.yml": chaosChatConfig}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(e.work, name), []byte(v), 0o600); err != nil {
			srv.Close()
			return nil, nil, nil, err
		}
	}
	args := []string{"--slack.token-file=" + filepath.Join(e.work, "slack.token"), "--slack.api-url=" + fake.APIURL(),
		"--config.file=" + filepath.Join(e.work, "chat.yml")}
	return fake, args, func() { srv.Close() }, nil
}

// chatCheck waits until every incident has its main message in
// #operations and Slack has been quiet a while, past the intent grace
// period after the last fault (a post cut short by a kill is settled by a
// look-up then), and counts incidents posted more than once, and those
// missing out of want.
func chatCheck(ctx context.Context, out io.Writer, fake *slacktest.Fake, want int, lastFault time.Time) (twice, missing int) {
	deadline := time.Now().Add(3 * time.Minute)
	quietSince, last := time.Now(), -1
	for {
		n := len(fake.Calls())
		if n != last {
			quietSince, last = time.Now(), n
		}
		if distinctIncidents(fake.Messages("#operations")) >= want && time.Since(quietSince) >= 5*time.Second &&
			time.Since(lastFault) > 35*time.Second {
			break
		}
		if time.Now().After(deadline) || !sleepUntil(ctx, time.Now().Add(500*time.Millisecond)) {
			break
		}
	}
	per := map[string]int{}
	for _, m := range fake.Messages("#operations") {
		id := ""
		if m.Metadata != nil {
			id, _ = m.Metadata.EventPayload["incident_id"].(string)
		}
		per[id]++
	}
	for id, n := range per {
		if n > 1 {
			twice++
			if twice <= 10 {
				fmt.Fprintf(out, "  posted more than once: incident %s, %d main messages\n", id, n)
			}
		}
	}
	missing = max(want-len(per), 0)
	fmt.Fprintf(out, "chat: incidents with a main message %d of %d, posted more than once %d (must be 0), missing %d (must be 0)\n",
		len(per), want, twice, missing)
	return twice, missing
}

// readyReplica starts replica a and waits until it is ready (it answers
// 503 while it first reaches ClickHouse). Defer stop(&err): it stops the
// replica, says how it exited, and makes a failure to exit cleanly the
// test's error when it had none.
func (e *env) readyReplica(ctx context.Context, out io.Writer, extra ...string) (r *replica, stop func(err *error), err error) {
	r, err = newReplica("a", e.bin, e.work, e.replicaArgs("a", extra...), e.ports)
	if err != nil {
		return nil, nil, err
	}
	if err := r.start(ctx); err != nil {
		return nil, nil, err
	}
	stop = func(err *error) {
		took, serr := r.stop(30 * time.Second)
		fmt.Fprintf(out, "replica a: SIGTERM → exited in %s, %v\n", took.Round(time.Millisecond), exitStatus(serr))
		if serr != nil && *err == nil {
			*err = fmt.Errorf("replica a: %w", serr)
		}
	}
	if err := r.current().WaitReady(ctx, r.base+"/-/ready", 60*time.Second); err != nil {
		var ignored error
		stop(&ignored)
		return nil, nil, err
	}
	return r, stop, nil
}
