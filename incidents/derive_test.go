package incidents

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The reference: incidents computed minute by minute from the true alert
// occurrences, as plainly as possible. It shares no code with Derive.

// truth is one alert occurrence as it really happened: minutes from the
// scenario's base; end -1 while still firing.
type truth struct {
	fp         string
	start, end int
	impact     Impact
	replaced   bool // ended by the next occurrence of fp: no resolve is ever sent
}

// refIncident is what the reference expects of an incident: periods and
// segments as "start-end" in minutes ("start-" while open).
type refIncident struct {
	periods  []string
	segments []string
	flaps    int
	open     bool
	impact   Impact
}

func (r refIncident) String() string {
	return fmt.Sprintf("periods %v segments %v flaps %d open %v impact %s", r.periods, r.segments, r.flaps, r.open, r.impact)
}

// reference derives the incidents of one group from its true occurrences.
func reference(occ []truth, window int) []refIncident {
	horizon := 0
	for _, o := range occ {
		horizon = max(horizon, o.start+1, o.end+1)
	}
	horizon += window + 2
	active := func(t int, imp Impact) bool { // imp -1: any impact
		for _, o := range occ {
			if t >= o.start && (o.end < 0 || t < o.end) && (imp < 0 || o.impact == imp) {
				return true
			}
		}
		return false
	}
	runs := func(imp Impact) [][2]int { // end -1 when open
		var out [][2]int
		for t := 0; t < horizon; t++ {
			if !active(t, imp) {
				continue
			}
			s := t
			for t < horizon && active(t, imp) {
				t++
			}
			e := t
			if t == horizon {
				e = -1
			}
			out = append(out, [2]int{s, e})
		}
		return out
	}
	str := func(r [2]int) string {
		if r[1] < 0 {
			return fmt.Sprintf("%d-", r[0])
		}
		return fmt.Sprintf("%d-%d", r[0], r[1])
	}
	var out []refIncident
	var lastEnd int
	periods := runs(-1)
	for i, p := range periods {
		if i == 0 || p[0]-lastEnd > window {
			out = append(out, refIncident{})
		}
		inc := &out[len(out)-1]
		inc.periods = append(inc.periods, str(p))
		inc.flaps = len(inc.periods) - 1
		lastEnd = p[1]
		inc.open = p[1] < 0
	}
	// Segments: each impact's runs, given to the incident whose periods
	// hold them.
	for i := range out {
		first, _ := strconv.Atoi(strings.Split(out[i].periods[0], "-")[0])
		last := horizon
		if i+1 < len(out) {
			last, _ = strconv.Atoi(strings.Split(out[i+1].periods[0], "-")[0])
		}
		for _, imp := range Impacts {
			for _, r := range runs(imp) {
				if r[0] >= first && r[0] < last {
					out[i].segments = append(out[i].segments, fmt.Sprintf("%s:%s", str(r), imp))
				}
			}
		}
		slices.Sort(out[i].segments)
		// Impact: the worst firing now while open, else the worst ever.
		for _, o := range occ {
			if o.start < first || o.start >= last {
				continue
			}
			if !out[i].open || o.end < 0 {
				out[i].impact = max(out[i].impact, o.impact)
			}
		}
	}
	return out
}

var base = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

func minute(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }

// describe turns a derived incident into the reference's form.
func describe(inc *Incident) refIncident {
	m := func(t time.Time) int { return int(t.Sub(base) / time.Minute) }
	span := func(s, e time.Time) string {
		if e.IsZero() {
			return fmt.Sprintf("%d-", m(s))
		}
		return fmt.Sprintf("%d-%d", m(s), m(e))
	}
	r := refIncident{flaps: inc.Flaps, open: inc.State.Open(), impact: inc.Impact}
	for _, p := range inc.Periods {
		r.periods = append(r.periods, span(p.Start, p.End))
	}
	for _, s := range inc.Segments {
		r.segments = append(r.segments, fmt.Sprintf("%s:%s", span(s.Start, s.End), s.Impact))
	}
	slices.Sort(r.segments)
	return r
}

