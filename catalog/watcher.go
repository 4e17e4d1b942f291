package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultWatchInterval is how often a Watcher looks for changed files
// unless told otherwise.
const DefaultWatchInterval = 5 * time.Second

// WatcherOptions configures a Watcher.
type WatcherOptions struct {
	// Path is the catalog file. Empty means no catalog: Current returns an
	// empty catalog with DefaultSLO and there is nothing to watch.
	Path string
	// DefaultSLO is the default SLO target, as a ratio, of the empty
	// catalog used when Path is empty. Zero means DefaultSLOTarget. A
	// catalog file sets its own default.
	DefaultSLO float64
	// Logger defaults to discarding.
	Logger *slog.Logger
	// Registerer receives the watcher's metrics; nil means they are not
	// registered.
	Registerer prometheus.Registerer
	// Interval between checks for changed files; zero means
	// DefaultWatchInterval.
	Interval time.Duration
	// Now is the clock for the last-reload timestamp; nil means time.Now.
	Now func() time.Time
	// AllowEmpty lets a reload replace a catalog that has services with
	// one that has none. Without it such a reload fails and the last good
	// catalog stays: a catalog emptied by mistake would otherwise move
	// every alert to the default service.
	AllowEmpty bool
}

func (o *WatcherOptions) defaults() error {
	if o.Interval < 0 {
		return fmt.Errorf("interval must not be negative, got %s", o.Interval)
	}
	if o.Interval == 0 {
		o.Interval = DefaultWatchInterval
	}
	if o.DefaultSLO == 0 {
		o.DefaultSLO = DefaultSLOTarget
	}
	if !(o.DefaultSLO > 0 && o.DefaultSLO < 1) {
		return fmt.Errorf("default SLO must be a ratio between 0 and 1 (exclusive), got %v", o.DefaultSLO)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Watcher holds the current catalog and reloads it when the catalog file,
// or a Backstage file it references, changes. It polls, comparing each
// file's modification time and size and, when those moved, its content
// hash, so that touching a file or rewriting it unchanged does not reload.
// A reload that fails keeps the last good catalog.
type Watcher struct {
	opts    WatcherOptions
	fs      fileSystem
	metrics *watcherMetrics
	current atomic.Pointer[Catalog]

	mu     sync.Mutex // serializes reloads; guards the fields below
	seen   string     // fingerprint of the files at the last reload attempt
	stamps map[string]fileStamp
}

type fileStamp struct {
	modTime time.Time
	size    int64
	hash    string
	// settled is set when the file was hashed well after its last
	// modification. File systems keep modification times in coarse ticks,
	// so a file rewritten within the same tick as it was hashed keeps its
	// time and maybe its size; only a settled hash is reused on an
	// unchanged time and size (as git does for "racily clean" files).
	settled bool
}

// settleTime is how old a file's modification time must be before its
// hash is trusted to stay valid while time and size stay put.
const settleTime = 2 * time.Second

type watcherMetrics struct {
	reloads        *prometheus.CounterVec
	lastSuccessAt  prometheus.Gauge
	lastSuccessful prometheus.Gauge
	services       prometheus.Gauge
}

func newWatcherMetrics(reg prometheus.Registerer) (*watcherMetrics, error) {
	m := &watcherMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nines_catalog_reloads_total",
			Help: "Catalog loads and reloads, by result (success or failure).",
		}, []string{"result"}),
		lastSuccessAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nines_catalog_last_reload_success_timestamp_seconds",
			Help: "Time of the last successful catalog load, in seconds since the epoch.",
		}),
		lastSuccessful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nines_catalog_last_reload_successful",
			Help: "Whether the last catalog load or reload succeeded (1) or failed (0).",
		}),
		services: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nines_catalog_services",
			Help: "Services in the current catalog.",
		}),
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	if reg != nil {
		// Register rather than promauto.With(reg): promauto panics when a
		// metric is already registered; this returns an error instead.
		for _, c := range []prometheus.Collector{m.reloads, m.lastSuccessAt, m.lastSuccessful, m.services} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("register catalog metrics: %w", err)
			}
		}
	}
	return m, nil
}

// NewWatcher loads the catalog and returns a Watcher holding it. A catalog
// that fails to load is an error here: there is no last good one to keep.
func NewWatcher(opts WatcherOptions) (*Watcher, error) {
	if err := opts.defaults(); err != nil {
		return nil, fmt.Errorf("catalog watcher: %w", err)
	}
	w := &Watcher{opts: opts, fs: osFS{}, stamps: map[string]fileStamp{}}
	if opts.Path == "" {
		w.current.Store(Empty(opts.DefaultSLO))
	} else {
		c, err := load(opts.Path, w.fs)
		if err != nil {
			return nil, fmt.Errorf("load catalog: %w", err)
		}
		w.current.Store(c)
		// Fingerprint after loading, when the Backstage files are known. A
		// change in between is missed until the next one; that window is
		// as short as it gets at start-up.
		w.seen = w.fingerprint()
	}
	m, err := newWatcherMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	w.metrics = m
	w.recordSuccess(w.current.Load())
	return w, nil
}

