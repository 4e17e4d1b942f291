package web

import (
	"bytes"
	"fmt"
	"github.com/ninesops/nines/answer"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ninesops/nines/incidents"
)

// page is what every page template receives.
type page struct {
	Title    string
	Nav      string // the menu entry to mark as current
	JSON     string // the page's JSON twin
	CanWrite bool
	Signin   bool // whether signing in is possible at all
	Refresh  bool // reload the page every minute (open incidents)
	Now      time.Time
	View     any
	Error    string
	Status   int
}

var pageNames = []string{"overview", "incident", "service", "squad", "status", "postmortem", "login", "error"}

func (p *Pages) parseTemplates() error {
	funcs := template.FuncMap{
		"link":      p.Link,
		"pct":       Percent,
		"avail":     Avail,
		"dur":       Duration,
		"ts":        func(t time.Time) string { return t.UTC().Format(timeFmt) },
		"tsp":       func(t *time.Time) string { return optTime(t) },
		"q":         url.QueryEscape,
		"path":      url.PathEscape,
		"strip":     stripSVG,
		"bars":      barsSVG,
		"statusbar": statusSVG,
		"axis":      axisSVG,
		"impactWord": func(s string) string {
			return map[string]string{"outage": "Outage", "degraded": "Degraded", "none": "No impact", "operational": "Operational"}[s]
		},
		"sub":  func(a, b int) int { return a - b },
		"secs": func(f float64) int64 { return int64(math.Round(f)) },
		"add":  func(a, b int) int { return a + b },
		"budget": func(r float64) string {
			if r < 0 {
				return "overspent by " + Percent(-r)
			}
			return Percent(r) + " left"
		},
		"nines": func(a float64) string {
			if a >= 1 {
				return "100%"
			}
			return Avail(a)
		},
	}
	p.tmpl = map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("web: template %s: %w", name, err)
		}
		p.tmpl[name] = t
	}
	return nil
}

// render writes a page, or an error page when err is set.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, name string, pg page, err error) {
	pg.CanWrite = p.canWrite(r)
	pg.Signin = p.session != ""
	pg.Now = p.o.Now().UTC()
	status := http.StatusOK
	if err != nil {
		status = answer.StatusOf(err)
		msg := err.Error()
		switch status {
		case http.StatusInternalServerError:
			p.o.Logger.Error("page failed", "page", name, "err", err)
			msg = "internal error"
		case http.StatusServiceUnavailable:
			p.o.Logger.Warn("page: store unavailable", "page", name, "err", err)
			msg = "the incident store is unavailable; retry later"
		}
		name, pg.Title, pg.Error, pg.Status, pg.View = "error", http.StatusText(status), msg, status, nil
	}
	if pg.Status != 0 {
		status = pg.Status
	}
	var buf bytes.Buffer
	if err := p.tmpl[name].ExecuteTemplate(&buf, "layout", pg); err != nil {
		p.o.Logger.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (p *Pages) writeJSON(w http.ResponseWriter, v any, err error) {
	if err != nil {
		answer.Error(w, p.o.Logger, err)
		return
	}
	answer.JSON(w, http.StatusOK, v)
}

func intParam(r *http.Request, name string) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1_000_000 {
		return 0, fmt.Errorf("%w: %s: want a number, got %q", incidents.ErrInvalid, name, s)
	}
	return n, nil
}

func (p *Pages) overviewOf(r *http.Request) (OverviewView, error) {
	tier, err := intParam(r, "tier")
	if err != nil {
		return OverviewView{}, err
	}
	pg, err := intParam(r, "page")
	if err != nil {
		return OverviewView{}, err
	}
	return p.overview(r.Context(), r.URL.Query().Get("squad"), tier, pg)
}

// Overview serves GET /.
func (p *Pages) Overview(w http.ResponseWriter, r *http.Request) {
	v, err := p.overviewOf(r)
	p.render(w, r, "overview", page{Title: "Overview", Nav: "overview", JSON: "/api/v1/overview?" + r.URL.RawQuery, Refresh: true, View: v}, err)
}

