package chstore_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/ninesops/nines/chat/chattest"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
)

// openChatStore opens a store on a fresh, migrated test database.
func openChatStore(t *testing.T) *chstore.Store {
	t.Helper()
	dsn := chtest.Database(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := chstore.Open(ctx, chstore.Options{DSN: dsn, Logger: slog.New(slog.DiscardHandler), FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestChatContract runs the chat store contract against ClickHouse.
func TestChatContract(t *testing.T) {
	chattest.Contract(t, func(t *testing.T) chattest.Store { return openChatStore(t) })
}
