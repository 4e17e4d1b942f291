package spool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestDamagedSegmentHeaderKeepsRecords: a segment whose 8-byte header is
// damaged still holds records with valid checksums; they are replayed,
// not set aside with the header.
func TestDamagedSegmentHeaderKeepsRecords(t *testing.T) {
	for _, header := range []string{"XINESPL1", "\x00\x00\x00\x00\x00\x00\x00\x00", "NINESPL2"} {
		t.Run(fmt.Sprintf("%q", header), func(t *testing.T) {
			dir := t.TempDir()
			path := spoolFiles(t, dir, 3)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			copy(b, header)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			store := &fakeStore{}
			s := open(t, dir, store, func(o *Options) { o.Logger = newLogger(&logs) })
			if got := testutil.ToFloat64(s.metrics.corrupt); got != 1 {
				t.Errorf("corrupt = %v, want 1 (the header)", got)
			}
			if !strings.Contains(logs.String(), "header") {
				t.Errorf("the damaged header is not logged: %s", logs.String())
			}
			store.set(errDown, 0)
			ingest(t, s, notification("g", 4))
			store.set(nil, 0)
			drain(t, s)
			if got := store.got(); !slices.Equal(got, keys("g", 1, 4)) {
				t.Errorf("applied %v, want g/1..g/4", got)
			}
		})
	}
}

// TestCheckpointNotMatchingSegments: a checkpoint that does not name a
// record boundary of an existing segment is reported (log and metric),
// and the spool replays from an earlier point, never a later one: every
// record is applied, those spooled before and after the restart.
func TestCheckpointNotMatchingSegments(t *testing.T) {
	tests := []struct {
		name       string
		checkpoint func(size int64) string
		mismatch   float64
		want       []string
	}{
		{"a later segment", func(int64) string { return "segment=5 offset=8\n" }, 1, keys("g", 1, 5)},
		{"past the end of the segment", func(size int64) string { return fmt.Sprintf("segment=1 offset=%d\n", size+1000) }, 1, keys("g", 1, 5)},
		{"inside a record", func(int64) string { return "segment=1 offset=20\n" }, 1, keys("g", 1, 5)},
		{"an earlier, deleted segment", func(int64) string { return "segment=0 offset=8\n" }, 1, keys("g", 1, 5)},
		// A good checkpoint: the end of the segment, all three applied.
		{"the end of the segment", func(size int64) string { return fmt.Sprintf("segment=1 offset=%d\n", size) }, 0, keys("g", 4, 5)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := spoolFiles(t, dir, 3)
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, checkpointFile), []byte(tc.checkpoint(st.Size())), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			store := &fakeStore{fail: errDown}
			s := open(t, dir, store, func(o *Options) { o.Logger = newLogger(&logs) })
			if got := testutil.ToFloat64(s.metrics.mismatch); got != tc.mismatch {
				t.Errorf("checkpoint mismatches = %v, want %v", got, tc.mismatch)
			}
			if tc.mismatch > 0 && !strings.Contains(logs.String(), "checkpoint") {
				t.Errorf("the mismatch is not logged: %s", logs.String())
			}
			// Notifications answered 2xx after the restart.
			ingest(t, s, notification("g", 4), notification("g", 5))
			store.set(nil, 0)
			drain(t, s)
			if got := store.got(); !slices.Equal(got, tc.want) {
				t.Errorf("applied %v, want %v", got, tc.want)
			}
		})
	}
}

// TestTruncatedSegmentSaysWhatIsTrue: an incomplete record at the end of
// the last segment is either a crash while appending (never answered) or
// a file cut short (answered, then lost); the log does not claim the
// first.
func TestTruncatedSegmentSaysWhatIsTrue(t *testing.T) {
	dir := t.TempDir()
	path := spoolFiles(t, dir, 3)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b[:len(b)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	open(t, dir, &fakeStore{}, func(o *Options) { o.Logger = newLogger(&logs) })
	if strings.Contains(logs.String(), "(a crash while appending; its webhook was not answered)") ||
		!strings.Contains(logs.String(), "truncated") || !strings.Contains(logs.String(), "answered 2xx is lost") {
		t.Errorf("log: %s", logs.String())
	}
}

// TestUndecodableRecordBecomesDeadLetter: a record whose checksum holds
// over bytes that are not a notification (written by a nines with another
// format, say) is kept with its bytes, not dropped.
func TestUndecodableRecordBecomesDeadLetter(t *testing.T) {
	dir := t.TempDir()
	path := spoolFiles(t, dir, 2)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(frame([]byte(`{"group_key": 42}`), t0)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	store := &fakeStore{}
	s := open(t, dir, store)
	drain(t, s)
	if got := store.got(); !slices.Equal(got, keys("g", 1, 2)) {
		t.Errorf("applied %v", got)
	}
	ds, _, err := ReadDeadLetters(dir)
	if err != nil || len(ds) != 1 || string(ds[0].Payload) != `{"group_key": 42}` || !ds[0].AcceptedAt.Equal(t0) {
		t.Fatalf("dead letters %+v, %v; want the undecodable record with its bytes", ds, err)
	}
	if got := testutil.ToFloat64(s.metrics.rejected); got != 1 {
		t.Errorf("rejected = %v, want 1", got)
	}
}

// TestCheckpointPastDamagedTailMatches: the replay moves past bytes
// damaged to the end of a segment, to its end, and checkpoints there; on
// the next start that checkpoint matches (nothing reported, nothing
// replayed twice).
func TestCheckpointPastDamagedTailMatches(t *testing.T) {
	dir := t.TempDir()
	store := &fakeStore{fail: errDown}
	s := open(t, dir, store, func(o *Options) { o.SegmentBytes = 4096 })
	for i := 1; i <= 30; i++ {
		ingest(t, s, notification("g", i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := listSegments(dir)
	if len(segs) < 2 {
		t.Fatalf("segments %v, want several", segs)
	}
	first := filepath.Join(dir, segmentName(segs[0]))
	b, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 0xff // the last record of a segment that is not the last
	if err := os.WriteFile(first, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeCheckpoint(dir, position{segs[0], int64(len(b))}); err != nil {
		t.Fatal(err)
	}
	store.set(nil, 0)
	s = open(t, dir, store)
	if got := testutil.ToFloat64(s.metrics.mismatch); got != 0 {
		t.Errorf("checkpoint mismatches = %v, want 0", got)
	}
	drain(t, s)
	if got := store.got(); len(got) == 0 || got[0] == "g/1" {
		t.Errorf("applied %v, want only the records after the first segment", got)
	}
}
