package chstore_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/chstore/chtest"
	"github.com/ninesops/nines/incidents"
)

// TestUpgradeFromOldestSchema creates a database as the first release of
// nines left it (testdata/schema-v0, with its schema_migrations, which had
// no checksums), upgrades it with Migrate and stores an incident with its
// timeline. 0003 gained a column after it shipped, so such a database was
// "up to date" and then failed every event insert.
func TestUpgradeFromOldestSchema(t *testing.T) {
	t.Parallel()
	dsn := chtest.Unmigrated(t)
	var logs bytes.Buffer
	s := openStore(t, dsn, func(o *chstore.Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	conn := chstore.ConnOf(s.Store)
	insert := func(q string, row ...any) {
		t.Helper()
		b, err := conn.PrepareBatch(t.Context(), q)
		if err == nil {
			err = b.Append(row...)
		}
		if err == nil {
			err = b.Send()
		}
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec := func(q string) {
		t.Helper()
		if err := conn.Exec(t.Context(), q); err != nil {
			t.Fatalf("%.80s…: %v", q, err)
		}
	}
	db := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	files, err := filepath.Glob("testdata/schema-v0/*.sql")
	if err != nil || len(files) != 3 {
		t.Fatalf("schema-v0: %v %v", files, err)
	}
	exec(`CREATE TABLE schema_migrations (version UInt32, name String, applied_at DateTime('UTC'))
ENGINE = ReplacingMergeTree ORDER BY version`)
	for i, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		exec(strings.NewReplacer("${database}", "`"+db+"`", "${on_cluster}", "").Replace(string(b)))
		name := strings.TrimSuffix(filepath.Base(f), ".sql")
		insert("INSERT INTO schema_migrations (version, name, applied_at)", uint32(i+1), name, t0)
	}

	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	inc := newIncident("{}:{alertname=\"Old\"}", "upgraded", t0)
	ev := incidents.Event{ID: "ev-upgraded", IncidentID: inc.ID, At: t0, Kind: incidents.EventOpened, Actor: "alertmanager", Text: "opened"}
	s.write(t, incidents.Change{Incident: inc, Events: []incidents.Event{ev}})
	tl, err := s.Timeline(t.Context(), inc.ID)
	if err != nil || len(tl) != 1 || tl[0].ID != ev.ID {
		t.Fatalf("timeline %+v, %v; want the event", tl, err)
	}
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("upgrade logged an error:\n%s", logs.String())
	}

	// A migration whose file changed after it was applied is reported.
	insert("INSERT INTO schema_migrations (version, name, applied_at, checksum)", uint32(2), "0002_incident_alerts", t0, "edited-since")
	logs.Reset()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate again: %v", err)
	}
	if l := logs.String(); !strings.Contains(l, "migration changed after it was applied") || !strings.Contains(l, "0002_incident_alerts") ||
		strings.Contains(l, "0001_incidents") {
		t.Errorf("log after migrating a database whose 0002 changed:\n%s", l)
	}
}
