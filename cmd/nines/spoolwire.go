package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/alerts"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/journal"
	"github.com/ninesops/nines/spool"
)

// reliabilityFlags configure the durable spool in front of the incident
// store and the reconciler against Alertmanager's API.
type reliabilityFlags struct {
	spoolDir      string
	spoolMaxBytes int64
	spoolMaxAge   time.Duration
	spoolTimeout  time.Duration

	amURL       string
	amTokenFile string
	amReceiver  string
	amRouteKey  string
	amInterval  time.Duration
	amGrace     time.Duration
}

func (f *reliabilityFlags) register(fs flagger) {
	fs.Flag("spool.dir", "Directory of the spool that keeps notifications while ClickHouse is down or slow, replayed in order when it is back (default: <storage.path>/spool).").
		PlaceHolder("DIR").StringVar(&f.spoolDir)
	fs.Flag("spool.max-bytes", "Largest spool; when full the webhook answers 503 and Alertmanager retries.").
		Default(strconv.FormatInt(spool.DefaultMaxBytes, 10)).Int64Var(&f.spoolMaxBytes)
	fs.Flag("spool.max-age", "Age of the oldest spooled notification past which the webhook answers 503.").
		Default(spool.DefaultMaxAge.String()).DurationVar(&f.spoolMaxAge)
	fs.Flag("spool.store-timeout", "How long a notification waits for ClickHouse before it is spooled.").
		Default(spool.DefaultTimeout.String()).DurationVar(&f.spoolTimeout)
	fs.Flag("alertmanager.url", "Alertmanager base URL; when set, open incidents are reconciled with its active alerts (/api/v2/alerts).").
		PlaceHolder("URL").StringVar(&f.amURL)
	fs.Flag("alertmanager.bearer-token-file", "File holding a bearer token for Alertmanager's API.").PlaceHolder("FILE").StringVar(&f.amTokenFile)
	fs.Flag("alertmanager.receiver", "Regular expression matching the Alertmanager receivers that send to nines.").
		Default(alerts.DefaultReceiver).StringVar(&f.amReceiver)
	fs.Flag("alertmanager.route-key", "Key of the Alertmanager route that sends to nines: the part before the colon in nines' group keys ({} for the root route).").
		Default(alerts.DefaultRouteKey).StringVar(&f.amRouteKey)
	fs.Flag("alertmanager.reconcile-interval", "Time between comparisons with Alertmanager.").
		Default(alerts.DefaultReconcileInterval.String()).DurationVar(&f.amInterval)
	fs.Flag("alertmanager.reconcile-grace", "How long an alert must be missing from (or active in) Alertmanager before the reconciler resolves (or opens) it.").
		Default(alerts.DefaultReconcileGrace.String()).DurationVar(&f.amGrace)
}

// intake is what the webhook hands notifications to: a spool in front of
// the incident service when --spool.dir is set, the service itself
// otherwise; and, with --alertmanager.url, the reconciler.
type intake struct {
	ingester   alerts.Ingester
	spool      *spool.Spool       // nil without --spool.dir
	reconciler *alerts.Reconciler // nil without --alertmanager.url
	log        *slog.Logger

	closeOnce sync.Once
	closeErr  error
}