// Current returns the catalog in force: the last one that loaded. It is
// never nil.
func (w *Watcher) Current() *Catalog { return w.current.Load() }

// Run checks the files every interval and reloads the catalog when they
// changed, until ctx ends. It returns nil when ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	if w.opts.Path == "" {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(w.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.poll()
		}
	}
}

// Reload reloads the catalog now, whether or not its files changed (cmd
// calls it on SIGHUP). On failure the last good catalog stays in force and
// the error is returned as well as logged.
func (w *Watcher) Reload() error {
	if w.opts.Path == "" {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = w.fingerprint()
	return w.reload("requested")
}

func (w *Watcher) poll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	fp := w.fingerprint()
	if fp == w.seen {
		return
	}
	// Remember the new state even if the reload fails, so that a broken
	// file is reported once, not on every poll, and retried when it
	// changes again.
	w.seen = fp
	_ = w.reload("files changed") // logged and counted by reload
}

func (w *Watcher) reload(reason string) error {
	c, err := load(w.opts.Path, w.fs)
	if err == nil && c.Len() == 0 && w.current.Load().Len() > 0 && !w.opts.AllowEmpty {
		err = fmt.Errorf("%s has no services, the catalog in force has %d: refused (set --catalog.allow-empty to allow it)",
			w.opts.Path, w.current.Load().Len())
	}
	if err != nil {
		w.metrics.reloads.WithLabelValues("failure").Inc()
		w.metrics.lastSuccessful.Set(0)
		w.opts.Logger.Error("catalog reload failed; keeping the last good catalog",
			"file", w.opts.Path, "reason", reason, "err", err)
		return fmt.Errorf("reload catalog: %w", err)
	}
	w.current.Store(c)
	w.recordSuccess(c)
	w.opts.Logger.Info("catalog reloaded", "file", w.opts.Path, "reason", reason, "services", c.Len())
	return nil
}

func (w *Watcher) recordSuccess(c *Catalog) {
	w.metrics.reloads.WithLabelValues("success").Inc()
	w.metrics.lastSuccessful.Set(1)
	w.metrics.lastSuccessAt.Set(float64(w.opts.Now().UnixNano()) / 1e9)
	w.metrics.services.Set(float64(c.Len()))
}

// watchedFiles returns the catalog file and the Backstage files the current
// catalog references, globs expanded anew so that added files count.
func (w *Watcher) watchedFiles() []string {
	files := []string{w.opts.Path}
	if c := w.current.Load(); c != nil {
		for _, pattern := range c.backstage {
			if !strings.ContainsAny(pattern, `*?[\`) {
				files = append(files, pattern)
				continue
			}
			matches, err := w.fs.Glob(pattern)
			if err != nil {
				continue // the pattern loaded before, so it cannot be malformed
			}
			files = append(files, matches...)
		}
	}
	slices.Sort(files)
	return slices.Compact(files)
}

// fingerprint summarizes the watched files' contents. A file whose
// modification time and size are unchanged is not read again.
func (w *Watcher) fingerprint() string {
	h := sha256.New()
	seen := map[string]bool{}
	for _, f := range w.watchedFiles() {
		seen[f] = true
		io.WriteString(h, f)
		h.Write([]byte{0})
		io.WriteString(h, w.fileHash(f))
		h.Write([]byte{'\n'})
	}
	for f := range w.stamps {
		if !seen[f] {
			delete(w.stamps, f)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (w *Watcher) fileHash(name string) string {
	fi, err := os.Stat(name)
	if err != nil {
		delete(w.stamps, name)
		if errors.Is(err, os.ErrNotExist) {
			return "missing"
		}
		return "error: " + err.Error()
	}
	if st, ok := w.stamps[name]; ok && st.settled && st.modTime.Equal(fi.ModTime()) && st.size == fi.Size() {
		return st.hash
	}
	data, err := w.fs.ReadFile(name)
	if err != nil {
		delete(w.stamps, name)
		return "error: " + err.Error()
	}
	sum := sha256.Sum256(data)
	st := fileStamp{
		modTime: fi.ModTime(),
		size:    fi.Size(),
		hash:    hex.EncodeToString(sum[:]),
		settled: time.Since(fi.ModTime()) > settleTime,
	}
	w.stamps[name] = st
	return st.hash
}
