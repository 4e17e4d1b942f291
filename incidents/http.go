package incidents

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ninesops/nines/answer"
)

// Mutator knows how to change incidents on people's behalf.
type Mutator interface {
	Acknowledge(ctx context.Context, id, actor string) (*Incident, error)
	Resolve(ctx context.Context, id, actor string) (*Incident, error)
	AddNote(ctx context.Context, id, actor, text string) (*Incident, error)
	Open(ctx context.Context, req OpenRequest) (*Incident, error)
	Link(ctx context.Context, id, upstreamID, actor string) (*Incident, error)
	Unlink(ctx context.Context, id, actor string) (*Incident, error)
	NotDowntime(ctx context.Context, id string, r NotDowntimeRequest) (*Incident, error)
	WithdrawNotDowntime(ctx context.Context, id string, markedAt time.Time, actor, reason string) (*Incident, error)
}

// API serves nines' incident endpoints. Routes are declared in cmd/nines;
// handlers read the incident ID with r.PathValue("id").
type API struct {
	mut  Mutator
	read Reader
	log  *slog.Logger
}

// NewAPI builds the incident API.
func NewAPI(mut Mutator, read Reader, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{mut: mut, read: read, log: log}
}

// maxAPIBody bounds request bodies of the incident API.
const maxAPIBody = 1 << 20

var idPattern = regexp.MustCompile(`^inc-[0-9a-f]{20}$`)

// List serves GET /api/v1/incidents.
func (a *API) List(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	incs, next, err := a.read.List(r.Context(), f)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	out := struct {
		Incidents  []IncidentJSON `json:"incidents"`
		NextCursor string         `json:"next_cursor"`
	}{Incidents: make([]IncidentJSON, 0, len(incs)), NextCursor: next}
	for _, inc := range incs {
		out.Incidents = append(out.Incidents, ToJSON(inc, nil))
	}
	answer.JSON(w, http.StatusOK, out)
}

// Get serves GET /api/v1/incidents/{id}, with the timeline.
func (a *API) Get(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	inc, err := a.read.Get(r.Context(), id)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	tl, err := a.read.Timeline(r.Context(), id)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	if tl == nil {
		tl = []Event{}
	}
	answer.JSON(w, http.StatusOK, ToJSON(inc, tl))
}

// Open serves POST /api/v1/incidents.
func (a *API) Open(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Service   string            `json:"service"`
		Title     string            `json:"title"`
		Impact    string            `json:"impact"`
		StartedAt *time.Time        `json:"started_at"`
		Actor     string            `json:"actor"`
		Labels    map[string]string `json:"labels"`
		Key       string            `json:"key"`
	}
	if err := decodeBody(r, &body); err != nil {
		answer.Error(w, a.log, err)
		return
	}
	impact := ImpactOutage
	if body.Impact != "" {
		var err error
		if impact, err = ParseImpact(body.Impact); err != nil {
			answer.Error(w, a.log, err)
			return
		}
	}
	req := OpenRequest{Service: body.Service, Title: body.Title, Impact: impact, Actor: actorOr(body.Actor), Labels: body.Labels, Key: body.Key}
	if body.StartedAt != nil {
		req.StartedAt = body.StartedAt.UTC()
	}
	inc, err := a.mut.Open(r.Context(), req)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	answer.JSON(w, http.StatusCreated, ToJSON(inc, nil))
}

// Acknowledge serves POST /api/v1/incidents/{id}/ack.
func (a *API) Acknowledge(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(ctx context.Context, id string, b actBody) (*Incident, error) {
		return a.mut.Acknowledge(ctx, id, b.Actor)
	})
}

// Resolve serves POST /api/v1/incidents/{id}/resolve.
func (a *API) Resolve(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(ctx context.Context, id string, b actBody) (*Incident, error) {
		return a.mut.Resolve(ctx, id, b.Actor)
	})
}

// AddNote serves POST /api/v1/incidents/{id}/notes.
func (a *API) AddNote(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(ctx context.Context, id string, b actBody) (*Incident, error) {
		return a.mut.AddNote(ctx, id, b.Actor, b.Text)
	})
}

