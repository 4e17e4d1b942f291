package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/ninesops/nines/incidents"
)

// A workload is a script of Alertmanager notifications, rendered once up
// front so that sending costs the generator nothing but the HTTP call, and
// the incidents nines must end up with, computed from the script alone.
//
// The script imitates an alert storm seen through Alertmanager: groups
// (one per alertname, service and cluster) open with 1 to 64 firing
// alerts, are sent again unchanged (repeat_interval, HA peers), lose some
// alerts (partial resolve) and resolve (full resolve, status "resolved").
// Many groups are active at once and their steps interleave. Every group
// has its own groupKey, so each becomes exactly one incident.

// stepKind is what a notification does to its group.
type stepKind uint8

const (
	stepNew stepKind = iota
	stepRepeat
	stepPartial
	stepResolve
	numStepKinds
)

func (k stepKind) String() string {
	return [...]string{"new", "repeat", "partial resolve", "full resolve"}[k]
}

// step is one notification of the script.
type step struct {
	group  int      // index into workload.groups
	prev   int      // index of the group's previous step, -1 for its first
	kind   stepKind // what it does
	alerts int      // alerts in the notification
	firing int      // of which firing
	nines  []byte   // webhook body (protocol version 4)
	am     []byte   // Alertmanager /api/v2/alerts body: the same alerts
}

// expected is the incident one group must produce.
type expected struct {
	groupKey string
	service  string
	id       string // the incident's ID (incidents.EpisodeID of its first alert)
	state    string // firing or resolved
	alerts   int    // alert occurrences attached
	firing   int    // of which still firing
}

type workload struct {
	steps  []step
	groups []expected
	alerts int // alerts over all notifications
	kinds  [numStepKinds]int
}

// workloadOptions shape a script.
type workloadOptions struct {
	Notifications int       // steps in the script
	Services      int       // distinct services
	Active        int       // groups in progress at any time
	Seed          uint64    // same seed, same script
	FirstGroup    int       // group numbers start here: scripts with different ranges never share a group
	Now           time.Time // alerts start hours before Now
	Alertmanager  bool      // also render Alertmanager API bodies
	// Storm makes every notification open a new group of 64 firing
	// alerts (issue 20's storm of new incidents); Active is then moot.
	Storm bool
}

// alertnames are realistic alert names; the group's severity comes with it.
var alertnames = []struct{ name, severity, summary string }{
	{"HighLatency", "warning", "p99 latency above 500ms"},
	{"HighErrorRate", "critical", "5xx ratio above 5%"},
	{"InstanceDown", "critical", "target is down"},
	{"PodCrashLooping", "warning", "pod restarting repeatedly"},
	{"DiskWillFillIn4Hours", "warning", "disk predicted to fill within 4 hours"},
	{"CPUThrottlingHigh", "info", "CPU throttled over 25% of periods"},
	{"KubeDeploymentReplicasMismatch", "warning", "deployment has not matched the expected replicas"},
	{"QueueBacklogGrowing", "warning", "consumer lag growing for 15 minutes"},
	{"CertificateExpiringSoon", "info", "TLS certificate expires within 14 days"},
	{"SLOBurnRateFast", "critical", "error budget burning 14x faster than allowed"},
	{"DatabaseReplicationLag", "critical", "replica more than 30s behind"},
	{"MemoryPressure", "warning", "working set above 90% of the limit"},
}

// groupSpec is a group while the script is being built.
type groupSpec struct {
	n         int // group number
	key       string
	service   string
	alertname string
	severity  string
	summary   string
	cluster   string
	start     time.Time
	alerts    []alertSpec
	plan      []stepKind // steps still to send
	last      int        // index of its latest step
}

type alertSpec struct {
	labels      map[string]string
	annotations map[string]string
	fp          string
	startsAt    time.Time
	endsAt      time.Time // zero while firing
}

