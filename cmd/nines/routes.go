package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ninesops/nines/answer"
	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/spool"
	"github.com/ninesops/nines/web"
)

// routeDeps is everything the HTTP surface serves.
type routeDeps struct {
	log     *slog.Logger
	webhook http.Handler
	api     *incidents.API
	changes *changes.API
	// slack serves Slack's buttons and /nines; nil turns them off.
	slack *chat.Handler
	// availability serves figures and the service catalog.
	availability *availability.API
	apiToken     string           // required by mutating API calls; empty refuses them
	sync         http.HandlerFunc // POST /api/v1/sync: the deriver's barrier
	ready        func(context.Context) error
	// readyDetail, if set, adds the spool's state to /-/ready.
	readyDetail func() any
	gatherer    prometheus.Gatherer
	// pages serves the pages for people and their JSON twins.
	pages *web.Pages
}

// routes declares nines' whole HTTP surface, in one place.
func routes(d routeDeps) http.Handler {
	r := mux.NewRouter()
	// No redirects for unclean paths: a path trick in an ID gets a JSON 404.
	r.SkipClean(true)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer.Message(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer.Message(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
	})
	r.Use(pathValues)

	// Alertmanager's webhook: authenticated by the webhook's own secrets.
	r.Handle("/api/v1/alerts", d.webhook)

	// Slack's interactivity and slash command: authenticated by Slack's
	// request signatures.
	if d.slack != nil {
		r.HandleFunc("/api/v1/slack/interactions", d.slack.Interactions).Methods(http.MethodPost)
		r.HandleFunc("/api/v1/slack/commands", d.slack.Commands).Methods(http.MethodPost)
	}

	// Incidents. Reads are open; changes need the API token.
	auth := tokenAuth(d.apiToken)
	r.HandleFunc("/api/v1/incidents", d.api.List).Methods(http.MethodGet)
	r.Handle("/api/v1/incidents", auth(d.api.Open)).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/incidents/{id}", d.api.Get).Methods(http.MethodGet)
	r.Handle("/api/v1/incidents/{id}/ack", auth(d.api.Acknowledge)).Methods(http.MethodPost)
	r.Handle("/api/v1/incidents/{id}/resolve", auth(d.api.Resolve)).Methods(http.MethodPost)
	r.Handle("/api/v1/incidents/{id}/notes", auth(d.api.AddNote)).Methods(http.MethodPost)
	r.Handle("/api/v1/incidents/{id}/link", auth(d.api.Link)).Methods(http.MethodPost)
	r.Handle("/api/v1/incidents/{id}/unlink", auth(d.api.Unlink)).Methods(http.MethodPost)
	r.Handle("/api/v1/incidents/{id}/not-downtime", auth(d.api.NotDowntime)).Methods(http.MethodPost)
	r.Handle("/api/v1/incidents/{id}/not-downtime/withdraw", auth(d.api.WithdrawNotDowntime)).Methods(http.MethodPost)
	r.Handle("/api/v1/sync", auth(d.sync)).Methods(http.MethodPost)

	// Availability figures and the service catalog.
	r.HandleFunc("/api/v1/availability", d.availability.Availability).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/services", d.availability.Services).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/services/{name}", d.availability.Service).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/services/{name}/availability", d.availability.ServiceAvailability).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/services/{name}/daily", d.availability.Daily).Methods(http.MethodGet)

	// Changes: what changed, suspects of incidents, delivery figures.
	r.Handle("/api/v1/changes", auth(d.changes.Record)).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/changes", d.changes.List).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/incidents/{id}/suspects", d.changes.Suspects).Methods(http.MethodGet)
	r.Handle("/api/v1/incidents/{id}/cause", auth(d.changes.Cause)).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/dora", d.changes.DORA).Methods(http.MethodGet)

	pageRoutesOn(r, d.pages)

	// Operations.
	r.HandleFunc("/api/v1/openapi.json", serveOpenAPI).Methods(http.MethodGet)
	healthRoutesOn(r, d.ready, d.readyDetail)
	r.Handle("/metrics", promhttp.HandlerFor(d.gatherer, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelError),
		EnableOpenMetrics: true,
	}))
	return r
}

