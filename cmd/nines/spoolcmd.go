package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/journal"
	"github.com/ninesops/nines/spool"
)

// spoolCmd runs `nines spool inspect|replay`: what an operator does with
// the dead letters of a spool (notifications answered 2xx that the store
// would not take, see spool.DeadLetter).
func spoolCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageError{errors.New("nines spool: want inspect or replay")}
	}
	switch args[0] {
	case "inspect":
		return spoolInspect(args[1:], stdout, stderr, getenv)
	case "replay":
		return spoolReplay(ctx, args[1:], stdout, stderr, getenv)
	}
	return usageError{fmt.Errorf("nines spool: unknown subcommand %q, want inspect or replay", args[0])}
}

// spoolInspect lists the dead letters: a line each (text), or each whole
// notification as a JSON object a line (json).
func spoolInspect(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlagSet("spool inspect", stderr)
	dir := fs.String("spool.dir", "", "The spool directory (nines serve's --spool.dir).")
	format := fs.String("format", "text", "Output: text (a line per dead letter) or json (a JSON object per line, with the whole notification).")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{errors.New("--spool.dir is required")}
	}
	if *format != "text" && *format != "json" {
		return usageError{fmt.Errorf("--format: want text or json, got %q", *format)}
	}
	ds, damaged, err := spool.ReadDeadLetters(*dir)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if *format == "json" {
			b, err := json.Marshal(deadLetterOut(d))
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s\n", b)
			continue
		}
		what := fmt.Sprintf("alerts %d  group %s", len(d.Notification.Alerts), cut(d.Notification.GroupKey, 200))
		if d.Payload != nil {
			what = fmt.Sprintf("a payload of %d bytes that does not decode: %s", len(d.Payload), cut(string(d.Payload), 200))
		}
		fmt.Fprintf(stdout, "accepted %s  failed %s  %s\n    reason: %s\n",
			d.AcceptedAt.Format(time.RFC3339), d.FailedAt.Format(time.RFC3339), what, cut(d.Reason, 500))
	}
	if *format == "text" {
		fmt.Fprintf(stdout, "%d dead letters in %s\n", len(ds), *dir)
	}
	if damaged > 0 {
		return fmt.Errorf("the dead-letter file has %d damaged bytes, skipped", damaged)
	}
	return nil
}

type deadLetterJSON struct {
	AcceptedAt   time.Time              `json:"accepted_at"`
	FailedAt     time.Time              `json:"failed_at"`
	Reason       string                 `json:"reason"`
	Notification incidents.Notification `json:"notification"`
	Payload      string                 `json:"payload,omitempty"`
}

func deadLetterOut(d spool.DeadLetter) deadLetterJSON {
	return deadLetterJSON{AcceptedAt: d.AcceptedAt, FailedAt: d.FailedAt, Reason: d.Reason, Notification: d.Notification, Payload: string(d.Payload)}
}

// cut shortens s to n bytes for a line of output.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// spoolReplay appends the dead letters to the notification log, as nines
// serve's spool would (the deriver of the running nines applies them), and
// keeps those still refused. It may run while nines serves from the same
// spool.
func spoolReplay(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlagSet("spool replay", stderr)
	var (
		sf storeFlags
		lf logFlags
	)
	dir := fs.String("spool.dir", "", "The spool directory (nines serve's --spool.dir).")
	sf.register(fs)
	lf.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *dir == "" {
		return usageError{errors.New("--spool.dir is required")}
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
	jrn, err := journal.New(journal.Options{Log: store, Results: store, Incidents: store, Logger: log})
	if err != nil {
		return err
	}
	applied, left, err := spool.ReplayDeadLetters(ctx, *dir, jrn, time.Now)
	fmt.Fprintf(stdout, "%d dead letters applied, %d left\n", applied, left)
	if err != nil {
		return fmt.Errorf("replay dead letters: %w", err)
	}
	return nil
}
