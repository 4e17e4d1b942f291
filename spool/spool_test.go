package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ninesops/nines/incidents"
)

// fakeStore is an Ingester that records what it applied, in order, and
// fails or stalls on demand.
type fakeStore struct {
	mu      sync.Mutex
	applied []string // GroupKey/seq of each applied notification
	fail    error
	stall   time.Duration
	invalid map[string]bool // keys refused as invalid
}

func (f *fakeStore) Ingest(ctx context.Context, n incidents.Notification) error {
	f.mu.Lock()
	fail, stall := f.fail, f.stall
	f.mu.Unlock()
	if stall > 0 {
		select {
		case <-time.After(stall):
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", incidents.ErrUnavailable, ctx.Err())
		}
	}
	if fail != nil {
		return fail
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.invalid[key(n)] {
		return fmt.Errorf("%w: refused", incidents.ErrInvalid)
	}
	f.applied = append(f.applied, key(n))
	return nil
}

func (f *fakeStore) set(fail error, stall time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.stall = fail, stall
}

func (f *fakeStore) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

func key(n incidents.Notification) string { return n.GroupKey + "/" + n.Receiver }

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// notification i of group g; Receiver carries i so that tests can tell
// notifications apart.
func notification(g string, i int) incidents.Notification {
	return incidents.Notification{
		Receiver: fmt.Sprint(i), Status: incidents.AlertFiring, GroupKey: g,
		GroupLabels: map[string]string{"alertname": g}, ExternalURL: "http://am:9093",
		ReceivedAt: t0.Add(time.Duration(i) * time.Second),
		Alerts: []incidents.Alert{{
			Fingerprint: "fp-" + g, Status: incidents.AlertFiring, StartsAt: t0,
			Labels: map[string]string{"alertname": g, "service": "api", "odd": `'; DROP TABLE x; {{ .x }}`},
		}},
	}
}

var errDown = fmt.Errorf("%w: connection refused", incidents.ErrUnavailable)

func open(t *testing.T, dir string, next Ingester, configure ...func(*Options)) *Spool {
	t.Helper()
	o := Options{Dir: dir, Next: next, Timeout: 200 * time.Millisecond, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}
	for _, c := range configure {
		c(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ingest(t *testing.T, s *Spool, ns ...incidents.Notification) {
	t.Helper()
	for _, n := range ns {
		if err := s.Ingest(context.Background(), n); err != nil {
			t.Fatalf("ingest %s: %v", key(n), err)
		}
	}
}

// drain replays everything and fails the test if it takes long.
func drain(t *testing.T, s *Spool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

func keys(g string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s/%d", g, i))
	}
	return out
}

func TestDirectWhileStoreIsUp(t *testing.T) {
	store := &fakeStore{}
	s := open(t, t.TempDir(), store)
	ingest(t, s, notification("g", 1), notification("g", 2))
	if got := store.got(); !slices.Equal(got, keys("g", 1, 2)) {
		t.Errorf("applied %v", got)
	}
	if st := s.Status(); st.Records != 0 || st.Bytes != 0 || st.Full {
		t.Errorf("status %+v, want empty", st)
	}
}

func TestSpoolsWhileStoreIsDownAndKeepsOrder(t *testing.T) {
	tests := []struct {
		name  string
		fail  error
		stall time.Duration
	}{
		{"unavailable", errDown, 0},
		{"too slow", nil, time.Second},
		{"deadline", context.DeadlineExceeded, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			store := &fakeStore{}
			reg := prometheus.NewRegistry()
			s := open(t, t.TempDir(), store, func(o *Options) { o.Registerer = reg })
			ingest(t, s, notification("g", 1))
			store.set(tc.fail, tc.stall)
			ingest(t, s, notification("g", 2), notification("h", 3))
			// The store is back, but notifications keep going to the
			// spool until it is replayed: g/4 must not overtake g/2.
			store.set(nil, 0)
			ingest(t, s, notification("g", 4))
			if st := s.Status(); st.Records != 3 || st.Bytes == 0 {
				t.Fatalf("status %+v, want 3 records", st)
			}
			if got := testutil.ToFloat64(s.metrics.appends); got != 3 {
				t.Errorf("appends = %v, want 3", got)
			}
			drain(t, s)
			got := store.got()
			if len(got) != 4 || got[0] != "g/1" || !slices.Equal(filter(got, "g"), []string{"g/1", "g/2", "g/4"}) {
				t.Errorf("applied %v, want g in order 1, 2, 4 and h/3", got)
			}
			if st := s.Status(); st.Records != 0 || st.Bytes != 0 || st.OldestAgeSeconds != 0 {
				t.Errorf("status after drain %+v", st)
			}
			for _, name := range []string{"nines_spool_records", "nines_spool_bytes", "nines_spool_oldest_age_seconds",
				"nines_spool_appends_total", "nines_spool_replayed_total"} {
				if n, err := testutil.GatherAndCount(reg, name); err != nil || n != 1 {
					t.Errorf("metric %s: %d series, %v", name, n, err)
				}
			}
			// Empty again: straight to the store.
			ingest(t, s, notification("g", 5))
			if got := store.got(); got[len(got)-1] != "g/5" || s.Status().Records != 0 {
				t.Errorf("after drain: applied %v, status %+v", got, s.Status())
			}
		})
	}
}

func filter(keys []string, g string) []string {
	var out []string
	for _, k := range keys {
		if k[:len(g)+1] == g+"/" {
			out = append(out, k)
		}
	}
	return out
}

func TestInvalidIsNotSpooled(t *testing.T) {
	store := &fakeStore{invalid: map[string]bool{"g/1": true}}
	s := open(t, t.TempDir(), store)
	err := s.Ingest(context.Background(), notification("g", 1))
	if !errors.Is(err, incidents.ErrInvalid) || s.Status().Records != 0 {
		t.Errorf("err = %v, records %d; want ErrInvalid and nothing spooled", err, s.Status().Records)
	}
}

func TestFull(t *testing.T) {
	now := t0
	tests := []struct {
		name      string
		configure func(*Options)
		step      func() // between the first and the second notification
	}{
		{"by size", func(o *Options) { o.MaxBytes, o.SegmentBytes = 4096, 4096 }, func() {}},
		{"by age", func(o *Options) { o.MaxAge = time.Hour }, func() { now = now.Add(2 * time.Hour) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now = t0
			store := &fakeStore{fail: errDown}
			s := open(t, t.TempDir(), store, tc.configure, func(o *Options) { o.Now = func() time.Time { return now } })
			ingest(t, s, notification("g", 1))
			tc.step()
			var err error
			for i := 2; i < 100 && err == nil; i++ {
				err = s.Ingest(context.Background(), notification("g", i))
			}
			if !errors.Is(err, incidents.ErrUnavailable) {
				t.Fatalf("err = %v, want ErrUnavailable once full", err)
			}
			if st := s.Status(); !st.Full || st.LastError == "" {
				t.Errorf("status %+v, want full with a reason", st)
			}
			// Nothing accepted is dropped: once the store is back, all of
			// it is replayed and the spool takes notifications again.
			n := s.Status().Records
			store.set(nil, 0)
			drain(t, s)
			if got := len(store.got()); int64(got) != n {
				t.Errorf("replayed %d, want %d", got, n)
			}
			ingest(t, s, notification("g", 1000))
		})
	}
}

func TestRestartReplaysInOrder(t *testing.T) {
	dir := t.TempDir()
	store := &fakeStore{fail: errDown}
	s := open(t, dir, store, func(o *Options) { o.SegmentBytes = 4096 })
	for i := 1; i <= 100; i++ {
		ingest(t, s, notification("g", i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if segs, _ := listSegments(dir); len(segs) < 3 {
		t.Fatalf("segments = %v, want several (rotation)", segs)
	}
	store.set(nil, 0)
	s = open(t, dir, store, func(o *Options) { o.SegmentBytes = 4096; o.ReplayBatch = 7 })
	if st := s.Status(); st.Records != 100 || st.OldestAgeSeconds <= 0 {
		t.Fatalf("status after restart %+v, want 100 records", st)
	}
	drain(t, s)
	if got := store.got(); !slices.Equal(got, keys("g", 1, 100)) {
		t.Fatalf("applied %v", got)
	}
	// Replayed segments are gone; a fresh, empty one remains.
	segs, _ := listSegments(dir)
	if len(segs) != 1 {
		t.Errorf("segments after drain = %v, want one", segs)
	}
	if fi, err := os.Stat(filepath.Join(dir, segmentName(segs[0]))); err != nil || fi.Size() != int64(len(segmentMagic)) {
		t.Errorf("segment after drain: %v %v", fi, err)
	}
	// Exactly once: reopening replays nothing.
	_ = s.Close()
	s = open(t, dir, store)
	drain(t, s)
	if got := len(store.got()); got != 100 {
		t.Errorf("applied %d after a second restart, want still 100", got)
	}
}

// TestCrashDuringReplayReplaysAtMostABatch stops replay midway, as a
// crash would, and checks that the next start goes on from the checkpoint.
func TestCrashDuringReplayReplaysAtMostABatch(t *testing.T) {
	dir := t.TempDir()
	store := &countingStore{failAfter: 25}
	s := open(t, dir, store, func(o *Options) { o.ReplayBatch = 10; o.ReplayWorkers = 1 })
	store.down = true
	for i := 1; i <= 50; i++ {
		ingest(t, s, notification("g", i))
	}
	store.down = false
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_ = s.Drain(ctx) // fails from the 26th on, until the deadline
	cancel()
	_ = s.Close()
	if st := readCP(t, dir); st.off == int64(len(segmentMagic)) {
		t.Fatalf("checkpoint did not move: %+v", st)
	}
	store.failAfter = 0
	s = open(t, dir, store)
	if got := s.Status().Records; got != 30 {
		t.Errorf("pending after restart = %d, want 30 (batches of 10, 20 applied)", got)
	}
	drain(t, s)
	for i := 1; i <= 50; i++ {
		want := 1
		if i > 20 && i <= 25 {
			want = 2 // applied in the batch that failed, then again
		}
		if got := store.count[fmt.Sprintf("g/%d", i)]; got != want {
			t.Errorf("g/%d applied %d times, want %d", i, got, want)
		}
	}
}

type countingStore struct {
	mu        sync.Mutex
	count     map[string]int
	n         int
	failAfter int
	down      bool
}

func (c *countingStore) Ingest(_ context.Context, n incidents.Notification) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down || (c.failAfter > 0 && c.n >= c.failAfter) {
		return errDown
	}
	if c.count == nil {
		c.count = map[string]int{}
	}
	c.n++
	c.count[key(n)]++
	return nil
}

func readCP(t *testing.T, dir string) position {
	t.Helper()
	p, err := readCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// spoolFiles writes n notifications to a spool in dir while the store is
// down and returns the path of its only segment.
func spoolFiles(t *testing.T, dir string, n int) string {
	t.Helper()
	s := open(t, dir, &fakeStore{fail: errDown})
	for i := 1; i <= n; i++ {
		ingest(t, s, notification("g", i))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := listSegments(dir)
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	return filepath.Join(dir, segmentName(segs[0]))
}

// recordOffsets returns where each record of segment b starts.
func recordOffsets(t *testing.T, b []byte) []int {
	t.Helper()
	var offs []int
	for off := len(segmentMagic); off < len(b); {
		size, _, _, st := parse(b[off:])
		if st != parseOK {
			t.Fatalf("fixture damaged at %d", off)
		}
		offs = append(offs, off)
		off += size
	}
	return offs
}

func TestDamagedSpool(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(b []byte, offs []int) []byte
		want     []string
		corrupt  float64
		truncate bool // the file is cut back to its good records
	}{
		{"torn tail: half a header", func(b []byte, _ []int) []byte {
			rec, _ := encodeRecord(notification("g", 6), t0)
			return append(b, rec[:10]...)
		}, keys("g", 1, 5), 1, true},
		{"torn tail: half a payload", func(b []byte, _ []int) []byte {
			rec, _ := encodeRecord(notification("g", 6), t0)
			return append(b, rec[:len(rec)-5]...)
		}, keys("g", 1, 5), 1, true},
		{"torn tail: zeros (size extended, data lost)", func(b []byte, _ []int) []byte {
			return append(b, make([]byte, 300)...)
		}, keys("g", 1, 5), 1, true},
		{"payload bit flip in the middle", func(b []byte, offs []int) []byte {
			b[offs[2]+headerSize+5] ^= 0x40
			return b
		}, []string{"g/1", "g/2", "g/4", "g/5"}, 1, false},
		{"damaged length in the middle", func(b []byte, offs []int) []byte {
			b[offs[1]] = 0xff
			return b
		}, []string{"g/1", "g/3", "g/4", "g/5"}, 1, false},
		{"damaged last record", func(b []byte, offs []int) []byte {
			b[offs[4]+headerSize] ^= 0xff
			return b
		}, keys("g", 1, 4), 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := spoolFiles(t, dir, 5)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b = tc.damage(b, recordOffsets(t, b))
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			store := &fakeStore{}
			s := open(t, dir, store, func(o *Options) { o.Logger = newLogger(&logs) })
			if got := testutil.ToFloat64(s.metrics.corrupt); got != tc.corrupt {
				t.Errorf("corrupt records = %v, want %v", got, tc.corrupt)
			}
			if !bytes.Contains(logs.Bytes(), []byte("level=WARN")) {
				t.Errorf("no warning logged: %s", logs.String())
			}
			if tc.truncate {
				// New records go after the good ones, not after garbage.
				store.set(errDown, 0)
				ingest(t, s, notification("g", 7))
				store.set(nil, 0)
				tc.want = append(slices.Clone(tc.want), "g/7")
			}
			drain(t, s)
			if got := store.got(); !slices.Equal(got, tc.want) {
				t.Errorf("applied %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDamagedCheckpointReplaysEverything(t *testing.T) {
	dir := t.TempDir()
	spoolFiles(t, dir, 3)
	if err := os.WriteFile(filepath.Join(dir, checkpointFile), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	store := &fakeStore{}
	s := open(t, dir, store)
	drain(t, s)
	if got := store.got(); !slices.Equal(got, keys("g", 1, 3)) {
		t.Errorf("applied %v", got)
	}
}

func TestTornSegmentHeader(t *testing.T) {
	dir := t.TempDir()
	spoolFiles(t, dir, 2)
	// A crash right after creating the next segment, before its header
	// reached the disk.
	if err := os.WriteFile(filepath.Join(dir, segmentName(2)), []byte("NIN"), 0o600); err != nil {
		t.Fatal(err)
	}
	store := &fakeStore{fail: errDown}
	s := open(t, dir, store)
	ingest(t, s, notification("g", 3))
	store.set(nil, 0)
	drain(t, s)
	if got := store.got(); !slices.Equal(got, keys("g", 1, 3)) {
		t.Errorf("applied %v", got)
	}
}

func TestGroupsReplayConcurrentlyEachInOrder(t *testing.T) {
	store := &fakeStore{fail: errDown}
	s := open(t, t.TempDir(), store, func(o *Options) { o.ReplayBatch = 64; o.ReplayWorkers = 8 })
	for i := 1; i <= 50; i++ {
		for _, g := range []string{"a", "b", "c", "d", "e"} {
			ingest(t, s, notification(g, i))
		}
	}
	store.set(nil, 0)
	drain(t, s)
	got := store.got()
	if len(got) != 250 {
		t.Fatalf("applied %d, want 250", len(got))
	}
	for _, g := range []string{"a", "b", "c", "d", "e"} {
		if f := filter(got, g); !slices.Equal(f, keys(g, 1, 50)) {
			t.Errorf("group %s applied in order %v", g, f)
		}
	}
}

// TestRefusedNotificationsBecomeDeadLetters: a spooled notification was
// answered 2xx, so one that the store refuses, or that keeps failing with
// an unexpected error, is put aside, not dropped; an operator sees it
// and applies it again once the cause is fixed.
func TestRefusedNotificationsBecomeDeadLetters(t *testing.T) {
	store := &fakeStore{fail: errDown, invalid: map[string]bool{"g/2": true}}
	dir := t.TempDir()
	reg := prometheus.NewRegistry()
	s := open(t, dir, store, func(o *Options) { o.Registerer = reg })
	ingest(t, s, notification("g", 1), notification("g", 2), notification("g", 3))
	store.set(nil, 0)
	drain(t, s)
	if got := store.got(); !slices.Equal(got, []string{"g/1", "g/3"}) {
		t.Errorf("applied %v", got)
	}
	// A bug in the store: an error neither "unavailable" nor "invalid".
	store.set(errDown, 0)
	ingest(t, s, notification("h", 1))
	store.set(errors.New("unexpected"), 0)
	for range maxAttempts {
		if _, err := s.replayBatch(context.Background()); err == nil {
			break
		}
	}
	if st := s.Status(); st.Records != 0 {
		t.Fatalf("%d records left after %d failed attempts, want the notification put aside", st.Records, maxAttempts)
	}
	ds, damaged, err := ReadDeadLetters(dir)
	if err != nil || damaged != 0 {
		t.Fatalf("read dead letters: %v, %d damaged bytes", err, damaged)
	}
	if len(ds) != 2 || key(ds[0].Notification) != "g/2" || key(ds[1].Notification) != "h/1" ||
		ds[0].Reason != "invalid: refused" || ds[1].Reason != "unexpected" || ds[0].AcceptedAt.IsZero() {
		t.Fatalf("dead letters %+v, want g/2 (refused) and h/1 (unexpected)", ds)
	}
	if !equalNotification(ds[0].Notification, notification("g", 2)) {
		t.Errorf("dead letter %+v, want it as spooled", ds[0].Notification)
	}
	if got := testutil.ToFloat64(s.metrics.deadLetters); got != 2 {
		t.Errorf("nines_spool_dead_letters_total = %v, want 2", got)
	}
	checkDeadLetterGauge(t, reg, 2)

	// Still refused: kept, with the new reason. Then the cause is fixed.
	store.set(nil, 0)
	applied, left, err := ReplayDeadLetters(context.Background(), dir, store, func() time.Time { return t0 })
	if err != nil || applied != 1 || left != 1 {
		t.Fatalf("replay: %d applied, %d left, %v; want h/1 applied, g/2 left", applied, left, err)
	}
	store.mu.Lock()
	store.invalid = nil
	store.mu.Unlock()
	if applied, left, err := ReplayDeadLetters(context.Background(), dir, store, time.Now); err != nil || applied != 1 || left != 0 {
		t.Fatalf("replay: %d applied, %d left, %v; want g/2 applied", applied, left, err)
	}
	if got := store.got(); !slices.Equal(got, []string{"g/1", "g/3", "h/1", "g/2"}) {
		t.Errorf("applied %v", got)
	}
	checkDeadLetterGauge(t, reg, 0)
}

// checkDeadLetterGauge checks what nines_spool_dead_letters says.
func checkDeadLetterGauge(t *testing.T, reg *prometheus.Registry, want int) {
	t.Helper()
	err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(`
# HELP nines_spool_dead_letters Notifications kept in the spool's dead-letter file: answered 2xx, refused by the store, waiting for an operator (nines spool inspect, nines spool replay); -1 if the file cannot be read.
# TYPE nines_spool_dead_letters gauge
nines_spool_dead_letters %d
`, want)), "nines_spool_dead_letters")
	if err != nil {
		t.Error(err)
	}
}

// TestDeadLetterReplayStopsWhileStoreIsDown keeps every dead letter when
// the store is unavailable.
func TestDeadLetterReplayStopsWhileStoreIsDown(t *testing.T) {
	dir := t.TempDir()
	if err := appendDeadLetters(dir, DeadLetter{AcceptedAt: t0, Reason: "x", Notification: notification("g", 1)},
		DeadLetter{AcceptedAt: t0, Reason: "y", Notification: notification("g", 2)}); err != nil {
		t.Fatal(err)
	}
	store := &fakeStore{fail: errDown}
	applied, left, err := ReplayDeadLetters(context.Background(), dir, store, time.Now)
	if !errors.Is(err, incidents.ErrUnavailable) || applied != 0 || left != 2 {
		t.Errorf("replay: %d applied, %d left, %v; want ErrUnavailable and both kept", applied, left, err)
	}
	if ds, _, _ := ReadDeadLetters(dir); len(ds) != 2 {
		t.Errorf("%d dead letters kept, want 2", len(ds))
	}
}

func TestRunReplaysWhenStoreComesBack(t *testing.T) {
	store := &fakeStore{fail: errDown}
	s := open(t, t.TempDir(), store)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	ingest(t, s, notification("g", 1), notification("g", 2))
	time.Sleep(50 * time.Millisecond) // a few failed attempts
	store.set(nil, 0)
	deadline := time.Now().Add(5 * time.Second)
	for s.Status().Records > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if got := store.got(); !slices.Equal(got, keys("g", 1, 2)) {
		t.Errorf("applied %v", got)
	}
}

func TestOneProcessPerSpool(t *testing.T) {
	dir := t.TempDir()
	open(t, dir, &fakeStore{})
	if _, err := Open(Options{Dir: dir, Next: &fakeStore{}}); err == nil {
		t.Fatal("a second Open of the same directory succeeded")
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"no dir", Options{Next: &fakeStore{}}},
		{"no next", Options{Dir: t.TempDir()}},
		{"tiny segments", Options{Dir: t.TempDir(), Next: &fakeStore{}, SegmentBytes: 10}},
		{"max below segment", Options{Dir: t.TempDir(), Next: &fakeStore{}, SegmentBytes: 1 << 20, MaxBytes: 1 << 19}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Open(tc.o); err == nil {
				t.Error("Open succeeded")
			}
		})
	}
}

func TestRecordRoundTrip(t *testing.T) {
	n := notification("g", 1)
	n.Alerts = append(n.Alerts, incidents.Alert{
		Fingerprint: "r", Status: incidents.AlertResolved, StartsAt: t0, EndsAt: t0.Add(time.Minute),
		Labels: map[string]string{"a": "\xff\x00\u2028"}, Annotations: map[string]string{"summary": "{{ .Labels }}"},
		GeneratorURL: "http://p/graph?g0.expr=up%3D%3D0",
	})
	n.TruncatedAlerts, n.CommonLabels, n.CommonAnnotations = 3, map[string]string{"x": "y"}, map[string]string{"z": "w"}
	rec, err := encodeRecord(n, t0)
	if err != nil {
		t.Fatal(err)
	}
	size, at, payload, st := parse(rec)
	if st != parseOK || size != len(rec) || !at.Equal(t0) {
		t.Fatalf("parse: %d %v %v", size, at, st)
	}
	got, err := incidents.UnmarshalNotification(payload)
	if err != nil {
		t.Fatal(err)
	}
	n.Alerts[1].Labels["a"] = "\ufffd\x00\u2028" // JSON replaces invalid UTF-8
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", n) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, n)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func newLogger(b *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(&syncBuffer{b: b}, nil))
}

// equalNotification compares notifications as the spool keeps them.
func equalNotification(a, b incidents.Notification) bool {
	return reflect.DeepEqual(incidents.StoredForm(a), incidents.StoredForm(b))
}

// TestBarrierWaitsForWhatWasSpooled: a sync must count the notifications
// the spool holds: Barrier returns only once those spooled before it are
// handed on, and says how many are left when it gives up.
func TestBarrierWaitsForWhatWasSpooled(t *testing.T) {
	store := &fakeStore{}
	s := open(t, t.TempDir(), store)
	if err := s.Barrier(t.Context()); err != nil {
		t.Fatalf("empty spool: %v", err)
	}
	store.set(errDown, 0)
	ingest(t, s, notification("g", 1), notification("g", 2))
	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := s.Barrier(short); !errors.Is(err, incidents.ErrUnavailable) || !strings.Contains(err.Error(), "2 notifications") {
		t.Fatalf("Barrier with the store down = %v, want unavailable with 2 notifications waiting", err)
	}
	store.set(nil, 0)
	ctx, cancel2 := context.WithCancel(t.Context())
	defer cancel2()
	go func() { _ = s.Run(ctx) }()
	if err := s.Barrier(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := store.got(); !slices.Equal(got, keys("g", 1, 2)) {
		t.Fatalf("Barrier returned with %v handed on, want g/1 and g/2", got)
	}
}

// storedStore is a StoredIngester: it records each call's stored forms.
type storedStore struct {
	fakeStore
	calls  [][][]byte
	refuse bool // refuse batches of more than one
}

func (s *storedStore) IngestStored(ctx context.Context, bodies [][]byte) error {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != nil {
		return fail
	}
	if s.refuse && len(bodies) > 1 {
		return errors.New("refused as a whole")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, bodies)
	for _, b := range bodies {
		n, err := incidents.UnmarshalNotification(b)
		if err != nil {
			return err
		}
		s.applied = append(s.applied, key(n))
	}
	return nil
}

// TestReplayHandsOnStoredFormsInOneGo: to a StoredIngester (the journal)
// the spool replays a batch in one call, with the bytes it spooled (no
// second encoding), and falls back to one at a time when the batch is
// refused as a whole.
func TestReplayHandsOnStoredFormsInOneGo(t *testing.T) {
	for _, refuse := range []bool{false, true} {
		t.Run(fmt.Sprint("refuse=", refuse), func(t *testing.T) {
			store := &storedStore{refuse: refuse}
			s := open(t, t.TempDir(), store)
			store.set(errDown, 0)
			var ns []incidents.Notification
			for i := range 5 {
				ns = append(ns, notification(fmt.Sprint("g", i%2), i))
			}
			ingest(t, s, ns...)
			store.set(nil, 0)
			drain(t, s)
			if got := store.got(); len(got) != 5 {
				t.Fatalf("replayed %v, want 5 notifications", got)
			}
			calls := len(store.calls)
			if !refuse && calls != 1 {
				t.Errorf("%d calls for a batch of 5, want 1", calls)
			}
			if refuse && calls != 5 {
				t.Errorf("%d calls after the batch was refused, want 5", calls)
			}
			for _, n := range ns {
				want, _ := incidents.MarshalNotification(n)
				found := false
				for _, c := range store.calls {
					for _, b := range c {
						found = found || bytes.Equal(b, want)
					}
				}
				if !found {
					t.Errorf("%s: not handed on as spooled (%s)", key(n), want)
				}
			}
		})
	}
}

// waitingStore is a StoredIngester that holds every call until release
// is closed, as a log's group commit holds the webhooks waiting for it.
type waitingStore struct {
	discardStore
	arrived chan struct{}
	release chan struct{}
}

func (w *waitingStore) IngestStored(ctx context.Context, bodies [][]byte) error {
	w.arrived <- struct{}{}
	<-w.release
	return nil
}

// TestIngestLetsDecodedAlertsGo: while thousands of webhooks wait for the
// log at once, each holds its notification's stored form, not also its
// decoded alerts (label maps several times the size of the body). Eight
// notifications of 4 MB wait in the spool's direct path; the heap then
// holds about their stored forms, not twice them.
func TestIngestLetsDecodedAlertsGo(t *testing.T) {
	const (
		waiting = 8
		big     = 4 << 20
	)
	store := &waitingStore{arrived: make(chan struct{}, waiting), release: make(chan struct{})}
	s := open(t, t.TempDir(), store, func(o *Options) { o.Timeout = time.Minute })
	before := heapInUse()
	var wg sync.WaitGroup
	for i := range waiting {
		wg.Go(func() {
			// The notification is built here and not used after Ingest,
			// as the webhook's handler does.
			a := incidents.Alert{Fingerprint: fmt.Sprintf("fp%d", i), Status: incidents.AlertFiring, StartsAt: time.Now(),
				Labels:      map[string]string{"alertname": "Big"},
				Annotations: map[string]string{"description": strings.Repeat(string(rune('a'+i)), big)}}
			if err := s.Ingest(context.Background(), incidents.Notification{GroupKey: fmt.Sprintf("g%d", i), Status: incidents.AlertFiring, Alerts: []incidents.Alert{a}}); err != nil {
				t.Error(err)
			}
		})
	}
	for range waiting {
		<-store.arrived
	}
	held := heapInUse() - before
	close(store.release)
	wg.Wait()
	if stored := int64(waiting * big); held > stored+stored/2 {
		t.Errorf("%d notifications of %d MB waiting for the store hold %d MB of heap, want about their stored forms (%d MB), not their decoded alerts too",
			waiting, big>>20, held>>20, stored>>20)
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