// pageRoutesOn adds the pages for people and the JSON twins the API
// lacked. Reads follow the server's access rule (--web.config.file); the
// forms behind the buttons need the session that signing in with the API
// token gives.
func pageRoutesOn(r *mux.Router, p *web.Pages) {
	get := []string{http.MethodGet, http.MethodHead}
	r.HandleFunc("/", p.Overview).Methods(get...)
	r.HandleFunc("/incidents/{id}", p.Incident).Methods(get...)
	r.HandleFunc("/incidents/{id}/postmortem", p.Postmortem).Methods(get...)
	r.HandleFunc("/incidents/{id}/ack", p.Act).Methods(http.MethodPost)
	r.HandleFunc("/incidents/{id}/resolve", p.Act).Methods(http.MethodPost)
	r.HandleFunc("/incidents/{id}/notes", p.Act).Methods(http.MethodPost)
	r.HandleFunc("/services/{name}", p.Service).Methods(get...)
	r.HandleFunc("/squads/{name}", p.Squad).Methods(get...)
	r.HandleFunc("/login", p.SignIn).Methods(http.MethodGet, http.MethodPost)
	r.HandleFunc("/logout", p.SignOut).Methods(http.MethodPost)
	r.HandleFunc("/api/v1/overview", p.OverviewJSON).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/squads/{name}", p.SquadJSON).Methods(http.MethodGet)
	r.HandleFunc("/api/v1/incidents/{id}/postmortem", p.PostmortemJSON).Methods(http.MethodGet)
	statusRoutesOn(r, p)
}

// statusRoutesOn adds the status page: on the main router, and alone on
// the public status listener (--web.status-page.listen-address).
func statusRoutesOn(r *mux.Router, p *web.Pages) {
	r.HandleFunc("/status", p.Status).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/api/v1/status", p.StatusJSON).Methods(http.MethodGet)
	r.PathPrefix("/static/").HandlerFunc(p.Static).Methods(http.MethodGet, http.MethodHead)
}

// healthRoutesOn adds liveness and readiness.
func healthRoutesOn(r *mux.Router, ready func(context.Context) error, readyDetail func() any) {
	r.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		answer.JSON(w, http.StatusOK, map[string]string{"status": "healthy"})
	}).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/-/ready", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		body := map[string]any{"status": "ready"}
		if readyDetail != nil {
			if v := readyDetail(); v != nil {
				body["spool"] = v
			}
		}
		if err := ready(ctx); err != nil {
			body["status"], body["error"] = "not ready", "clickhouse: "+err.Error()
			answer.JSON(w, http.StatusServiceUnavailable, body)
			return
		}
		answer.JSON(w, http.StatusOK, body)
	}).Methods(http.MethodGet, http.MethodHead)
}

// statusRoutes is the whole surface of the public status listener: the
// status page, its JSON twin, the style sheet and the health endpoints.
func statusRoutes(p *web.Pages, ready func(context.Context) error) http.Handler {
	r := mux.NewRouter()
	r.SkipClean(true)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		answer.Message(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	r.Use(pathValues)
	statusRoutesOn(r, p)
	healthRoutesOn(r, ready, nil)
	return r
}

// pathValues exposes mux's route variables through the standard
// r.PathValue, so handlers outside this file do not import mux.
func pathValues(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range mux.Vars(r) {
			r.SetPathValue(k, v)
		}
		next.ServeHTTP(w, r)
	})
}

// tokenAuth requires "Authorization: Bearer <token>", compared in
// constant time. With no token configured every call is refused.
func tokenAuth(token string) func(http.HandlerFunc) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.HandlerFunc) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := checkBearer(r, token, want); err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="nines"`)
				answer.Message(w, http.StatusUnauthorized, err.Error())
				return
			}
			next(w, r)
		})
	}
}

func checkBearer(r *http.Request, token string, want [32]byte) error {
	if token == "" {
		return errors.New("mutating API calls are disabled: nines was started without --api.token-file")
	}
	h := r.Header.Get("Authorization")
	got, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return errors.New("missing API token: send Authorization: Bearer <token>")
	}
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
		return errors.New("invalid API token")
	}
	return nil
}

// startingRoutes are served until the store is reached. waiting holds why
// it is not yet.
func startingRoutes(hook http.Handler, gatherer prometheus.Gatherer, log *slog.Logger, sp *spool.Spool, waiting *atomic.Pointer[string]) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/v1/alerts", hook)
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		answer.JSON(w, http.StatusOK, map[string]string{"status": "healthy"})
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		why := "connecting"
		if p := waiting.Load(); p != nil {
			why = *p
		}
		body := map[string]any{"status": "not ready", "error": "clickhouse: waiting at start: " + why}
		if sp != nil {
			body["spool"] = sp.Status()
		}
		answer.JSON(w, http.StatusServiceUnavailable, body)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		answer.JSON(w, http.StatusServiceUnavailable, map[string]string{"error": "starting: waiting for ClickHouse, retry later"})
	})
	return mux
}