// buildWorkload renders a script.
func buildWorkload(o workloadOptions) (*workload, error) {
	rng := rand.New(rand.NewPCG(o.Seed, uint64(o.FirstGroup)))
	w := &workload{steps: make([]step, 0, o.Notifications)}
	// Alerts start between 3 hours and 2 hours 20 minutes ago and resolve
	// within the hour: every end is in the past, as Alertmanager expects
	// of a resolved alert.
	base := o.Now.Add(-3 * time.Hour).Truncate(time.Millisecond)
	next := o.FirstGroup
	var active []*groupSpec
	for len(w.steps) < o.Notifications {
		for len(active) < o.Active {
			active = append(active, newGroup(rng, next, o, base))
			next++
		}
		i := rng.IntN(len(active))
		g := active[i]
		kind := g.plan[0]
		g.plan = g.plan[1:]
		if err := w.addStep(rng, g, kind, o.Alertmanager); err != nil {
			return nil, err
		}
		if len(g.plan) == 0 {
			active[i] = active[len(active)-1]
			active = active[:len(active)-1]
		}
	}
	return w, nil
}

// newGroup draws a group and its plan.
func newGroup(rng *rand.Rand, n int, o workloadOptions, base time.Time) *groupSpec {
	an := alertnames[n%len(alertnames)]
	service := fmt.Sprintf("svc-%03d", (n/len(alertnames))%o.Services)
	cluster := fmt.Sprintf("c%d", n/(len(alertnames)*o.Services))
	g := &groupSpec{
		n: n, service: service, alertname: an.name, severity: an.severity, summary: an.summary,
		cluster: cluster,
		key:     fmt.Sprintf(`{}/{severity=~"critical|warning|info"}:{alertname=%q, cluster=%q, service=%q}`, an.name, cluster, service),
		start:   base.Add(time.Duration(n%50_000) * 50 * time.Millisecond),
		last:    -1,
	}
	// Sizes: a third of the groups span a whole fleet (64 alerts, as many
	// as Prometheus sends in one POST), the rest are log-uniform in 1..63.
	size := 64
	if !o.Storm && rng.Float64() >= 0.3 {
		size = int(math.Exp(rng.Float64() * math.Log(64)))
		size = min(max(size, 1), 63)
	}
	team := fmt.Sprintf("team-%02d", (n/len(alertnames))%o.Services%40)
	for j := range size {
		instance := fmt.Sprintf("%s-%d.%s.example.net:9100", service, j, cluster)
		labels := map[string]string{
			"alertname": an.name, "service": service, "cluster": cluster, "severity": an.severity,
			"instance": instance, "job": service, "team": team, "namespace": "prod",
		}
		g.alerts = append(g.alerts, alertSpec{
			labels: labels,
			annotations: map[string]string{
				"summary":     an.summary + " on " + instance,
				"description": fmt.Sprintf("%s has fired on %s for more than 5 minutes (group %d).", an.name, instance, n),
				"runbook_url": "https://runbooks.example.com/" + an.name,
			},
			fp:       fingerprint(labels),
			startsAt: g.start.Add(time.Duration(j) * 15 * time.Second),
		})
	}
	g.plan = []stepKind{stepNew}
	if o.Storm {
		return g
	}
	if rng.Float64() < 0.5 {
		g.plan = append(g.plan, stepRepeat)
	}
	if size > 1 && rng.Float64() < 0.5 {
		g.plan = append(g.plan, stepPartial)
	}
	if rng.Float64() < 0.7 {
		g.plan = append(g.plan, stepResolve)
	}
	if rng.Float64() < 0.2 {
		g.plan = append(g.plan, stepRepeat) // a duplicate from the HA peer
	}
	return g
}