// Link serves POST /api/v1/incidents/{id}/link {"caused_by": "inc-…"}.
func (a *API) Link(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(ctx context.Context, id string, b actBody) (*Incident, error) {
		if !idPattern.MatchString(b.CausedBy) {
			return nil, fmt.Errorf("%w: caused_by: want an incident id, got %q", ErrInvalid, b.CausedBy)
		}
		return a.mut.Link(ctx, id, b.CausedBy, b.Actor)
	})
}

// Unlink serves POST /api/v1/incidents/{id}/unlink.
func (a *API) Unlink(w http.ResponseWriter, r *http.Request) {
	a.act(w, r, func(ctx context.Context, id string, b actBody) (*Incident, error) {
		return a.mut.Unlink(ctx, id, b.Actor)
	})
}

// NotDowntime serves POST /api/v1/incidents/{id}/not-downtime
// {"from": "…", "to": "…", "reason": "…", "actor": "…"}: marks the period
// (by default the whole incident) as not downtime.
func (a *API) NotDowntime(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	var body struct {
		From   *time.Time `json:"from"`
		To     *time.Time `json:"to"`
		Reason string     `json:"reason"`
		Actor  string     `json:"actor"`
	}
	if err := decodeBody(r, &body); err != nil {
		answer.Error(w, a.log, err)
		return
	}
	req := NotDowntimeRequest{Actor: actorOr(body.Actor), Reason: body.Reason}
	if body.From != nil {
		req.From = body.From.UTC()
	}
	if body.To != nil {
		req.To = body.To.UTC()
	}
	if body.From != nil && req.From.IsZero() || body.To != nil && req.To.IsZero() {
		answer.Error(w, a.log, fmt.Errorf("%w: from and to: want RFC 3339 times after 1970", ErrInvalid))
		return
	}
	if err := req.validate(); err != nil {
		answer.Error(w, a.log, err)
		return
	}
	inc, err := a.mut.NotDowntime(r.Context(), id, req)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	answer.JSON(w, http.StatusOK, ToJSON(inc, nil))
}

// WithdrawNotDowntime serves POST
// /api/v1/incidents/{id}/not-downtime/withdraw {"marked_at": "…",
// "reason": "…", "actor": "…"}: the period of the mark made at marked_at
// (its "at") counts as downtime again.
func (a *API) WithdrawNotDowntime(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	var body struct {
		MarkedAt *time.Time `json:"marked_at"`
		Reason   string     `json:"reason"`
		Actor    string     `json:"actor"`
	}
	if err := decodeBody(r, &body); err != nil {
		answer.Error(w, a.log, err)
		return
	}
	if err := validateWithdrawal(body.MarkedAt, body.Reason); err != nil {
		answer.Error(w, a.log, err)
		return
	}
	inc, err := a.mut.WithdrawNotDowntime(r.Context(), id, body.MarkedAt.UTC(), actorOr(body.Actor), body.Reason)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	answer.JSON(w, http.StatusOK, ToJSON(inc, nil))
}

// actBody is the body of the incident action endpoints.
type actBody struct {
	Actor    string `json:"actor"`
	Text     string `json:"text"`
	CausedBy string `json:"caused_by"`
}

func (a *API) act(w http.ResponseWriter, r *http.Request, f func(ctx context.Context, id string, b actBody) (*Incident, error)) {
	id, err := pathID(r)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	var body actBody
	if err := decodeBody(r, &body); err != nil {
		answer.Error(w, a.log, err)
		return
	}
	body.Actor = actorOr(body.Actor)
	inc, err := f(r.Context(), id, body)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	answer.JSON(w, http.StatusOK, ToJSON(inc, nil))
}

func actorOr(s string) string {
	if s = strings.TrimSpace(s); s != "" {
		return s
	}
	return "api"
}

func pathID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !idPattern.MatchString(id) {
		return "", fmt.Errorf("%w: no incident %q", ErrNotFound, id)
	}
	return id, nil
}

// decodeBody reads a JSON body strictly; an empty body is an empty object.
func decodeBody(r *http.Request, v any) error {
	return answer.Decode(r, v, maxAPIBody)
}

