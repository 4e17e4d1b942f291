package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/ninesops/nines/alerts"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/journal"
)

// The storm of new incidents (issue 20): every notification opens a new
// group of 64 firing alerts, sent by a few concurrent senders. The same
// notifications go to nines' webhook, to Alertmanager's own ingest
// (/api/v2/alerts) and, as the records nines' webhook logs, straight into
// ClickHouse's notification_log: what the log-first path could take at
// most.

// stormResults are the storm phase's rows.
type stormResults struct {
	am, nines, logBound, decode *phaseResult
}

// buildStorm renders the storm's script: groups numbered from 20,000,000,
// apart from the other scripts'.
func buildStorm(cfg *config, now time.Time) (*workload, error) {
	return buildWorkload(workloadOptions{
		Notifications: cfg.stormNotifications, Services: cfg.services, Active: 1, Seed: cfg.seed,
		FirstGroup: 20_000_000, Now: now, Alertmanager: cfg.phase("alertmanager"), Storm: true,
	})
}

// storm runs the storm against the decode-only receiver and Alertmanager
// (when their phases run too), nines and the raw-log insert bound.
func (b *bench) storm(ctx context.Context, w *workload) (*stormResults, error) {
	out := &stormResults{}
	lo := loadOptions{Concurrency: b.cfg.stormConcurrency}
	if b.cfg.phase("decode") {
		b.logf("phase storm: HTTP + alerts.Decode in process, %d senders…", lo.Concurrency)
		out.decode = b.decodeBound(ctx, w, lo)
	}
	if b.cfg.phase("alertmanager") {
		b.logf("phase storm: Alertmanager, %d senders…", lo.Concurrency)
		am, err := b.alertmanagerBound(ctx, w, lo)
		if err != nil {
			return nil, err
		}
		out.am = am
		for i := range w.steps {
			w.steps[i].am = nil // not needed any more
		}
	}
	b.logf("phase storm: nines, %d senders…", lo.Concurrency)
	n, err := b.runNines(ctx, "storm", w, lo, b.cfg.profilePhase == "storm")
	if err != nil {
		return nil, err
	}
	out.nines = n
	b.logf("phase storm: the raw-log insert bound, batches of %d records…", b.cfg.logBatch)
	if out.logBound, err = b.logBound(ctx, w); err != nil {
		return nil, err
	}
	return out, nil
}

// logRecords turns the script into the records nines' webhook appends
// for it: decoded, in their stored form, hashed.
func logRecords(w *workload, at time.Time) ([]journal.Record, error) {
	recs := make([]journal.Record, len(w.steps))
	for i := range w.steps {
		n, err := alerts.Decode(bytes.NewReader(w.steps[i].nines), 0)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
		body, err := incidents.MarshalNotification(n)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
		recs[i] = journal.NewRecord(journal.KindNotification, body, at.Add(time.Duration(i)*time.Microsecond))
	}
	return recs, nil
}

// logBound appends the script's records to notification_log through the
// store, batch after batch (each one INSERT), into a fresh database: the
// rate at which ClickHouse takes the log nines writes.
func (b *bench) logBound(ctx context.Context, w *workload) (*phaseResult, error) {
	recs, err := logRecords(w, time.Now())
	if err != nil {
		return nil, err
	}
	db := b.database("storm_log")
	store, err := chstore.Open(ctx, chstore.Options{
		DSN: "clickhouse://" + b.chAddr + "/" + db, Logger: slog.New(slog.DiscardHandler),
		// A batch flushes as soon as it is complete.
		FlushInterval: time.Millisecond, MaxBatchRows: b.cfg.logBatch,
	})
	if err != nil {
		return nil, err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return nil, err
	}
	runtime.GC()
	cu, su := startUsage(b.chPid), selfUsage()
	var size, batches int
	start := time.Now()
	for from := 0; from < len(recs); from += b.cfg.logBatch {
		batch := recs[from:min(from+b.cfg.logBatch, len(recs))]
		if err := store.AppendLog(ctx, batch); err != nil {
			return nil, fmt.Errorf("raw-log insert bound: %w", err)
		}
		batches++
		for _, r := range batch {
			size += len(r.Body)
		}
	}
	elapsed := time.Since(start)
	cu.stop()
	su.stop()
	lr := &loadResult{ok: len(w.steps), okAlerts: w.alerts, elapsed: elapsed, codes: map[int]int{}}
	return &phaseResult{load: lr, server: su, ch: cu, inProcess: true, notes: []string{
		fmt.Sprintf("%s records (%.0f MB of stored notifications) in %d INSERTs (%.0f MB/s)",
			thousands(float64(len(recs))), float64(size)/1e6, batches, float64(size)/1e6/elapsed.Seconds()),
	}}, nil
}