// scenario generates the true occurrences of one group: up to four alerts
// (fingerprints), each firing a few times, some replaced, the last
// occurrence of some still firing.
func scenario(rng *rand.Rand) []truth {
	var occ []truth
	for f := range 1 + rng.IntN(4) {
		fp := fmt.Sprintf("fp%d", f)
		imp := Impact(rng.IntN(3))
		t := rng.IntN(120)
		for k, n := 0, 1+rng.IntN(4); k < n; k++ {
			o := truth{fp: fp, start: t, impact: imp}
			d := 1 + rng.IntN(40)
			switch {
			case k == n-1 && rng.IntN(4) == 0:
				o.end = -1
			case k < n-1 && rng.IntN(5) == 0:
				o.replaced = true
				o.end = t + d // the next one starts here
			default:
				o.end = t + d
			}
			occ = append(occ, o)
			if o.end < 0 {
				break
			}
			t = o.end
			if !o.replaced {
				t += rng.IntN(90)
			}
		}
	}
	return occ
}

// notifications turns true occurrences into what Alertmanager sends: at
// every start and end, a snapshot of the group's alerts, firing ones and
// those resolved since the previous snapshot. Replaced occurrences are
// never sent resolved.
func notifications(occ []truth, groupKey string) []Notification {
	times := map[int]bool{}
	for _, o := range occ {
		times[o.start] = true
		if o.end >= 0 && !o.replaced {
			times[o.end] = true
		}
	}
	ts := slices.Sorted(func(yield func(int) bool) {
		for t := range times {
			if !yield(t) {
				return
			}
		}
	})
	svc := "api"
	var out []Notification
	prev := -1
	for _, t := range ts {
		n := Notification{Receiver: "nines", GroupKey: groupKey, ReceivedAt: minute(t)}
		for _, o := range occ {
			a := Alert{
				Fingerprint: o.fp, Status: AlertFiring, StartsAt: minute(o.start),
				Labels:      map[string]string{"alertname": o.fp, "service": svc, "severity": severity(o.impact)},
				Annotations: map[string]string{"summary": o.fp},
			}
			switch {
			case o.start > t:
				continue
			case o.replaced && o.end <= t:
				continue // Alertmanager forgot it when the new one came
			case o.end >= 0 && o.end <= t:
				if o.end <= prev {
					continue
				}
				a.Status, a.EndsAt = AlertResolved, minute(o.end)
			}
			n.Alerts = append(n.Alerts, a)
		}
		if len(n.Alerts) > 0 {
			out = append(out, n)
		}
		prev = t
	}
	return out
}

func severity(i Impact) string {
	switch i {
	case ImpactOutage:
		return "critical"
	case ImpactDegraded:
		return "warning"
	}
	return "info"
}

// deliver reorders notifications as retries and an HA pair of
// Alertmanagers would: about a quarter duplicated, neighbours swapped, and
// sometimes a second sender delivering the whole stream in its own order.
func deliver(rng *rand.Rand, ns []Notification) []Notification {
	var out []Notification
	for _, n := range ns {
		out = append(out, n)
		if rng.IntN(4) == 0 {
			out = append(out, n)
		}
	}
	if rng.IntN(3) == 0 {
		out = append(out, ns...) // the second sender
	}
	for range len(out) {
		if i := rng.IntN(len(out)); i+1 < len(out) && rng.IntN(2) == 0 {
			out[i], out[i+1] = out[i+1], out[i]
		}
	}
	if rng.IntN(4) == 0 {
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	return out
}

func testSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("NINES_TEST_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("NINES_TEST_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay with NINES_TEST_SEED=%d)", seed, seed)
	return seed
}

