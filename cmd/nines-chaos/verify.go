package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/ninesops/nines/cmd/internal/harness"
)

// stored is an incident as the API shows it, with what verify reads.
type stored struct {
	ID         string     `json:"id"`
	Service    string     `json:"service"`
	GroupKey   string     `json:"group_key"`
	State      string     `json:"state"`
	StartedAt  *time.Time `json:"started_at"`
	ResolvedAt *time.Time `json:"resolved_at"`
	Alerts     []struct {
		Fingerprint string            `json:"fingerprint"`
		Status      string            `json:"status"`
		StartsAt    *time.Time        `json:"starts_at"`
		EndsAt      *time.Time        `json:"ends_at"`
		Labels      map[string]string `json:"labels"`
	} `json:"alerts"`
	Timeline []struct {
		Kind        string    `json:"kind"`
		Fingerprint string    `json:"fingerprint"`
		At          time.Time `json:"at"`
	} `json:"timeline"`
}

// fetchIncidents reads every incident, with its alerts and timeline,
// through the API.
func fetchIncidents(client *http.Client, base string) ([]*stored, error) {
	ctx := context.Background()
	list, err := harness.Incidents[stored](ctx, client, base)
	if err != nil {
		return nil, err
	}
	out := make([]*stored, 0, len(list))
	for _, inc := range list {
		var full stored
		if err := harness.GetJSON(ctx, client, base+"/api/v1/incidents/"+inc.ID, &full); err != nil {
			return nil, err
		}
		out = append(out, &full)
	}
	return out, nil
}

// verdict is the comparison of the store with the model.
type verdict struct {
	expected, found  int
	lost, duplicated int
	mismatches       []string
}

func (v *verdict) mismatch(format string, args ...any) {
	v.mismatches = append(v.mismatches, fmt.Sprintf(format, args...))
}

// verify compares the stored incidents with the model. acked holds the
// notifications some replica answered 2xx.
func verify(groups []*group, incs []*stored, acked map[*note]bool) verdict {
	var v verdict
	v.found = len(incs)
	byGroup := map[string][]*stored{}
	owners := map[string][]string{} // occurrence key → incidents holding it
	for _, inc := range incs {
		byGroup[inc.GroupKey+"\x00"+inc.Service] = append(byGroup[inc.GroupKey+"\x00"+inc.Service], inc)
		for _, a := range inc.Alerts {
			if a.StartsAt != nil {
				k := fmt.Sprintf("%s@%d", a.Fingerprint, a.StartsAt.UnixMilli())
				owners[k] = append(owners[k], inc.ID)
			}
		}
		// Each fact once on the timeline.
		seen := map[string]int{}
		for _, e := range inc.Timeline {
			switch e.Kind {
			case "opened", "alert_fired", "alert_resolved":
				seen[fmt.Sprintf("%s %s %d", e.Kind, e.Fingerprint, e.At.UnixMilli())]++
			}
		}
		for k, n := range seen {
			if n > 1 {
				v.duplicated += n - 1
				v.mismatch("incident %s: timeline entry %q %d times", inc.ID, k, n)
			}
		}
	}
	for k, ids := range owners {
		if len(ids) > 1 {
			v.duplicated += len(ids) - 1
			v.mismatch("alert %s is in %d incidents %v", k, len(ids), ids)
		}
	}
	for _, g := range groups {
		v.expected += len(g.episodes)
		found := byGroup[g.key+"\x00"+g.service]
		delete(byGroup, g.key+"\x00"+g.service)
		matched := map[int]*stored{}
		for _, inc := range found {
			e := episodeOf(g, inc)
			switch {
			case e < 0:
				v.duplicated++
				v.mismatch("%s: incident %s matches no episode", g.name, inc.ID)
			case matched[e] != nil:
				v.duplicated++
				v.mismatch("%s: episode %d has two incidents, %s and %s", g.name, e, matched[e].ID, inc.ID)
			default:
				matched[e] = inc
			}
		}
		for e, ep := range g.episodes {
			inc := matched[e]
			if inc == nil {
				v.mismatch("%s: episode %d has no incident", g.name, e)
				continue
			}
			checkIncident(&v, g, e, ep, inc)
		}
	}
	for _, incs := range byGroup {
		for _, inc := range incs {
			v.duplicated++
			v.mismatch("incident %s of an unknown group %s", inc.ID, inc.GroupKey)
		}
	}
	// Lost: an acknowledged notification that the store does not reflect.
	status := map[string]string{} // group key and occurrence → stored status

	ends := map[string]time.Time{}
	for _, inc := range incs {
		for _, a := range inc.Alerts {
			if a.StartsAt == nil {
				continue
			}
			k := inc.GroupKey + " " + fmt.Sprintf("%s@%d", a.Fingerprint, a.StartsAt.UnixMilli())
			status[k] = a.Status
			if a.EndsAt != nil {
				ends[k] = *a.EndsAt
			}
		}
	}
	for n := range acked {
		ok := true
		for _, o := range n.firing {
			if status[n.group.key+" "+o.key()] == "" {
				ok = false
			}
		}
		for _, o := range n.ended {
			k := n.group.key + " " + o.key()
			if status[k] != "resolved" || !ends[k].Equal(o.end.Truncate(time.Millisecond)) {
				ok = false
			}
		}
		if !ok {
			v.lost++
			if v.lost <= 5 {
				v.mismatch("lost: notification %d of %s (episode %d)", n.id, n.group.name, n.episode)
			}
		}
	}
	sort.Strings(v.mismatches)
	return v
}

