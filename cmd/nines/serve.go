package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	toolkit "github.com/prometheus/exporter-toolkit/web"

	"github.com/ninesops/nines/alerts"
	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/collector"
	"github.com/ninesops/nines/incidents"
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

func (f *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dsn, "clickhouse.dsn", "", "ClickHouse DSN: clickhouse://[user[:password]@]host:port/database (native protocol, port 9000), or http://… and https://… (HTTP interface, ports 8123/8443, e.g. ClickHouse Cloud; not on 18.16); the database is created if missing.")
	fs.StringVar(&f.cluster, "clickhouse.cluster", "", "ClickHouse cluster name: nines creates its tables replicated, ON CLUSTER (deploy/clickhouse/CLUSTER.md; empty: single server).")
	fs.DurationVar(&f.flushInterval, "clickhouse.flush-interval", chstore.DefaultFlushInterval, "How long a write waits for others to join its INSERT while writes are few.")
	fs.DurationVar(&f.maxFlushInterval, "clickhouse.max-flush-interval", chstore.DefaultMaxFlushInterval, "How long a write waits for others to join its INSERT under heavy load (from --clickhouse.busy-rows on): about one INSERT per table per interval.")
	fs.IntVar(&f.busyRows, "clickhouse.busy-rows", chstore.DefaultBusyRows, "Write rate (rows/s, all tables) from which writes wait --clickhouse.max-flush-interval; from half of it the wait grows from --clickhouse.flush-interval.")
	fs.IntVar(&f.maxBatchRows, "clickhouse.max-batch-rows", chstore.DefaultMaxBatchRows, "Rows that make a batch flush at once.")
	fs.DurationVar(&f.dialTimeout, "clickhouse.dial-timeout", 5*time.Second, "Timeout for connecting to ClickHouse.")
}

func (f *storeFlags) open(ctx context.Context, log *slog.Logger, reg prometheus.Registerer) (*chstore.Store, error) {
	if f.dsn == "" {
		return nil, usageError{errors.New("--clickhouse.dsn (or NINES_CLICKHOUSE_DSN) is required; `make run` starts a local ClickHouse and sets it for you")}
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

// logFlags configure the logger.
type logFlags struct{ level, format string }

func (f *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.level, "log.level", "info", "Log level: debug, info, warn, error.")
	fs.StringVar(&f.format, "log.format", "logfmt", "Log format: logfmt or json.")
}

func (f *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.level)); err != nil {
		return nil, usageError{fmt.Errorf("--log.level: %w", err)}
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: boundAttr}
	switch f.format {
	case "logfmt":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Errorf("--log.format: want logfmt or json, got %q", f.format)}
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
	log             logFlags
	listen          string
	webConfig       string
	shutdownTimeout time.Duration
	configFile      string
	catalogFile     string
	catalogEmpty    bool
	bearerFile      string
	basicFile       string
	noAuth          bool
	maxBody         int64
	cacheBytes      int64
	apiTokenFile    string

	collectorWindows         string
	collectorRefreshInterval time.Duration
	collectorRefreshTimeout  time.Duration
	collectorScrapeTimeout   time.Duration

	slack       slackFlags
	reliability reliabilityFlags
	debugListen string
	pages       pageFlags
}