func parseFilter(r *http.Request) (Filter, error) {
	q := r.URL.Query()
	f := Filter{Service: q.Get("service"), Cursor: q.Get("cursor"), Limit: 50}
	if s := q.Get("state"); s != "" {
		st, err := ParseState(s)
		if err != nil {
			return f, err
		}
		f.State = st
	}
	if s := q.Get("impact"); s != "" {
		im, err := ParseImpact(s)
		if err != nil {
			return f, err
		}
		f.Impact = &im
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if s := q.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return f, fmt.Errorf("%w: %s: want an RFC 3339 time, got %q", ErrInvalid, name, s)
			}
			// Times the store cannot hold would wrap around in its
			// comparisons (1969 read as 2106): refuse them.
			if !Storable(t) {
				return f, fmt.Errorf("%w: %s: %s is outside 1970-01-01T00:00:00Z..%s", ErrInvalid, name,
					t.UTC().Format(time.RFC3339), MaxTime().Format(time.RFC3339))
			}
			*dst = t.UTC()
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, fmt.Errorf("%w: since must be before until", ErrInvalid)
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return f, fmt.Errorf("%w: limit: want 1 to 1000, got %q", ErrInvalid, s)
		}
		f.Limit = n
	}
	return f, nil
}

// IncidentJSON is an incident as the API shows it.
type IncidentJSON struct {
	ID              string            `json:"id"`
	Service         string            `json:"service"`
	Title           string            `json:"title"`
	Impact          string            `json:"impact"`
	State           string            `json:"state"`
	Source          string            `json:"source"`
	GroupKey        string            `json:"group_key"`
	StartedAt       *time.Time        `json:"started_at"`
	AcknowledgedAt  *time.Time        `json:"acknowledged_at"`
	AcknowledgedBy  string            `json:"acknowledged_by,omitempty"`
	ResolvedAt      *time.Time        `json:"resolved_at"`
	ResolvedBy      string            `json:"resolved_by,omitempty"`
	DurationSeconds int64             `json:"duration_seconds"`
	Flaps           int               `json:"flaps"`
	TruncatedAlerts int               `json:"truncated_alerts"`
	CausedBy        string            `json:"caused_by,omitempty"`
	Labels          map[string]string `json:"labels"`
	Annotations     map[string]string `json:"annotations"`
	RunbookURL      string            `json:"runbook_url,omitempty"`
	GeneratorURL    string            `json:"generator_url,omitempty"`
	ExternalURL     string            `json:"external_url,omitempty"`
	Periods         []PeriodJSON      `json:"periods"`
	NotDowntime     []ExclusionJSON   `json:"not_downtime"`
	Alerts          []AlertJSON       `json:"alerts"`
	Timeline        []Event           `json:"timeline,omitempty"`
}

