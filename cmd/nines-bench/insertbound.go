package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ninesops/nines/alerts"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// recorder is an incidents.Store that keeps every change in memory: it
// replays the script through nines' lifecycle to learn which rows nines
// writes, without a database.
type recorder struct {
	latest  map[incidents.GroupRef]*incidents.Incident
	changes []incidents.Change
	rows    int
}

func (r *recorder) Latest(_ context.Context, refs []incidents.GroupRef) (map[incidents.GroupRef]*incidents.Incident, error) {
	out := map[incidents.GroupRef]*incidents.Incident{}
	for _, ref := range refs {
		if inc := r.latest[ref]; inc != nil {
			out[ref] = inc
		}
	}
	return out, nil
}

func (r *recorder) Get(context.Context, string) (*incidents.Incident, error) {
	return nil, fault.ErrNotFound
}

func (r *recorder) Write(_ context.Context, changes []incidents.Change) error {
	for _, c := range changes {
		r.latest[incidents.GroupRef{GroupKey: c.Incident.GroupKey, Service: c.Incident.Service}] = c.Incident
		r.rows += 1 + len(c.Alerts) + len(c.Events)
	}
	r.changes = append(r.changes, changes...)
	return nil
}

// replay runs the script through nines' decoder and lifecycle, in script
// order, and returns the changes nines stores for it.
func replay(ctx context.Context, w *workload) (*recorder, error) {
	rec := &recorder{latest: map[incidents.GroupRef]*incidents.Incident{}}
	svc, err := incidents.NewService(incidents.Options{Config: incidents.DefaultConfig(), Store: rec})
	if err != nil {
		return nil, err
	}
	for i := range w.steps {
		n, err := alerts.Decode(bytes.NewReader(w.steps[i].nines), 0)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
		if err := svc.Ingest(ctx, n); err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
	}
	return rec, nil
}

// insertResult is the insert bound: nines' rows written in big batches.
type insertResult struct {
	rows, writes int
	elapsed      time.Duration
}

// insertBound writes the changes of rec through chstore.Store.Write in
// batches of about batchRows rows, one batch at a time (each is one
// INSERT per table), into a fresh database at dsn.
func insertBound(ctx context.Context, dsn string, rec *recorder, batchRows int) (insertResult, error) {
	store, err := chstore.Open(ctx, chstore.Options{
		DSN: dsn, Logger: slog.New(slog.DiscardHandler),
		// A batch flushes as soon as it is complete.
		FlushInterval: time.Millisecond, MaxBatchRows: batchRows,
	})
	if err != nil {
		return insertResult{}, err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return insertResult{}, err
	}
	var (
		res   insertResult
		batch []incidents.Change
		rows  int
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := store.Write(ctx, batch); err != nil {
			return err
		}
		res.writes++
		res.rows += rows
		batch, rows = batch[:0], 0
		return nil
	}
	start := time.Now()
	for _, c := range rec.changes {
		batch = append(batch, c)
		rows += 1 + len(c.Alerts) + len(c.Events)
		if rows >= batchRows {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	res.elapsed = time.Since(start)
	return res, nil
}
