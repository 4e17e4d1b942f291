package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// The stream and its model. The model is what a correct incident record
// must hold once every notification is in, computed from the generated
// alerts alone (not from nines' code): one incident per episode of a
// group, holding that episode's alert occurrences; resolved, at the
// latest end, when every occurrence ended, else open.

// occ is one alert occurrence: an alert (fingerprint) from start to end.
type occ struct {
	fp         string
	labels     map[string]string
	start, end time.Time // end is zero while it fires at the end of the stream
}

func (o *occ) key() string { return fmt.Sprintf("%s@%d", o.fp, o.start.UnixMilli()) }

// episode is one run of trouble of a group: one incident. Episodes of a
// group are hours apart, far beyond nines' reopen window.
type episode struct {
	occs  []*occ
	notes []*note // Alertmanager's snapshots, in order
}

func (e *episode) resolved() bool {
	for _, o := range e.occs {
		if o.end.IsZero() {
			return false
		}
	}
	return true
}

func (e *episode) resolvedAt() time.Time {
	var t time.Time
	for _, o := range e.occs {
		if o.end.After(t) {
			t = o.end
		}
	}
	return t
}

type group struct {
	key, name, service string
	episodes           []*episode
}

// note is one notification: a snapshot of its group.
type note struct {
	id      int
	group   *group
	episode int
	firing  []*occ // occurrences it reports firing
	ended   []*occ // occurrences it reports resolved
	body    []byte
}

// genStream generates groups of episodes and their notifications.
func genStream(rng *rand.Rand, groups, episodes int, base time.Time) []*group {
	var out []*group
	id := 0
	for g := range groups {
		gr := &group{name: fmt.Sprintf("Chaos%03d", g), service: fmt.Sprintf("svc-%02d", g%17)}
		gr.key = fmt.Sprintf(`{}:{alertname=%q, service=%q}`, gr.name, gr.service)
		start := base.Add(time.Duration(rng.IntN(600)) * time.Second)
		n := 1 + rng.IntN(episodes)
		for e := range n {
			ep := genEpisode(rng, gr, start, e == n-1 && rng.IntN(3) == 0)
			for _, nt := range ep.notes {
				nt.id, nt.episode = id, e
				id++
			}
			gr.episodes = append(gr.episodes, ep)
			start = ep.resolvedAt().Add(2*time.Hour + time.Duration(rng.IntN(3600))*time.Second)
			if !ep.resolved() {
				break
			}
		}
		out = append(out, gr)
	}
	return out
}

// genEpisode makes an episode starting at start: one to four alerts,
// some flapping (firing again within minutes of their end); with
// stillFiring, the last occurrence never ends.
func genEpisode(rng *rand.Rand, g *group, start time.Time, stillFiring bool) *episode {
	ep := &episode{}
	ms := func(d int) time.Duration { return time.Duration(d) * time.Millisecond }
	for k := range 1 + rng.IntN(4) {
		labels := map[string]string{
			"alertname": g.name, "service": g.service, "instance": fmt.Sprintf("host-%d:9100", k),
			"severity": []string{"critical", "warning"}[rng.IntN(2)],
			"note":     `quote " and {{ template }} and '; DROP TABLE incidents; --`,
		}
		fp := fingerprint(labels)
		s := start.Add(time.Duration(rng.IntN(600))*time.Second + ms(rng.IntN(1000)))
		o := &occ{fp: fp, labels: labels, start: s, end: s.Add(time.Duration(300+rng.IntN(2100))*time.Second + ms(rng.IntN(1000)))}
		ep.occs = append(ep.occs, o)
		if rng.IntN(3) == 0 { // a flap
			s2 := o.end.Add(time.Duration(60+rng.IntN(840)) * time.Second)
			ep.occs = append(ep.occs, &occ{fp: fp, labels: labels, start: s2, end: s2.Add(time.Duration(180+rng.IntN(720)) * time.Second)})
		}
	}
	if stillFiring {
		last := ep.occs[0]
		for _, o := range ep.occs {
			if o.start.After(last.start) {
				last = o
			}
		}
		last.end = time.Time{}
	}
	ep.notes = snapshots(rng, g, ep)
	return ep
}

