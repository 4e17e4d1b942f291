// Package web owns nines' pages for people: the overview, incident,
// service, squad and status pages and the postmortem draft. Pages are
// rendered on the server with html/template from templates and a style
// sheet embedded in the binary; they work without JavaScript and load
// nothing from outside nines. They read the same services as the JSON API
// (incidents, availability, changes, the catalog), through the small
// interfaces declared here, and each page has a JSON twin built from the
// same view.
//
// Figures over every service (each default window's, the status page's
// uptime and daily bars) are computed in one query each and reused for
// Options.RefreshInterval, refreshed in the background once older (see
// memo); the pages and their twins say when they were computed. Nothing
// else is cached: open incidents, lists and timelines are read per
// request, a page's reads at once.
//
// Reads follow the server's access rule (basic auth or TLS client
// certificates for the whole server, from --web.config.file). Buttons that
// change incidents appear only when the request carries write rights: the
// session cookie that the sign-in form sets after checking the API token.
// The form posts behind those buttons check the same cookie.
package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/incidents"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Incidents knows how to read incidents and their timelines
// (*chstore.Store).
type Incidents interface {
	List(ctx context.Context, f incidents.Filter) ([]*incidents.Incident, string, error)
	Get(ctx context.Context, id string) (*incidents.Incident, error)
	Timeline(ctx context.Context, id string) ([]incidents.Event, error)
	// RecentByService returns each service's latest perService incidents
	// started at or after since and before until (zero: no bound), newest
	// first: one query where List takes one per service.
	RecentByService(ctx context.Context, services []string, since, until time.Time, perService int) (map[string][]*incidents.Incident, error)
}

// Availability knows how to compute availability figures
// (*availability.Service).
type Availability interface {
	All(ctx context.Context, w availability.Window, explain bool) ([]availability.Figure, error)
	Service(ctx context.Context, name string, w availability.Window, explain bool) (availability.Figure, error)
	Daily(ctx context.Context, name string, from, to time.Time) ([]availability.Day, error)
	DailyServices(ctx context.Context, names []string, from, to time.Time) (map[string][]availability.Day, error)
	Info(ctx context.Context, name string) (availability.ServiceInfo, error)
	ParseWindow(name string) (availability.Window, error)
	Config() availability.Config
}

// Changes knows how to list changes and rank an incident's suspects
// (*changes.Service).
type Changes interface {
	List(ctx context.Context, q changes.Query) ([]changes.Change, error)
	Suspects(ctx context.Context, incidentID string) ([]changes.Suspect, error)
}

// Mutator knows how to change incidents on people's behalf
// (*incidents.Service).
type Mutator interface {
	Acknowledge(ctx context.Context, id, actor string) (*incidents.Incident, error)
	Resolve(ctx context.Context, id, actor string) (*incidents.Incident, error)
	AddNote(ctx context.Context, id, actor, text string) (*incidents.Incident, error)
}

// Options configure the pages.
type Options struct {
	Incidents    Incidents    // required
	Availability Availability // required
	Changes      Changes      // required
	Mutator      Mutator      // required for the buttons
	// Catalog returns the current service catalog (required).
	Catalog func() *catalog.Catalog
	// ExternalURL is the URL people reach nines at
	// (--web.external-url); links in pages become absolute with it. Empty:
	// links are relative to the server's root.
	ExternalURL string
	// APIToken grants write rights to whoever signs in with it; empty
	// means nobody gets them.
	APIToken string
	// DashboardURL gives a service's Grafana dashboard, or "".
	DashboardURL func(service string) string
	// SlackThread, if set, gives the URL of an incident's Slack message
	// (its thread), or "" when there is none.
	SlackThread func(ctx context.Context, incidentID string) (string, error)
	// StatusTitles shows incidents' own titles on the status page instead
	// of a public title made of the impact and the service.
	StatusTitles bool
	// RefreshInterval is how long the figures computed for every service
	// at once (the overview's and squad pages' windows, the status page's
	// uptime and daily bars) are reused: once older, they are still served
	// while a refresh in the background replaces them, so that no page
	// waits for a computation over every service once the first is done.
	// nines serve passes the collector's refresh interval. Zero computes
	// them on every request.
	RefreshInterval time.Duration
	// PageSize is how many rows a paginated list shows (default 50).
	PageSize int
	Now      func() time.Time
	Logger   *slog.Logger
}

func (o *Options) validate() error {
	if o.Incidents == nil || o.Availability == nil || o.Changes == nil || o.Catalog == nil {
		return errors.New("web: incidents, availability, changes and catalog are required")
	}
	if o.ExternalURL != "" {
		u, err := url.Parse(o.ExternalURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("web: external URL: want an absolute http(s) URL, got %q", o.ExternalURL)
		}
		o.ExternalURL = strings.TrimSuffix(o.ExternalURL, "/")
	}
	if o.DashboardURL == nil {
		o.DashboardURL = func(string) string { return "" }
	}
	if o.PageSize <= 0 {
		o.PageSize = 50
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Pages serves nines' pages and their JSON twins. Routes are declared in
// cmd/nines; handlers read path parameters with r.PathValue.
type Pages struct {
	o       Options
	tmpl    map[string]*template.Template
	session string // the session cookie's value; "" when no token is set
	static  http.Handler
	// windowFigures and statusFigures keep the figures computed for every
	// service (Options.RefreshInterval).
	windowFigures *memo[windowFigures]
	statusFigures *memo[statusFigures]
	// stop ends the loads of both, which loads counts.
	stop  context.CancelFunc
	loads sync.WaitGroup
}

// New builds the pages.
func New(o Options) (*Pages, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	p := &Pages{o: o}
	base, stop := context.WithCancel(context.Background())
	p.stop = stop
	p.windowFigures = &memo[windowFigures]{ttl: o.RefreshInterval, timeout: refreshTimeout, now: o.Now, log: o.Logger,
		what: "default windows", load: p.loadWindowFigures, base: base, loads: &p.loads}
	p.statusFigures = &memo[statusFigures]{ttl: o.RefreshInterval, timeout: refreshTimeout, now: o.Now, log: o.Logger,
		what: "status page", load: p.loadStatusFigures, base: base, loads: &p.loads}
	if o.APIToken != "" {
		p.session = sessionOf(o.APIToken)
	}
	if err := p.parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	p.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	return p, nil
}

// Close ends the computations of figures running in the background and
// waits for them: call it before closing the store they read.
func (p *Pages) Close() error {
	p.windowFigures.close()
	p.statusFigures.close()
	p.stop()
	p.loads.Wait()
	return nil
}

// Link returns the URL of a page: absolute with the external URL, else
// relative to the server's root.
func (p *Pages) Link(path string) string { return p.o.ExternalURL + path }

// Static serves the embedded style sheet and script under /static/.
func (p *Pages) Static(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	p.static.ServeHTTP(w, r)
}

// refreshTimeout bounds one computation of the figures of every service.
const refreshTimeout = time.Minute

// sessionCookie names the cookie that carries write rights.
const sessionCookie = "nines_session"

// canWrite reports whether the request carries write rights: the session
// cookie set by signing in with the API token.
func (p *Pages) canWrite(r *http.Request) bool {
	if p.session == "" {
		return false
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	return subtleEq(c.Value, p.session)
}

// sameOrigin refuses cross-site form posts: browsers send Origin on POST,
// and the session cookie is SameSite=Strict besides.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func sessionOf(token string) string {
	sum := sha256.Sum256([]byte("nines web session\x00" + token))
	return hex.EncodeToString(sum[:])
}

func subtleEq(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
