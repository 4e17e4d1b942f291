package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/journal"
	"github.com/ninesops/nines/spool"
)

// addSpool declares `nines spool inspect|replay`: what an operator does
// with the dead letters of a spool (notifications answered 2xx that the
// store would not take, see spool.DeadLetter).
func (c *cli) addSpool() {
	parent := c.app.Command("spool", "The spool's dead letters: notifications answered 2xx that the store refused.")
	inspect := parent.Command("inspect", "List the spool's dead letters.")
	var (
		inspectDir = new(string)
		format     = new(string)
	)
	inspect.Flag("spool.dir", "The spool directory (nines serve's --spool.dir, by default <storage.path>/spool).").Required().PlaceHolder("DIR").StringVar(inspectDir)
	inspect.Flag("format", "Output: text (a line per dead letter) or json (a JSON object per line, with the whole notification).").
		Default("text").EnumVar(format, "text", "json")
	c.command(inspect, func(context.Context) error { return spoolInspect(*inspectDir, *format, c.stdout) })

	replay := parent.Command("replay", "Append the dead letters to the notification log again (the running deriver applies them); keep those refused.")
	o := &replayOptions{}
	replay.Flag("spool.dir", "The spool directory (nines serve's --spool.dir, by default <storage.path>/spool).").Required().PlaceHolder("DIR").StringVar(&o.dir)
	o.store.register(replay)
	c.command(replay, func(ctx context.Context) error { return spoolReplay(ctx, o, c.logger(), c.stdout) })
}

// spoolInspect lists the dead letters: a line each (text), or each whole
// notification as a JSON object a line (json).
func spoolInspect(dir, format string, stdout io.Writer) error {
	ds, damaged, err := spool.ReadDeadLetters(dir)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if format == "json" {
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
	if format == "text" {
		fmt.Fprintf(stdout, "%d dead letters in %s\n", len(ds), dir)
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

// replayOptions are the flags of `nines spool replay`.
type replayOptions struct {
	store storeFlags
	dir   string
}

// spoolReplay appends the dead letters to the notification log, as nines
// serve's spool would (the deriver of the running nines applies them), and
// keeps those still refused. It may run while nines serves from the same
// spool.
func spoolReplay(ctx context.Context, o *replayOptions, log *slog.Logger, stdout io.Writer) error {
	if err := o.store.check(); err != nil {
		return err
	}
	store, err := o.store.open(ctx, log, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	jrn, err := journal.New(journal.Options{Log: store, Results: store, Incidents: store, Logger: log})
	if err != nil {
		return err
	}
	applied, left, err := spool.ReplayDeadLetters(ctx, o.dir, jrn, time.Now)
	fmt.Fprintf(stdout, "%d dead letters applied, %d left\n", applied, left)
	if err != nil {
		return fmt.Errorf("replay dead letters: %w", err)
	}
	return nil
}