// snapshots replays an episode as Alertmanager notifies it: after each
// change, the alerts firing and those resolved since the last two
// notifications; some notifications are repeated.
func snapshots(rng *rand.Rand, g *group, ep *episode) []*note {
	type event struct {
		at  time.Time
		o   *occ
		end bool
	}
	var evs []event
	for _, o := range ep.occs {
		evs = append(evs, event{o.start, o, false})
		if !o.end.IsZero() {
			evs = append(evs, event{o.end, o, true})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].at.Before(evs[j].at) })
	var (
		notes     []*note
		firing    = map[*occ]bool{}
		recent    = map[*occ]int{} // resolved occurrence → notifications left that report it
		snapshot  func()
		lastNotes *note
	)
	snapshot = func() {
		n := &note{group: g}
		for _, o := range ep.occs {
			if firing[o] {
				n.firing = append(n.firing, o)
			} else if recent[o] > 0 {
				n.ended = append(n.ended, o)
				recent[o]--
			}
		}
		if len(n.firing)+len(n.ended) > 0 {
			notes = append(notes, n)
			lastNotes = n
		}
	}
	for _, ev := range evs {
		if ev.end {
			delete(firing, ev.o)
			recent[ev.o] = 2
		} else {
			firing[ev.o] = true
		}
		snapshot()
		if rng.IntN(3) == 0 && lastNotes != nil {
			notes = append(notes, &note{group: g, firing: lastNotes.firing, ended: lastNotes.ended}) // a repeat
		}
	}
	for _, n := range notes {
		n.body = webhookBody(g, n)
	}
	return notes
}

// webhookBody is the notification as Alertmanager 0.25 posts it.
func webhookBody(g *group, n *note) []byte {
	type alert struct {
		Status       string            `json:"status"`
		Labels       map[string]string `json:"labels"`
		Annotations  map[string]string `json:"annotations"`
		StartsAt     string            `json:"startsAt"`
		EndsAt       string            `json:"endsAt"`
		GeneratorURL string            `json:"generatorURL"`
		Fingerprint  string            `json:"fingerprint"`
	}
	status := "resolved"
	if len(n.firing) > 0 {
		status = "firing"
	}
	var alerts []alert
	add := func(o *occ, st string) {
		a := alert{
			Status: st, Labels: o.labels, Fingerprint: o.fp,
			Annotations:  map[string]string{"summary": g.name + " on " + o.labels["instance"], "runbook_url": "https://runbooks.example.com/" + g.name},
			StartsAt:     o.start.Format(time.RFC3339Nano),
			EndsAt:       "0001-01-01T00:00:00Z",
			GeneratorURL: "http://prometheus:9090/graph?g0.expr=up%3D%3D0",
		}
		if st == "resolved" {
			a.EndsAt = o.end.Format(time.RFC3339Nano)
		}
		alerts = append(alerts, a)
	}
	for _, o := range n.firing {
		add(o, "firing")
	}
	for _, o := range n.ended {
		add(o, "resolved")
	}
	b, _ := json.Marshal(map[string]any{
		"version": "4", "receiver": "nines", "status": status, "alerts": alerts, "groupKey": g.key,
		"groupLabels":       map[string]string{"alertname": g.name, "service": g.service},
		"commonLabels":      map[string]string{"alertname": g.name, "service": g.service},
		"commonAnnotations": map[string]string{"runbook_url": "https://runbooks.example.com/" + g.name},
		"externalURL":       "http://alertmanager:9093", "truncatedAlerts": 0,
	})
	return b
}

func fingerprint(labels map[string]string) string {
	var parts []string
	for k, v := range labels {
		parts = append(parts, k+"\x00"+v)
	}
	sort.Strings(parts)
	h := sha256.Sum256([]byte(strings.Join(parts, "\x01")))
	return hex.EncodeToString(h[:8])
}

// order is the sequence in which one replica receives a group's
// notifications: Alertmanager sends a group's notifications one at a time,
// so episodes stay in order; within an episode the other Alertmanager of
// a pair delivers a little out of order (perturb), and both deliver some
// twice.
func order(rng *rand.Rand, g *group, perturb bool) []*note {
	var out []*note
	for _, ep := range g.episodes {
		ns := append([]*note(nil), ep.notes...)
		if perturb {
			for i := 0; i+1 < len(ns); i++ {
				if rng.IntN(3) == 0 {
					ns[i], ns[i+1] = ns[i+1], ns[i]
				}
			}
		}
		for _, n := range ns {
			out = append(out, n)
			if rng.IntN(10) == 0 {
				out = append(out, n) // a duplicate
			}
		}
	}
	return out
}
