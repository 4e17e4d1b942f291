package spool_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/spool"
)

var o0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// stream is a realistic sequence of Alertmanager snapshots for groups
// groups: alerts fire one after another, repeat, resolve one by one, and
// every third group flaps (fires again within the reopen window).
func stream(groups int) []incidents.Notification {
	var out []incidents.Notification
	for g := range groups {
		gk := fmt.Sprintf(`{}:{alertname="G%d"}`, g)
		base := o0.Add(time.Duration(g) * time.Minute)
		var cur []incidents.Alert
		snap := func() {
			n := incidents.Notification{Receiver: "nines", Status: incidents.AlertResolved, GroupKey: gk, ExternalURL: "http://am"}
			for _, a := range cur {
				n.Alerts = append(n.Alerts, a)
				if a.Status == incidents.AlertFiring {
					n.Status = incidents.AlertFiring
				}
			}
			out = append(out, n)
		}
		for i := range 3 {
			cur = append(cur, incidents.Alert{
				Fingerprint: fmt.Sprintf("g%d-a%d", g, i), Status: incidents.AlertFiring,
				StartsAt: base.Add(time.Duration(i) * time.Minute),
				Labels:   map[string]string{"alertname": fmt.Sprintf("G%d", g), "service": fmt.Sprintf("svc%d", g%4), "severity": "critical", "i": fmt.Sprint(i)},
			})
			snap()
			snap() // repeat
		}
		for i := range cur {
			cur[i].Status, cur[i].EndsAt = incidents.AlertResolved, base.Add(time.Duration(10+i)*time.Minute)
			snap()
		}
		if g%3 == 0 {
			cur = append(cur, incidents.Alert{
				Fingerprint: fmt.Sprintf("g%d-a0", g), Status: incidents.AlertFiring, StartsAt: base.Add(20 * time.Minute),
				Labels: map[string]string{"alertname": fmt.Sprintf("G%d", g), "service": fmt.Sprintf("svc%d", g%4), "severity": "critical", "i": "0"},
			})
			snap()
		}
	}
	// Interleave the groups as time goes by: notification k of every
	// group, then k+1, ...
	sort.SliceStable(out, func(i, j int) bool { return indexInGroup(out, i) < indexInGroup(out, j) })
	return out
}

func indexInGroup(ns []incidents.Notification, i int) int {
	k := 0
	for j := range i {
		if ns[j].GroupKey == ns[i].GroupKey {
			k++
		}
	}
	return k
}

type process struct {
	store *chstore.Store
	svc   *incidents.Service
	sp    *spool.Spool
	stop  func()
}

func openStore(t *testing.T, dsn string) *chstore.Store {
	t.Helper()
	s := chtest.Open(t, dsn, func(o *chstore.Options) { o.DialTimeout, o.FlushTimeout = time.Second, 3*time.Second })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return s
}

// start is a nines process: a service and a spool on dir, replaying.
func start(t *testing.T, store *chstore.Store, dir string) *process {
	t.Helper()
	svc, err := incidents.NewService(incidents.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	sp, err := spool.Open(spool.Options{Dir: dir, Next: svc, Timeout: 2 * time.Second, RetryMin: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = sp.Run(ctx); close(done) }()
	p := &process{store: store, svc: svc, sp: sp}
	p.stop = func() { cancel(); <-done; _ = sp.Close() }
	t.Cleanup(p.stop)
	return p
}

func (p *process) ingest(t *testing.T, ns []incidents.Notification) {
	t.Helper()
	for _, n := range ns {
		if err := p.sp.Ingest(context.Background(), n); err != nil {
			t.Fatalf("ingest %s: %v", n.GroupKey, err)
		}
	}
}

// summary describes the stored incidents in a comparable way.
func summary(t *testing.T, s *chstore.Store) string {
	t.Helper()
	incs, _, err := s.List(context.Background(), incidents.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, inc := range incs {
		full, err := s.Get(context.Background(), inc.ID)
		if err != nil {
			t.Fatal(err)
		}
		var alerts []string
		for _, a := range full.Alerts {
			alerts = append(alerts, fmt.Sprintf("%s@%s:%s:%s", a.Fingerprint, a.StartsAt.Format("15:04"), a.Status, a.EndsAt.Format("15:04")))
		}
		lines = append(lines, fmt.Sprintf("%s %s %s %s flaps=%d resolved=%s periods=%d alerts=%v",
			inc.ID, inc.GroupKey, inc.Service, inc.State, inc.Flaps, inc.ResolvedAt.Format(time.RFC3339), len(inc.Periods), alerts))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestOutageLosesNothing stops ClickHouse in the middle of a stream,
// restarts nines (a new service and spool on the same directory) while it
// is down, starts ClickHouse again, and checks that the incidents end up
// exactly as in a run without an outage.
func TestOutageLosesNothing(t *testing.T) {
	srv := chtest.StartServer(t)
	ns := stream(12)
	third := len(ns) / 3

	// The reference: the same stream, no outage.
	ref := openStore(t, srv.DSN("reference"))
	rp := start(t, ref, t.TempDir())
	rp.ingest(t, ns)
	want := summary(t, ref)

	store := openStore(t, srv.DSN("outage"))
	dir := t.TempDir()
	p := start(t, store, dir)
	p.ingest(t, ns[:third])
	if st := p.sp.Status(); st.Records != 0 {
		t.Fatalf("spooled %d while ClickHouse was up", st.Records)
	}

	srv.Stop()
	began := time.Now()
	p.ingest(t, ns[third:2*third]) // answered 2xx: spooled
	st := p.sp.Status()
	if st.Records == 0 {
		t.Fatal("nothing spooled while ClickHouse was down")
	}
	t.Logf("spooled %d notifications (%d bytes) in %s while ClickHouse was down", st.Records, st.Bytes, time.Since(began).Round(time.Millisecond))

	// nines restarts during the outage: memory is lost, the spool is not.
	p.stop()
	p = start(t, store, dir)
	if got := p.sp.Status().Records; got != st.Records {
		t.Fatalf("after restart the spool holds %d, want %d", got, st.Records)
	}
	p.ingest(t, ns[2*third:2*third+5]) // still down: spooled behind the rest

	srv.Start()
	p.ingest(t, ns[2*third+5:]) // the spool is not empty yet: spooled, in order
	deadline := time.Now().Add(60 * time.Second)
	for p.sp.Status().Records > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spool not drained after ClickHouse came back: %+v", p.sp.Status())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := summary(t, store); got != want {
		t.Errorf("after the outage:\n%s\nwithout an outage:\n%s", got, want)
	}
	// New notifications go straight to the store again.
	p.ingest(t, ns[:1])
	if got := p.sp.Status(); got.Records != 0 {
		t.Errorf("after draining: %+v", got)
	}
}
