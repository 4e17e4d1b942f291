package spool

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ninesops/nines/incidents"
)

// TestReplayReadsInPieces: the replay reads a segment a batch's room at a
// time, not to its end; records cut off by the end of a read, records
// larger than a whole batch, and damaged bytes are replayed exactly as
// when the segment is read at once.
func TestReplayReadsInPieces(t *testing.T) {
	sized := func(i, size int) incidents.Notification {
		n := notification("g", i)
		n.Alerts[0].Annotations = map[string]string{"description": strings.Repeat("x", size)}
		return n
	}
	// g/2 and g/4 are larger than most batches below.
	spooled := []incidents.Notification{sized(1, 10), sized(2, 3000), sized(3, 10), sized(4, 10000), sized(5, 10), sized(6, 10)}
	tests := []struct {
		name   string
		damage func(b []byte, offs []int) []byte
		want   []string
	}{
		{"intact", func(b []byte, _ []int) []byte { return b }, keys("g", 1, 6)},
		{"a large record's payload damaged", func(b []byte, offs []int) []byte {
			b[offs[1]+headerSize+100] ^= 0x40
			return b
		}, []string{"g/1", "g/3", "g/4", "g/5", "g/6"}},
		{"a length damaged before a large record", func(b []byte, offs []int) []byte {
			b[offs[2]] = 0xff
			return b
		}, []string{"g/1", "g/2", "g/4", "g/5", "g/6"}},
		{"a small record damaged", func(b []byte, offs []int) []byte {
			b[offs[4]+headerSize+5] ^= 0x40
			return b
		}, []string{"g/1", "g/2", "g/3", "g/4", "g/6"}},
	}
	for _, tc := range tests {
		for _, batch := range []int{1, 100, 700, 2500, 5000, 9000, replayBatchBytes} {
			t.Run(fmt.Sprintf("%s/batch=%d", tc.name, batch), func(t *testing.T) {
				dir := t.TempDir()
				w := open(t, dir, &fakeStore{fail: errDown})
				ingest(t, w, spooled...)
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				path := dir + "/" + segmentName(1)
				b, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, tc.damage(b, recordOffsets(t, b)), 0o600); err != nil {
					t.Fatal(err)
				}
				store := &fakeStore{}
				s := open(t, dir, store)
				s.batchBytes = batch
				opened := testutil.ToFloat64(s.metrics.corrupt)
				drain(t, s)
				if got := store.got(); !slices.Equal(got, tc.want) {
					t.Errorf("applied %v, want %v", got, tc.want)
				}
				// Damaged bytes are skipped once by the replay, as when
				// read at once (and once when opening).
				if got, want := testutil.ToFloat64(s.metrics.corrupt)-opened, opened; got != want {
					t.Errorf("the replay skipped damaged bytes %v times, want %v", got, want)
				}
			})
		}
	}
}

// TestReplayBatchHoldsLittleOfTheSegment: what a batch's records keep in
// memory until they are applied is about a batch's bytes, not the rest of
// the segment they come from (up to --spool.segment-bytes).
func TestReplayBatchHoldsLittleOfTheSegment(t *testing.T) {
	s := open(t, t.TempDir(), &fakeStore{fail: errDown})
	for i := range 200 {
		ingest(t, s, notification("g", i))
	}
	rec, err := encodeRecord(notification("g", 100), t0)
	if err != nil {
		t.Fatal(err)
	}
	s.batchBytes = 10 * len(rec)
	recs, _, err := s.readBatch(DefaultReplayBatch)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 10 || len(recs) > 11 {
		t.Fatalf("a batch of %d records, want 10 or 11 (10 of them fill the batch)", len(recs))
	}
	// A body points into what was read with it: its capacity runs to the
	// end of that read.
	if held := cap(recs[0].body); held > 2*s.batchBytes {
		t.Errorf("the batch holds %d bytes read from the segment, for a batch of %d bytes (the segment holds %d)",
			held, s.batchBytes, 200*len(rec))
	}
}

// FuzzReplayInPieces: whatever a segment holds, replaying it a few bytes
// at a time applies what replaying it at once does, and counts the same
// damaged bytes.
func FuzzReplayInPieces(f *testing.F) {
	rec1, _ := encodeRecord(notification("g", 1), t0)
	rec2, _ := encodeRecord(notification("h", 2), t0)
	f.Add(append(append([]byte{}, rec1...), rec2...), uint16(20))
	f.Add(rec1[:len(rec1)-3], uint16(1))
	f.Add(append(append(append([]byte{}, rec1...), []byte("garbage")...), rec2...), uint16(len(rec1)+3))
	f.Add(append(append([]byte{0, 0, 0, 1}, rec1...), rec2...), uint16(100))
	f.Fuzz(func(t *testing.T, data []byte, batch uint16) {
		replay := func(batchBytes int) ([]string, float64) {
			dir := t.TempDir()
			if err := os.WriteFile(dir+"/"+segmentName(1), append([]byte(segmentMagic), data...), 0o600); err != nil {
				t.Fatal(err)
			}
			store := &fakeStore{}
			s := open(t, dir, store)
			s.batchBytes = batchBytes
			drain(t, s)
			got := store.got()
			slices.Sort(got) // groups are replayed at once
			return got, testutil.ToFloat64(s.metrics.corrupt)
		}
		whole, wholeCorrupt := replay(replayBatchBytes)
		pieces, piecesCorrupt := replay(1 + int(batch))
		if !slices.Equal(pieces, whole) || piecesCorrupt != wholeCorrupt {
			t.Fatalf("in pieces of %d bytes: applied %v, %v damaged; at once: %v, %v", 1+int(batch), pieces, piecesCorrupt, whole, wholeCorrupt)
		}
	})
}

// TestReplayDoesNotDecodeWhatItHandsOn: handing spooled notifications to
// a StoredIngester costs the spool a few allocations per batch, not per
// notification: it checks those an earlier process spooled
// (incidents.CheckStored; its own it encoded itself), it does not decode
// them (a storm's notification decodes in some 2,000).
func TestReplayDoesNotDecodeWhatItHandsOn(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, &fakeStore{fail: errDown})
	const spooled = 40
	for g := range spooled {
		ingest(t, s, stormNotification(g))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, discardStore{}) // the records are an earlier process'
	if s.spooledHere(position{s.readSeq, s.readOff}) {
		t.Fatal("after a restart, the spooled records count as this process' own: they would not be checked")
	}
	replayed := 0
	allocs := testing.AllocsPerRun(3, func() {
		recs, _, err := s.readBatch(DefaultReplayBatch)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.apply(context.Background(), recs); err != nil {
			t.Fatal(err)
		}
		replayed = len(recs)
	})
	if replayed != spooled {
		t.Fatalf("a batch of %d notifications, want %d", replayed, spooled)
	}
	if allocs >= spooled {
		t.Errorf("replaying a batch of %d notifications allocates %v times: it decodes them", spooled, allocs)
	}
}
