package answer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ninesops/nines/answer"
	"github.com/ninesops/nines/fault"
)

func TestError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantMsg  string
	}{
		{"invalid shows its message", fmt.Errorf("%w: limit: want 1 to 1000", fault.ErrInvalid), 400, "invalid: limit: want 1 to 1000"},
		{"not found", fmt.Errorf("%w: no incident %q", fault.ErrNotFound, "inc-1"), 404, `not found: no incident "inc-1"`},
		{"conflict", fmt.Errorf("%w: already resolved", fault.ErrConflict), 409, "conflict: already resolved"},
		{"too large", fmt.Errorf("%w: request body exceeds 10 bytes", fault.ErrTooLarge), 413, "too large: request body exceeds 10 bytes"},
		{"unauthorized", fmt.Errorf("%w: missing token", fault.ErrUnauthorized), 401, "unauthorized: missing token"},
		{"unsupported", fmt.Errorf("%w: Content-Type text/plain", fault.ErrUnsupported), 415, "unsupported: Content-Type text/plain"},
		{"unavailable hides the store's details", fmt.Errorf("dial clickhouse://secret@db: %w", fault.ErrUnavailable), 503, "store unavailable, retry later"},
		{"deadline is a retry", fmt.Errorf("insert: %w", context.DeadlineExceeded), 503, "request ended before it was done, retry later"},
		{"canceled is a retry", fmt.Errorf("insert: %w", context.Canceled), 503, "request ended before it was done, retry later"},
		{"unknown hides its details", errors.New("dial clickhouse://secret@db"), 500, "internal error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			if got := answer.Error(rec, slog.New(slog.DiscardHandler), tc.err); got != tc.wantCode {
				t.Errorf("Error returned %d, want %d", got, tc.wantCode)
			}
			if rec.Code != tc.wantCode {
				t.Errorf("status %d, want %d", rec.Code, tc.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			var body answer.Body
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if body.Error != tc.wantMsg {
				t.Errorf("error %q, want %q", body.Error, tc.wantMsg)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want error
	}{
		{"empty is an empty object", "", nil},
		{"known field", `{"a":"x"}`, nil},
		{"unknown field", `{"b":1}`, fault.ErrInvalid},
		{"not JSON", `a=b`, fault.ErrInvalid},
		{"too large", `{"a":"` + strings.Repeat("x", 64) + `"}`, fault.ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var v struct {
				A string `json:"a"`
			}
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			err := answer.Decode(r, &v, 32)
			if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestJSONUnmarshallable(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	if got := answer.JSON(rec, http.StatusOK, func() {}); got != http.StatusInternalServerError {
		t.Errorf("JSON of a func answered %d, want 500", got)
	}
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "internal error") {
		t.Errorf("answer %d %q", rec.Code, rec.Body.String())
	}
}