// episodeOf returns the episode most of the incident's alerts belong to.
func episodeOf(g *group, inc *stored) int {
	best, bestN := -1, 0
	for e, ep := range g.episodes {
		keys := map[string]bool{}
		for _, o := range ep.occs {
			keys[o.key()] = true
		}
		n := 0
		for _, a := range inc.Alerts {
			if a.StartsAt != nil && keys[fmt.Sprintf("%s@%d", a.Fingerprint, a.StartsAt.UnixMilli())] {
				n++
			}
		}
		if n > bestN {
			best, bestN = e, n
		}
	}
	return best
}

// noteLabel is a label value of every generated alert, full of SQL and
// template metacharacters: it must come back verbatim.
const noteLabel = `quote " and {{ template }} and '; DROP TABLE incidents; --`

func checkIncident(v *verdict, g *group, e int, ep *episode, inc *stored) {
	name := fmt.Sprintf("%s episode %d (%s)", g.name, e, inc.ID)
	want := map[string]*occ{}
	for _, o := range ep.occs {
		want[o.key()] = o
	}
	got := map[string]bool{}
	for _, a := range inc.Alerts {
		if a.StartsAt == nil {
			v.mismatch("%s: alert %s without start", name, a.Fingerprint)
			continue
		}
		k := fmt.Sprintf("%s@%d", a.Fingerprint, a.StartsAt.UnixMilli())
		got[k] = true
		o := want[k]
		switch {
		case o == nil:
			v.mismatch("%s: holds alert %s of another episode", name, k)
		case o.end.IsZero() && a.Status != "firing":
			v.mismatch("%s: alert %s is %s, want firing", name, k, a.Status)
		case !o.end.IsZero() && (a.Status != "resolved" || a.EndsAt == nil || !a.EndsAt.Equal(o.end.Truncate(time.Millisecond))):
			v.mismatch("%s: alert %s is %s until %v, want resolved at %v", name, k, a.Status, a.EndsAt, o.end)
		case a.Labels["note"] != noteLabel:
			v.mismatch("%s: alert %s label note = %q, not verbatim", name, k, a.Labels["note"])
		}
	}
	for k := range want {
		if !got[k] {
			v.mismatch("%s: alert %s missing", name, k)
		}
	}
	switch {
	case ep.resolved() && inc.State != "resolved":
		v.mismatch("%s: %s, want resolved", name, inc.State)
	case ep.resolved() && (inc.ResolvedAt == nil || !inc.ResolvedAt.Equal(ep.resolvedAt().Truncate(time.Millisecond))):
		// Stored to the millisecond, as the alerts' ends.
		v.mismatch("%s: resolved at %v, want %v", name, inc.ResolvedAt, ep.resolvedAt().Truncate(time.Millisecond))
	case !ep.resolved() && inc.State != "firing":
		v.mismatch("%s: %s, want firing", name, inc.State)
	}
}
