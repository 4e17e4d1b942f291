package changes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// Store knows how to keep changes and the causes people marked.
type Store interface {
	RecordChange(ctx context.Context, c Change) error
	Changes(ctx context.Context, q Query) ([]Change, error)
	SetCause(ctx context.Context, incidentID, changeID, actor string, at time.Time, cause bool) error
	Causes(ctx context.Context, incidentID string) (map[string]bool, error)
	DORA(ctx context.Context, from, to time.Time) ([]DORARaw, error)
}

// Query selects changes, newest first.
type Query struct {
	IDs      []string  // empty: any
	Services []string  // empty: any
	From, To time.Time // zero: unbounded
	Limit    int
}

// Incidents knows how to find incidents and add to their timelines.
type Incidents interface {
	Get(ctx context.Context, id string) (*incidents.Incident, error)
	OpenIncidentsOfServices(ctx context.Context, services []string) ([]*incidents.Incident, error)
}

// Timeline knows how to add an event to an incident's timeline.
type Timeline interface {
	AddEvent(ctx context.Context, id string, kind incidents.EventKind, actor, text string) (*incidents.Incident, error)
}

// Options configure a Service.
type Options struct {
	// Store keeps changes. Required.
	Store Store
	// Incidents and Timeline are the incidents the changes are set
	// against. A Service without them only lists changes and computes
	// DORA figures (nines report --dora); recording a change, ranking
	// suspects and marking a cause then fail with an error.
	Incidents Incidents
	Timeline  Timeline
	// Catalog gives the service catalog: dependencies (suspects come from
	// the services an incident's service depends on; a rollback shows on
	// the incidents of the services that depend on it) and owners (DORA
	// figures per squad). Nil means no dependencies and no owners.
	Catalog  func() *catalog.Catalog
	Lookback time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
}

// Service records changes, ranks suspects and computes DORA figures.
type Service struct {
	o Options
}

// New builds a Service.
func New(o Options) (*Service, error) {
	if o.Store == nil {
		return nil, errors.New("changes: a store is required")
	}
	if o.Incidents == nil {
		o.Incidents = unwired{}
	}
	if o.Timeline == nil {
		o.Timeline = unwired{}
	}
	if o.Catalog == nil {
		empty := catalog.Empty(0)
		o.Catalog = func() *catalog.Catalog { return empty }
	}
	if o.Lookback <= 0 {
		o.Lookback = DefaultLookback
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o}, nil
}

// unwired stands in for the incidents of a Service built without them.
type unwired struct{}

var errUnwired = errors.New("changes: built without incidents")

func (unwired) Get(context.Context, string) (*incidents.Incident, error) { return nil, errUnwired }

func (unwired) OpenIncidentsOfServices(context.Context, []string) ([]*incidents.Incident, error) {
	return nil, errUnwired
}

func (unwired) AddEvent(context.Context, string, incidents.EventKind, string, string) (*incidents.Incident, error) {
	return nil, errUnwired
}

// Record stores a change. A rollback (or a change marked rolled back)
// recorded while incidents are open on the service, or on services that
// depend on it, appears on their timelines.
func (s *Service) Record(ctx context.Context, c Change) (Change, error) {
	now := s.o.Now().UTC()
	if err := c.Normalize(now); err != nil {
		return c, err
	}
	c.RecordedAt = now
	if err := s.o.Store.RecordChange(ctx, c); err != nil {
		return c, fmt.Errorf("record change %s: %w", c.ID, err)
	}
	if c.Kind != KindRollback && c.Status != StatusRolledBack {
		return c, nil
	}
	affected := append([]string{c.Service}, s.o.Catalog().Downstream(c.Service)...)
	open, err := s.o.Incidents.OpenIncidentsOfServices(ctx, affected)
	if err != nil {
		s.o.Logger.Warn("rollback recorded, but open incidents could not be read", "change", c.ID, "err", err)
		return c, nil
	}
	text := "Rollback: " + c.Label()
	if c.Kind != KindRollback {
		text = "Rolled back: " + c.Label()
	}
	if c.Actor != "" {
		text += " by " + c.Actor
	}
	for _, inc := range open {
		if _, err := s.o.Timeline.AddEvent(ctx, inc.ID, incidents.EventChange, actorOr(c.Actor), text); err != nil {
			s.o.Logger.Warn("rollback not added to the timeline", "incident", inc.ID, "change", c.ID, "err", err)
		}
	}
	return c, nil
}

// Suspects ranks the changes that may have caused the incident.
func (s *Service) Suspects(ctx context.Context, incidentID string) ([]Suspect, error) {
	// The causes people marked need only the ID: read them beside the
	// incident and its changes (a page waits on this chain).
	type marked struct {
		causes map[string]bool
		err    error
	}
	causesC := make(chan marked, 1)
	go func() {
		causes, err := s.o.Store.Causes(ctx, incidentID)
		causesC <- marked{causes, err}
	}()
	inc, err := s.o.Incidents.Get(ctx, incidentID)
	if err != nil {
		return nil, err
	}
	end := inc.ResolvedAt
	if end.IsZero() {
		end = s.o.Now().UTC()
	}
	up := s.o.Catalog().UpstreamNearestFirst(inc.Service)
	cs, err := s.o.Store.Changes(ctx, Query{
		Services: append([]string{inc.Service}, up...),
		From:     inc.StartedAt.Add(-s.o.Lookback), To: end, Limit: 1000,
	})
	if err != nil {
		return nil, fmt.Errorf("changes near incident %s: %w", inc.ID, err)
	}
	m := <-causesC
	if m.err != nil {
		return nil, fmt.Errorf("causes of incident %s: %w", inc.ID, m.err)
	}
	return Rank(inc.Service, inc.StartedAt, end, up, cs, s.o.Lookback, m.causes), nil
}

