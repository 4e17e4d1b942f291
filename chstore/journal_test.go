package chstore_test

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/journal"
)

// storeWithClock opens a store on a fresh database whose clock (the time
// its log INSERTs are stamped with) is what setNow last set.
func storeWithClock(t *testing.T) (s *testStore, setNow func(time.Time)) {
	var (
		mu  sync.Mutex
		now time.Time
	)
	s = openStore(t, chtest.Database(t), func(o *chstore.Options) {
		o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	})
	return s, func(t time.Time) { mu.Lock(); defer mu.Unlock(); now = t }
}

// TestNotificationLog: records are stamped with the time of their INSERT
// and come back in (time, hash) order after a position, pages stop at the
// row and byte bounds, records not wanted come without body, and retention
// drops whole days.
func TestNotificationLog(t *testing.T) {
	s, setNow := storeWithClock(t)
	ctx := t.Context()
	day1 := time.Date(2026, 11, 1, 23, 59, 59, 0, time.UTC)
	var recs []journal.Record
	for i := range 6 {
		at := day1.Add(time.Duration(i/2) * time.Second) // two records per INSERT
		body := bytes.Repeat([]byte{'a' + byte(i)}, 100*(i+1))
		// The time a record is appended with does not count: its
		// INSERT's does.
		recs = append(recs, journal.NewRecord(journal.KindNotification, body, at.Add(-time.Hour)))
		recs[i].At = at
	}
	for i := 0; i < len(recs); i += 2 {
		setNow(recs[i].At)
		if err := s.AppendLog(ctx, []journal.Record{recs[i+1], recs[i]}); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	want := slices.Clone(recs)
	slices.SortFunc(want, func(a, b journal.Record) int {
		if a.At.Equal(b.At) {
			return bytes.Compare([]byte(a.Hash), []byte(b.Hash))
		}
		return a.At.Compare(b.At)
	})
	all, err := s.ReadLog(ctx, journal.Position{}, 100, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) {
		t.Fatalf("read %d records, want %d", len(all), len(want))
	}
	for i := range want {
		if all[i].Hash != want[i].Hash || !all[i].At.Equal(want[i].At) || !bytes.Equal(all[i].Body, want[i].Body) || all[i].Kind != journal.KindNotification {
			t.Errorf("record %d = %s %v %d bytes, want %s %v %d bytes", i, all[i].Hash[:8], all[i].At, len(all[i].Body), want[i].Hash[:8], want[i].At, len(want[i].Body))
		}
	}
	tests := []struct {
		name     string
		after    journal.Position
		rows     int
		bytes    int64
		want     func(journal.Record) bool
		hashes   []string
		withBody []bool
	}{
		{"after the second record, two rows", journal.Of(want[1]), 2, 1 << 20, nil,
			[]string{want[2].Hash, want[3].Hash}, []bool{true, true}},
		{"bytes stop the page (at least one record)", journal.Position{}, 100, 1, nil,
			[]string{want[0].Hash}, []bool{true}},
		{"records not wanted come without body and cost no bytes", journal.Of(want[3]), 100, int64(len(want[5].Body)),
			func(r journal.Record) bool { return r.Hash == want[5].Hash },
			[]string{want[4].Hash, want[5].Hash}, []bool{false, true}},
		{"nothing after the last", journal.Of(want[5]), 100, 1 << 20, nil, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ReadLog(ctx, tc.after, tc.rows, tc.bytes, tc.want)
			if err != nil {
				t.Fatal(err)
			}
			var hashes []string
			var bodies []bool
			for _, r := range got {
				hashes, bodies = append(hashes, r.Hash), append(bodies, r.Body != nil)
			}
			if fmt.Sprint(hashes) != fmt.Sprint(tc.hashes) || fmt.Sprint(bodies) != fmt.Sprint(tc.withBody) {
				t.Errorf("got %v with bodies %v, want %v with %v", hashes, bodies, tc.hashes, tc.withBody)
			}
		})
	}

	// Retention: records of 1 November go, those of the 2nd stay.
	dropped, err := s.DropLogBefore(ctx, time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(dropped) != "[2026-11-01]" {
		t.Errorf("dropped %v, want [2026-11-01]", dropped)
	}
	left, err := s.ReadLog(ctx, journal.Position{}, 100, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 4 || left[0].At.Day() != 2 {
		t.Errorf("after retention %d records left, want the 4 of 2 November", len(left))
	}
}

// TestLogReadStopsAtAnInsertUnderWay: the log's INSERTs run side by side,
// so one sent earlier (stamped earlier) may become visible after one sent
// later. A reader must not pass the earlier one's place while it is under
// way: the deriver would move its position past it and not see it until
// it looks back, and the sync barrier would return before it is applied.
func TestLogReadStopsAtAnInsertUnderWay(t *testing.T) {
	s := openStore(t, chtest.Database(t))
	ctx := t.Context()
	release := make(chan struct{})
	var once, released sync.Once
	free := func() { released.Do(func() { close(release) }) }
	t.Cleanup(free) // before the store closes, even when the test fails
	chstore.HoldLogInserts(s.Store, func(int64) {
		held := false
		once.Do(func() { held = true })
		if held {
			<-release // the first INSERT only
		}
	})
	slow := journal.NewRecord(journal.KindNotification, []byte("slow"), time.Now())
	fast := journal.NewRecord(journal.KindNotification, []byte("fast"), time.Now())
	slowDone := make(chan error, 1)
	go func() { slowDone <- s.AppendLog(ctx, []journal.Record{slow}) }()
	// The slow INSERT is stamped and held; the fast one goes past it.
	deadline := time.Now().Add(10 * time.Second)
	time.Sleep(50 * time.Millisecond) // let the slow one be stamped first
	if err := s.AppendLog(ctx, []journal.Record{fast}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-slowDone:
		t.Fatalf("the first INSERT was not held (err %v)", err)
	default:
	}
	got, err := s.ReadLog(ctx, journal.Position{}, 100, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("while the earlier INSERT is under way, ReadLog returned %d records (%s…): a reader would pass it", len(got), got[0].Body)
	}
	free()
	if err := <-slowDone; err != nil {
		t.Fatal(err)
	}
	for time.Now().Before(deadline) {
		got, err = s.ReadLog(ctx, journal.Position{}, 100, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 2 {
			break
		}
	}
	if len(got) != 2 || string(got[0].Body) != "slow" || string(got[1].Body) != "fast" {
		t.Fatalf("after both INSERTs, read %d records, want slow then fast", len(got))
	}
}

// TestCommandResultsAndCursor: the first result of a command counts, and
// the deriver's cursor reads back as written.
func TestCommandResultsAndCursor(t *testing.T) {
	s := openStore(t, chtest.Database(t))
	ctx := t.Context()
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	if err := s.PutResults(ctx, []journal.Result{{ID: "cmd-1", Incident: "inc-1", Status: "ok", At: at}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutResults(ctx, []journal.Result{{ID: "cmd-1", Status: "conflict", Message: "again", At: at.Add(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Results(ctx, []string{"cmd-1", "cmd-2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["cmd-1"].Status != "ok" || got["cmd-1"].Incident != "inc-1" {
		t.Errorf("results = %+v, want cmd-1 ok on inc-1 only", got)
	}
	if _, ok, err := s.LogCursor(ctx, journal.LeaseName); err != nil || ok {
		t.Fatalf("cursor before any = %v, %v; want none", ok, err)
	}
	if err := s.SetLogCursor(ctx, journal.LeaseName, journal.Position{At: at}, at); err != nil {
		t.Fatal(err)
	}
	p, ok, err := s.LogCursor(ctx, journal.LeaseName)
	if err != nil || !ok || !p.At.Equal(at) {
		t.Errorf("cursor = %v %v %v, want %v", p, ok, err, at)
	}
}

// TestLargeAppendArrivesWhole: an append larger than one block (the log
// sends a large INSERT as several blocks, to hold one at a time) stores
// every record, bodies intact, as one part: the INSERT stays one. Read
// back, the bodies come in blocks (of one row for these large bodies, of
// up to chstore.BodiesBlockRows for small ones): each comes whole, with
// its own record.
func TestLargeAppendArrivesWhole(t *testing.T) {
	s := openStore(t, chtest.Database(t))
	ctx := t.Context()
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var recs []journal.Record
	for i := range 24 { // 24 × 200 kB: five blocks or so
		body := bytes.Repeat([]byte(fmt.Sprintf("%02d", i)), 100_000)
		recs = append(recs, journal.NewRecord(journal.KindNotification, body, at))
	}
	small := map[string]bool{}
	for i := range 2*chstore.BodiesBlockRows + 5 { // 1 kB each: three blocks
		body := bytes.Repeat([]byte(fmt.Sprintf("s%03d", i)), 250)
		recs = append(recs, journal.NewRecord(journal.KindNotification, body, at))
		small[recs[len(recs)-1].Hash] = true
	}
	if err := s.AppendLog(ctx, recs); err != nil {
		t.Fatalf("append: %v", err)
	}
	got, err := s.ReadLog(ctx, journal.Position{}, 100, 64<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("read %d records, want %d", len(got), len(recs))
	}
	bodies := map[string][]byte{}
	for _, r := range recs {
		bodies[r.Hash] = r.Body
	}
	for _, r := range got {
		if !bytes.Equal(r.Body, bodies[r.Hash]) {
			t.Errorf("record %s: %d bytes, not the body appended", r.Hash[:8], len(r.Body))
		}
		delete(bodies, r.Hash)
	}
	if len(bodies) != 0 {
		t.Errorf("%d records missing", len(bodies))
	}
	onlySmall, err := s.ReadLog(ctx, journal.Position{}, 100, 64<<20, func(r journal.Record) bool { return small[r.Hash] })
	if err != nil {
		t.Fatal(err)
	}
	var smallRead int
	for _, r := range onlySmall {
		switch {
		case !small[r.Hash] && r.Body != nil:
			t.Errorf("record %s: body read, not wanted", r.Hash[:8])
		case small[r.Hash] && !bytes.Equal(r.Body, recs[slices.IndexFunc(recs, func(x journal.Record) bool { return x.Hash == r.Hash })].Body):
			t.Errorf("small record %s: %d bytes, not the body appended", r.Hash[:8], len(r.Body))
		case small[r.Hash]:
			smallRead++
		}
	}
	if smallRead != len(small) {
		t.Errorf("read %d small bodies, want %d", smallRead, len(small))
	}
	var parts uint64
	if err := chstore.ConnOf(s.Store).QueryRow(ctx,
		"SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'notification_log_v2' AND active").Scan(&parts); err != nil {
		t.Fatal(err)
	}
	if parts != 1 {
		t.Errorf("notification_log_v2 has %d parts, want 1: the blocks of one INSERT were not written as one", parts)
	}
}

// TestReadLogReadsTheOldTableToo: records an earlier nines wrote to
// notification_log (before 0045) are read with the new ones, in (time,
// hash) order, bodies and sizes right, and retention drops the days of
// both tables.
func TestReadLogReadsTheOldTableToo(t *testing.T) {
	s, setNow := storeWithClock(t)
	ctx := t.Context()
	day1 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	old := journal.NewRecord(journal.KindNotification, []byte(`{"old":1}`), day1)
	b, err := chstore.ConnOf(s.Store).PrepareBatch(ctx, "INSERT INTO notification_log (day, inserted_ms, hash, kind, body)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(day1, day1.UnixMilli(), old.Hash, string(old.Kind), string(old.Body)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	var recs []journal.Record
	for i, at := range []time.Time{day1.Add(-time.Second), day1.Add(time.Second), day1.Add(24 * time.Hour)} {
		r := journal.NewRecord(journal.KindNotification, bytes.Repeat([]byte{'a' + byte(i)}, 10*(i+1)), at)
		setNow(at)
		if err := s.AppendLog(ctx, []journal.Record{r}); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	want := []journal.Record{recs[0], old, recs[1], recs[2]}
	got, err := s.ReadLog(ctx, journal.Position{}, 100, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Hash != want[i].Hash || !bytes.Equal(got[i].Body, want[i].Body) {
			t.Errorf("record %d = %s %q, want %s %q", i, got[i].Hash[:8], got[i].Body, want[i].Hash[:8], want[i].Body)
		}
	}
	// The byte bound counts the old record's size as the new ones'.
	page, err := s.ReadLog(ctx, journal.Of(recs[0]), 100, int64(len(old.Body)+len(recs[1].Body)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) < 2 || page[0].Hash != old.Hash || page[1].Hash != recs[1].Hash || page[1].Body == nil {
		t.Errorf("page after the first record: %d records, want the old one and the next with their bodies", len(page))
	}
	dropped, err := s.DropLogBefore(ctx, day1.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dropped, []string{"2026-11-01"}) {
		t.Errorf("dropped %v, want [2026-11-01]", dropped)
	}
	left, err := s.ReadLog(ctx, journal.Position{}, 100, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Hash != recs[2].Hash {
		t.Errorf("after retention %d records left, want only the last day's", len(left))
	}
}

// TestReadLogReadsOnlyThePageBodies: choosing a page reads the records'
// sizes, not their bodies, and the bodies read are about the page's, not
// the whole part's: the query fails if ClickHouse reads more than a few
// pages' worth (max_bytes_to_read).
func TestReadLogReadsOnlyThePageBodies(t *testing.T) {
	const (
		records = 200
		size    = 100_000
	)
	dsn := chtest.Database(t)
	s := openStore(t, dsn)
	ctx := t.Context()
	var recs []journal.Record
	for i := range records {
		body := bytes.Repeat([]byte(fmt.Sprintf("%04d", i)), size/4)
		recs = append(recs, journal.NewRecord(journal.KindNotification, body, time.Now()))
	}
	if err := s.AppendLog(ctx, recs); err != nil {
		t.Fatal(err)
	}
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	// 20 MB of bodies in one part; a page of two records may read a granule
	// of them (64 rows, 6.4 MB), not all.
	limited := openStore(t, dsn+sep+"max_bytes_to_read=10000000")
	got, err := limited.ReadLog(ctx, journal.Position{}, records, 2*size, nil)
	if err != nil {
		t.Fatalf("read a page of two records: %v", err)
	}
	var bodies int
	for _, r := range got {
		if r.Body != nil {
			bodies++
		}
	}
	if len(got) != 2 || bodies != 2 {
		t.Errorf("page of %d records, %d with bodies; want 2 and 2", len(got), bodies)
	}
}

// TestReadLogAllocatesAboutItsBodies: reading back a storm's page of large
// bodies allocates a few times their size (the driver's block and the
// rows copied out of it: 2.4× measured, 3.6× under the race detector,
// which make test uses), not six times or more (6.3× when they came 16 to
// a block): the driver grows a block's buffer a row at a time, and a block
// of many large bodies was reallocated at almost every row. Garbage in a
// storm is collection work taken from the webhook.
func TestReadLogAllocatesAboutItsBodies(t *testing.T) {
	s := openStore(t, chtest.Database(t))
	ctx := t.Context()
	recs, total := stormRecords(0, 32)
	if err := s.AppendLog(ctx, recs); err != nil {
		t.Fatalf("append: %v", err)
	}
	checkAllocated(t, "reading back", total, 4, func(int) {
		got, err := s.ReadLog(ctx, journal.Position{}, 100, 64<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(recs) {
			t.Fatalf("read %d records, want %d", len(got), len(recs))
		}
	})
}

// TestAppendLogAllocatesAboutItsBodies: appending a storm's batch of large
// bodies allocates less than their size, not the twice their size and
// more the driver's buffers cost when each grows row by row to a large
// block: the log's INSERT goes in blocks of about 256 kB, and every block
// after the first reuses the buffers the first grew. (Measured: 0.41×,
// and 2.14× with blocks of 1 MB.)
func TestAppendLogAllocatesAboutItsBodies(t *testing.T) {
	s := openStore(t, chtest.Database(t))
	ctx := t.Context()
	var batches [3][]journal.Record
	total := 0
	for round := range batches {
		batches[round], total = stormRecords(round, 128) // 5.4 MB
	}
	checkAllocated(t, "appending", total, 1, func(round int) {
		if err := s.AppendLog(ctx, batches[round]); err != nil {
			t.Fatalf("append: %v", err)
		}
	})
}

// stormRecords returns n records of 42 kB, the size of a storm's
// notifications, distinct for each round, and their bodies' total size.
func stormRecords(round, n int) ([]journal.Record, int) {
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	var (
		recs  []journal.Record
		total int
	)
	for i := range n {
		body := bytes.Repeat([]byte(fmt.Sprintf("%d%03d", round, i)), 10_500)
		recs = append(recs, journal.NewRecord(journal.KindNotification, body, at))
		total += len(body)
	}
	return recs, total
}

// checkAllocated runs f three times (rounds 0, 1, 2) and fails unless the
// fewest bytes the process allocated during one run (other goroutines
// allocate too) are at most bound times size, over the native protocol
// (nativeAllocBound).
func checkAllocated(t *testing.T, what string, size int, bound float64, f func(round int)) {
	t.Helper()
	var best uint64 = math.MaxUint64
	for round := range 3 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f(round)
		runtime.ReadMemStats(&after)
		best = min(best, after.TotalAlloc-before.TotalAlloc)
	}
	ratio := float64(best) / float64(size)
	t.Logf("%s bodies of %d bytes in all allocated %d bytes: %.2f× the bodies", what, size, best, ratio)
	if bound := nativeAllocBound(t, bound); bound > 0 && ratio > bound {
		t.Errorf("%s: %.2f× the bodies, want at most %g×", what, ratio, bound)
	}
}

// nativeAllocBound returns bound when the tests reach ClickHouse over the
// native protocol, as nines' deployments do (18.16 here), and 0 over
// HTTP (chDB here): the driver's HTTP path allocates differently (7.7×
// reading and 5.6× appending in these tests), and the bounds are about
// the native path's buffers.
func nativeAllocBound(t *testing.T, bound float64) float64 {
	if chtest.Engine(t) == chtest.EngineChDB {
		return 0
	}
	return bound
}
