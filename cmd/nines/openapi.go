package main

import (
	_ "embed"
	"net/http"
)

// openAPI describes nines' HTTP API (OpenAPI 3.1). openapi_test.go fails
// when it and the routes in routes.go disagree.
//
//go:embed openapi.json
var openAPI []byte

// serveOpenAPI serves GET /api/v1/openapi.json.
func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}
