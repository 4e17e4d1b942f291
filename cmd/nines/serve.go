package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/coreos/go-systemd/v22/activation"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/version"
	toolkit "github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/ninesops/nines/alerts"
	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/collector"
	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/journal"
	"github.com/ninesops/nines/web"
)

// storeFlags are the ClickHouse flags shared by every command that needs
// the store.
type storeFlags struct {
	dsn              string
	cluster          string
	flushInterval    time.Duration
	maxFlushInterval time.Duration
	busyRows         int
	maxBatchRows     int
	dialTimeout      time.Duration
}

func (f *storeFlags) register(fs flagger) {
	fs.Flag("clickhouse.dsn", "ClickHouse DSN: clickhouse://[user[:password]@]host:port/database (native protocol, port 9000), or http://… and https://… (HTTP interface, ports 8123/8443, e.g. ClickHouse Cloud; not on 18.16); the database is created if missing.").
		Envar(envDSN).PlaceHolder("DSN").StringVar(&f.dsn)
	fs.Flag("clickhouse.cluster", "ClickHouse cluster name: nines creates its tables replicated, ON CLUSTER (deploy/clickhouse/CLUSTER.md; empty: single server).").
		Envar(envCluster).PlaceHolder("NAME").StringVar(&f.cluster)
	fs.Flag("clickhouse.flush-interval", "How long a write waits for others to join its INSERT while writes are few (the deriver's at least 100ms).").
		Default(chstore.DefaultFlushInterval.String()).DurationVar(&f.flushInterval)
	fs.Flag("clickhouse.max-flush-interval", "How long a write waits for others to join its INSERT under heavy load: the log's from --clickhouse.busy-rows on (about one INSERT per interval), the deriver's while webhooks log 500 notifications a second or more (it gives way to them, and catches up at full speed once they are fewer).").
		Default(chstore.DefaultMaxFlushInterval.String()).DurationVar(&f.maxFlushInterval)
	fs.Flag("clickhouse.busy-rows", "Rate of the log's writes (rows/s) from which they wait --clickhouse.max-flush-interval; from half of it the wait grows from --clickhouse.flush-interval.").
		Default(strconv.Itoa(chstore.DefaultBusyRows)).IntVar(&f.busyRows)
	fs.Flag("clickhouse.max-batch-rows", "Rows that make a batch flush at once.").
		Default(strconv.Itoa(chstore.DefaultMaxBatchRows)).IntVar(&f.maxBatchRows)
	fs.Flag("clickhouse.dial-timeout", "Timeout for connecting to ClickHouse.").Default("5s").DurationVar(&f.dialTimeout)
}

// check reports what is missing before anything connects.
func (f *storeFlags) check() error {
	if f.dsn == "" {
		return usageError{errors.New("--clickhouse.dsn (or " + envDSN + ") is required; `make run` starts a local ClickHouse and sets it for you")}
	}
	return nil
}

