package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// stubIncidents answers every call as if the incident did not exist, and
// counts mutations so tests can see a refused call changed nothing.
type stubIncidents struct{ mutations int }

func (s *stubIncidents) List(context.Context, incidents.Filter) ([]*incidents.Incident, string, error) {
	return nil, "", nil
}
func (s *stubIncidents) Get(_ context.Context, id string) (*incidents.Incident, error) {
	return nil, fault.ErrNotFound
}
func (s *stubIncidents) Timeline(context.Context, string) ([]incidents.Event, error) { return nil, nil }
func (s *stubIncidents) mutate() (*incidents.Incident, error) {
	s.mutations++
	return nil, fault.ErrNotFound
}
func (s *stubIncidents) Acknowledge(context.Context, string, string) (*incidents.Incident, error) {
	return s.mutate()
}
func (s *stubIncidents) Resolve(context.Context, string, string) (*incidents.Incident, error) {
	return s.mutate()
}
func (s *stubIncidents) AddNote(context.Context, string, string, string) (*incidents.Incident, error) {
	return s.mutate()
}
func (s *stubIncidents) Open(context.Context, incidents.OpenRequest) (*incidents.Incident, error) {
	return s.mutate()
}
func (s *stubIncidents) Link(context.Context, string, string, string) (*incidents.Incident, error) {
	return s.mutate()
}
func (s *stubIncidents) Unlink(context.Context, string, string) (*incidents.Incident, error) {
	return s.mutate()
}
func (s *stubIncidents) WithdrawNotDowntime(context.Context, string, time.Time, string, string) (*incidents.Incident, error) {
	return s.mutate()
}
func (s *stubIncidents) NotDowntime(context.Context, string, incidents.NotDowntimeRequest) (*incidents.Incident, error) {
	return s.mutate()
}

func TestRoutes(t *testing.T) {
	const token = "api-token"
	const id = "inc-0123456789abcdef0123"
	tests := []struct {
		name, method, path, auth string
		ready                    error
		wantStatus               int
		wantInBody               string
	}{
		{"unknown endpoint", "GET", "/api/v1/nope", "", nil, 404, "no such endpoint"},
		{"wrong method", "DELETE", "/api/v1/incidents", "", nil, 405, "not allowed"},
		{"path trick in id", "GET", "/api/v1/incidents/inc-..%2F..%2Fetc%2Fpasswd", "", nil, 404, "error"},
		{"dot segments", "GET", "/api/v1/incidents/../../metrics", "", nil, 404, "error"},
		{"malformed id", "GET", "/api/v1/incidents/inc-XYZ", "", nil, 404, "no incident"},
		{"long id", "GET", "/api/v1/incidents/inc-" + strings.Repeat("a", 5000), "", nil, 404, "no incident"},
		{"unknown incident", "GET", "/api/v1/incidents/" + id, "", nil, 404, "not found"},
		{"ack without token", "POST", "/api/v1/incidents/" + id + "/ack", "", nil, 401, "missing API token"},
		{"resolve with wrong token", "POST", "/api/v1/incidents/" + id + "/resolve", "Bearer nope", nil, 401, "invalid API token"},
		{"notes with basic auth", "POST", "/api/v1/incidents/" + id + "/notes", "Basic YTpi", nil, 401, "missing API token"},
		{"open without token", "POST", "/api/v1/incidents", "", nil, 401, "API token"},
		{"link without token", "POST", "/api/v1/incidents/" + id + "/link", "", nil, 401, "API token"},
		{"ack with token reaches the service", "POST", "/api/v1/incidents/" + id + "/ack", "Bearer " + token, nil, 404, "not found"},
		{"bad filter", "GET", "/api/v1/incidents?limit=0", "", nil, 400, "limit"},
		{"healthy", "GET", "/-/healthy", "", nil, 200, "healthy"},
		{"ready", "GET", "/-/ready", "", nil, 200, "ready"},
		{"not ready", "GET", "/-/ready", "", errors.New("dial tcp: connection refused"), 503, "connection refused"},
		{"metrics", "GET", "/metrics", "", nil, 200, "go_goroutines"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stub := &stubIncidents{}
			reg := prometheus.NewRegistry()
			reg.MustRegister(prometheus.NewGoCollector())
			h := routes(routeDeps{
				log:      slog.New(slog.DiscardHandler),
				webhook:  http.NotFoundHandler(),
				api:      incidents.NewAPI(stub, stub, nil),
				apiToken: token,
				ready:    func(context.Context) error { return tc.ready },
				gatherer: reg,
			})
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tc.wantStatus || !strings.Contains(string(body), tc.wantInBody) {
				t.Fatalf("%s %s = %d %s, want %d containing %q", tc.method, tc.path, rec.Code, body, tc.wantStatus, tc.wantInBody)
			}
			if rec.Code >= 400 && !json.Valid(body) {
				t.Errorf("error body is not JSON: %s", body)
			}
			if rec.Code == 401 && stub.mutations != 0 {
				t.Errorf("refused call reached the service")
			}
		})
	}
}

func TestMutationsRefusedWithoutConfiguredToken(t *testing.T) {
	stub := &stubIncidents{}
	h := routes(routeDeps{
		log: slog.New(slog.DiscardHandler), webhook: http.NotFoundHandler(),
		api: incidents.NewAPI(stub, stub, nil), ready: func(context.Context) error { return nil },
		gatherer: prometheus.NewRegistry(),
	})
	req := httptest.NewRequest("POST", "/api/v1/incidents/inc-0123456789abcdef0123/ack", nil)
	req.Header.Set("Authorization", "Bearer ")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "without --api.token-file") || stub.mutations != 0 {
		t.Errorf("got %d %s (mutations %d)", rec.Code, rec.Body, stub.mutations)
	}
}