// TestDeriveMatchesReference derives random groups from their
// notifications' alerts, delivered in random orders with copies, and
// requires the incidents, periods, impact segments and flaps of the
// reference computed from the true occurrences, and the same IDs whatever
// the order.
func TestDeriveMatchesReference(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x5bd1e995))
	cfg := DefaultConfig()
	cfg.ReopenWindow = time.Duration(1+rng.IntN(60)) * time.Minute
	window := int(cfg.ReopenWindow / time.Minute)
	ref := GroupRef{GroupKey: "g", Service: "api"}
	for n := range 300 {
		occ := scenario(rng)
		want := reference(occ, window)
		var ids []string
		for k := range 3 {
			var alerts []Alert
			for _, nt := range deliver(rng, notifications(occ, "g")) {
				alerts = append(alerts, nt.Alerts...)
			}
			for i := range alerts {
				alerts[i].Impact = cfg.impact(alerts[i].Labels)
			}
			got := cfg.Derive(Group{Ref: ref, Alerts: alerts})
			var gotIDs []string
			for _, ch := range got {
				gotIDs = append(gotIDs, ch.Incident.ID)
			}
			if k == 0 {
				ids = gotIDs
			} else if !slices.Equal(ids, gotIDs) {
				t.Fatalf("scenario %d (seed %d): IDs %v in one order, %v in another", n, seed, ids, gotIDs)
			}
			if len(got) != len(want) {
				t.Fatalf("scenario %d (seed %d, window %d): %d incidents, want %d\noccurrences %+v\ngot %v\nwant %v",
					n, seed, window, len(got), len(want), occ, describeAll(got), want)
			}
			for i := range got {
				if g := describe(got[i].Incident); g.String() != want[i].String() {
					t.Fatalf("scenario %d (seed %d, window %d) incident %d:\n got %v\nwant %v\noccurrences %+v",
						n, seed, window, i, g, want[i], occ)
				}
				// What a replica recomputes from a stored incident (alerts
				// and periods) is what was derived.
				inc := got[i].Incident
				if again := SegmentsOf(inc.Alerts, inc.Periods); fmt.Sprint(again) != fmt.Sprint(inc.Segments) {
					t.Fatalf("scenario %d incident %d: SegmentsOf %v, derived %v", n, i, again, inc.Segments)
				}
			}
		}
	}
}

func describeAll(chs []Change) []refIncident {
	var out []refIncident
	for _, ch := range chs {
		out = append(out, describe(ch.Incident))
	}
	return out
}

// TestDeriveMeasuredCases holds the cases measured against the old,
// order-dependent lifecycle.
func TestDeriveMeasuredCases(t *testing.T) {
	cfg := DefaultConfig()
	ref := GroupRef{GroupKey: "g", Service: "api"}
	fire := func(fp, sev string, start int) Alert {
		return alert(fp, fp, "api", sev, minute(start), time.Time{})
	}
	res := func(fp, sev string, start, end int) Alert {
		return alert(fp, fp, "api", sev, minute(start), minute(end))
	}
	impacts := func(as ...Alert) []Alert {
		for i := range as {
			as[i].Impact = cfg.impact(as[i].Labels)
		}
		return as
	}
	tests := []struct {
		name   string
		alerts []Alert
		want   []string // describe() of each incident
	}{
		{"N1 N3 N2 N4: two incidents of 10 minutes",
			impacts(fire("a", "critical", 720), fire("a", "critical", 960), res("a", "critical", 720, 730), res("a", "critical", 960, 970)),
			[]string{"periods [720-730] segments [720-730:outage] flaps 0 open false impact outage",
				"periods [960-970] segments [960-970:outage] flaps 0 open false impact outage"}},
		{"swap inside the reopen window keeps the flap",
			impacts(fire("a", "critical", 0), fire("a", "critical", 20), res("a", "critical", 0, 10), res("a", "critical", 20, 25)),
			[]string{"periods [0-10 20-25] segments [0-10:outage 20-25:outage] flaps 1 open false impact outage"}},
		{"warning 12:00-13:00 with critical 12:10-12:20: outage over time",
			impacts(res("w", "warning", 720, 780), res("c", "critical", 730, 740)),
			[]string{"periods [720-780] segments [720-780:degraded 730-740:outage] flaps 0 open false impact outage"}},
		{"critical 12:50-13:00 inside warning: 10 minutes of outage",
			impacts(res("w", "warning", 720, 780), res("c", "critical", 770, 780)),
			[]string{"periods [720-780] segments [720-780:degraded 770-780:outage] flaps 0 open false impact outage"}},
		{"a new startsAt ends the replaced occurrence",
			impacts(fire("a", "critical", 0), res("a", "critical", 5, 8)),
			[]string{"periods [0-8] segments [0-8:outage] flaps 0 open false impact outage"}},
		{"a stale firing copy after the resolve changes nothing",
			impacts(res("a", "critical", 0, 10), fire("a", "critical", 0)),
			[]string{"periods [0-10] segments [0-10:outage] flaps 0 open false impact outage"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, order := range [][]Alert{tc.alerts, reversed(tc.alerts)} {
				got := describeAll(cfg.Derive(Group{Ref: ref, Alerts: order}))
				var gs []string
				for _, g := range got {
					gs = append(gs, g.String())
				}
				if !slices.Equal(gs, tc.want) {
					t.Errorf("got  %q\nwant %q", gs, tc.want)
				}
			}
		})
	}
}

