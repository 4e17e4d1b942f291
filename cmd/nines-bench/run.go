package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/ninesops/nines/alerts"
	"github.com/ninesops/nines/cmd/internal/harness"
)

// config holds the flags.
type config struct {
	notifications   int
	concurrency     int
	rate            float64
	seed            uint64
	services        int
	active          int
	latencyRate     float64
	latencyDuration time.Duration
	phases          string
	alertmanager    string
	ninesBin        string
	ninesArgs       string
	ninesEnv        string
	module          string
	chDir           string
	chTCP, chHTTP   int
	chAddr          string
	chHTTPAddr      string
	clickhousectl   string
	keepServer      bool
	keepDatabases   bool
	insertBatchRows int
	rounds          int
	cpuProfile      string
	memProfile      string
	profileSeconds  int
	workDir         string
	ports           string
	profilePhase    string
	syncTimeout     time.Duration
	visibleEvery    int

	stormNotifications int
	stormConcurrency   int
	logBatch           int
}

var allPhases = []string{"decode", "alertmanager", "nines", "insert", "storm", "latency"}

func parseConfig(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("nines-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `nines-bench: replay Alertmanager notifications against nines with a real
ClickHouse, and against Alertmanager, a decode-only receiver and ClickHouse's
insert path on the same payloads; print a table and the ratios.

Usage: nines-bench [flags]   (run from the repository root; make bench)

`)
		fs.PrintDefaults()
	}
	fs.IntVar(&c.notifications, "notifications", 20000, "Notifications in the throughput script.")
	fs.IntVar(&c.concurrency, "concurrency", 2048, "Requests in flight in the as-fast-as-possible runs: Alertmanager notifies every group that is due at once, each in its own request.")
	fs.Float64Var(&c.rate, "rate", 0, "Send the throughput script at this many notifications/s instead of as fast as possible.")
	fs.Uint64Var(&c.seed, "seed", 1, "Seed of the scripts: same seed, same notifications.")
	fs.IntVar(&c.services, "services", 300, "Distinct services in the scripts.")
	fs.IntVar(&c.active, "active-groups", 2000, "Alert groups in progress at once in the scripts.")
	fs.Float64Var(&c.latencyRate, "latency.rate", 200, "Notifications/s of the latency run.")
	fs.DurationVar(&c.latencyDuration, "latency.duration", time.Minute, "Length of the latency run.")
	fs.StringVar(&c.phases, "phases", strings.Join(allPhases, ","), "Phases to run, comma-separated: "+strings.Join(allPhases, ", ")+".")
	fs.StringVar(&c.alertmanager, "alertmanager", "/usr/bin/prometheus-alertmanager", "Alertmanager binary for the alertmanager phase.")
	fs.StringVar(&c.ninesBin, "nines.bin", "", "nines binary to run (default: build ./cmd/nines from -module).")
	fs.StringVar(&c.ninesArgs, "nines.args", "", "Extra flags for `nines serve`, space-separated, e.g. \"--clickhouse.flush-interval=50ms\".")
	fs.StringVar(&c.ninesEnv, "nines.env", "", "Extra environment for nines, space-separated, e.g. \"GOMEMLIMIT=300MiB\".")
	fs.StringVar(&c.module, "module", ".", "Root of the nines module, to build nines from.")
	fs.StringVar(&c.chDir, "clickhouse.dir", ".build/bench/clickhouse", "Directory of the private ClickHouse the bench starts.")
	fs.IntVar(&c.chTCP, "clickhouse.tcp-port", 19800, "Native port of the private ClickHouse.")
	fs.IntVar(&c.chHTTP, "clickhouse.http-port", 18923, "HTTP port of the private ClickHouse.")
	fs.StringVar(&c.chAddr, "clickhouse.addr", "", "Use this running ClickHouse (native host:port) instead of starting one; needs -clickhouse.http-addr.")
	fs.StringVar(&c.chHTTPAddr, "clickhouse.http-addr", "", "HTTP host:port of the ClickHouse given by -clickhouse.addr.")
	fs.StringVar(&c.clickhousectl, "clickhousectl", "deploy/clickhouse/dev/clickhousectl", "Script that starts and stops the private ClickHouse.")
	fs.BoolVar(&c.keepServer, "clickhouse.keep-running", false, "Leave the private ClickHouse running at the end.")
	fs.BoolVar(&c.keepDatabases, "keep-databases", false, "Keep the bench's databases at the end (default: drop them).")
	fs.IntVar(&c.insertBatchRows, "insert.batch-rows", 50000, "Rows per batch in the insert-bound phase.")
	fs.IntVar(&c.rounds, "rounds", 1, "Run the decode, alertmanager and nines throughput phases this many times in turn and keep each one's fastest round (for busy machines).")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "Write a CPU profile of nines during the throughput run to this file (needs nines' --web.debug-listen-address).")
	fs.StringVar(&c.memProfile, "memprofile", "", "Write a heap profile of nines at the end of the throughput run to this file (needs nines' --web.debug-listen-address).")
	fs.IntVar(&c.profileSeconds, "cpuprofile.seconds", 10, "Length of the CPU profile, started 1 s into the throughput run.")
	fs.StringVar(&c.ports, "ports", "", "Loopback ports for nines and Alertmanager, FROM-TO (default: any free ones); on a shared machine, your range.")
	fs.StringVar(&c.profilePhase, "profile.phase", "storm", "Run whose nines -cpuprofile and -memprofile profile: storm, or nines (the mixed storm's first round).")
	fs.DurationVar(&c.syncTimeout, "sync.timeout", 10*time.Minute, "Longest wait for nines' deriver to apply everything after a run (POST /api/v1/sync).")
	fs.IntVar(&c.visibleEvery, "visible.every", 40, "In the latency run, follow one notification in this many (repeats aside) until GET /api/v1/incidents/{id} shows it; 0: none.")
	fs.IntVar(&c.stormNotifications, "storm.notifications", 5000, "Notifications in the storm of new groups (each a new group of 64 alerts).")
	fs.IntVar(&c.stormConcurrency, "storm.concurrency", 16, "Concurrent senders in the storm of new groups.")
	fs.IntVar(&c.logBatch, "storm.log-batch", 1000, "Records per INSERT in the storm's raw-log insert bound.")
	fs.StringVar(&c.workDir, "work-dir", "", "Directory for logs, configs and the nines binary (default: a temporary one, removed at the end).")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	for p := range strings.SplitSeq(c.phases, ",") {
		if !contains(allPhases, strings.TrimSpace(p)) {
			return nil, fmt.Errorf("-phases: unknown phase %q (want %s)", p, strings.Join(allPhases, ", "))
		}
	}
	if c.notifications < 1 || c.concurrency < 1 || c.services < 1 || c.active < 1 || c.insertBatchRows < 1 || c.rounds < 1 ||
		c.stormNotifications < 1 || c.stormConcurrency < 1 || c.logBatch < 1 {
		return nil, errors.New("-notifications, -concurrency, -services, -active-groups, -insert.batch-rows, -rounds, -storm.notifications, -storm.concurrency and -storm.log-batch must be positive")
	}
	if c.visibleEvery < 0 {
		return nil, errors.New("-visible.every must not be negative")
	}
	if c.profilePhase != "storm" && c.profilePhase != "nines" {
		return nil, fmt.Errorf("-profile.phase: want storm or nines, got %q", c.profilePhase)
	}
	if _, err := harness.ParsePorts(c.ports); err != nil {
		return nil, fmt.Errorf("-ports: %w", err)
	}
	if c.chAddr != "" && c.chHTTPAddr == "" {
		return nil, errors.New("-clickhouse.addr needs -clickhouse.http-addr (for system.parts and clean-up)")
	}
	return c, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (c *config) phase(name string) bool {
	for p := range strings.SplitSeq(c.phases, ",") {
		if strings.TrimSpace(p) == name {
			return true
		}
	}
	return false
}

// bench is one run of the whole bench.
type bench struct {
	cfg        *config
	out        io.Writer
	log        io.Writer
	work       string
	nines      string // binary
	chAddr     string // native
	ch         *harness.SQL
	chHTTPAddr string // host:port of ch
	chPid      int
	ports      *harness.Ports
	runID      string
	client     *http.Client
	dbs        []string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	b := &bench{cfg: cfg, out: stdout, log: stderr, runID: time.Now().UTC().Format("20060102_150405")}
	if b.ports, err = harness.ParsePorts(cfg.ports); err != nil {
		return err
	}
	var cleanup closers
	defer cleanup.run(stderr)

	b.work = cfg.workDir
	if b.work == "" {
		if b.work, err = os.MkdirTemp("", "nines-bench-"); err != nil {
			return err
		}
		cleanup.push(func() error { return os.RemoveAll(b.work) })
	} else if err := os.MkdirAll(b.work, 0o755); err != nil {
		return err
	}

	b.logf("building the scripts (seed %d)…", cfg.seed)
	now := time.Now()
	main, err := buildWorkload(workloadOptions{
		Notifications: cfg.notifications, Services: cfg.services, Active: cfg.active, Seed: cfg.seed, Now: now,
		Alertmanager: cfg.phase("alertmanager"),
	})
	if err != nil {
		return err
	}
	var lat *workload
	if cfg.phase("latency") && cfg.latencyDuration > 0 {
		n := int(cfg.latencyRate * cfg.latencyDuration.Seconds())
		lat, err = buildWorkload(workloadOptions{
			Notifications: max(n, 1), Services: cfg.services, Active: cfg.active, Seed: cfg.seed,
			FirstGroup: 10_000_000, Now: now,
		})
		if err != nil {
			return err
		}
	}
	b.describe(main)
	var storm *workload
	if cfg.phase("storm") {
		if storm, err = buildStorm(cfg, now); err != nil {
			return err
		}
		b.describe(storm)
	}

	needCH := cfg.phase("nines") || cfg.phase("insert") || cfg.phase("latency") || cfg.phase("storm")
	if needCH {
		stopCH, err := b.startClickHouse(ctx)
		if err != nil {
			return err
		}
		cleanup.push(stopCH)
		cleanup.push(b.dropDatabases)
	}
	if cfg.phase("nines") || cfg.phase("latency") || cfg.phase("storm") {
		b.nines = cfg.ninesBin
		if b.nines == "" {
			b.nines = filepath.Join(b.work, "nines")
			b.logf("building nines…")
			if err := harness.BuildNines(ctx, cfg.module, b.nines); err != nil {
				return err
			}
		}
	}
	b.client = newClient(cfg.concurrency)
	defer b.client.CloseIdleConnections()

	rep := &report{cfg: cfg, w: main, lat: lat, loadBefore: machineLoad()}
	// The throughput phases run in turn, cfg.rounds times; each keeps its
	// fastest round. On a machine other work keeps busy, a round can be
	// slowed by a neighbour, and the rounds of different receivers by
	// different neighbours.
	for round := 1; round <= cfg.rounds; round++ {
		if cfg.rounds > 1 {
			b.logf("round %d of %d", round, cfg.rounds)
		}
		if cfg.phase("decode") {
			b.logf("phase decode: HTTP + alerts.Decode in process…")
			rep.decode = faster(rep.decode, b.decodeBound(ctx, main, loadOptions{Concurrency: cfg.concurrency}))
		}
		if cfg.phase("alertmanager") {
			b.logf("phase alertmanager: %s…", cfg.alertmanager)
			am, err := b.alertmanagerBound(ctx, main, loadOptions{Concurrency: cfg.concurrency})
			if err != nil {
				return err
			}
			rep.am = faster(rep.am, am)
		}
		if cfg.phase("nines") {
			b.logf("phase nines: %d notifications…", len(main.steps))
			lo := loadOptions{Concurrency: cfg.concurrency, Rate: cfg.rate}
			n, err := b.runNines(ctx, fmt.Sprintf("nines%d", round), main, lo, round == 1 && cfg.profilePhase == "nines")
			if err != nil {
				return err
			}
			if !n.passed() {
				n.failedRound = true
				n.notes = append(n.notes, fmt.Sprintf("round %d lost or changed incidents, or answered non-2xx", round))
			}
			switch {
			case rep.nines != nil && rep.nines.failedRound:
				// A failure must show, whatever later rounds do.
			case n.failedRound:
				rep.nines = n
			default:
				rep.nines = faster(rep.nines, n)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	for i := range main.steps {
		main.steps[i].am = nil // not needed any more
	}
	if cfg.phase("insert") {
		b.logf("phase insert: replaying the script through the lifecycle, then writing its rows in batches of %d…", cfg.insertBatchRows)
		if rep.insert, err = b.insertBound(ctx, main); err != nil {
			return err
		}
	}
	if storm != nil {
		if rep.storm, err = b.storm(ctx, storm); err != nil {
			return err
		}
		storm = nil // its bodies are not needed any more
	}
	if lat != nil {
		b.logf("phase latency: %.0f notifications/s for %v…", cfg.latencyRate, cfg.latencyDuration)
		lo := loadOptions{Rate: cfg.latencyRate, Duration: cfg.latencyDuration}
		if rep.latency, err = b.runNines(ctx, "latency", lat, lo, false); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	rep.loadAfter = machineLoad()
	rep.print(stdout)
	if !rep.passed() {
		return errors.New("nines lost or changed incidents, or answered non-2xx: see the report")
	}
	return nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// describe prints what the script holds.
func (b *bench) describe(w *workload) {
	minA, maxA := 64, 0
	for i := range w.steps {
		minA, maxA = min(minA, w.steps[i].alerts), max(maxA, w.steps[i].alerts)
	}
	b.logf("script: %s notifications (%s new groups, %s repeats, %s partial resolves, %s full resolves), %s alerts (%d–%d per notification, mean %.1f), %s groups over %d services, %.0f MB of JSON",
		thousands(float64(len(w.steps))), thousands(float64(w.kinds[stepNew])), thousands(float64(w.kinds[stepRepeat])),
		thousands(float64(w.kinds[stepPartial])), thousands(float64(w.kinds[stepResolve])),
		thousands(float64(w.alerts)), minA, maxA, float64(w.alerts)/float64(len(w.steps)),
		thousands(float64(len(w.groups))), b.cfg.services, float64(w.bytes())/1e6)
}

// closers runs clean-up functions in reverse order.
type closers []func() error

func (c *closers) push(f func() error) { *c = append(*c, f) }

func (c *closers) run(w io.Writer) {
	for i := len(*c) - 1; i >= 0; i-- {
		if err := (*c)[i](); err != nil {
			fmt.Fprintln(w, "nines-bench: clean-up:", err)
		}
	}
}

// startClickHouse starts the private server, or checks the given one.
func (b *bench) startClickHouse(ctx context.Context) (stop func() error, err error) {
	cfg := b.cfg
	if cfg.chAddr != "" {
		b.chAddr, b.chHTTPAddr, b.ch = cfg.chAddr, cfg.chHTTPAddr, harness.NewSQL(cfg.chHTTPAddr, 30*time.Second)
		if _, err := b.ch.Query(ctx, "SELECT 1"); err != nil {
			return nil, fmt.Errorf("-clickhouse.http-addr: %w", err)
		}
		return func() error { return nil }, nil
	}
	ch := &harness.ClickHouse{Ctl: cfg.clickhousectl, Dir: cfg.chDir, TCP: cfg.chTCP, HTTP: cfg.chHTTP}
	wasRunning := ch.PID() > 0
	b.logf("starting ClickHouse in %s (ports %d/%d)…", cfg.chDir, cfg.chTCP, cfg.chHTTP)
	if err := ch.Start(ctx); err != nil {
		return nil, err
	}
	b.chAddr = ch.Addr()
	b.chHTTPAddr = fmt.Sprintf("127.0.0.1:%d", cfg.chHTTP)
	b.ch = harness.NewSQL(b.chHTTPAddr, 30*time.Second)
	b.chPid = ch.PID()
	return func() error {
		if wasRunning || cfg.keepServer {
			return nil
		}
		return ch.Stop(context.Background())
	}, nil
}

// database names a fresh database for a phase and remembers to drop it.
func (b *bench) database(phase string) string {
	db := "bench_" + b.runID + "_" + phase
	b.dbs = append(b.dbs, db)
	return db
}

func (b *bench) dropDatabases() error {
	if b.cfg.keepDatabases {
		if len(b.dbs) > 0 {
			b.logf("kept databases: %s", strings.Join(b.dbs, ", "))
		}
		return nil
	}
	for _, db := range b.dbs {
		if err := dropDatabase(context.Background(), b.chHTTPAddr, db); err != nil {
			b.logf("could not drop database %s (drop it by hand): %v", db, err)
		}
	}
	return nil
}

// selfUsage measures the bench process itself (the in-process receiver
// shares it with the generator).
func selfUsage() *usage { return startUsage(os.Getpid()) }

// decodeBound posts the script to an in-process handler that only
// decodes: the most any receiver could take here.
func (b *bench) decodeBound(ctx context.Context, w *workload, lo loadOptions) *phaseResult {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		n, err := alerts.Decode(r.Body, 0)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		rw.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(rw, "{\"status\":\"ok\",\"alerts\":%d}\n", len(n.Alerts))
	}))
	defer srv.Close()
	client := newClient(lo.Concurrency)
	defer client.CloseIdleConnections()
	runtime.GC()
	u := selfUsage()
	res := drive(ctx, client, target{name: "decode", url: srv.URL, body: func(s *step) []byte { return s.nines }}, w, lo)
	u.stop()
	return &phaseResult{load: res, server: u, inProcess: true}
}

// alertmanagerBound posts the script's alerts to a private Alertmanager.
func (b *bench) alertmanagerBound(ctx context.Context, w *workload, lo loadOptions) (*phaseResult, error) {
	dir := filepath.Join(b.work, "alertmanager")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	// Alerts are grouped as the script's groups are, and go nowhere: the
	// phase measures intake, not notification.
	conf := `route:
  receiver: blackhole
  group_by: [alertname, cluster, service]
receivers:
  - name: blackhole
`
	confPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	addr, err := b.ports.FreeAddr()
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(b.cfg.alertmanager); err != nil {
		return nil, fmt.Errorf("-alertmanager: %w (install Debian's prometheus-alertmanager, or leave the phase out with -phases)", err)
	}
	am, err := harness.Start("alertmanager", filepath.Join(b.work, "alertmanager.log"), nil, b.cfg.alertmanager,
		"--config.file="+confPath, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	if err != nil {
		return nil, err
	}
	defer am.Stop(30 * time.Second)
	base := "http://" + addr
	if err := am.WaitReady(ctx, base+"/-/ready", 30*time.Second); err != nil {
		return nil, err
	}
	u := startUsage(am.PID())
	res := drive(ctx, b.client, target{name: "alertmanager", url: base + "/api/v2/alerts", body: func(s *step) []byte { return s.am }},
		w, lo)
	u.stop()
	return &phaseResult{load: res, server: u}, nil
}

// phaseResult is one row of the table.
type phaseResult struct {
	load   *loadResult
	server *usage // the receiver's process
	ch     *usage // ClickHouse, for the phases that write
	store  storeStats
	parts  int
	where  string
	check  *checkResult
	notes  []string
	// insertRows is the insert-bound phase's row count.
	insertRows int
	// chRoundTrip are ClickHouse's SELECT 1 round trips during the phase.
	chRoundTrip []time.Duration
	// inProcess marks a receiver running inside the bench: its CPU and
	// memory are the bench's own.
	inProcess bool
	// failedRound marks a nines round that lost data or answered non-2xx:
	// it is reported whatever later rounds do.
	failedRound bool
	// derived is how long nines' deriver took, after the last answer, to
	// have applied everything (POST /api/v1/sync); peakDerived is nines'
	// peak RSS from the start of sending until then.
	derived     time.Duration
	peakDerived int64
	// cpuDerived and chCPUDerived are nines' and ClickHouse's CPU time
	// through sending and deriving.
	cpuDerived, chCPUDerived time.Duration
	// visible is the latency run's 2xx-to-visible figures.
	visible *visibleResult
}

// passed reports whether every answer was 2xx and the check, if any, passed.
func (p *phaseResult) passed() bool {
	return p.load.non2xx+p.load.transport == 0 && (p.check == nil || p.check.ok())
}

// faster returns whichever of two rounds accepted more notifications a
// second (b when a is nil).
func faster(a, b *phaseResult) *phaseResult {
	if a == nil || b.load.perSecond(b.load.ok) > a.load.perSecond(a.load.ok) {
		return b
	}
	return a
}

// runNines starts nines on a fresh database, sends w and checks what it
// stored.
func (b *bench) runNines(ctx context.Context, phase string, w *workload, lo loadOptions, profile bool) (*phaseResult, error) {
	db := b.database(phase)
	token := filepath.Join(b.work, "webhook.token")
	if err := os.WriteFile(token, []byte("bench-"+b.runID+"\n"), 0o600); err != nil {
		return nil, err
	}
	apiToken := "bench-api-" + b.runID
	apiTokenFile := filepath.Join(b.work, "api.token")
	if err := os.WriteFile(apiTokenFile, []byte(apiToken+"\n"), 0o600); err != nil {
		return nil, err
	}
	addr, err := b.ports.FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"serve",
		"--web.listen-address=" + addr,
		"--clickhouse.dsn=clickhouse://" + b.chAddr + "/" + db,
		"--webhook.bearer-token-file=" + token,
		"--api.token-file=" + apiTokenFile,
		"--storage.path=" + filepath.Join(b.work, phase+"-data"),
		"--log.level=warn",
	}
	profiling := profile && (b.cfg.cpuProfile != "" || b.cfg.memProfile != "")
	var debugAddr string
	if profiling {
		if !b.ninesHasFlag("web.debug-listen-address") {
			return nil, errors.New("-cpuprofile and -memprofile need nines' --web.debug-listen-address (pprof on an internal listener), which this nines does not have")
		}
		if debugAddr, err = b.ports.FreeAddr(); err != nil {
			return nil, err
		}
		args = append(args, "--web.debug-listen-address="+debugAddr)
	}
	args = append(args, strings.Fields(b.cfg.ninesArgs)...)
	n, err := harness.Start("nines", filepath.Join(b.work, phase+".log"), strings.Fields(b.cfg.ninesEnv), b.nines, args...)
	if err != nil {
		return nil, err
	}
	defer func() {
		if _, err := n.Stop(60 * time.Second); err != nil && !harness.Signaled(err) {
			b.logf("nines: %v; log %s:\n%s", err, n.Log, harness.Tail(n.Log, 10))
		}
	}()
	base := "http://" + addr
	if err := n.WaitReady(ctx, base+"/-/ready", 60*time.Second); err != nil {
		return nil, err
	}
	before, err := scrape(ctx, b.client, base+"/metrics")
	if err != nil {
		return nil, err
	}
	parts := pollParts(ctx, b.ch, db, 250*time.Millisecond)
	chProbe := startProbe(ctx, b.ch, 100*time.Millisecond)
	nu, cu := startUsage(n.PID()), startUsage(b.chPid)
	profDone := make(chan error, 1)
	if profiling && b.cfg.cpuProfile != "" {
		go func() {
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
			}
			profDone <- fetchTo(ctx, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, b.cfg.profileSeconds), b.cfg.cpuProfile)
		}()
	} else {
		profDone <- nil
	}
	start := time.Now()
	client := b.client
	if lo.Rate > 0 {
		client = newClient(int(lo.Rate))
		defer client.CloseIdleConnections()
	}
	t := target{
		name: "nines", url: base + "/api/v1/alerts", body: func(s *step) []byte { return s.nines },
		header: http.Header{"Authorization": {"Bearer bench-" + b.runID}},
	}
	var vis *visibility
	if phase == "latency" && b.cfg.visibleEvery > 0 {
		vis = newVisibility(newClient(64), base, b.cfg.visibleEvery)
		t.answered = func(s *step, at time.Time) { vis.sample(ctx, w, s, at) }
	}
	res := drive(ctx, client, t, w, lo)
	nu.stop()
	cu.stop()
	elapsed := time.Since(start)
	// Everything answered 2xx is in the log; the deriver applies it.
	syncStart := time.Now()
	if err := harness.Sync(ctx, b.client, base, apiToken, b.cfg.syncTimeout); err != nil {
		return nil, err
	}
	derived := time.Since(syncStart)
	// Since startUsage: sending and deriving.
	ninesCPU, peakDerived, _ := harness.ProcStats(n.PID())
	chCPU, _, _ := harness.ProcStats(b.chPid)
	after, err := scrape(ctx, b.client, base+"/metrics")
	if err != nil {
		return nil, err
	}
	maxParts, where, perr := parts.result()
	out := &phaseResult{load: res, server: nu, ch: cu, store: diffStore(before, after, elapsed), parts: maxParts, where: where,
		chRoundTrip: chProbe.result(), derived: derived, peakDerived: peakDerived,
		cpuDerived: max(ninesCPU-nu.cpu0, 0), chCPUDerived: max(chCPU-cu.cpu0, 0)}
	if vis != nil {
		out.visible = vis.result()
	}
	if perr != nil {
		out.notes = append(out.notes, "system.parts: "+perr.Error())
	}
	if profiling && b.cfg.memProfile != "" {
		if err := fetchTo(ctx, "http://"+debugAddr+"/debug/pprof/heap", b.cfg.memProfile); err != nil {
			return nil, fmt.Errorf("heap profile: %w", err)
		}
	}
	if err := <-profDone; err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	incs, err := listIncidents(ctx, b.client, base)
	if err != nil {
		return nil, err
	}
	out.check = check(w, incs)
	if phase != "latency" && phase != "storm" { // a mixed throughput run: the other figures, with its data in the store
		out.notes = append(out.notes, b.figures(ctx, base, db)...)
	}
	if res.non2xx > 0 || res.transport > 0 {
		out.notes = append(out.notes, fmt.Sprintf("answers %s, %d without answer; first failure: %s; log %s:\n%s",
			sortedCodes(res.codes), res.transport, res.firstErr, n.Log, harness.Tail(n.Log, 5)))
	}
	return out, nil
}

// ninesHasFlag reports whether `nines serve -h` lists a flag.
func (b *bench) ninesHasFlag(name string) bool {
	out, _ := exec.Command(b.nines, "serve", "-h").CombinedOutput()
	return strings.Contains(string(out), "-"+name)
}

// fetchTo saves the body of a GET to path.
func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// insertBound replays the script through nines' lifecycle, then writes
// the rows nines stores for it straight through the store in big batches.
func (b *bench) insertBound(ctx context.Context, w *workload) (*phaseResult, error) {
	rec, err := replay(ctx, w)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	db := b.database("insert")
	runtime.GC()
	cu := startUsage(b.chPid)
	su := selfUsage()
	parts := pollParts(ctx, b.ch, db, 250*time.Millisecond)
	res, err := insertBound(ctx, "clickhouse://"+b.chAddr+"/"+db, rec, b.cfg.insertBatchRows)
	cu.stop()
	su.stop()
	maxParts, where, _ := parts.result()
	if err != nil {
		return nil, fmt.Errorf("insert bound: %w", err)
	}
	lr := &loadResult{ok: len(w.steps), okAlerts: w.alerts, elapsed: res.elapsed, codes: map[int]int{}}
	out := &phaseResult{load: lr, server: su, ch: cu, parts: maxParts, where: where}
	out.store = storeStats{
		inserts: map[string]float64{}, rows: map[string]float64{}, seconds: res.elapsed.Seconds(),
		flushes: float64(res.writes),
	}
	out.notes = append(out.notes, fmt.Sprintf("%s rows in %d batches (%s rows/s)",
		thousands(float64(res.rows)), res.writes, thousands(float64(res.rows)/res.elapsed.Seconds())))
	out.insertRows = res.rows
	return out, nil
}

// figures times what other issues set targets for, with the bench's data
// in the store: every service's availability over 30 days beside a plain
// scan of the same rows (issue 3), and one /metrics scrape (issue 6).
func (b *bench) figures(ctx context.Context, base, db string) []string {
	median := func(f func() error) (time.Duration, error) {
		var ds []time.Duration
		for range 3 {
			start := time.Now()
			if err := f(); err != nil {
				return 0, err
			}
			ds = append(ds, time.Since(start))
		}
		slices.Sort(ds)
		return ds[1], nil
	}
	get := func(url string, size *int) func() error {
		return func() error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := b.client.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			n, err := io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
			}
			if size != nil {
				*size = int(n)
			}
			return err
		}
	}
	var out []string
	now := time.Now().Unix()
	from := now - 30*24*3600
	scan := fmt.Sprintf(`SELECT service, sum(arraySum(arrayMap((s, e) ->
        greatest(toInt64(least(if(toUInt32(e) = 0, %[1]d, toUInt32(e)), %[1]d)) - greatest(toUInt32(s), %[2]d), 0),
        period_starts, period_ends))) AS seconds
FROM %[3]s.incidents
WHERE arrayExists((s, e) -> toUInt32(s) < %[1]d AND (toUInt32(s) >= %[2]d OR toUInt32(e) = 0 OR toUInt32(e) > %[2]d),
    period_starts, period_ends)
GROUP BY service FORMAT Null`, now, from, "`"+db+"`")
	avail, err1 := median(get(base+"/api/v1/availability?window=30d", nil))
	plain, err2 := median(func() error { _, err := b.ch.Query(ctx, scan); return err })
	if err := errors.Join(err1, err2); err != nil {
		out = append(out, "availability figures: "+err.Error())
	} else {
		out = append(out, fmt.Sprintf("with this data stored: GET /api/v1/availability?window=30d %s, plain scan of the same rows %s (%.1f×)",
			ms(avail), ms(plain), float64(avail)/float64(plain)))
	}
	var size int
	if d, err := median(get(base+"/metrics", &size)); err != nil {
		out = append(out, "metrics scrape: "+err.Error())
	} else {
		out = append(out, fmt.Sprintf("with this data stored: GET /metrics %s, %s bytes", ms(d), thousands(float64(size))))
	}
	return out
}
