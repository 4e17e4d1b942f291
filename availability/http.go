package availability

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/ninesops/nines/answer"
	"github.com/ninesops/nines/fault"
)

// DefaultWindow is the window of GET /api/v1/availability and
// …/services/{name}/availability when none is given.
const DefaultWindow = "30d"

// API serves nines' availability endpoints. Routes are declared in
// cmd/nines; handlers read the service name with r.PathValue("name").
type API struct {
	svc *Service
	log *slog.Logger
}

// NewAPI builds the availability API.
func NewAPI(svc *Service, log *slog.Logger) *API {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{svc: svc, log: log}
}

// Report is the answer of GET /api/v1/availability: every service's
// figures over one window, worst first.
type Report struct {
	Window string    `json:"window"`
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	// TimeZone is the catalog's, in which calendar windows and days are
	// meant (an IANA name).
	TimeZone string   `json:"timezone"`
	Services []Figure `json:"services"`
}

// NewReport wraps figures computed over w.
func NewReport(w Window, figs []Figure) Report {
	if figs == nil {
		figs = []Figure{}
	}
	return Report{Window: w.String(), From: w.From.UTC(), To: w.To.UTC(), Services: figs}
}

// Availability serves GET /api/v1/availability?window=30d[&explain=1], or
// with from= and to= (RFC 3339 times or dates in the catalog's time zone)
// instead of window=.
func (a *API) Availability(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	win, explain, err := a.windowParams(q)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	figs, err := a.svc.All(r.Context(), win, explain)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	rep := NewReport(win, figs)
	rep.TimeZone = a.svc.Location().String()
	answer.JSON(w, http.StatusOK, rep)
}

// Services serves GET /api/v1/services.
func (a *API) Services(w http.ResponseWriter, r *http.Request) {
	list, err := a.svc.Services(r.Context())
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	if list == nil {
		list = []ServiceInfo{}
	}
	answer.JSON(w, http.StatusOK, map[string]any{"services": list})
}

// ServiceDetail is the answer of GET /api/v1/services/{name}: the catalog
// entry and the figures over the configured default windows.
type ServiceDetail struct {
	ServiceInfo
	Figures []Figure `json:"figures"`
}

// Service serves GET /api/v1/services/{name}.
func (a *API) Service(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	info, err := a.svc.Info(r.Context(), name)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	out := ServiceDetail{ServiceInfo: info, Figures: []Figure{}}
	for _, ws := range a.svc.Config().Windows {
		win, err := a.svc.ParseWindow(ws)
		if err != nil {
			answer.Error(w, a.log, err)
			return
		}
		f, err := a.svc.Service(r.Context(), name, win, false)
		if err != nil {
			answer.Error(w, a.log, err)
			return
		}
		out.Figures = append(out.Figures, f)
	}
	answer.JSON(w, http.StatusOK, out)
}

// ServiceAvailability serves
// GET /api/v1/services/{name}/availability?window=…[&explain=1].
func (a *API) ServiceAvailability(w http.ResponseWriter, r *http.Request) {
	win, explain, err := a.windowParams(r.URL.Query())
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	f, err := a.svc.Service(r.Context(), r.PathValue("name"), win, explain)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	answer.JSON(w, http.StatusOK, f)
}

// Daily serves GET /api/v1/services/{name}/daily?from=YYYY-MM-DD&to=YYYY-MM-DD
// (both included; to defaults to today, from to 29 days before to).
func (a *API) Daily(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	loc := a.svc.Location()
	to := a.svc.Now().In(loc)
	if s := q.Get("to"); s != "" {
		t, err := time.ParseInLocation(time.DateOnly, s, loc)
		if err != nil {
			answer.Error(w, a.log, fmt.Errorf("%w: to: want a date like 2026-11-22, got %q", fault.ErrInvalid, s))
			return
		}
		to = t
	}
	from := time.Date(to.Year(), to.Month(), to.Day()-29, 0, 0, 0, 0, loc)
	if s := q.Get("from"); s != "" {
		t, err := time.ParseInLocation(time.DateOnly, s, loc)
		if err != nil {
			answer.Error(w, a.log, fmt.Errorf("%w: from: want a date like 2026-11-22, got %q", fault.ErrInvalid, s))
			return
		}
		from = t
	}
	name := r.PathValue("name")
	days, err := a.svc.Daily(r.Context(), name, from, to)
	if err != nil {
		answer.Error(w, a.log, err)
		return
	}
	answer.JSON(w, http.StatusOK, map[string]any{
		"service": name, "timezone": loc.String(), "days": days,
	})
}

// windowParams reads window= (or from= and to=) and explain=.
func (a *API) windowParams(q url.Values) (Window, bool, error) {
	explain := false
	switch s := q.Get("explain"); s {
	case "", "0", "false":
	case "1", "true":
		explain = true
	default:
		return Window{}, false, fmt.Errorf("%w: explain: want 1 or 0, got %q", fault.ErrInvalid, s)
	}
	from, to := q.Get("from"), q.Get("to")
	if from == "" && to == "" {
		name := q.Get("window")
		if name == "" {
			name = DefaultWindow
		}
		w, err := a.svc.ParseWindow(name)
		return w, explain, err
	}
	if q.Get("window") != "" {
		return Window{}, false, fmt.Errorf("%w: window: give either window or from and to, not both", fault.ErrInvalid)
	}
	loc := a.svc.Location()
	f, err := parseTimeParam("from", from, loc)
	if err != nil {
		return Window{}, false, err
	}
	t := a.svc.Now()
	if to != "" {
		if t, err = parseTimeParam("to", to, loc); err != nil {
			return Window{}, false, err
		}
	}
	w, err := WindowBetween(f, t)
	return w, explain, err
}

// parseTimeParam reads an RFC 3339 time or a date (midnight in loc).
func parseTimeParam(name, s string, loc *time.Location) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%w: %s: required with %s", fault.ErrInvalid, name, map[string]string{"from": "to", "to": "from"}[name])
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%w: %s: want an RFC 3339 time or a date like 2026-11-22, got %q", fault.ErrInvalid, name, s)
}