func reversed[T any](s []T) []T {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

// TestDeriveResolveByHand: a resolve by hand ends the firing period, the
// still-firing alerts keep weighing (their segments run until they
// resolve), and the next new alert is a flap.
func TestDeriveResolveByHand(t *testing.T) {
	cfg := DefaultConfig()
	ref := GroupRef{GroupKey: "g", Service: "api"}
	a := alert("a", "A", "api", "critical", minute(0), time.Time{})
	a.Impact = ImpactOutage
	id := EpisodeID("g", "api", a)
	b := alert("b", "B", "api", "critical", minute(15), time.Time{})
	b.Impact = ImpactOutage
	late := alert("c", "C", "api", "critical", minute(200), time.Time{})
	late.Impact = ImpactOutage
	resolve := Action{Kind: EventResolved, Incident: id, Actor: "alice", At: minute(5)}
	tests := []struct {
		name   string
		alerts []Alert
		want   []string
		by     string
	}{
		{"still firing keeps weighing", []Alert{a},
			[]string{"periods [0-5] segments [0-:outage] flaps 0 open false impact outage"}, "alice"},
		{"a new alert within the window reopens", []Alert{a, b},
			[]string{"periods [0-5 15-] segments [0-:outage] flaps 1 open true impact outage"}, ""},
		{"a new alert after the window opens another incident", []Alert{a, late},
			[]string{"periods [0-5] segments [0-:outage] flaps 0 open false impact outage",
				"periods [200-] segments [200-:outage] flaps 0 open true impact outage"}, "alice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := cfg.Derive(Group{Ref: ref, Alerts: tc.alerts, Actions: []Action{resolve}})
			var gs []string
			for _, g := range describeAll(got) {
				gs = append(gs, g.String())
			}
			if !slices.Equal(gs, tc.want) {
				t.Errorf("got  %q\nwant %q", gs, tc.want)
			}
			if by := got[0].Incident.ResolvedBy; by != tc.by {
				t.Errorf("resolved by %q, want %q", by, tc.by)
			}
		})
	}
}

// TestServiceOrderIndependent feeds random groups' notifications through
// the Service, delivered as retries and an HA pair would (copies, swaps,
// a second sender, sometimes any order), and requires the stored
// incidents to be the reference's, with the same IDs, whatever the order.
func TestServiceOrderIndependent(t *testing.T) {
	seed := testSeed(t)
	rng := rand.New(rand.NewPCG(seed, seed^0x2545f491))
	for n := range 150 {
		cfg := DefaultConfig()
		cfg.ReopenWindow = time.Duration(1+rng.IntN(60)) * time.Minute
		occ := scenario(rng)
		want := reference(occ, int(cfg.ReopenWindow/time.Minute))
		ns := notifications(occ, "g")
		var ids []string
		for k := range 3 {
			store := newMemStore()
			svc, err := NewService(Options{Config: cfg, Store: store, Now: func() time.Time { return minute(1000) }})
			if err != nil {
				t.Fatal(err)
			}
			for _, nt := range deliver(rng, ns) {
				if err := svc.Ingest(context.Background(), nt); err != nil {
					t.Fatal(err)
				}
			}
			var got []*Incident
			for _, inc := range store.all() {
				if len(inc.Periods) > 0 { // not merged away
					got = append(got, inc)
				}
			}
			var gotIDs []string
			for _, inc := range got {
				gotIDs = append(gotIDs, inc.ID)
				// The timeline shows each occurrence the incident holds
				// firing at its start and resolved at its end, once,
				// whatever order the notifications came in.
				var want, shown []string
				for _, a := range inc.Alerts {
					want = append(want, fmt.Sprintf("alert_fired %s %s", a.Fingerprint, a.StartsAt.Format(time.RFC3339Nano)))
					if !a.EndsAt.IsZero() {
						want = append(want, fmt.Sprintf("alert_resolved %s %s", a.Fingerprint, a.EndsAt.Format(time.RFC3339Nano)))
					}
				}
				// And each period: reopened at its start (but the
				// first), resolved at its end.
				for p, per := range inc.Periods {
					if p > 0 {
						want = append(want, fmt.Sprintf("reopened  %s", per.Start.Format(time.RFC3339Nano)))
					}
					if !per.End.IsZero() {
						want = append(want, fmt.Sprintf("resolved  %s", per.End.Format(time.RFC3339Nano)))
					}
				}
				for _, e := range OwnTimeline(inc, store.timeline(inc.ID)) {
					switch e.Kind {
					case EventAlertFired, EventAlertResolved, EventReopened, EventResolved:
						shown = append(shown, fmt.Sprintf("%s %s %s", e.Kind, e.Fingerprint, e.At.Format(time.RFC3339Nano)))
					}
				}
				slices.Sort(want)
				slices.Sort(shown)
				if !slices.Equal(want, shown) {
					t.Fatalf("scenario %d (seed %d), order %d: %s's timeline shows\n%s\nits alerts are\n%s\noccurrences %+v",
						n, seed, k, inc.ID, strings.Join(shown, "\n"), strings.Join(want, "\n"), occ)
				}
			}
			if k == 0 {
				ids = gotIDs
			} else if !slices.Equal(ids, gotIDs) {
				t.Fatalf("scenario %d (seed %d): IDs %v in one order, %v in another", n, seed, ids, gotIDs)
			}
			if len(got) != len(want) {
				var gs []refIncident
				for _, inc := range got {
					gs = append(gs, describe(inc))
				}
				t.Fatalf("scenario %d (seed %d, window %s): %d incidents, want %d\noccurrences %+v\ngot %v\nwant %v",
					n, seed, cfg.ReopenWindow, len(got), len(want), occ, gs, want)
			}
			for i, inc := range got {
				if g := describe(inc); g.String() != want[i].String() {
					t.Fatalf("scenario %d (seed %d, window %s) incident %d:\n got %v\nwant %v\noccurrences %+v",
						n, seed, cfg.ReopenWindow, i, g, want[i], occ)
				}
			}
		}
	}
}

