package changes

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ninesops/nines/answer"
	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/fault"
)

// API serves the changes endpoints. Routes are declared in cmd/nines.
type API struct {
	svc *Service
	loc func() *time.Location
	log *slog.Logger
}

// NewAPI builds the changes API; loc gives the time zone of calendar
// windows (the catalog's).
func NewAPI(svc *Service, loc func() *time.Location, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if loc == nil {
		loc = func() *time.Location { return time.UTC }
	}
	return &API{svc: svc, loc: loc, log: log}
}

const maxBody = 1 << 20

func decode(r *http.Request, v any) error {
	return answer.Decode(r, v, maxBody)
}

// Record serves POST /api/v1/changes.
func (a *API) Record(w http.ResponseWriter, r *http.Request) {
	var c Change
	if err := decode(r, &c); err != nil {
		answer.Error(w, a.log, err)
		return
	}
	c.RecordedAt = time.Time{}
	c, err := a.svc.Record(r.Context(), c)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	answer.JSON(w, http.StatusCreated, c)
}

// List serves GET /api/v1/changes?service=&since=&until=&limit=.
func (a *API) List(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := Query{Limit: 100}
	if s := q.Get("service"); s != "" {
		query.Services = []string{s}
	}
	for name, dst := range map[string]*time.Time{"since": &query.From, "until": &query.To} {
		if s := q.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				answer.Error(w, a.log, fmt.Errorf("%w: %s: want an RFC 3339 time, got %q", fault.ErrInvalid, name, s))
				return
			}
			*dst = t
		}
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			answer.Error(w, a.log, fmt.Errorf("%w: limit: want 1 to 1000, got %q", fault.ErrInvalid, s))
			return
		}
		query.Limit = n
	}
	cs, err := a.svc.List(r.Context(), query)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	if cs == nil {
		cs = []Change{}
	}
	answer.JSON(w, http.StatusOK, map[string]any{"changes": cs})
}

// Suspects serves GET /api/v1/incidents/{id}/suspects.
func (a *API) Suspects(w http.ResponseWriter, r *http.Request) {
	ss, err := a.svc.Suspects(r.Context(), r.PathValue("id"))
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	if ss == nil {
		ss = []Suspect{}
	}
	answer.JSON(w, http.StatusOK, map[string]any{"suspects": ss})
}

// Cause serves POST /api/v1/incidents/{id}/cause
// {"change_id": "…", "cause": true, "actor": "…"}.
func (a *API) Cause(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ChangeID string `json:"change_id"`
		Cause    *bool  `json:"cause"`
		Actor    string `json:"actor"`
	}
	if err := decode(r, &body); err != nil {
		answer.Error(w, a.log, err)
		return
	}
	if strings.TrimSpace(body.ChangeID) == "" {
		answer.Error(w, a.log, fmt.Errorf("%w: change_id: required", fault.ErrInvalid))
		return
	}
	cause := body.Cause == nil || *body.Cause
	if err := a.svc.MarkCause(r.Context(), r.PathValue("id"), body.ChangeID, body.Actor, cause); err != nil {
		answer.Error(w, a.log, err)
		return
	}
	a.Suspects(w, r)
}

// DORA serves GET /api/v1/dora?window=30d.
func (a *API) DORA(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("window")
	if name == "" {
		name = "30d"
	}
	win, err := availability.ParseWindow(name, time.Now(), a.loc())
	if err != nil {
		answer.Error(w, a.log, fmt.Errorf("%w: %v", fault.ErrInvalid, err))
		return
	}
	services, squads, err := a.svc.DORA(r.Context(), win)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	answer.JSON(w, http.StatusOK, map[string]any{
		"window": win.String(), "from": win.From, "to": win.To,
		"services": nonNil(services), "squads": nonNil(squads),
	})
}

func nonNil(d []DORA) []DORA {
	if d == nil {
		return []DORA{}
	}
	return d
}