func (f *storeFlags) open(ctx context.Context, log *slog.Logger, reg prometheus.Registerer) (*chstore.Store, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	s, err := chstore.Open(ctx, chstore.Options{
		DSN: f.dsn, Cluster: f.cluster, Logger: log, Registerer: reg,
		FlushInterval: f.flushInterval, MaxFlushInterval: f.maxFlushInterval, BusyRows: f.busyRows,
		MaxBatchRows: f.maxBatchRows, DialTimeout: f.dialTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("open clickhouse: %w", err)
	}
	return s, nil
}

// boundHandler bounds every attribute of every log line (boundAttr),
// around promslog's handler.
type boundHandler struct{ slog.Handler }

func (h boundHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(boundAttr(nil, a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h boundHandler) WithAttrs(as []slog.Attr) slog.Handler {
	bounded := make([]slog.Attr, len(as))
	for i, a := range as {
		bounded[i] = boundAttr(nil, a)
	}
	return boundHandler{h.Handler.WithAttrs(bounded)}
}

func (h boundHandler) WithGroup(name string) slog.Handler {
	return boundHandler{h.Handler.WithGroup(name)}
}

// maxLogValue bounds the value of each attribute of a log line, in bytes.
// Group keys, label values and the errors that quote them can each be
// as large as a notification (megabytes); a log line carries a useful
// start of them instead.
const maxLogValue = 1024

// boundAttr cuts a string or error value over maxLogValue bytes short, saying
// how long it was (slog.HandlerOptions.ReplaceAttr).
func boundAttr(_ []string, a slog.Attr) slog.Attr {
	var s string
	switch a.Value.Kind() {
	case slog.KindString:
		s = a.Value.String()
	case slog.KindAny:
		err, ok := a.Value.Any().(error)
		if !ok {
			return a
		}
		s = err.Error()
		if len(s) <= maxLogValue {
			return a
		}
	default:
		return a
	}
	if len(s) <= maxLogValue {
		return a
	}
	cut := maxLogValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return slog.String(a.Key, fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s)))
}

// closers runs cleanup functions in reverse order of registration.
type closers []func() error

func (c *closers) push(f func() error) { *c = append(*c, f) }

func (c *closers) closeAll(log *slog.Logger) {
	for i := len(*c) - 1; i >= 0; i-- {
		if err := (*c)[i](); err != nil {
			log.Error("shutdown", "err", err)
		}
	}
}

// serveOptions are the flags of `nines serve`.
type serveOptions struct {
	store           storeFlags
	web             *toolkit.FlagConfig
	storagePath     string
	shutdownTimeout time.Duration
	configFile      string
	catalogFile     string
	catalogEmpty    bool
	bearerFile      string
	basicFile       string
	noAuth          bool
	maxBody         int64
	maxInflight     int64
	cacheBytes      int64
	logRetention    model.Duration
	apiTokenFile    string

	collectorWindows         string
	collectorRefreshInterval time.Duration
	collectorRefreshTimeout  time.Duration
	collectorScrapeTimeout   time.Duration

	slack       slackFlags
	reliability reliabilityFlags
	debugListen string
	pages       pageFlags

	autoMemLimit  bool
	memLimitRatio float64
	gogc          int
}

// defaultListenAddress is where `nines serve` listens by default.
const defaultListenAddress = ":9095"

// addServe declares `nines serve` and every one of its flags, here in one
// place.
func (c *cli) addServe() {
	cmd := c.app.Command("serve", "Run the server: webhook intake, API, pages and /metrics.")
	o := &serveOptions{}
	o.web = kingpinflag.AddFlags(cmd, defaultListenAddress)
	cmd.GetFlag("web.listen-address").Envar(envListen)
	cmd.Flag("storage.path", "Directory for nines' durable data: the spool of notifications answered 2xx while ClickHouse is down or slow (<storage.path>/spool). Give it a persistent volume.").
		Default("data/").StringVar(&o.storagePath)
	cmd.Flag("web.shutdown-timeout", "How long shutdown may take, all its steps together: in-flight requests, the spool's drain, the deriver's last round; what it leaves, the next start does.").Default("30s").DurationVar(&o.shutdownTimeout)
	cmd.Flag("config.file", "YAML configuration file (grouping, label and severity mapping).").
		PlaceHolder("FILE").StringVar(&o.configFile)
	cmd.Flag("catalog.file", "Service catalog YAML (owners, SLOs, dependencies, maintenance); reloaded on change and on SIGHUP.").
		PlaceHolder("FILE").StringVar(&o.catalogFile)
	cmd.Flag("catalog.allow-empty", "Let a reload replace a catalog that has services with one that has none (services: []); without it such a reload is refused and the last good catalog stays.").BoolVar(&o.catalogEmpty)
	cmd.Flag("webhook.bearer-token-file", "File holding the bearer token Alertmanager sends (http_config.authorization).").PlaceHolder("FILE").StringVar(&o.bearerFile)
	cmd.Flag("webhook.basic-auth-file", "File holding user:password that Alertmanager sends (http_config.basic_auth).").PlaceHolder("FILE").StringVar(&o.basicFile)
	cmd.Flag("webhook.allow-unauthenticated", "Accept webhooks without credentials (development only).").BoolVar(&o.noAuth)
	cmd.Flag("webhook.max-body-bytes", "Largest webhook body accepted; larger ones get 413.").Default(strconv.Itoa(10 << 20)).Int64Var(&o.maxBody)
	cmd.Flag("webhook.max-inflight-bytes", "Bodies of all the notifications being taken at once, in bytes: past it a request waits up to 10s for room, then gets 503 (Alertmanager retries). Bounds the memory many large notifications at once can take.").
		Default(strconv.FormatInt(alerts.DefaultMaxInflightBytes, 10)).Int64Var(&o.maxInflight)
	cmd.Flag("incidents.cache-bytes", "Estimated bytes of incidents (with their alerts) kept in memory to answer repeated notifications; beyond it the least recently used groups are read from ClickHouse again when they next change.").
		Default(strconv.FormatInt(incidents.DefaultCacheBytes, 10)).Int64Var(&o.cacheBytes)
	cmd.Flag("journal.retention", "How long the raw log of notifications and actions (the deriver's input) is kept; whole days are dropped. nines replay re-derives only what it holds. 0 keeps it forever.").
		Default("90d").SetValue(&o.logRetention)
	cmd.Flag("api.token-file", "File holding the bearer token required by mutating API calls. Without it they are refused.").
		PlaceHolder("FILE").StringVar(&o.apiTokenFile)
	o.registerCollector(cmd, &o.collectorWindows)
	cmd.Flag("collector.refresh-interval", "How often the figures on /metrics, and those the pages show for every service, are recomputed from ClickHouse; scrapes and pages serve the last values.").
		Default(collector.DefaultRefreshInterval.String()).DurationVar(&o.collectorRefreshInterval)
	cmd.Flag("collector.refresh-timeout", "Longest one recomputation of the figures on /metrics may take before it counts as failed (nines_collector_up 0).").
		Default(collector.DefaultRefreshTimeout.String()).DurationVar(&o.collectorRefreshTimeout)
	cmd.Flag("collector.scrape-timeout", "Longest a scrape of /metrics waits for the first figures after start; later scrapes never wait.").
		Default(collector.DefaultScrapeTimeout.String()).DurationVar(&o.collectorScrapeTimeout)
	o.slack.register(cmd)
	o.pages.register(cmd)
	cmd.Flag("auto-gomemlimit", "Set the Go heap's soft limit (GOMEMLIMIT) to --auto-gomemlimit.ratio of the container's memory limit (cgroup), or of the machine's memory without one, so that the garbage collector works harder before the container is OOM-killed. GOMEMLIMIT in the environment wins.").
		Default("true").BoolVar(&o.autoMemLimit)
	cmd.Flag("auto-gomemlimit.ratio", "Share of the container's (or machine's) memory that --auto-gomemlimit gives the Go heap, in (0, 1]: the rest is for what is not heap.").
		Default("0.9").Float64Var(&o.memLimitRatio)
	cmd.Flag("runtime.gogc", "The Go garbage collector's GOGC: how far, in percent, the heap may grow past what was live after a collection before the next one. Lower takes less memory for more CPU; nines' default is lower than Go's 100, as Prometheus' is (75). GOGC in the environment wins.").
		Default(strconv.Itoa(defaultGOGC)).IntVar(&o.gogc)
	cmd.Flag("web.debug-listen-address", "Address for Go's profiler (/debug/pprof/) on a listener of its own; empty disables it. Keep it internal.").PlaceHolder("ADDRESS").StringVar(&o.debugListen)
	o.store.register(cmd)
	o.reliability.register(cmd)
	c.serve = o
	c.command(cmd, func(ctx context.Context) error { return serve(ctx, o, c.logger(), c.reload) })
}

// registerCollector declares --collector.windows, which `nines rules
// generate` reads too, so that one setting serves both.
func (*serveOptions) registerCollector(fs flagger, windows *string) {
	fs.Flag("collector.windows", "Windows of the availability figures on /metrics, comma-separated; each costs one ClickHouse query per refresh. nines rules generate reads the same flag.").
		Default(strings.Join(collector.DefaultWindows(), ",")).StringVar(windows)
}

// defaultGOGC is --runtime.gogc's default: it meets the 200 MB peak RSS
// of a storm. nines-bench -phases nines,storm, runs of one build, storm of
// new groups answered / its peak RSS / deriver caught up after / mixed
// storm answered: GOGC=100 1,062–1,317/s, 230–249 MB, 7.0–9.1 s,
// 4,534–5,463/s; GOGC=75 1,214/s, 224 MB, 9.6 s, 3,946/s; GOGC=50
// 1,247–1,279/s, 184–190 MB, 8.5–11.4 s, 3,783–4,264/s.
const defaultGOGC = 50

// setGCPercent applies --runtime.gogc unless GOGC is set, as Prometheus
// does (runtime.gogc in its configuration).
func setGCPercent(o *serveOptions, log *slog.Logger) error {
	if o.gogc <= 0 {
		return usageError{fmt.Errorf("--runtime.gogc: %d is not a positive percentage", o.gogc)}
	}
	if os.Getenv("GOGC") != "" {
		return nil
	}
	debug.SetGCPercent(o.gogc)
	log.Info("Go garbage collector", "GOGC", o.gogc)
	return nil
}

// setMemoryLimit applies --auto-gomemlimit as Prometheus does: a share of
// the container's memory limit, or of the machine's memory, becomes the
// Go heap's soft limit, unless GOMEMLIMIT is set.
func setMemoryLimit(o *serveOptions, log *slog.Logger) error {
	if !o.autoMemLimit {
		return nil
	}
	if o.memLimitRatio <= 0 || o.memLimitRatio > 1 {
		return usageError{fmt.Errorf("--auto-gomemlimit.ratio: %v is not in (0, 1]", o.memLimitRatio)}
	}
	limit, err := memlimit.Set(
		memlimit.WithRatio(o.memLimitRatio),
		memlimit.WithProvider(memlimit.ApplyFallback(memlimit.FromCgroup, memlimit.FromSystem)),
		memlimit.WithLogger(log.With("component", "automemlimit")),
	)
	if err != nil {
		log.Warn("--auto-gomemlimit: could not set the Go heap's soft limit", "err", err)
		return nil
	}
	log.Info("Go heap soft limit", "GOMEMLIMIT", limit)
	return nil
}

// spoolDir is --spool.dir, or <storage.path>/spool.
func (o *serveOptions) spoolDir() string {
	if o.reliability.spoolDir != "" {
		return o.reliability.spoolDir
	}
	return filepath.Join(o.storagePath, "spool")
}

func serve(ctx context.Context, o *serveOptions, log *slog.Logger, reload <-chan os.Signal) error {
	// Everything that can be checked without ClickHouse is, first.
	if err := o.store.check(); err != nil {
		return err
	}
	if f := *o.web.WebConfigFile; f != "" {
		if err := toolkit.Validate(f); err != nil {
			return fmt.Errorf("--web.config.file: %w", err)
		}
	}
	cfg, err := loadConfig(o.configFile)
	if err != nil {
		return err
	}
	windows, err := collector.ParseWindowList(o.collectorWindows)
	if err != nil {
		return usageError{fmt.Errorf("--collector.windows: %w", err)}
	}
	auth, err := alerts.NewAuth(o.bearerFile, o.basicFile)
	if err != nil {
		return err
	}
	if auth == nil && !o.noAuth {
		return usageError{errors.New("the webhook needs credentials: set --webhook.bearer-token-file or --webhook.basic-auth-file (or --webhook.allow-unauthenticated for development)")}
	}
	apiToken, err := readSecretFile("api.token-file", o.apiTokenFile)
	if err != nil {
		return err
	}
	if apiToken == "" {
		log.Warn("no --api.token-file: mutating API calls will be refused")
	}
	if err := setMemoryLimit(o, log); err != nil {
		return err
	}
	if err := setGCPercent(o, log); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("nines"),
	)

	var cl closers
	// Shutdown has one deadline, --web.shutdown-timeout after it began,
	// shared by its steps (the server, the spool's drain, the deriver):
	// what a step leaves undone is not lost, the next start does it.
	var (
		shutdownOnce sync.Once
		shutdownAt   time.Time
	)
	shutdownCtx := func() (context.Context, context.CancelFunc) {
		shutdownOnce.Do(func() { shutdownAt = time.Now().Add(o.shutdownTimeout) })
		return context.WithDeadline(context.Background(), shutdownAt)
	}
	defer cl.closeAll(log)

	// The listeners, the webhook and the spool come first: while nines
	// waits for ClickHouse it answers /-/healthy, says /-/ready is not,
	// and spools webhooks.
	lns, err := listen(o.web, log)
	if err != nil {
		return err
	}
	closeListeners := func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}
	late := &lateIngester{}
	sp, err := openSpool(o.reliability, o.spoolDir(), late, log, reg)
	if err != nil {
		closeListeners()
		return err
	}
	var ingester alerts.Ingester = sp
	cl.push(sp.Close) // after the intake drained it; a no-op then
	hook, err := alerts.NewHandler(alerts.Options{
		Ingester: ingester, Auth: auth, MaxBodyBytes: o.maxBody, MaxInflightBytes: o.maxInflight, Logger: log, Registerer: reg,
	})
	if err != nil {
		closeListeners()
		return err
	}
	var waiting atomic.Pointer[string]
	front := &swapHandler{}
	front.set(startingRoutes(hook, reg, log, sp, &waiting))
	srv := &http.Server{
		Handler:           front,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- toolkit.ServeMultiple(lns, srv, o.web, log) }()
	var stopOnce sync.Once
	stop := func() (err error) {
		stopOnce.Do(func() {
			sctx, cancel := shutdownCtx()
			defer cancel()
			if serr := srv.Shutdown(sctx); serr != nil {
				err = fmt.Errorf("shutdown: %w", serr)
			}
		})
		return err
	}
	// Whatever ends serve stops the server before the parts it uses close.
	defer func() { _ = stop() }()

	store, err := waitForStore(ctx, o.store, log, reg, &waiting)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while waiting
		}
		return err
	}
	cl.push(store.Close)
	cat, err := catalog.NewWatcher(catalog.WatcherOptions{Path: o.catalogFile, AllowEmpty: o.catalogEmpty, Logger: log, Registerer: reg})
	if err != nil {
		return fmt.Errorf("--catalog.file: %w", err)
	}
	// Log first: the webhook, the spool, the API, the pages and chat
	// append to the log (jrn); the deriver, on the replica holding its
	// lease, applies it with the incident service (svc).
	svc, err := incidents.NewService(incidents.Options{
		Config: cfg.Incidents, Store: store, Logger: log, Registerer: reg, CacheBytes: o.cacheBytes,
		Resolver: func(labels map[string]string) (string, bool) { return cat.Current().ServiceFor(labels) },
		Upstream: func(service string) []string { return cat.Current().UpstreamNearestFirst(service) },
	})
	if err != nil {
		return err
	}
	jrn, err := journal.New(journal.Options{Log: store, Results: store, Incidents: store, Front: sp, Logger: log})
	if err != nil {
		return err
	}
	deriver, err := journal.NewDeriver(journal.DeriverOptions{
		Log: store, Results: store, Cursors: store, Leases: store, Applier: svc, Journal: jrn,
		Retainer: store, Retention: time.Duration(o.logRetention), Logger: log, Registerer: reg,
	})
	if err != nil {
		return err
	}
	// The deriver outlives the webhook and the spool: on shutdown it
	// applies what they logged, then stops, before the store closes.
	derCtx, stopDeriver := context.WithCancel(context.WithoutCancel(ctx))
	derDone := make(chan struct{})
	go func() { defer close(derDone); _ = deriver.Run(derCtx) }()
	cl.push(func() error {
		ctx, cancel := shutdownCtx()
		defer cancel()
		err := deriver.Stop(ctx)
		stopDeriver()
		<-derDone
		return err
	})
	avail, err := availability.New(availability.Options{Source: store, Catalog: cat.Current, Config: cfg.Availability, Logger: log})
	if err != nil {
		return err
	}
	chg, err := changes.New(changes.Options{
		Store: store, Incidents: store, Timeline: jrn, Logger: log,
		Catalog: cat.Current,
	})
	if err != nil {
		return err
	}
	chatParts, err := newChat(chatDeps{
		flags: o.slack, cfg: cfg.Chat, weights: cfg.Availability.ImpactWeights,
		store: store, actor: jrn, avail: avail, catalog: cat.Current, log: log, reg: reg,
		suspects: chg, dora: chatDORA{chg: chg, avail: avail}, externalURL: o.pages.externalURL,
	})
	if err != nil {
		return err
	}
	figures, err := collector.New(collector.Options{
		Figures: avail, Counts: store, DORA: doraFigures{chg}, Windows: windows,
		RefreshInterval: o.collectorRefreshInterval, RefreshTimeout: o.collectorRefreshTimeout,
		ScrapeTimeout: o.collectorScrapeTimeout, Registerer: reg, Logger: log,
	})
	if err != nil {
		return err
	}
	// The spool (--spool.dir) and the reconciler (--alertmanager.url),
	// closed after the server stops and before the store closes.
	in, err := newIntake(o.reliability, sp, ingester, jrn, store, log, reg)
	if err != nil {
		return err
	}
	cl.push(func() error {
		ctx, cancel := shutdownCtx()
		defer cancel()
		return in.Close(ctx)
	})
	pages, err := web.New(web.Options{
		Incidents: store, Availability: avail, Changes: chg, Mutator: jrn, Catalog: cat.Current,
		ExternalURL: o.pages.externalURL, APIToken: apiToken, StatusTitles: o.pages.statusTitles,
		DashboardURL: dashboardLink(cat.Current, cfg.Chat.GrafanaURL), Logger: log,
		SlackThread:     slackThreadLink(store, o.pages.slackWorkspace, cfg.Chat.OperationsChannel),
		RefreshInterval: o.collectorRefreshInterval,
	})
	if err != nil {
		return usageError{fmt.Errorf("--web.external-url: %w", err)}
	}
	cl.push(pages.Close) // before the store closes
	handler := routes(routeDeps{
		pages:        pages,
		log:          log,
		webhook:      hook,
		api:          incidents.NewAPI(jrn, store, log),
		availability: availability.NewAPI(avail, log),
		changes:      changes.NewAPI(chg, func() *time.Location { return cat.Current().Location() }, log),
		slack:        chatParts.handler,
		apiToken:     apiToken,
		sync:         jrn.ServeSync,
		ready:        in.ready(store.Ping),
		readyDetail:  in.status,
		gatherer:     reg,
	})

	late.next.Store(jrn)
	front.set(handler)
	// Background parts stop when runCtx ends, after the server has.
	runCtx, stopParts := context.WithCancel(context.WithoutCancel(ctx))
	var parts sync.WaitGroup
	defer func() { stopParts(); parts.Wait() }()
	parts.Go(func() {
		if err := cat.Run(runCtx); err != nil {
			log.Error("catalog watcher stopped", "err", err)
		}
	})
	parts.Go(func() { _ = in.Run(runCtx) })
	if o.debugListen != "" {
		parts.Go(func() {
			if err := serveDebug(runCtx, o.debugListen, log); err != nil {
				log.Error("debug listener stopped", "err", err)
			}
		})
	}
	chatParts.run(runCtx, &parts, log)
	if o.pages.statusListen != "" {
		statusSrv, err := o.pages.serveStatus(runCtx, &parts, statusRoutes(pages, in.ready(store.Ping)), log)
		if err != nil {
			return err
		}
		cl.push(func() error { return statusSrv.Close() })
	}
	parts.Go(func() {
		if err := figures.Run(runCtx); err != nil {
			log.Error("metrics collector stopped", "err", err)
		}
	})

	log.Info("nines started", "version", version.Info(), "address", listenAddresses(lns), "storage_path", o.storagePath)

	for {
		select {
		case err := <-serveErr:
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("serve: %w", err)
		case <-reload:
			if err := cat.Reload(); err != nil {
				log.Error("SIGHUP: catalog reload failed, keeping the last good catalog", "err", err)
			} else {
				log.Info("SIGHUP: catalog reloaded", "services", cat.Current().Len())
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("shutting down", "timeout", o.shutdownTimeout.String())
	return stop()
}

// addMigrate declares `nines migrate`.
func (c *cli) addMigrate() {
	cmd := c.app.Command("migrate", "Apply the ClickHouse schema and exit.")
	var (
		sf     storeFlags
		dryRun bool
	)
	sf.register(cmd)
	cmd.Flag("dry-run", "Print the migrations that would be applied; apply none.").BoolVar(&dryRun)
	c.command(cmd, func(ctx context.Context) error {
		if err := sf.check(); err != nil {
			return err
		}
		log := c.logger()
		store, err := sf.open(ctx, log, nil)
		if err != nil {
			return err
		}
		defer store.Close()
		if dryRun {
			pending, err := store.PendingMigrations(ctx)
			if err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			for _, m := range pending {
				fmt.Fprintf(c.stdout, "would apply %s\n", m)
			}
			fmt.Fprintf(c.stdout, "%d migrations to apply (dry run: none applied)\n", len(pending))
			return nil
		}
		if err := store.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		log.Info("schema is up to date")
		return nil
	})
}

// listen opens the listeners of --web.listen-address, or takes systemd's
// with --web.systemd-socket.
func listen(f *toolkit.FlagConfig, log *slog.Logger) ([]net.Listener, error) {
	if f.WebSystemdSocket != nil && *f.WebSystemdSocket {
		lns, err := activation.Listeners()
		if err != nil {
			return nil, fmt.Errorf("--web.systemd-socket: %w", err)
		}
		if len(lns) == 0 {
			return nil, usageError{errors.New("--web.systemd-socket: systemd passed no sockets")}
		}
		log.Info("listening on systemd's sockets")
		return lns, nil
	}
	var lns []net.Listener
	for _, addr := range *f.WebListenAddresses {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			return nil, fmt.Errorf("--web.listen-address: %w", err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// listenAddresses are the listeners' addresses, comma-separated.
func listenAddresses(lns []net.Listener) string {
	addrs := make([]string, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.Addr().String()
	}
	return strings.Join(addrs, ",")
}
