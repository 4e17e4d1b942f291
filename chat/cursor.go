// The cursor: where reading the timeline resumes when a replica starts
// leading, and the buffered results (deliveries, messages, cursor) written
// to the store.

package chat

import (
	"context"
	"time"
)

// begin starts leading: the cursor comes from the store, everything else
// is read again as events come in.
func (s *Sender) begin(ctx context.Context, now time.Time) (*state, error) {
	pos, ok, err := s.ledger.ChatCursor(ctx, cursorName)
	if err != nil {
		return nil, err
	}
	if !ok {
		// First run: start with what is happening now, and say so
		// durably at once, so that a lapse of the lease before the next
		// write does not move the start.
		pos = now
		if err := s.ledger.WriteChat(ctx, Records{Cursors: []Cursor{{Name: cursorName, Position: pos, At: now}}}); err != nil {
			return nil, err
		}
	}
	s.log.Info("chat sender leading", "cursor", pos.UTC().Format(time.RFC3339Nano))
	return &state{
		cursor: pos, maxSeen: pos, savedCursor: pos, savedAt: now,
		events: map[string]*evRec{}, incs: map[string]*incState{}, pairs: map[pairKey]*pairState{},
		byInc: map[string][]*pairState{}, ready: map[string]time.Time{}, fails: map[string]int{},
	}, nil
}

// flush writes the buffered results.
func (s *Sender) flush(ctx context.Context) error {
	st := s.st
	if st == nil || st.buf.len() == 0 {
		return nil
	}
	if err := s.ledger.WriteChat(ctx, st.buf); err != nil {
		return err
	}
	st.buf = Records{}
	return nil
}

// saveCursor buffers the cursor when it moved, at most every cursorEvery
// (or now, when force is set).
func (s *Sender) saveCursor(now time.Time, force bool) {
	st := s.st
	if st == nil || st.cursor.Equal(st.savedCursor) || (!force && now.Sub(st.savedAt) < cursorEvery) {
		return
	}
	st.buf.Cursors = append(st.buf.Cursors, Cursor{Name: cursorName, Position: st.cursor, At: now})
	st.savedCursor, st.savedAt = st.cursor, now
}
