// Package answer owns how nines answers HTTP requests: JSON bodies, the
// {"error": "..."} shape of every error, strict JSON request bodies, and
// the one mapping from error kinds (package fault) to statuses. Every
// handler uses it: the incidents, availability and changes APIs, the
// Alertmanager webhook, the Slack endpoints and the routes in cmd/nines.
package answer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/ninesops/nines/fault"
)

// Body is the JSON shape of every error answer.
type Body struct {
	Error string `json:"error"`
}

// JSON writes v as JSON with the status and returns the status. A value
// that cannot be marshalled (a programming error) is answered 500.
func JSON(w http.ResponseWriter, status int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return status
}

// Message writes {"error": msg} with the status and returns the status.
func Message(w http.ResponseWriter, status int, msg string) int {
	return JSON(w, status, Body{Error: msg})
}

// StatusOf maps an error kind to an HTTP status. It is the one place
// where that mapping lives.
func StatusOf(err error) int {
	switch {
	case errors.Is(err, fault.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, fault.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, fault.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, fault.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, fault.ErrUnsupported):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, fault.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, fault.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		// A retry may succeed: Alertmanager retries 5xx only.
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error writes err as {"error": "..."} with the status StatusOf gives and
// returns the status. Client errors show their message; internal errors
// and unavailable dependencies are logged and shown without details
// (they may carry hosts or DSNs).
func Error(w http.ResponseWriter, log *slog.Logger, err error) int {
	status := StatusOf(err)
	msg := err.Error()
	switch {
	case status == http.StatusInternalServerError:
		log.Error("request failed", "err", err)
		msg = "internal error"
	case errors.Is(err, fault.ErrUnavailable):
		log.Warn("store unavailable", "err", err)
		msg = "store unavailable, retry later"
	case status == http.StatusServiceUnavailable:
		// The client went away or the server is stopping: nothing was
		// done, and a retry may well succeed.
		log.Warn("request ended before it was done", "err", err)
		msg = "request ended before it was done, retry later"
	}
	return Message(w, status, msg)
}

// Decode reads a JSON request body strictly into v: unknown fields are
// refused, an empty body is an empty object, and a body over limit bytes
// is an error wrapping fault.ErrTooLarge. Other errors wrap
// fault.ErrInvalid.
func Decode(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return fmt.Errorf("%w: request body exceeds %d bytes", fault.ErrTooLarge, limit)
		}
		return fmt.Errorf("%w: request body: %v", fault.ErrInvalid, err)
	}
	return nil
}
