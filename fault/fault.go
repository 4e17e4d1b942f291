// Package fault owns nines' shared error kinds: a few sentinels that every
// domain package wraps its errors in, so that callers, and the one place
// that maps them to HTTP statuses (package answer), can tell what went
// wrong without knowing who said so. It imports nothing of nines.
//
// Wrap, don't replace: fmt.Errorf("%w: limit: want 1 to 1000", fault.ErrInvalid).
package fault

import "errors"

// The error kinds. Each names what the caller can do about it.
var (
	// ErrInvalid is input that can never be accepted as it is.
	ErrInvalid = errors.New("invalid")
	// ErrNotFound is a thing (an incident, a service, a change) that does
	// not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is a request the current state forbids, such as a
	// transition an incident's state does not allow.
	ErrConflict = errors.New("conflict")
	// ErrUnavailable is a dependency (the store, the spool) that cannot
	// take the request now; a retry may succeed.
	ErrUnavailable = errors.New("store unavailable")
	// ErrTooLarge is a request larger than its limit.
	ErrTooLarge = errors.New("too large")
	// ErrUnauthorized is a request without valid credentials.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnsupported is a request in a form nines does not take (a media
	// type, an encoding).
	ErrUnsupported = errors.New("unsupported")
)
