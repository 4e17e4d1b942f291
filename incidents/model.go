// Package incidents owns nines' incident model and its lifecycle: how alert
// notifications open, update, resolve and reopen incidents, and how people
// acknowledge, resolve and annotate them. Storage lives behind the small
// Store interface declared here; the ClickHouse implementation is in
// chstore.
package incidents

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ninesops/nines/fault"
)

// The error kinds incidents returns are the shared ones of package fault
// (mapped to HTTP statuses in one place, package answer); these names keep
// the lifecycle code reading naturally. They are the same values:
// errors.Is(err, fault.ErrNotFound) holds for incidents.ErrNotFound.
var (
	// ErrNotFound is returned when an incident does not exist.
	ErrNotFound = fault.ErrNotFound
	// ErrConflict is returned for a transition the incident's state forbids.
	ErrConflict = fault.ErrConflict
	// ErrInvalid is returned for input that cannot be accepted.
	ErrInvalid = fault.ErrInvalid
	// ErrUnavailable is returned when the store cannot be reached.
	ErrUnavailable = fault.ErrUnavailable
)

// Impact is how badly an incident hurts its service. Higher is worse.
type Impact int8

// Impacts, ordered from harmless to worst.
const (
	ImpactNone     Impact = 0
	ImpactDegraded Impact = 1
	ImpactOutage   Impact = 2
)

// Impacts lists every impact, worst last.
var Impacts = []Impact{ImpactNone, ImpactDegraded, ImpactOutage}

func (i Impact) String() string {
	switch i {
	case ImpactOutage:
		return "outage"
	case ImpactDegraded:
		return "degraded"
	default:
		return "none"
	}
}

// ParseImpact reads "outage", "degraded" or "none".
func ParseImpact(s string) (Impact, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "outage":
		return ImpactOutage, nil
	case "degraded":
		return ImpactDegraded, nil
	case "none":
		return ImpactNone, nil
	}
	return ImpactNone, fmt.Errorf("%w: impact %q (want outage, degraded or none)", ErrInvalid, s)
}