// serveFlags declares the flags of `nines serve`. Tests use it to check
// that deployment files agree with nines' flags and defaults.
func serveFlags(stderr io.Writer) (*flag.FlagSet, *serveOptions) {
	fs := newFlagSet("serve", stderr)
	o := &serveOptions{}
	fs.StringVar(&o.listen, "web.listen-address", ":9095", "Address to listen on for the webhook, the API and /metrics.")
	fs.StringVar(&o.webConfig, "web.config.file", "", "Prometheus web configuration file for TLS and basic auth of the whole server (exporter-toolkit format).")
	fs.DurationVar(&o.shutdownTimeout, "web.shutdown-timeout", 30*time.Second, "How long shutdown waits for in-flight requests and batches.")
	fs.StringVar(&o.configFile, "config.file", "", "YAML configuration file (grouping, label and severity mapping).")
	fs.StringVar(&o.catalogFile, "catalog.file", "", "Service catalog YAML (owners, SLOs, dependencies, maintenance); reloaded on change and on SIGHUP.")
	fs.BoolVar(&o.catalogEmpty, "catalog.allow-empty", false, "Let a reload replace a catalog that has services with one that has none (`services: []`); without it such a reload is refused and the last good catalog stays.")
	fs.StringVar(&o.bearerFile, "webhook.bearer-token-file", "", "File holding the bearer token Alertmanager sends (http_config.authorization).")
	fs.StringVar(&o.basicFile, "webhook.basic-auth-file", "", "File holding user:password that Alertmanager sends (http_config.basic_auth).")
	fs.BoolVar(&o.noAuth, "webhook.allow-unauthenticated", false, "Accept webhooks without credentials (development only).")
	fs.Int64Var(&o.maxBody, "webhook.max-body-bytes", 10<<20, "Largest webhook body accepted; larger ones get 413.")
	fs.Int64Var(&o.cacheBytes, "incidents.cache-bytes", incidents.DefaultCacheBytes,
		"Estimated bytes of incidents (with their alerts) kept in memory to answer repeated notifications; beyond it the least recently used groups are read from ClickHouse again when they next change.")
	fs.StringVar(&o.apiTokenFile, "api.token-file", "", "File holding the bearer token required by mutating API calls. Without it they are refused.")
	fs.StringVar(&o.collectorWindows, "collector.windows", strings.Join(collector.DefaultWindows(), ","),
		"Windows of the availability figures on /metrics, comma-separated; each costs one ClickHouse query per refresh. `nines rules generate` reads the same flag.")
	fs.DurationVar(&o.collectorRefreshInterval, "collector.refresh-interval", collector.DefaultRefreshInterval,
		"How often the figures on /metrics are recomputed from ClickHouse; scrapes serve the last values.")
	fs.DurationVar(&o.collectorRefreshTimeout, "collector.refresh-timeout", collector.DefaultRefreshTimeout,
		"Longest one recomputation of the figures on /metrics may take before it counts as failed (nines_collector_up 0).")
	fs.DurationVar(&o.collectorScrapeTimeout, "collector.scrape-timeout", collector.DefaultScrapeTimeout,
		"Longest a scrape of /metrics waits for the first figures after start; later scrapes never wait.")
	o.slack.register(fs)
	o.pages.register(fs)
	fs.StringVar(&o.debugListen, "web.debug-listen-address", "", "Address for Go's profiler (/debug/pprof/) on a listener of its own; empty disables it. Keep it internal.")
	o.store.register(fs)
	o.reliability.register(fs)
	o.log.register(fs)
	return fs, o
}

