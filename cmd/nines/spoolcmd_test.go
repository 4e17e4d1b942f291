package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/spool"
)

// refusing is an incident store that is down, then refuses everything.
type refusing struct{ down bool }

func (r *refusing) Ingest(context.Context, incidents.Notification) error {
	if r.down {
		return fmt.Errorf("%w: down", incidents.ErrUnavailable)
	}
	return fmt.Errorf("%w: No such column inserted_at_ms", incidents.ErrInvalid)
}

// TestSpoolDeadLettersCLI: a notification answered 2xx (spooled) that the
// store then refuses is kept as a dead letter; `nines spool inspect` shows
// it and `nines spool replay` applies it to the real store once the cause
// is gone.
func TestSpoolDeadLettersCLI(t *testing.T) {
	dir := t.TempDir()
	store := &refusing{down: true}
	sp, err := spool.Open(spool.Options{Dir: dir, Next: store, Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	n := incidents.Notification{
		Receiver: "nines", Status: incidents.AlertFiring, GroupKey: `{}:{alertname="DeadLetter"}`, ReceivedAt: start,
		Alerts: []incidents.Alert{{Fingerprint: "dl1", Status: incidents.AlertFiring, StartsAt: start,
			Labels: map[string]string{"alertname": "DeadLetter", "service": "deadletter"}}},
	}
	if err := sp.Ingest(t.Context(), n); err != nil {
		t.Fatalf("ingest: %v (want it spooled)", err)
	}
	store.down = false
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := sp.Drain(ctx); err != nil {
		t.Fatalf("drain: %v", err)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	if err := run(t.Context(), []string{"spool", "inspect", "--spool.dir=" + dir}, &out, &errb, nil); err != nil {
		t.Fatalf("inspect: %v\n%s", err, errb.String())
	}
	if s := out.String(); !strings.Contains(s, `group {}:{alertname="DeadLetter"}`) || !strings.Contains(s, "No such column inserted_at_ms") ||
		!strings.Contains(s, "1 dead letters") {
		t.Errorf("inspect printed:\n%s", s)
	}

	dsn := chtest.Database(t)
	out.Reset()
	if err := run(t.Context(), []string{"migrate", "--clickhouse.dsn=" + dsn}, &out, &errb, nil); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errb.String())
	}
	if err := run(t.Context(), []string{"spool", "replay", "--spool.dir=" + dir, "--clickhouse.dsn=" + dsn}, &out, &errb, nil); err != nil {
		t.Fatalf("replay: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "1 dead letters applied, 0 left") {
		t.Errorf("replay printed %q", out.String())
	}
	nines := startNines(t, dsn)
	if incs := listService(t, nines, "deadletter"); len(incs) != 1 {
		t.Errorf("service deadletter has %d incidents after the replay, want 1", len(incs))
	}
	out.Reset()
	if err := run(t.Context(), []string{"spool", "inspect", "--spool.dir=" + dir}, &out, &errb, nil); err != nil || !strings.Contains(out.String(), "0 dead letters") {
		t.Errorf("inspect after replay: %v\n%s", err, out.String())
	}
}