// OverviewJSON serves GET /api/v1/overview, the overview page's twin.
func (p *Pages) OverviewJSON(w http.ResponseWriter, r *http.Request) {
	v, err := p.overviewOf(r)
	p.writeJSON(w, v, err)
}

func incidentID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !strings.HasPrefix(id, "inc-") || len(id) != 24 || strings.Trim(id[4:], "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w: no incident %q", incidents.ErrNotFound, id)
	}
	return id, nil
}

// Incident serves GET /incidents/{id}; its twin is GET
// /api/v1/incidents/{id} (and …/suspects).
func (p *Pages) Incident(w http.ResponseWriter, r *http.Request) {
	var v IncidentView
	id, err := incidentID(r)
	if err == nil {
		v, err = p.incident(r.Context(), id)
	}
	title := "Incident"
	if err == nil {
		title = v.Incident.Title
	}
	p.render(w, r, "incident", page{Title: title, JSON: "/api/v1/incidents/" + id, Refresh: err == nil && v.Incident.ResolvedAt == nil, View: v}, err)
}

// Service serves GET /services/{name}; its twin is GET
// /api/v1/services/{name}.
func (p *Pages) Service(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, err := p.service(r.Context(), name, r.URL.Query().Get("cursor"))
	p.render(w, r, "service", page{Title: name, JSON: "/api/v1/services/" + url.PathEscape(name), View: v}, err)
}

// Squad serves GET /squads/{name}.
func (p *Pages) Squad(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, err := p.squad(r.Context(), name)
	p.render(w, r, "squad", page{Title: "Squad " + name, JSON: "/api/v1/squads/" + url.PathEscape(name), Refresh: true, View: v}, err)
}

// SquadJSON serves GET /api/v1/squads/{name}.
func (p *Pages) SquadJSON(w http.ResponseWriter, r *http.Request) {
	v, err := p.squad(r.Context(), r.PathValue("name"))
	p.writeJSON(w, v, err)
}

func (p *Pages) statusOf(r *http.Request) (StatusView, error) {
	pg, err := intParam(r, "page")
	if err != nil {
		return StatusView{}, err
	}
	return p.status(r.Context(), pg)
}

// Status serves GET /status.
func (p *Pages) Status(w http.ResponseWriter, r *http.Request) {
	v, err := p.statusOf(r)
	p.render(w, r, "status", page{Title: "Status", Nav: "status", JSON: "/api/v1/status", Refresh: true, View: v}, err)
}

// StatusJSON serves GET /api/v1/status.
func (p *Pages) StatusJSON(w http.ResponseWriter, r *http.Request) {
	v, err := p.statusOf(r)
	p.writeJSON(w, v, err)
}

func (p *Pages) postmortemOf(r *http.Request) (Postmortem, error) {
	id, err := incidentID(r)
	if err != nil {
		return Postmortem{}, err
	}
	return p.postmortem(r.Context(), id)
}

// Postmortem serves GET /incidents/{id}/postmortem.
func (p *Pages) Postmortem(w http.ResponseWriter, r *http.Request) {
	v, err := p.postmortemOf(r)
	p.render(w, r, "postmortem", page{Title: "Postmortem: " + v.Title, JSON: "/api/v1/incidents/" + v.ID + "/postmortem", View: v}, err)
}

// PostmortemJSON serves GET /api/v1/incidents/{id}/postmortem; with
// format=markdown it answers the Markdown draft alone.
func (p *Pages) PostmortemJSON(w http.ResponseWriter, r *http.Request) {
	v, err := p.postmortemOf(r)
	if err == nil && r.URL.Query().Get("format") == "markdown" {
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_, _ = w.Write([]byte(v.Markdown))
		return
	}
	p.writeJSON(w, v, err)
}