func serve(ctx context.Context, args []string, stderr io.Writer, reload <-chan os.Signal, getenv func(string) string) error {
	fs, o := serveFlags(stderr)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	log, err := o.log.logger(stderr)
	if err != nil {
		return err
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

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
	)

	var cl closers
	defer cl.closeAll(log)

	// The listener, the webhook and the spool come first: while nines
	// waits for ClickHouse it answers /-/healthy, says /-/ready is not,
	// and spools webhooks (503 without a spool).
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	late := &lateIngester{}
	sp, err := openSpool(o.reliability, late, log, reg)
	if err != nil {
		_ = ln.Close()
		return err
	}
	var ingester alerts.Ingester = late
	if sp != nil {
		ingester = sp
		cl.push(sp.Close) // after the intake drained it; a no-op then
	}
	hook, err := alerts.NewHandler(alerts.Options{
		Ingester: ingester, Auth: auth, MaxBodyBytes: o.maxBody, Logger: log, Registerer: reg,
	})
	if err != nil {
		_ = ln.Close()
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
	noSystemd := false
	addrs := []string{ln.Addr().String()}
	serveErr := make(chan error, 1)
	go func() {
		serveErr <- toolkit.Serve(ln, srv, &toolkit.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &noSystemd, WebConfigFile: &o.webConfig}, log)
	}()
	var stopOnce sync.Once
	stop := func() (err error) {
		stopOnce.Do(func() {
			sctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
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
	svc, err := incidents.NewService(incidents.Options{
		Config: cfg.Incidents, Store: store, Logger: log, Registerer: reg, CacheBytes: o.cacheBytes,
		Resolver: func(labels map[string]string) (string, bool) { return cat.Current().ServiceFor(labels) },
		Upstream: func(service string) []string { return cat.Current().UpstreamNearestFirst(service) },
	})
	if err != nil {
		return err
	}
	avail, err := availability.New(availability.Options{Source: store, Catalog: cat.Current, Config: cfg.Availability, Logger: log})
	if err != nil {
		return err
	}
	chg, err := changes.New(changes.Options{
		Store: store, Incidents: store, Timeline: svc, Logger: log,
		Catalog: cat.Current,
	})
	if err != nil {
		return err
	}
	chatParts, err := newChat(chatDeps{
		flags: o.slack, cfg: cfg.Chat, weights: cfg.Availability.ImpactWeights,
		store: store, actor: svc, avail: avail, catalog: cat.Current, log: log, reg: reg,
		suspects: chg, externalURL: o.pages.externalURL,
	})
	if err != nil {
		return err
	}
	figures, err := collector.New(collector.Options{
		Figures: avail, Counts: store, Windows: windows,
		RefreshInterval: o.collectorRefreshInterval, RefreshTimeout: o.collectorRefreshTimeout,
		ScrapeTimeout: o.collectorScrapeTimeout, Registerer: reg, Logger: log,
	})
	if err != nil {
		return err
	}
	// The spool (--spool.dir) and the reconciler (--alertmanager.url),
	// closed after the server stops and before the store closes.
	in, err := newIntake(o.reliability, sp, ingester, svc, store, log, reg)
	if err != nil {
		return err
	}
	cl.push(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), o.shutdownTimeout)
		defer cancel()
		return in.Close(ctx)
	})
	pages, err := web.New(web.Options{
		Incidents: store, Availability: avail, Changes: chg, Mutator: svc, Catalog: cat.Current,
		ExternalURL: o.pages.externalURL, APIToken: apiToken, StatusTitles: o.pages.statusTitles,
		DashboardURL: dashboardLink(cat.Current, cfg.Chat.GrafanaURL), Logger: log,
		SlackThread: slackThreadLink(store, o.pages.slackWorkspace, cfg.Chat.OperationsChannel),
	})
	if err != nil {
		return usageError{fmt.Errorf("--web.external-url: %w", err)}
	}
	handler := routes(routeDeps{
		pages:        pages,
		log:          log,
		webhook:      hook,
		api:          incidents.NewAPI(svc, store, log),
		availability: availability.NewAPI(avail, log),
		changes:      changes.NewAPI(chg, func() *time.Location { return cat.Current().Location() }, log),
		slack:        chatParts.handler,
		apiToken:     apiToken,
		ready:        in.ready(store.Ping),
		readyDetail:  in.status,
		gatherer:     reg,
	})

	late.next.Store(svc)
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

	log.Info("nines started", "version", version, "address", ln.Addr().String())

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

func migrate(ctx context.Context, args []string, stderr io.Writer, getenv func(string) string) error {
	fs := newFlagSet("migrate", stderr)
	var (
		sf storeFlags
		lf logFlags
	)
	sf.register(fs)
	lf.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	store, err := sf.open(ctx, log, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	log.Info("schema is up to date")
	return nil
}

func buildInfo() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "nines_build_info",
		Help: "A metric with a constant '1' value labeled by nines' version and revision.",
		ConstLabels: prometheus.Labels{
			"version": version, "revision": orDash(revision),
			"goversion": strings.TrimPrefix(goVersion(), "go"),
		},
	}, func() float64 { return 1 })
}
