package journal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// ReplayStats counts what Replay read and applied.
type ReplayStats struct {
	Notifications int
	Commands      int
	// Orphans are commands whose incident the new derivation does not
	// have (its alerts now make other incidents): they are left out.
	Orphans int
	// Refused are records the lifecycle refused for good.
	Refused int
}

// Replay applies the log's records appended in [from, to) to a, in the
// log's order: `nines replay` derives a period again under the current
// configuration into a scratch store with it. Notifications and commands
// are applied one at a time (the order does not change the result, and one
// at a time keeps a replay's load on ClickHouse even).
func Replay(ctx context.Context, log Log, a Applier, from, to time.Time) (ReplayStats, error) {
	var st ReplayStats
	after := Position{At: from.Add(-time.Millisecond), Hash: "\xff"}
	for {
		recs, err := log.ReadLog(ctx, after, DefaultPageRows, DefaultPageBytes, nil)
		if err != nil {
			return st, err
		}
		for _, r := range recs {
			if !r.At.Before(to) {
				a.LinkPending(ctx)
				return st, nil
			}
			if err := replayOne(ctx, a, r, &st); err != nil {
				return st, err
			}
		}
		if len(recs) < DefaultPageRows {
			a.LinkPending(ctx)
			return st, nil
		}
		after = Of(recs[len(recs)-1])
	}
}

func replayOne(ctx context.Context, a Applier, r Record, st *ReplayStats) error {
	switch r.Kind {
	case KindNotification:
		n, err := incidents.UnmarshalNotification(r.Body)
		if err != nil {
			st.Refused++
			return nil
		}
		if err := a.Ingest(ctx, n); err != nil {
			if permanent(err) {
				st.Refused++
				return nil
			}
			return err
		}
		st.Notifications++
	case KindCommand:
		var c incidents.Command
		if err := json.Unmarshal(r.Body, &c); err != nil {
			st.Refused++
			return nil
		}
		switch c.Kind {
		case incidents.CommandSync, incidents.CommandForget:
			return nil
		}
		_, err := a.Do(ctx, c)
		switch {
		case err == nil:
			st.Commands++
		case errors.Is(err, fault.ErrNotFound):
			st.Orphans++
		case permanent(err):
			st.Refused++
		default:
			return fmt.Errorf("replay command %s: %w", c.ID, err)
		}
	default:
		st.Refused++
	}
	return nil
}