// fingerprint hashes labels the way Alertmanager does (FNV-1a over sorted
// name/value pairs), so that both receivers see plausible fingerprints.
func fingerprint(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	h := fnv.New64a()
	for _, k := range names {
		h.Write([]byte(k))
		h.Write([]byte{255})
		h.Write([]byte(labels[k]))
		h.Write([]byte{255})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// addStep applies kind to g and renders the notification.
func (w *workload) addStep(rng *rand.Rand, g *groupSpec, kind stepKind, withAPI bool) error {
	switch kind {
	case stepPartial:
		// Resolve some of the firing alerts, never all.
		var firing []int
		for j, a := range g.alerts {
			if a.endsAt.IsZero() {
				firing = append(firing, j)
			}
		}
		if len(firing) > 1 {
			rng.Shuffle(len(firing), func(a, b int) { firing[a], firing[b] = firing[b], firing[a] })
			for _, j := range firing[:1+rng.IntN(len(firing)-1)] {
				g.alerts[j].endsAt = g.alerts[j].startsAt.Add(time.Duration(5+rng.IntN(20)) * time.Minute)
			}
		}
	case stepResolve:
		for j := range g.alerts {
			if g.alerts[j].endsAt.IsZero() {
				g.alerts[j].endsAt = g.alerts[j].startsAt.Add(time.Duration(30+rng.IntN(30)) * time.Minute)
			}
		}
	}
	if g.last < 0 {
		// Alert 0 starts first: it names the incident.
		first := incidents.Alert{Fingerprint: g.alerts[0].fp, StartsAt: g.alerts[0].startsAt}
		w.groups = append(w.groups, expected{groupKey: g.key, service: g.service, id: incidents.EpisodeID(g.key, g.service, first)})
	}
	gi := len(w.groups) - 1
	if g.last >= 0 {
		gi = w.steps[g.last].group
	}
	e := &w.groups[gi]
	e.alerts, e.firing = len(g.alerts), 0
	for _, a := range g.alerts {
		if a.endsAt.IsZero() {
			e.firing++
		}
	}
	e.state = "firing"
	if e.firing == 0 {
		e.state = "resolved"
	}
	hook, err := renderWebhook(g)
	if err != nil {
		return err
	}
	var api []byte
	if withAPI {
		if api, err = renderAPI(g); err != nil {
			return err
		}
	}
	w.steps = append(w.steps, step{group: gi, prev: g.last, kind: kind, alerts: len(g.alerts), firing: e.firing, nines: hook, am: api})
	g.last = len(w.steps) - 1
	w.alerts += len(g.alerts)
	w.kinds[kind]++
	return nil
}

// Alertmanager's webhook payload, protocol version 4.
type webhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

type webhookMessage struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	Alerts            []webhookAlert    `json:"alerts"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
}

func generatorURL(g *groupSpec) string {
	return "http://prometheus.example.net:9090/graph?g0.expr=" + g.alertname + "%7Bservice%3D%22" + g.service + "%22%7D&g0.tab=1"
}

func renderWebhook(g *groupSpec) ([]byte, error) {
	m := webhookMessage{
		Receiver:    "nines",
		Status:      "resolved",
		GroupLabels: map[string]string{"alertname": g.alertname, "cluster": g.cluster, "service": g.service},
		CommonLabels: map[string]string{
			"alertname": g.alertname, "cluster": g.cluster, "service": g.service, "severity": g.severity,
			"job": g.service, "namespace": "prod", "team": g.alerts[0].labels["team"],
		},
		CommonAnnotations: map[string]string{"runbook_url": "https://runbooks.example.com/" + g.alertname},
		ExternalURL:       "http://alertmanager.example.net:9093",
		Version:           "4",
		GroupKey:          g.key,
		Alerts:            make([]webhookAlert, len(g.alerts)),
	}
	if len(g.alerts) == 1 {
		m.CommonLabels = g.alerts[0].labels
		m.CommonAnnotations = g.alerts[0].annotations
	}
	for j, a := range g.alerts {
		wa := webhookAlert{
			Status: "firing", Labels: a.labels, Annotations: a.annotations,
			StartsAt: a.startsAt, GeneratorURL: generatorURL(g), Fingerprint: a.fp,
		}
		if a.endsAt.IsZero() {
			m.Status = "firing"
		} else {
			wa.Status, wa.EndsAt = "resolved", a.endsAt
		}
		m.Alerts[j] = wa
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("render notification: %w", err)
	}
	return b, nil
}

// Alertmanager's API v2 postable alert. A firing alert has no endsAt:
// Alertmanager then keeps it for resolve_timeout, as for Prometheus' sends.
type postableAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       *time.Time        `json:"endsAt,omitempty"`
	GeneratorURL string            `json:"generatorURL"`
}

func renderAPI(g *groupSpec) ([]byte, error) {
	out := make([]postableAlert, len(g.alerts))
	for j, a := range g.alerts {
		pa := postableAlert{Labels: a.labels, Annotations: a.annotations, StartsAt: a.startsAt, GeneratorURL: generatorURL(g)}
		if !a.endsAt.IsZero() {
			end := a.endsAt
			pa.EndsAt = &end
		}
		out[j] = pa
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("render alerts: %w", err)
	}
	return b, nil
}

// bytes returns the total size of the webhook bodies.
func (w *workload) bytes() int {
	n := 0
	for i := range w.steps {
		n += len(w.steps[i].nines)
	}
	return n
}
