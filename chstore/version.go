package chstore

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
)

// driverMinimum is the oldest ClickHouse that clickhouse-go supports; the
// driver warns about every connection to an older server.
const driverMinimum = "25.8"

// testedVersions are the ClickHouse releases every `make test` runs on:
// Debian's 18.16 and current ClickHouse as chDB (README "Two commands").
var testedVersions = []string{"18.16", "26.7"}

// sayVersion logs the server's version once per Store, in nines' words:
// whether nines is tested on it, and what to do when it is not. It stands
// in for the driver's warning, which says only that the server is older
// than the driver's minimum, once per connection.
func (s *Store) sayVersion(ctx context.Context) {
	var v string
	if err := s.conn.QueryRow(ctx, "SELECT version()").Scan(&v); err != nil {
		return // the next query reports what is wrong
	}
	release := majorMinor(v)
	for _, t := range testedVersions {
		if release == t {
			s.log.Info("clickhouse server", "version", v, "tested", true)
			return
		}
	}
	if olderThan(release, driverMinimum) {
		s.log.Warn("clickhouse server is older than nines' driver supports and not among the releases nines is tested on; upgrade to a current LTS release",
			"version", v, "tested", strings.Join(testedVersions, ", "))
		return
	}
	s.log.Info("clickhouse server", "version", v, "tested", false)
}

// majorMinor returns "A.B" of a version "A.B.C.D".
func majorMinor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// olderThan compares two "A.B" releases.
func olderThan(a, b string) bool {
	num := func(s string) (int, int) {
		x, y, _ := strings.Cut(s, ".")
		i, _ := strconv.Atoi(x)
		j, _ := strconv.Atoi(y)
		return i, j
	}
	a1, a2 := num(a)
	b1, b2 := num(b)
	return a1 < b1 || (a1 == b1 && a2 < b2)
}

// quietDriver drops clickhouse-go's per-connection warning about the
// server's version (sayVersion says it once) and passes everything else
// on.
type quietDriver struct{ slog.Handler }

func (h quietDriver) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "unsupported clickhouse version" {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietDriver) WithAttrs(attrs []slog.Attr) slog.Handler {
	return quietDriver{h.Handler.WithAttrs(attrs)}
}

func (h quietDriver) WithGroup(name string) slog.Handler {
	return quietDriver{h.Handler.WithGroup(name)}
}
