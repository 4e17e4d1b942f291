package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/chat"
)

// openAPIDoc is the part of an OpenAPI 3 document the tests read.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Title   string `json:"title"`
		Version string `json:"version"`
	} `json:"info"`
	Paths      map[string]map[string]openAPIOp       `json:"paths"`
	Components map[string]map[string]json.RawMessage `json:"components"`
}

type openAPIOp struct {
	OperationID string                      `json:"operationId"`
	Parameters  []struct{ Name, In string } `json:"parameters"`
	Responses   map[string]struct {
		Ref         string `json:"$ref"`
		Description string `json:"description"`
	} `json:"responses"`
}

func parseOpenAPI(t *testing.T, b []byte) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.json is not valid JSON: %v", err)
	}
	return doc
}

// routeMethods walks the full router (Slack on) and returns every
// "METHOD path" it serves. A path prefix (/static/) is described as
// prefix{path}; a route for any method (the webhook, /metrics) is "* path".
func routeMethods(t *testing.T) map[string]bool {
	t.Helper()
	h := routes(routeDeps{log: slog.New(slog.DiscardHandler), gatherer: prometheus.NewRegistry(), slack: &chat.Handler{}})
	r, ok := h.(*mux.Router)
	if !ok {
		t.Fatalf("routes returns %T, want a *mux.Router to walk", h)
	}
	got := map[string]bool{}
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tmpl, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		if re, _ := route.GetPathRegexp(); !strings.HasSuffix(re, "$") {
			tmpl += "{path}"
		}
		methods, err := route.GetMethods()
		if err != nil {
			methods = []string{"*"}
		}
		for _, m := range methods {
			got[m+" "+tmpl] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// TestOpenAPIMatchesRoutes fails when a route is missing from
// openapi.json or openapi.json names a route nines does not serve.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := parseOpenAPI(t, openAPI)
	served := routeMethods(t)
	described := map[string]bool{}
	for path, ops := range doc.Paths {
		for m := range ops {
			if slices.Contains(httpMethods, m) {
				described[strings.ToUpper(m)+" "+path] = true
			}
		}
	}
	for route := range served {
		method, path, _ := strings.Cut(route, " ")
		if method == "*" {
			// Any method reaches the handler: the description must name
			// at least the one it serves.
			if len(doc.Paths[path]) == 0 {
				t.Errorf("route %s (any method) is not in openapi.json", path)
			}
			continue
		}
		if !described[route] {
			t.Errorf("route %s is not in openapi.json", route)
		}
	}
	for op := range described {
		_, path, _ := strings.Cut(op, " ")
		if !served[op] && !served["* "+path] {
			t.Errorf("openapi.json describes %s, which nines does not serve", op)
		}
	}
	if len(served) < 40 {
		t.Errorf("walked only %d routes: is the router complete?", len(served))
	}
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

// TestOpenAPIDocumentIsWellFormed checks the document's structure: an
// OpenAPI 3 version, info, operations with responses that have
// descriptions or resolvable references, path parameters declared, unique
// operation IDs, and every $ref resolving.
func TestOpenAPIDocumentIsWellFormed(t *testing.T) {
	doc := parseOpenAPI(t, openAPI)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	if doc.Info.Title == "" || doc.Info.Version == "" {
		t.Errorf("info.title and info.version are required, got %+v", doc.Info)
	}
	if len(doc.Paths) == 0 {
		t.Fatal("no paths")
	}
	status := regexp.MustCompile(`^([1-5][0-9]{2}|[1-5]XX|default)$`)
	ids := map[string]string{}
	for path, ops := range doc.Paths {
		if !strings.HasPrefix(path, "/") {
			t.Errorf("path %q does not start with /", path)
		}
		for m, op := range ops {
			if !slices.Contains(httpMethods, m) {
				continue
			}
			where := strings.ToUpper(m) + " " + path
			if len(op.Responses) == 0 {
				t.Errorf("%s: no responses", where)
			}
			for code, r := range op.Responses {
				if !status.MatchString(code) {
					t.Errorf("%s: response %q is not a status code", where, code)
				}
				if r.Ref == "" && r.Description == "" {
					t.Errorf("%s: response %s has no description", where, code)
				}
			}
			var declared []string
			for _, p := range op.Parameters {
				if p.In == "path" {
					declared = append(declared, p.Name)
				}
			}
			for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
				if !slices.Contains(declared, m[1]) {
					t.Errorf("%s: path parameter %s is not declared", where, m[1])
				}
			}
			if op.OperationID != "" {
				if prev, dup := ids[op.OperationID]; dup {
					t.Errorf("operationId %s used by %s and %s", op.OperationID, prev, where)
				}
				ids[op.OperationID] = where
			}
		}
	}
	for _, ref := range regexp.MustCompile(`"\$ref":\s*"#/components/([^/]+)/([^"]+)"`).FindAllStringSubmatch(string(openAPI), -1) {
		if _, ok := doc.Components[ref[1]][ref[2]]; !ok {
			t.Errorf("$ref #/components/%s/%s does not resolve", ref[1], ref[2])
		}
	}
}

// TestOpenAPIServed checks that nines serves the description it embeds.
func TestOpenAPIServed(t *testing.T) {
	h := routes(routeDeps{log: slog.New(slog.DiscardHandler), gatherer: prometheus.NewRegistry()})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /api/v1/openapi.json: %d %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	body, _ := io.ReadAll(rec.Body)
	doc := parseOpenAPI(t, body)
	if _, ok := doc.Paths["/api/v1/openapi.json"]; !ok {
		t.Error("the served document does not describe itself")
	}
}

// TestOpenAPIValidates validates the document with an OpenAPI validator
// (kin-openapi, test only): the spec's rules, schemas and references.
func TestOpenAPIValidates(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI %s document: %v", doc.OpenAPI, err)
	}
}