// MarshalText implements encoding.TextMarshaler.
func (i Impact) MarshalText() ([]byte, error) { return []byte(i.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (i *Impact) UnmarshalText(b []byte) error {
	v, err := ParseImpact(string(b))
	if err != nil {
		return err
	}
	*i = v
	return nil
}

// State is where an incident is in its lifecycle.
type State string

// States of an incident.
const (
	StateFiring       State = "firing"
	StateAcknowledged State = "acknowledged"
	StateResolved     State = "resolved"
)

// ParseState reads a State.
func ParseState(s string) (State, error) {
	switch st := State(strings.ToLower(strings.TrimSpace(s))); st {
	case StateFiring, StateAcknowledged, StateResolved:
		return st, nil
	}
	return "", fmt.Errorf("%w: state %q (want firing, acknowledged or resolved)", ErrInvalid, s)
}

// Open reports whether the incident is not resolved.
func (s State) Open() bool { return s != StateResolved }

// AlertStatus is the status Alertmanager gives an alert.
type AlertStatus string

// Alert statuses as Alertmanager sends them.
const (
	AlertFiring   AlertStatus = "firing"
	AlertResolved AlertStatus = "resolved"
)

// Alert is one occurrence of an alert: the same fingerprint firing again
// later is a new occurrence with a new StartsAt.
// Its Labels and Annotations maps are never modified once the alert is
// made: copies of an alert and of its incident share them.
type Alert struct {
	Fingerprint  string            `json:"fingerprint"`
	Status       AlertStatus       `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"starts_at"`
	EndsAt       time.Time         `json:"-"` // zero while firing
	GeneratorURL string            `json:"generator_url,omitempty"`
	Impact       Impact            `json:"impact"`
}

// Key identifies the occurrence: fingerprint and start, to the millisecond.
func (a Alert) Key() string {
	return a.Fingerprint + "@" + strconv.FormatInt(a.StartsAt.UnixMilli(), 10)
}

// Notification is one Alertmanager webhook delivery, converted to nines'
// types at the edge by package alerts. It is a snapshot of a whole group.
type Notification struct {
	Receiver          string
	Status            AlertStatus
	GroupKey          string
	GroupLabels       map[string]string
	CommonLabels      map[string]string
	CommonAnnotations map[string]string
	ExternalURL       string
	TruncatedAlerts   int
	Alerts            []Alert
	ReceivedAt        time.Time
}

// Period is one stretch of time during which an incident's alerts fired.
// End is zero while the period is still open.
type Period struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Source tells how an incident was opened.
const (
	SourceAlertmanager = "alertmanager"
	SourceManual       = "manual"
)

// Actors that are not people.
const (
	ActorAlertmanager = "alertmanager"
	ActorReconciler   = "reconciler"
)

// Incident is a service's trouble, from the first alert to the last resolve.
type Incident struct {
	ID              string
	Service         string
	GroupKey        string // the grouping key: Alertmanager's groupKey by default
	Title           string
	Impact          Impact
	State           State
	Source          string
	StartedAt       time.Time
	AcknowledgedAt  time.Time // zero when not acknowledged
	AcknowledgedBy  string
	ResolvedAt      time.Time // zero while open
	ResolvedBy      string
	Flaps           int
	TruncatedAlerts int
	Labels          map[string]string
	Annotations     map[string]string
	RunbookURL      string
	GeneratorURL    string
	ExternalURL     string
	CausedBy        string // upstream incident ID, if linked
	Alerts          []Alert
	Periods         []Period
	// Segments hold the impact over time: per impact, when alerts of that
	// impact fired (see Derive). Empty for incidents opened by hand and
	// for versions stored before segments existed: their Impact holds
	// over all their Periods.
	Segments []Segment
	// Excluded are the periods people marked as not downtime (Exclusion),
	// sorted by when they were marked.
	Excluded  []Exclusion
	UpdatedAt time.Time
	// Facts counts what the incident was derived from (alert occurrence
	// states and timeline events). It only grows, so the stored row built
	// from more facts wins whichever replica wrote it last.
	Facts uint32
}

// Clone returns a copy of the incident that can be changed without
// changing the original. The alerts' Labels and Annotations maps are
// shared, not copied: they come from a notification and nothing changes
// them afterwards (an alert's new state is a new Alert value), and copying
// them made every lifecycle step cost two maps per alert of the incident.
func (inc *Incident) Clone() *Incident {
	if inc == nil {
		return nil
	}
	c := *inc
	c.Labels = cloneMap(inc.Labels)
	c.Annotations = cloneMap(inc.Annotations)
	c.Alerts = make([]Alert, len(inc.Alerts))
	copy(c.Alerts, inc.Alerts)
	c.Periods = append([]Period(nil), inc.Periods...)
	c.Segments = append([]Segment(nil), inc.Segments...)
	c.Excluded = append([]Exclusion(nil), inc.Excluded...)
	return &c
}

// VersionTimeBits is how many low bits of a Version hold the update time
// in Unix milliseconds (enough until the year 2527); the facts count takes
// the 20 bits above.
const VersionTimeBits = 44

// Version orders stored versions of an incident: more facts win, then the
// later update.
func (inc *Incident) Version() uint64 {
	facts := uint64(min(inc.Facts, 1<<(64-VersionTimeBits)-1))
	ms := uint64(max(inc.UpdatedAt.UnixMilli(), 0)) & (1<<VersionTimeBits - 1)
	return facts<<VersionTimeBits | ms
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// EventKind names a timeline entry.
type EventKind string

// Timeline event kinds.
const (
	EventOpened        EventKind = "opened"
	EventAlertFired    EventKind = "alert_fired"
	EventAlertResolved EventKind = "alert_resolved"
	EventImpactChanged EventKind = "impact_changed"
	EventAcknowledged  EventKind = "acknowledged"
	EventNote          EventKind = "note"
	EventResolved      EventKind = "resolved"
	EventReopened      EventKind = "reopened"
	EventTruncated     EventKind = "truncated"
	EventLinked        EventKind = "linked"
	EventUnlinked      EventKind = "unlinked"
	EventChange        EventKind = "change"
	// EventSplit and EventMerged record that a late notification changed
	// how a group's alerts divide into incidents.
	EventSplit  EventKind = "split"
	EventMerged EventKind = "merged"
)

// Event is one entry of an incident's timeline. IDs are deterministic where
// the event comes from a notification, so replaying it adds nothing.
type Event struct {
	ID         string    `json:"id"`
	IncidentID string    `json:"incident_id"`
	At         time.Time `json:"at"`
	Kind       EventKind `json:"kind"`
	Actor      string    `json:"actor"`
	Text       string    `json:"text,omitempty"`
	// Fingerprint names the alert for alert events.
	Fingerprint string `json:"fingerprint,omitempty"`
	// Impact is the incident's impact the event records, set on opened
	// and impact_changed events. Stored as a column, so that figures
	// counted by it (incidents opened per impact) never depend on Text,
	// which is for people and may be reworded.
	Impact *Impact `json:"-"`
}

// recorded returns a copy of i for Event.Impact: the event keeps the
// impact of its moment, whatever the incident's becomes.
func recorded(i Impact) *Impact { return &i }

// IncidentID derives an incident's ID from its grouping key, service and
// the start of its first episode, so that two replicas seeing the same
// alerts choose the same ID.
func IncidentID(groupKey, service string, start time.Time) string {
	return "inc-" + StableHash(groupKey, service, fmt.Sprint(start.UnixMilli()))[:20]
}

// EventID derives a deterministic event ID from its parts.
func EventID(parts ...string) string {
	return "ev-" + StableHash(parts...)[:24]
}

// StableHash is the hex SHA-256 of the parts, each followed by a NUL
// byte: the basis of nines' deterministic IDs (incidents, events,
// changes), the same on every replica.
func StableHash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Filter selects incidents for a listing.
type Filter struct {
	Service string
	State   State
	Impact  *Impact
	Since   time.Time // started at or after
	Until   time.Time // started before
	Limit   int
	Cursor  string // opaque, from a previous page
}

// Change is what one lifecycle step writes: the incident's new version, the
// alert occurrences that are new or changed status, and the timeline events
// it added. Alerts and Events are deltas; Incident is whole (its Alerts
// field is not stored from here: the store keeps alerts from Change.Alerts).
type Change struct {
	Incident *Incident
	Alerts   []Alert
	Events   []Event
	// Moved holds alerts the incident no longer holds: a late notification
	// showed they belong to another incident of the group.
	Moved []Alert
	// Action is the action a person's change records when its events
	// cannot tell it (a withdrawn mark); not stored.
	Action *Action
}
