package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/ninesops/nines/cmd/internal/harness"
)

// apiIncident is the part of nines' incident JSON the check reads.
type apiIncident struct {
	ID       string `json:"id"`
	Service  string `json:"service"`
	State    string `json:"state"`
	GroupKey string `json:"group_key"`
	Alerts   []struct {
		Status string `json:"status"`
	} `json:"alerts"`
}

// listIncidents reads every incident through nines' API, 1,000 a page.
func listIncidents(ctx context.Context, client *http.Client, base string) ([]apiIncident, error) {
	return harness.Incidents[apiIncident](ctx, client, base)
}

// checkResult compares what nines stores with what the script implies.
type checkResult struct {
	expected, found          int
	expFiring, expResolved   int
	gotFiring, gotResolved   int
	missing, extra, wrong    int
	duplicates               int
	examples                 []string // a few mismatches, for the report
	expAlerts, gotAlerts     int
	expAlertFiring, gotAFire int
}

func (c *checkResult) ok() bool {
	return c.expected == c.found && c.missing == 0 && c.extra == 0 && c.wrong == 0 && c.duplicates == 0
}

func (c *checkResult) String() string {
	s := fmt.Sprintf("%d incidents expected (%d firing, %d resolved; %d alerts, %d firing), %d found (%d firing, %d resolved; %d alerts, %d firing)",
		c.expected, c.expFiring, c.expResolved, c.expAlerts, c.expAlertFiring,
		c.found, c.gotFiring, c.gotResolved, c.gotAlerts, c.gotAFire)
	if c.ok() {
		return s + ": OK"
	}
	s += fmt.Sprintf(": MISMATCH (%d missing, %d unexpected, %d duplicated, %d with the wrong state or alerts)", c.missing, c.extra, c.duplicates, c.wrong)
	if len(c.examples) > 0 {
		s += "\n    " + strings.Join(c.examples, "\n    ")
	}
	return s
}

// check compares incidents with the groups of w: one incident per group,
// with the group's state, alert count and firing alert count.
func check(w *workload, incs []apiIncident) *checkResult {
	r := &checkResult{expected: len(w.groups), found: len(incs)}
	want := make(map[string]*expected, len(w.groups))
	for i := range w.groups {
		e := &w.groups[i]
		want[e.groupKey+"\x00"+e.service] = e
		r.expAlerts += e.alerts
		r.expAlertFiring += e.firing
		if e.state == "resolved" {
			r.expResolved++
		} else {
			r.expFiring++
		}
	}
	seen := map[string]bool{}
	note := func(format string, args ...any) {
		if len(r.examples) < 5 {
			r.examples = append(r.examples, fmt.Sprintf(format, args...))
		}
	}
	for _, inc := range incs {
		firing := 0
		for _, a := range inc.Alerts {
			if a.Status == "firing" {
				firing++
			}
		}
		r.gotAlerts += len(inc.Alerts)
		r.gotAFire += firing
		if inc.State == "resolved" {
			r.gotResolved++
		} else {
			r.gotFiring++
		}
		k := inc.GroupKey + "\x00" + inc.Service
		e := want[k]
		switch {
		case e == nil:
			r.extra++
			note("unexpected incident %s (%s, %s)", inc.ID, inc.Service, inc.GroupKey)
		case seen[k]:
			r.duplicates++
			note("second incident %s for group %s", inc.ID, inc.GroupKey)
		case inc.State != e.state || len(inc.Alerts) != e.alerts || firing != e.firing:
			r.wrong++
			note("incident %s of %s: %s with %d alerts (%d firing), want %s with %d (%d firing)",
				inc.ID, inc.GroupKey, inc.State, len(inc.Alerts), firing, e.state, e.alerts, e.firing)
		}
		seen[k] = true
	}
	var missing []string
	for k := range want {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	sort.Strings(missing)
	r.missing = len(missing)
	for _, k := range missing[:min(len(missing), 3)] {
		note("no incident for group %s", strings.ReplaceAll(k, "\x00", " service "))
	}
	return r
}