// TestServiceFixedAtStart: the catalog maps an alert to checkout when it
// fires and to payments by the time it resolves. The resolve ends the
// checkout incident; payments gets nothing. A new occurrence afterwards
// goes to payments.
func TestServiceFixedAtStart(t *testing.T) {
	ctx := context.Background()
	svcName := "checkout"
	store := newMemStore()
	svc, err := NewService(Options{Store: store, Now: func() time.Time { return minute(100) },
		Resolver: func(map[string]string) (string, bool) { return svcName, true }})
	if err != nil {
		t.Fatal(err)
	}
	a := alert("a", "Down", "", "critical", minute(0), time.Time{})
	if err := svc.Ingest(ctx, note("g", a)); err != nil {
		t.Fatal(err)
	}
	svcName = "payments" // the catalog's matchers changed
	if err := svc.Ingest(ctx, note("g", alert("a", "Down", "", "critical", minute(0), minute(10)))); err != nil {
		t.Fatal(err)
	}
	all := store.all()
	if len(all) != 1 || all[0].Service != "checkout" || all[0].State != StateResolved {
		for _, inc := range all {
			t.Logf("%s %s %v", inc.Service, inc.State, inc.Periods)
		}
		t.Fatalf("want one resolved checkout incident, got %d", len(all))
	}
	if err := svc.Ingest(ctx, note("g", alert("a", "Down", "", "critical", minute(60), time.Time{}))); err != nil {
		t.Fatal(err)
	}
	if all := store.all(); len(all) != 2 || all[1].Service != "payments" {
		t.Errorf("a new occurrence after the change: %d incidents, last on %s", len(all), all[len(all)-1].Service)
	}
}

// TestResolveByHandKeepsSegments: once resolved by hand, the incident's
// period ends, but its impact segments run on while its alert fires:
// availability keeps counting (see TestManualResolveKeepsDowntime).
func TestResolveByHandKeepsSegments(t *testing.T) {
	ctx := context.Background()
	svc, store := run(t, step{n: note("g", alert("a", "Down", "api", "critical", t0, time.Time{}))})
	id := store.all()[0].ID
	inc, err := svc.Resolve(ctx, id, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(inc.Segments) != 1 || !inc.Segments[0].End.IsZero() || inc.Periods[0].End.IsZero() {
		t.Errorf("segments %+v, periods %+v", inc.Segments, inc.Periods)
	}
}