// AlertJSON is an alert occurrence as the API shows it.
type AlertJSON struct {
	Fingerprint  string            `json:"fingerprint"`
	Status       string            `json:"status"`
	Impact       string            `json:"impact"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     *time.Time        `json:"starts_at"`
	EndsAt       *time.Time        `json:"ends_at"`
	GeneratorURL string            `json:"generator_url,omitempty"`
}

// ExclusionJSON is a period marked as not downtime; To is null for "until
// the incident ends".
type ExclusionJSON struct {
	From   *time.Time `json:"from"`
	To     *time.Time `json:"to"`
	By     string     `json:"by"`
	Reason string     `json:"reason"`
	At     *time.Time `json:"at"`
}

// PeriodJSON is a firing period; End is null while it lasts.
type PeriodJSON struct {
	Start *time.Time `json:"start"`
	End   *time.Time `json:"end"`
}

// ToJSON converts an incident (and optionally its timeline) for the API.
func ToJSON(inc *Incident, timeline []Event) IncidentJSON {
	out := IncidentJSON{
		ID: inc.ID, Service: inc.Service, Title: inc.Title, Impact: inc.Impact.String(),
		State: string(inc.State), Source: inc.Source, GroupKey: inc.GroupKey,
		StartedAt: timePtr(inc.StartedAt), AcknowledgedAt: timePtr(inc.AcknowledgedAt), AcknowledgedBy: inc.AcknowledgedBy,
		ResolvedAt: timePtr(inc.ResolvedAt), ResolvedBy: inc.ResolvedBy,
		Flaps: inc.Flaps, TruncatedAlerts: inc.TruncatedAlerts, CausedBy: inc.CausedBy,
		Labels: nonNil(inc.Labels), Annotations: nonNil(inc.Annotations),
		RunbookURL: inc.RunbookURL, GeneratorURL: inc.GeneratorURL, ExternalURL: inc.ExternalURL,
		Periods: []PeriodJSON{}, Alerts: []AlertJSON{}, Timeline: OwnTimeline(inc, timeline),
		NotDowntime: []ExclusionJSON{},
	}
	for _, x := range inc.Excluded {
		out.NotDowntime = append(out.NotDowntime, ExclusionJSON{From: timePtr(x.From), To: timePtr(x.To), By: x.By, Reason: x.Reason, At: timePtr(x.At)})
	}
	if !inc.StartedAt.IsZero() {
		end := inc.ResolvedAt
		if end.IsZero() {
			end = time.Now()
		}
		out.DurationSeconds = int64(end.Sub(inc.StartedAt) / time.Second)
	}
	for _, p := range inc.Periods {
		out.Periods = append(out.Periods, PeriodJSON{Start: timePtr(p.Start), End: timePtr(p.End)})
	}
	for _, al := range inc.Alerts {
		out.Alerts = append(out.Alerts, AlertJSON{
			Fingerprint: al.Fingerprint, Status: string(al.Status), Impact: al.Impact.String(),
			Labels: nonNil(al.Labels), Annotations: nonNil(al.Annotations),
			StartsAt: timePtr(al.StartsAt), EndsAt: timePtr(al.EndsAt), GeneratorURL: al.GeneratorURL,
		})
	}
	return out
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// OwnTimeline returns the entries of timeline that belong to inc as it
// stands: an entry about an alert occurrence (fired, resolved) stays only
// while the incident holds that occurrence with that start or end, and one
// about a period reopening or resolving by its alerts only while a period
// starts or ends then. An
// occurrence a late notification moved to another incident (a split says
// where), or an end corrected since, leaves its old entries out, whatever
// order the notifications came in.
func OwnTimeline(inc *Incident, timeline []Event) []Event {
	starts, ends := map[string]bool{}, map[string]bool{}
	reopened, resolved := map[int64]bool{}, map[int64]bool{}
	for p, per := range inc.Periods {
		if p > 0 {
			reopened[per.Start.UnixMilli()] = true
		}
		if !per.End.IsZero() {
			resolved[per.End.UnixMilli()] = true
		}
	}
	for _, a := range inc.Alerts {
		starts[a.Fingerprint+"@"+fmt.Sprint(a.StartsAt.UnixMilli())] = true
		if !a.EndsAt.IsZero() {
			ends[a.Fingerprint+"@"+fmt.Sprint(a.EndsAt.UnixMilli())] = true
		}
	}
	out := make([]Event, 0, len(timeline))
	shown := map[string]bool{} // kind, key and time of the entries shown
	for _, e := range timeline {
		k := e.Fingerprint + "@" + fmt.Sprint(e.At.UnixMilli())
		switch {
		case inc.Source != SourceAlertmanager:
		case e.Kind == EventAlertFired && !starts[k],
			e.Kind == EventAlertResolved && !ends[k],
			e.Kind == EventReopened && !reopened[e.At.UnixMilli()],
			e.Kind == EventResolved && automatic(e.Actor) && !resolved[e.At.UnixMilli()]:
			continue
		case e.Kind == EventAlertFired, e.Kind == EventAlertResolved, e.Kind == EventReopened,
			e.Kind == EventResolved && automatic(e.Actor):
			if shown[string(e.Kind)+" "+k] {
				continue // the same entry under an ID of an older nines
			}
			shown[string(e.Kind)+" "+k] = true
		}
		out = append(out, e)
	}
	return out
}