// SignIn serves GET and POST /login: the form takes the API token and
// sets the session cookie that grants write rights.
func (p *Pages) SignIn(w http.ResponseWriter, r *http.Request) {
	pg := page{Title: "Sign in", View: map[string]string{"next": safeNext(r.FormValue("next"))}}
	if r.Method != http.MethodPost {
		p.render(w, r, "login", pg, nil)
		return
	}
	if !sameOrigin(r) {
		p.render(w, r, "login", pg, fmt.Errorf("%w: cross-site sign-in refused", incidents.ErrInvalid))
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	if p.session == "" || !p.tokenOK(token) {
		pg.Error, pg.Status = "Wrong token: write rights need nines' API token (--api.token-file).", http.StatusUnauthorized
		p.render(w, r, "login", pg, nil)
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: p.session, Path: "/", HttpOnly: true,
		Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600,
	})
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// SignOut serves POST /logout; without a session there is nothing to
// sign out of (403).
func (p *Pages) SignOut(w http.ResponseWriter, r *http.Request) {
	if !p.canWrite(r) {
		p.render(w, r, "error", page{Title: "Forbidden", Status: http.StatusForbidden, Error: "You are not signed in."}, nil)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, MaxAge: -1, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (p *Pages) tokenOK(token string) bool {
	return token != "" && subtleEq(sessionOf(token), p.session)
}

// safeNext keeps redirects on this server.
func safeNext(s string) string {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\r\n") {
		return "/"
	}
	return s
}

// Act serves POST /incidents/{id}/ack, …/resolve and …/notes: the
// forms behind the page's buttons. Without write rights it answers 403.
func (p *Pages) Act(w http.ResponseWriter, r *http.Request) {
	id, err := incidentID(r)
	if err != nil {
		p.render(w, r, "error", page{}, err)
		return
	}
	if !p.canWrite(r) || !sameOrigin(r) || p.o.Mutator == nil {
		p.render(w, r, "error", page{Title: "Forbidden", Status: http.StatusForbidden,
			Error: "Changing incidents needs write rights: sign in with nines' API token."}, nil)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	actor := strings.TrimSpace(r.PostFormValue("actor"))
	if actor == "" {
		actor = "web"
	}
	ctx := r.Context()
	switch path.Base(r.URL.Path) {
	case "ack":
		_, err = p.o.Mutator.Acknowledge(ctx, id, actor)
	case "resolve":
		_, err = p.o.Mutator.Resolve(ctx, id, actor)
	case "notes":
		text := strings.TrimSpace(r.PostFormValue("text"))
		if text == "" {
			err = fmt.Errorf("%w: a note needs text", incidents.ErrInvalid)
			break
		}
		_, err = p.o.Mutator.AddNote(ctx, id, actor, text)
	default:
		err = fmt.Errorf("%w: no action %q", incidents.ErrNotFound, path.Base(r.URL.Path))
	}
	if err != nil {
		p.render(w, r, "error", page{}, err)
		return
	}
	http.Redirect(w, r, "/incidents/"+id, http.StatusSeeOther)
}

// Avail writes an availability ratio as a percentage with three
// decimals, rounded down so that 99.9999% never reads 100.000%.
func Avail(a float64) string {
	return fmt.Sprintf("%.3f%%", math.Floor(a*100000)/1000)
}

// Percent writes a ratio as a percentage with one decimal.
func Percent(r float64) string {
	if math.IsInf(r, 0) || math.IsNaN(r) {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", r*100)
}

// Duration writes seconds for people, as every surface of nines does
// (incidents.FormatDuration): "1h2m3s", "4m30s", "20m".
func Duration(sec int64) string {
	if sec < 0 {
		return "-" + Duration(-sec)
	}
	return incidents.FormatDuration(time.Duration(sec) * time.Second)
}

func optTime(t *time.Time) string {
	if t == nil {
		return "—"
	}
	return t.UTC().Format(timeFmt)
}
