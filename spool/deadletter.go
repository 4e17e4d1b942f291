package spool

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ninesops/nines/incidents"
)

// Dead letters.
//
// A spooled notification was answered 2xx, so it is never dropped: one the
// store refuses (incidents.ErrInvalid) or that keeps failing with an
// unexpected error is put aside in the dead-letter file, fsynced, before
// the replay moves past it. The file has the segments' format with its own
// header (deadLetterMagic); each record's payload is a deadLetterJSON.
// `nines spool inspect` lists dead letters and `nines spool replay`
// applies them again (ReplayDeadLetters), keeping those still refused.
// The file is guarded by its own lock (deadLetterLock), so that an
// operator can replay while nines runs.

const (
	deadLetterFile  = "dead-letters"
	deadLetterLock  = "dead-letters.lock"
	deadLetterMagic = "NINESDL1"
)

// DeadLetter is a spooled notification that the store would not take.
type DeadLetter struct {
	// AcceptedAt is when the webhook answered 2xx for it.
	AcceptedAt time.Time
	// FailedAt is when it was last refused, and Reason why.
	FailedAt     time.Time
	Reason       string
	Notification incidents.Notification
	// Payload holds the spooled bytes of a notification that did not
	// decode (Notification is then empty).
	Payload []byte
}

type deadLetterJSON struct {
	FailedAt     time.Time                    `json:"failed_at"`
	Reason       string                       `json:"reason"`
	Notification incidents.StoredNotification `json:"notification"`
	Payload      []byte                       `json:"payload,omitempty"`
}

// maxReason bounds the reason kept with a dead letter.
const maxReason = 4096

func encodeDeadLetter(d DeadLetter) ([]byte, error) {
	reason := d.Reason
	if len(reason) > maxReason {
		reason = reason[:maxReason] + "…"
	}
	payload, err := json.Marshal(deadLetterJSON{FailedAt: d.FailedAt.UTC(), Reason: reason, Notification: incidents.StoredForm(d.Notification), Payload: d.Payload})
	if err != nil {
		return nil, fmt.Errorf("encode dead letter: %w", err)
	}
	return frame(payload, d.AcceptedAt), nil
}

// appendDeadLetters appends ds to the dead-letter file in dir, durably.
func appendDeadLetters(dir string, ds ...DeadLetter) error {
	var buf bytes.Buffer
	for _, d := range ds {
		b, err := encodeDeadLetter(d)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	return withDeadLetterLock(dir, func() error {
		path := filepath.Join(dir, deadLetterFile)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil && st.Size() < int64(len(deadLetterMagic)) {
			// New (or torn before its header was complete): start it.
			if err = f.Truncate(0); err == nil {
				_, err = f.Write([]byte(deadLetterMagic))
			}
		}
		if err == nil {
			_, err = f.Write(buf.Bytes())
		}
		err = syncClose(f, err)
		if err == nil {
			err = syncDir(dir)
		}
		if err != nil {
			return fmt.Errorf("append dead letters: %w", err)
		}
		return nil
	})
}

// ReadDeadLetters returns the dead letters kept in the spool directory dir,
// oldest first, and the bytes of the file that could not be read (damaged),
// which are skipped.
func ReadDeadLetters(dir string) ([]DeadLetter, int64, error) {
	var (
		out     []DeadLetter
		damaged int64
	)
	err := withDeadLetterLock(dir, func() error {
		var err error
		out, damaged, err = readDeadLetters(dir)
		return err
	})
	return out, damaged, err
}

func readDeadLetters(dir string) ([]DeadLetter, int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, deadLetterFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read dead letters: %w", err)
	}
	var (
		out     []DeadLetter
		damaged int64
	)
	off := min(len(b), len(deadLetterMagic))
	if string(b[:off]) != deadLetterMagic {
		damaged += int64(off)
	}
	for off < len(b) {
		size, at, payload, st := parse(b[off:])
		if st == parseOK {
			var j deadLetterJSON
			if err := json.Unmarshal(payload, &j); err == nil {
				n := j.Notification.Notification()
				out = append(out, DeadLetter{AcceptedAt: at, FailedAt: j.FailedAt.UTC(), Reason: j.Reason, Notification: n, Payload: j.Payload})
				off += size
				continue
			}
		}
		skip := resync(b[off:])
		if skip < 0 {
			skip = len(b) - off
		}
		damaged += int64(skip)
		off += skip
	}
	return out, damaged, nil
}

// countDeadLetters returns how many dead letters dir holds.
func countDeadLetters(dir string) (int, error) {
	ds, _, err := ReadDeadLetters(dir)
	return len(ds), err
}

// ReplayDeadLetters applies the dead letters of the spool directory dir
// through next, in order, and keeps in the file only those that fail
// again (with their new reason). It stops at the first failure that a
// retry may cure (incidents.ErrUnavailable, ctx ending), keeping that one
// and every later one. It returns how many were applied and how many are
// left. It may run while nines serves from the same spool.
func ReplayDeadLetters(ctx context.Context, dir string, next Ingester, now func() time.Time) (applied, left int, err error) {
	err = withDeadLetterLock(dir, func() error {
		ds, damaged, err := readDeadLetters(dir)
		if err != nil {
			return err
		}
		if damaged > 0 {
			return fmt.Errorf("dead-letter file has %d damaged bytes: inspect it before replaying (nines spool inspect)", damaged)
		}
		var (
			keep    []DeadLetter
			stop    error
			changed bool
		)
		for i, d := range ds {
			if stop != nil {
				keep = append(keep, ds[i:]...)
				break
			}
			var ierr error
			if d.Payload != nil {
				// Did not decode when spooled: a fixed nines may read it.
				var n incidents.Notification
				if n, ierr = incidents.UnmarshalNotification(d.Payload); ierr == nil {
					d.Notification, d.Payload = n, nil
				}
			}
			if ierr == nil {
				ierr = next.Ingest(ctx, d.Notification)
			}
			switch {
			case ierr == nil:
				applied++
				changed = true
			case retryable(ierr), ctx.Err() != nil:
				stop = ierr
				keep = append(keep, d)
			default:
				d.FailedAt, d.Reason = now(), ierr.Error()
				keep = append(keep, d)
				changed = true
			}
		}
		left = len(keep)
		if changed {
			if err := rewriteDeadLetters(dir, keep); err != nil {
				return err
			}
		}
		if stop != nil {
			return fmt.Errorf("store unavailable, %d applied, %d kept: %w", applied, left, stop)
		}
		return nil
	})
	return applied, left, err
}

// rewriteDeadLetters replaces the dead-letter file with ds: a new file,
// fsynced, renamed over the old one. Must hold the lock.
func rewriteDeadLetters(dir string, ds []DeadLetter) error {
	var buf bytes.Buffer
	buf.WriteString(deadLetterMagic)
	for _, d := range ds {
		b, err := encodeDeadLetter(d)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	tmp := filepath.Join(dir, deadLetterFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(buf.Bytes())
	err = syncClose(f, err)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, deadLetterFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("rewrite dead letters: %w", err)
	}
	return nil
}

// withDeadLetterLock runs f holding the dead-letter file's lock, waiting
// for it.
func withDeadLetterLock(dir string, f func() error) error {
	l, err := lockFile(filepath.Join(dir, deadLetterLock))
	if err != nil {
		return fmt.Errorf("lock dead letters: %w", err)
	}
	defer func() { _ = unlockDir(l) }()
	return f()
}
