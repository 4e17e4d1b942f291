// Package alerts is nines' webhook intake. It owns Alertmanager's webhook
// payload types: it reads a notification from a request, checks it, converts
// it at the edge to nines' stored form (or to incidents.Notification) and
// hands it to an Ingester. No other package sees Alertmanager's types.
package alerts

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

// DefaultMaxBodyBytes bounds a notification's body when no other limit is
// set: 10 MiB, over 10,000 alerts of typical size.
const DefaultMaxBodyBytes int64 = 10 << 20

// DefaultMaxInflightBytes bounds the bodies of all notifications being
// taken at once; DefaultInflightWait is how long one waits for room.
const (
	DefaultMaxInflightBytes int64 = 32 << 20
	DefaultInflightWait           = 10 * time.Second
)

// Webhook protocol version and statuses Alertmanager sends.
const (
	webhookVersion = "4"
	statusFiring   = string(incidents.AlertFiring)
	statusResolved = string(incidents.AlertResolved)
)

// Timestamps before the year minYear are refused: they come from broken
// clocks or broken senders, and the stores downstream index by time.
// Timestamps after incidents.MaxTime (2106-02-07T06:28:15Z) are refused
// too: the store cannot hold them.
const minYear = 2000

// message mirrors Alertmanager's notify/webhook.Message (protocol version 4).
// It embeds template.Data by value instead of importing notify/webhook, which
// would pull in Alertmanager's whole notification pipeline.
type message struct {
	template.Data

	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// webhook is a notification as the intake holds it: nines' notification
// but for its alerts, whose labels and annotations stay pairs until they
// are written in the stored form (stored), so that a notification of 64
// alerts is not 128 maps built to be sorted and thrown away.
type webhook struct {
	version string
	head    incidents.Notification // every field but Alerts
	alerts  []incidents.PairAlert
}

// fromMessage takes what encoding/json decoded.
func fromMessage(m *message) webhook {
	w := webhook{
		version: m.Version,
		head: incidents.Notification{
			Receiver:          m.Receiver,
			Status:            incidents.AlertStatus(m.Status),
			GroupKey:          m.GroupKey,
			GroupLabels:       m.GroupLabels,
			CommonLabels:      m.CommonLabels,
			CommonAnnotations: m.CommonAnnotations,
			ExternalURL:       m.ExternalURL,
			TruncatedAlerts:   int(min(m.TruncatedAlerts, math.MaxInt)),
		},
		alerts: make([]incidents.PairAlert, len(m.Alerts)),
	}
	for i := range m.Alerts {
		a := &m.Alerts[i]
		w.alerts[i] = incidents.PairAlert{
			Fingerprint: a.Fingerprint, Status: incidents.AlertStatus(a.Status),
			Labels: pairs(a.Labels), Annotations: pairs(a.Annotations),
			StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL,
		}
	}
	return w
}

func pairs(m template.KV) []incidents.Pair {
	out := make([]incidents.Pair, 0, len(m))
	for k, v := range m {
		out = append(out, incidents.Pair{Name: k, Value: v})
	}
	return out
}

// notification returns w as nines' notification, its alerts' pairs made
// maps. Read on the fast path, its strings are slices of one copy of the
// request's body: whoever keeps one keeps the body.
func (w *webhook) notification() incidents.Notification {
	n := w.head
	n.Alerts = make([]incidents.Alert, len(w.alerts))
	for i := range w.alerts {
		n.Alerts[i] = w.alerts[i].Alert()
	}
	return n
}

// stored returns w's stored form (incidents.MarshalNotification's bytes
// for w.notification()), written straight from the pairs.
func (w *webhook) stored() ([]byte, error) {
	return incidents.MarshalPairs(&w.head, w.alerts)
}

// DecodeError is why a notification body was refused: malformed JSON, a
// failed check or a body over the size limit. It unwraps to
// fault.ErrInvalid and, for an oversized body, to *http.MaxBytesError.
type DecodeError struct {
	// Field is the offending field as a JSON path, such as
	// "alerts[3].fingerprint", or empty when no single field is to blame.
	Field string
	// Reason says what is wrong, in lowercase.
	Reason string

	err error
}

// Error implements error.
func (e *DecodeError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unwrap returns fault.ErrInvalid and the cause, if any.
func (e *DecodeError) Unwrap() []error {
	if e.err == nil {
		return []error{fault.ErrInvalid}
	}
	return []error{fault.ErrInvalid, e.err}
}

func fieldError(field, format string, args ...any) *DecodeError {
	return &DecodeError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Decode reads one Alertmanager webhook notification (protocol version 4)
// from r, checks it and converts it to nines' types. It reads at most
// maxBytes (DefaultMaxBodyBytes when maxBytes <= 0). ReceivedAt is left zero
// for the caller to set.
//
// Every error is a *DecodeError and so matches fault.ErrInvalid; an
// oversized body also matches *http.MaxBytesError.
//
// Unknown fields are ignored, so that newer Alertmanagers (which add fields
// such as routeLabels) keep working. Invalid UTF-8 in strings is replaced by
// U+FFFD, as encoding/json does, rather than refused: a label value with a
// stray byte is still worth an incident.
func Decode(r io.Reader, maxBytes int64) (incidents.Notification, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	w, refused, err := decode(&bodyReader{r: r, limit: maxBytes})
	if err == nil {
		err = strict(refused)
	}
	if err != nil {
		return incidents.Notification{}, err
	}
	return w.notification(), nil
}

// readMessage decodes exactly one JSON object from body and refuses
// anything but whitespace after it.
func readMessage(body *bodyReader) (message, error) {
	var m message
	dec := json.NewDecoder(body)
	if err := dec.Decode(&m); err != nil {
		return message{}, jsonError(err, body)
	}
	// Token reads past trailing whitespace; anything else is an error, as is
	// a body that goes over the limit after the object.
	if _, err := dec.Token(); err != io.EOF {
		if readErr := body.failure(); readErr != nil {
			return message{}, readFailure(readErr)
		}
		return message{}, &DecodeError{
			Reason: fmt.Sprintf("invalid JSON at offset %d: data after the top-level object", dec.InputOffset()),
		}
	}
	return m, nil
}

// jsonError turns an error from json.Decoder into a *DecodeError that says
// where the problem is.
func jsonError(err error, body *bodyReader) *DecodeError {
	// A failed read surfaces as whatever error the decoder makes of it; the
	// body knows what really happened.
	if readErr := body.failure(); readErr != nil {
		return readFailure(readErr)
	}
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.Is(err, io.EOF):
		return &DecodeError{Reason: "empty body", err: err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &DecodeError{
			Reason: fmt.Sprintf("invalid JSON at offset %d: unexpected end of input", body.n),
			err:    err,
		}
	case errors.As(err, &syntax):
		return &DecodeError{
			Reason: fmt.Sprintf("invalid JSON at offset %d: %s", syntax.Offset, syntax.Error()),
			err:    err,
		}
	case errors.As(err, &typ):
		// Field is the path of JSON names from the root, prefixed with the
		// embedded struct's Go name for the fields of template.Data.
		where := ""
		if field := strings.TrimPrefix(typ.Field, "Data."); field != "" {
			where = field + ": "
		}
		return &DecodeError{
			Reason: fmt.Sprintf("invalid JSON at offset %d: %swant %s, got %s", typ.Offset, where, jsonKind(typ.Type), typ.Value),
			err:    err,
		}
	default:
		// An UnmarshalJSON method failed, in practice time.Time's on a
		// malformed timestamp. The decoder says neither which field nor
		// where: the whole object was read before it was unmarshalled.
		return &DecodeError{Reason: fmt.Sprintf("invalid JSON: %v", err), err: err}
	}
}

// jsonKind names the JSON kind a Go type decodes from, for messages that
// should not mention Go's types.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "a value"
}

// readFailure describes a body that could not be read to its end.
func readFailure(err error) *DecodeError {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &DecodeError{
			Reason: fmt.Sprintf("request body exceeds %d bytes", tooLarge.Limit),
			err:    err,
		}
	}
	return &DecodeError{Reason: fmt.Sprintf("read body: %v", err), err: err}
}

// validate checks what nines relies on. It reports the first problem of
// the notification found, naming the field. Alerts that fail their own
// checks are removed from m and returned, each with its problem: the
// notification's other alerts are still worth storing (Alertmanager never
// re-sends a notification answered 4xx). A notification left without
// alerts is refused with its first alert's problem.
func validate(w *webhook) ([]*DecodeError, error) {
	switch w.version {
	case webhookVersion:
	case "":
		return nil, fieldError("version", "missing")
	default:
		return nil, fieldError("version", "unsupported version %s, want %q", quote(w.version), webhookVersion)
	}
	if p := statusProblem(string(w.head.Status)); p != "" {
		return nil, &DecodeError{Field: "status", Reason: p}
	}
	// The incidents package groups by groupKey: a notification without one
	// cannot be placed. Alertmanager always sends it.
	if w.head.GroupKey == "" {
		return nil, fieldError("groupKey", "missing")
	}
	if len(w.alerts) == 0 {
		return nil, fieldError("alerts", "missing or empty")
	}
	var refused []*DecodeError
	kept := w.alerts[:0]
	for i := range w.alerts {
		a := w.alerts[i]
		if err := validateAlert(i, &a); err != nil {
			refused = append(refused, err)
			continue
		}
		// Times in UTC; a firing alert's endsAt (0001-01-01 from
		// Alertmanager) dropped.
		a.StartsAt = a.StartsAt.UTC()
		if a.Status == incidents.AlertResolved {
			a.EndsAt = a.EndsAt.UTC()
		} else {
			a.EndsAt = time.Time{}
		}
		kept = append(kept, a)
	}
	w.alerts = kept
	if len(kept) == 0 {
		return nil, refused[0]
	}
	return refused, nil
}

// strict turns the alerts validate refused into an error: the first one.
func strict(refused []*DecodeError) error {
	if len(refused) > 0 {
		return refused[0]
	}
	return nil
}

// validateAlert checks alerts[i]. Field names are only written for an
// error: a notification of 64 alerts took 128 allocations for them.
func validateAlert(i int, a *incidents.PairAlert) *DecodeError {
	problem := func(field, reason string) *DecodeError {
		return &DecodeError{Field: "alerts[" + strconv.Itoa(i) + "]." + field, Reason: reason}
	}
	// Alertmanager always sends the fingerprint. Computing it here from the
	// labels would hide a sender that is not Alertmanager-compatible.
	if a.Fingerprint == "" {
		return problem("fingerprint", "missing")
	}
	if p := statusProblem(string(a.Status)); p != "" {
		return problem("status", p)
	}
	if len(a.Labels) == 0 {
		return problem("labels", "missing or empty")
	}
	if p := timeProblem(a.StartsAt); p != "" {
		return problem("startsAt", p)
	}
	// A firing alert's endsAt is 0001-01-01 from Alertmanager; whatever it
	// is, validate drops it, so it is not checked.
	if a.Status != incidents.AlertResolved {
		return nil
	}
	if p := timeProblem(a.EndsAt); p != "" {
		return problem("endsAt", p)
	}
	if a.EndsAt.Before(a.StartsAt) {
		return problem("endsAt", fmt.Sprintf("%s is before startsAt %s",
			a.EndsAt.UTC().Format(time.RFC3339Nano), a.StartsAt.UTC().Format(time.RFC3339Nano)))
	}
	return nil
}

// statusProblem says what is wrong with a status, or "".
func statusProblem(s string) string {
	switch s {
	case statusFiring, statusResolved:
		return ""
	case "":
		return "missing"
	}
	return fmt.Sprintf("invalid status %s, want %q or %q", quote(s), statusFiring, statusResolved)
}

// timeProblem says what is wrong with a time, or "".
func timeProblem(t time.Time) string {
	if t.IsZero() {
		return "missing"
	}
	if t.UTC().Year() < minYear || !incidents.Storable(t) {
		return fmt.Sprintf("%s is outside %d-01-01T00:00:00Z..%s", t.UTC().Format(time.RFC3339Nano),
			minYear, incidents.MaxTime().Format(time.RFC3339))
	}
	return ""
}

// quote quotes a value for an error message, cut short so that a hostile
// body is not echoed back in full.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "…"
	}
	return strconv.Quote(s)
}

// bodyReader counts the bytes read, stops at limit (when positive) with an
// *http.MaxBytesError, and remembers the first read failure so that it is
// not mistaken for malformed JSON.
type bodyReader struct {
	r     io.Reader
	limit int64
	n     int64
	err   error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.limit > 0 {
		// Read one byte past the limit to tell "exactly at" from "over".
		if left := b.limit + 1 - b.n; int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.limit > 0 && b.n > b.limit {
		n -= int(b.n - b.limit)
		b.n = b.limit
		b.err = &http.MaxBytesError{Limit: b.limit}
		return n, b.err
	}
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// failure returns the read failure, if any.
func (b *bodyReader) failure() error { return b.err }
