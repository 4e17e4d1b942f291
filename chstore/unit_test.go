package chstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/ninesops/nines/fault"
	"github.com/ninesops/nines/incidents"
)

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name string
		sql  string
		want []string
	}{
		{name: "one without semicolon", sql: "SELECT 1", want: []string{"SELECT 1"}},
		{name: "two", sql: "SELECT 1;\nSELECT 2;\n", want: []string{"SELECT 1", "SELECT 2"}},
		{name: "semicolons in quotes", sql: "SELECT 'a;b', \"c;d\", `e;f`; SELECT 'it\\'s;'", want: []string{"SELECT 'a;b', \"c;d\", `e;f`", "SELECT 'it\\'s;'"}},
		{name: "semicolons in comments", sql: "-- a; b\nSELECT 1 /* c; d */; -- e;\n", want: []string{"-- a; b\nSELECT 1 /* c; d */"}},
		{name: "only comments", sql: "-- nothing; here\n/* nor; here */\n;;", want: nil},
		{name: "empty", sql: "  \n", want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := splitStatements(tc.sql); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("splitStatements(%q) = %q, want %q", tc.sql, got, tc.want)
			}
		})
	}
}

func TestLoadMigrations(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("loadMigrations: %v", err)
	}
	entries, err := migrationFiles.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	// Every embedded file is a migration, in order, with the version its
	// name starts with; numbers may skip (ranges are kept per feature).
	if len(ms) != len(entries) {
		t.Fatalf("%d migrations from %d files", len(ms), len(entries))
	}
	for i, m := range ms {
		if want := strings.TrimSuffix(entries[i].Name(), ".sql"); m.name != want {
			t.Errorf("migration %d is %s, want %s", i, m.name, want)
		}
		var v uint32
		if _, err := fmt.Sscanf(m.name, "%04d_", &v); err != nil || m.version != v {
			t.Errorf("migration %s has version %d, want %d", m.name, m.version, v)
		}
		if i > 0 && m.version <= ms[i-1].version {
			t.Errorf("migration %s is not after %s", m.name, ms[i-1].name)
		}
		if len(m.statements) == 0 {
			t.Errorf("migration %s has no statement", m.name)
		}
	}
	if len(ms) < 3 || ms[0].name != "0001_incidents" {
		t.Errorf("migrations start with %v", ms)
	}
}

func TestUpdatedAtFromVersion(t *testing.T) {
	tests := []time.Time{
		time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC),
		time.Date(2024, 5, 6, 7, 8, 9, 999_000_000, time.UTC),
		time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		time.Date(2039, 9, 7, 15, 47, 35, 551_000_000, time.UTC), // around a 2^40 ms wrap
		time.Date(2001, 1, 1, 0, 0, 0, 1_000_000, time.UTC),
	}
	for _, at := range tests {
		inc := &incidents.Incident{UpdatedAt: at, Facts: 7}
		stored := at.Truncate(time.Second)
		if got := updatedAtFromVersion(stored, inc.Version()); !got.Equal(at) {
			t.Errorf("updatedAtFromVersion(%v) = %v, want %v", stored, got, at)
		}
	}
	// A version not made by Version() keeps the seconds.
	stored := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	if got := updatedAtFromVersion(stored, 12345); !got.Equal(stored) {
		t.Errorf("foreign version: got %v, want %v", got, stored)
	}
	if got := updatedAtFromVersion(time.Unix(0, 0), 5); !got.IsZero() {
		t.Errorf("zero updated_at: got %v", got)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := cursor{StartedAt: 1714979289, Millis: 310, ID: "inc-abc"}
	got, err := decodeCursor(encodeCursor(c))
	if err != nil || got != c {
		t.Errorf("decodeCursor(encodeCursor(%v)) = %v, %v", c, got, err)
	}
	for _, bad := range []string{"x", "e30", "!!"} {
		if _, err := decodeCursor(bad); !errors.Is(err, fault.ErrInvalid) {
			t.Errorf("decodeCursor(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestToRowsRejects(t *testing.T) {
	ok := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		changes []incidents.Change
	}{
		{"incident without id", []incidents.Change{{Incident: &incidents.Incident{StartedAt: ok}}}},
		{"alerts without incident", []incidents.Change{{Alerts: []incidents.Alert{{Fingerprint: "f", StartsAt: ok}}}}},
		{"alert without fingerprint", []incidents.Change{{Incident: &incidents.Incident{ID: "i", StartedAt: ok}, Alerts: []incidents.Alert{{StartsAt: ok}}}}},
		{"time before 1970", []incidents.Change{{Incident: &incidents.Incident{ID: "i", StartedAt: time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC)}}}},
		{"time after 2106", []incidents.Change{{Incident: &incidents.Incident{ID: "i", StartedAt: ok, UpdatedAt: time.Date(2107, 1, 1, 0, 0, 0, 0, time.UTC)}}}},
		{"event without incident", []incidents.Change{{Events: []incidents.Event{{ID: "e", At: ok}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := toRows(tc.changes); !errors.Is(err, fault.ErrInvalid) {
				t.Errorf("toRows = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestUnavailableClassifiesErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"closed store", errClosed, true},
		{"query error", &clickhouse.Exception{Code: 62, Message: "Syntax error"}, false},
		{"too many parts", &clickhouse.Exception{Code: 252, Message: "Too many parts"}, true},
		{"plain", errors.New("boom"), false},
		{"deadline", fmt.Errorf("read: %w", context.DeadlineExceeded), true},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"eof", fmt.Errorf("read: %w", io.EOF), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := unavailable(tc.err); got != tc.want {
				t.Errorf("unavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
