package alerts

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzWebhook feeds arbitrary bodies, content types and credentials to the
// whole webhook handler: it answers one of its documented statuses with a
// JSON body, never panics, and hands the ingester only what it accepted
// with valid credentials.
func FuzzWebhook(f *testing.F) {
	for _, name := range fixtureNames() {
		f.Add(readFixture(f, name), "application/json", "Bearer tok")
	}
	f.Add([]byte(`{"version":"4"}`), "text/plain", "Bearer tok")
	f.Add([]byte(`{}`), "application/json; charset=utf-8", "Basic dXNlcjpwYXNz")
	f.Add([]byte(``), "", "")
	f.Add([]byte(`[`), "application/vnd+json", "bearer tok")
	f.Fuzz(func(t *testing.T, body []byte, contentType, authorization string) {
		ing := &fakeIngester{}
		auth, err := NewAuthFromValues("tok", "user", "pass")
		if err != nil {
			t.Fatal(err)
		}
		h, err := NewHandler(Options{Ingester: ing, Auth: auth, MaxBodyBytes: 64 << 10, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/api/v1/alerts", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", authorization)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK:
			if len(ing.notifications()) != 1 {
				t.Fatal("200 without the notification reaching the ingester")
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType:
			if len(ing.notifications()) != 0 {
				t.Fatalf("%d, but the ingester got the notification", rec.Code)
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		if rec.Code == http.StatusOK && !auth.Check(req) {
			t.Fatal("accepted without valid credentials")
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("body is not JSON: %q", rec.Body)
		}
	})
}