// openSpool opens the spool in dir (--spool.dir, or <storage.path>/spool),
// creating it if missing, in front of next.
func openSpool(f reliabilityFlags, dir string, next spool.Ingester, log *slog.Logger, reg prometheus.Registerer) (*spool.Spool, error) {
	sp, err := spool.Open(spool.Options{
		Dir: dir, Next: next, Timeout: f.spoolTimeout, MaxBytes: f.spoolMaxBytes, MaxAge: f.spoolMaxAge,
		Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, fmt.Errorf("spool (--storage.path, --spool.dir): %w", err)
	}
	return sp, nil
}

// newIntake builds the intake around the spool sp (nil without
// --spool.dir) and ingester, what the webhook hands notifications to (sp,
// or the service). Call Run in the background and Close on shutdown,
// after the HTTP server has stopped and before the store closes.
func newIntake(f reliabilityFlags, sp *spool.Spool, ingester alerts.Ingester, stale alerts.StaleResolver, store *chstore.Store, log *slog.Logger, reg prometheus.Registerer) (*intake, error) {
	in := &intake{ingester: ingester, spool: sp, log: log}
	if f.amURL != "" {
		token, err := readSecretFile("alertmanager.bearer-token-file", f.amTokenFile)
		if err != nil {
			in.closeSpool()
			return nil, err
		}
		rec, err := alerts.NewReconciler(alerts.ReconcilerOptions{
			URL: f.amURL, BearerToken: token, Receiver: f.amReceiver, RouteKey: f.amRouteKey,
			Interval: f.amInterval, Grace: f.amGrace,
			Client:   &http.Client{Timeout: 30 * time.Second},
			Ingester: in.ingester, Incidents: store, Resolver: stale,
			Logger: log, Registerer: reg,
		})
		if err != nil {
			in.closeSpool()
			return nil, usageError{fmt.Errorf("--alertmanager.url: %w", err)}
		}
		in.reconciler = rec
	}
	return in, nil
}

// Run replays the spool and reconciles until ctx ends.
func (in *intake) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if in.spool != nil {
		wg.Go(func() {
			if err := in.spool.Run(ctx); err != nil {
				in.log.Error("spool replay stopped", "err", err)
			}
		})
	}
	if in.reconciler != nil {
		wg.Go(func() {
			if err := in.reconciler.Run(ctx); err != nil {
				in.log.Error("reconciler stopped", "err", err)
			}
		})
	}
	wg.Wait()
	return nil
}

// Close replays what it can of the spool until ctx ends, then closes it;
// what is left stays on disk for the next start. Call it after Run has
// returned.
func (in *intake) Close(ctx context.Context) error {
	in.closeOnce.Do(func() {
		if in.spool == nil {
			return
		}
		if err := in.spool.Drain(ctx); err != nil {
			in.log.Warn("shutdown: spool not drained", "err", err)
		}
		in.closeErr = in.spool.Close()
	})
	return in.closeErr
}

func (in *intake) closeSpool() {
	if in.spool != nil {
		_ = in.spool.Close()
	}
}

// ready says whether nines can take notifications: with a spool, it can
// while ClickHouse is down, until the spool is full.
func (in *intake) ready(ping func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		err := ping(ctx)
		if err == nil || in.spool == nil {
			return err
		}
		if st := in.spool.Status(); st.Full {
			return fmt.Errorf("%w (and the spool is full: %s)", err, st.LastError)
		}
		return nil
	}
}

// status is the readiness detail: the spool's depth and age.
func (in *intake) status() any {
	if in.spool == nil {
		return nil
	}
	return in.spool.Status()
}

// The webhook hands the spool notifications in their stored form.
var _ alerts.StoredIngester = (*spool.Spool)(nil)

// lateIngester hands notifications to the log (the journal) once it
// exists: nines serves the webhook (into the spool) while it waits for
// ClickHouse at start. Until then the store is unavailable.
type lateIngester struct {
	next atomic.Pointer[journal.Journal]
}

// Ingest implements alerts.Ingester and spool.Ingester.
func (l *lateIngester) Ingest(ctx context.Context, n incidents.Notification) error {
	if j := l.next.Load(); j != nil {
		return j.Ingest(ctx, n)
	}
	return fmt.Errorf("%w: ClickHouse not reached since nines started", incidents.ErrUnavailable)
}

// IngestStored implements spool.StoredIngester.
func (l *lateIngester) IngestStored(ctx context.Context, bodies [][]byte) error {
	if j := l.next.Load(); j != nil {
		return j.IngestStored(ctx, bodies)
	}
	return fmt.Errorf("%w: ClickHouse not reached since nines started", incidents.ErrUnavailable)
}