// TopSuspect names the change most likely to have caused the incident, as
// one line for people, or "" when no change is near it (chat.Suspects).
func (s *Service) TopSuspect(ctx context.Context, incidentID string) (string, error) {
	ss, err := s.Suspects(ctx, incidentID)
	if err != nil || len(ss) == 0 {
		return "", err
	}
	return ss[0].Hint, nil
}

// MarkCause records that a person marked (or unmarked) a change as the
// cause of an incident; it appears on the incident's timeline.
func (s *Service) MarkCause(ctx context.Context, incidentID, changeID, actor string, cause bool) error {
	if _, err := s.o.Incidents.Get(ctx, incidentID); err != nil {
		return err
	}
	c, err := s.change(ctx, changeID)
	if err != nil {
		return err
	}
	now := s.o.Now().UTC()
	if err := s.o.Store.SetCause(ctx, incidentID, changeID, actorOr(actor), now, cause); err != nil {
		return fmt.Errorf("mark cause: %w", err)
	}
	text := "Marked as the cause: " + c.Label()
	if !cause {
		text = "No longer marked as the cause: " + c.Label()
	}
	_, err = s.o.Timeline.AddEvent(ctx, incidentID, incidents.EventChange, actorOr(actor), text)
	return err
}

func (s *Service) change(ctx context.Context, id string) (Change, error) {
	cs, err := s.o.Store.Changes(ctx, Query{IDs: []string{id}, Limit: 1})
	if err != nil {
		return Change{}, err
	}
	if len(cs) == 0 {
		return Change{}, fmt.Errorf("%w: change_id: no change %q", fault.ErrInvalid, id)
	}
	return cs[0], nil
}

// List returns changes, newest first.
func (s *Service) List(ctx context.Context, q Query) ([]Change, error) {
	return s.o.Store.Changes(ctx, q)
}

// DORARaw is what the store counts per service over a window.
type DORARaw struct {
	Service           string
	Deployments       int     // deploys that completed (succeeded, failed or rolled back)
	Failures          int     // of those: failed, rolled back, marked as a cause, or followed by a rollback within a day
	Rollbacks         int     // rollback changes
	Restored          int     // incidents started in the window and resolved
	RestoreSecondsSum float64 // their summed time to restore
}

// DORA is the delivery figures of a service or a squad over a window.
type DORA struct {
	Service              string    `json:"service,omitempty"`
	Squad                string    `json:"squad,omitempty"`
	Window               string    `json:"window"`
	From                 time.Time `json:"from"`
	To                   time.Time `json:"to"`
	Deployments          int       `json:"deployments"`
	DeploymentsPerDay    float64   `json:"deployment_frequency_per_day"`
	ChangeFailures       int       `json:"change_failures"`
	ChangeFailureRate    *float64  `json:"change_failure_rate"`
	Rollbacks            int       `json:"rollbacks"`
	RollbackRate         *float64  `json:"rollback_rate"`
	Restored             int       `json:"incidents_restored"`
	TimeToRestoreSeconds *float64  `json:"time_to_restore_seconds"`
}

// DORA computes delivery figures per service and per squad.
func (s *Service) DORA(ctx context.Context, w availability.Window) (services, squads []DORA, err error) {
	raws, err := s.o.Store.DORA(ctx, w.From, w.To)
	if err != nil {
		return nil, nil, fmt.Errorf("dora: %w", err)
	}
	services, squads = summarize(raws, w, s.o.Catalog().Owner)
	return services, squads, nil
}

// summarize turns the store's counts into figures per service and, summed
// by owner, per squad.
func summarize(raws []DORARaw, w availability.Window, owner func(service string) string) (services, squads []DORA) {
	bySquad := map[string]*DORARaw{}
	for _, r := range raws {
		d := doraOf(r, w)
		d.Squad = owner(r.Service)
		services = append(services, d)
		if d.Squad == "" {
			continue
		}
		agg := bySquad[d.Squad]
		if agg == nil {
			agg = &DORARaw{}
			bySquad[d.Squad] = agg
		}
		agg.Deployments += r.Deployments
		agg.Failures += r.Failures
		agg.Rollbacks += r.Rollbacks
		agg.Restored += r.Restored
		agg.RestoreSecondsSum += r.RestoreSecondsSum
	}
	for name, r := range bySquad {
		d := doraOf(*r, w)
		d.Squad = name
		squads = append(squads, d)
	}
	sort.Slice(services, func(i, j int) bool { return services[i].Service < services[j].Service })
	sort.Slice(squads, func(i, j int) bool { return squads[i].Squad < squads[j].Squad })
	return services, squads
}

func doraOf(r DORARaw, w availability.Window) DORA {
	d := DORA{
		Service: r.Service, Window: w.String(), From: w.From, To: w.To,
		Deployments: r.Deployments, ChangeFailures: r.Failures, Rollbacks: r.Rollbacks, Restored: r.Restored,
	}
	if days := w.Duration().Hours() / 24; days > 0 {
		d.DeploymentsPerDay = float64(r.Deployments) / days
	}
	if r.Deployments > 0 {
		cfr := float64(r.Failures) / float64(r.Deployments)
		rr := float64(r.Rollbacks) / float64(r.Deployments)
		d.ChangeFailureRate, d.RollbackRate = &cfr, &rr
	}
	if r.Restored > 0 {
		ttr := r.RestoreSecondsSum / float64(r.Restored)
		d.TimeToRestoreSeconds = &ttr
	}
	return d
}

func actorOr(s string) string {
	if s == "" {
		return "api"
	}
	return s
}
