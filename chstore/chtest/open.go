package chtest

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/fault"
)

// Open opens a store on dsn (from Database, or a server of the test's
// own) with test-friendly options: a short flush interval and dial
// timeout, logs discarded. configure adjusts the options (a Registerer, a
// flush timeout, …). The store closes when the test ends; an error
// closing it fails the test, unless the store was unavailable then (an
// outage test stopped its server).
func Open(t testing.TB, dsn string, configure ...func(*chstore.Options)) *chstore.Store {
	t.Helper()
	opts := chstore.Options{
		DSN:           dsn,
		Logger:        slog.New(slog.DiscardHandler),
		FlushInterval: 20 * time.Millisecond,
		DialTimeout:   2 * time.Second,
	}
	for _, c := range configure {
		c(&opts)
	}
	s, err := chstore.Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, fault.ErrUnavailable) {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}
