package chstore

import (
	"slices"
	"testing"
)

// TestAddedColumns: every column the migrations add is known by table,
// name and the clause that adds it, whether a migration adds one column
// per ALTER or several in one.
func TestAddedColumns(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range ms {
		for _, st := range m.statements {
			for _, c := range addedColumns(st) {
				got[c.table+"."+c.name] = c.clause
			}
		}
	}
	for _, want := range []struct{ col, clause string }{
		{"incident_events.impact", "ADD COLUMN impact Int8 DEFAULT -1"},
		{"incidents.excluded_by", "ADD COLUMN excluded_by Array(String)"},
		{"incidents.excluded_from", "ADD COLUMN excluded_from Array(DateTime('UTC'))"},
		{"incidents.period_ends_millis", "ADD COLUMN period_ends_millis Array(UInt16)"},
		{"incidents.started_at_millis", "ADD COLUMN started_at_millis UInt16 DEFAULT 0"},
	} {
		if got[want.col] != want.clause {
			t.Errorf("%s: clause %q, want %q", want.col, got[want.col], want.clause)
		}
	}
	if n := len(got); n < 12 {
		t.Errorf("%d added columns found, want every one the migrations add: %v", n, slices.Sorted(func(yield func(string) bool) {
			for k := range got {
				if !yield(k) {
					return
				}
			}
		}))
	}
}
