package chstore

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestShippedMigrationsAreUnchanged compares the embedded migrations with
// the checksums committed in testdata/migrations.sum when each shipped. A
// database that applied a migration never applies it again, so an edited
// migration silently leaves older databases with another schema (as when
// inserted_at_ms was added to 0003 in place). Change the schema with a
// new migration, and add its line to the list.
func TestShippedMigrationsAreUnchanged(t *testing.T) {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("testdata/migrations.sum")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	shipped := map[uint32][2]string{} // version → name, checksum
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			t.Fatalf("migrations.sum: bad line %q, want NAME CHECKSUM", line)
		}
		num, _, _ := strings.Cut(fields[0], "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if err != nil {
			t.Fatalf("migrations.sum: bad name %q", fields[0])
		}
		shipped[uint32(v)] = [2]string{fields[0], fields[1]}
	}
	embedded := map[uint32]bool{}
	for _, m := range ms {
		embedded[m.version] = true
		s, ok := shipped[m.version]
		switch {
		case !ok:
			t.Errorf("migration %s is not in testdata/migrations.sum; once it is final, add:\n%s %s", m.name, m.name, m.checksum)
		case s[0] != m.name:
			t.Errorf("migration %d is named %s, shipped as %s: a shipped migration is never renamed", m.version, m.name, s[0])
		case s[1] != m.checksum:
			t.Errorf("migration %s changed since it shipped (checksum %s, shipped %s): restore it and add a new migration instead",
				m.name, m.checksum, s[1])
		}
	}
	for v, s := range shipped {
		if !embedded[v] {
			t.Errorf("shipped migration %s is missing: a shipped migration is never removed", s[0])
		}
	}
}

func TestChecksumIgnoresCommentsAndSpacing(t *testing.T) {
	base := checksum(splitStatements("CREATE TABLE t (a String) ENGINE = Memory"))
	tests := []struct {
		name string
		sql  string
		same bool
	}{
		{"comments and spacing", "-- a table\nCREATE TABLE t\n(\n    a String /* the key */\n)\nENGINE = Memory;", true},
		{"another column", "CREATE TABLE t (a String, b Int64) ENGINE = Memory", false},
		{"a quoted blank", "CREATE TABLE t (a String DEFAULT ' ') ENGINE = Memory", false},
		{"another statement", "CREATE TABLE t (a String) ENGINE = Memory; SELECT 1", false},
	}
	for _, tc := range tests {
		if got := checksum(splitStatements(tc.sql)) == base; got != tc.same {
			t.Errorf("%s: same checksum = %v, want %v", tc.name, got, tc.same)
		}
	}
}
