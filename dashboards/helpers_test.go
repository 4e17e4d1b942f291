package dashboards

import (
	"testing"
	"time"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chstore"
)

// generatedAt is when the tests' dashboards are generated, so that the
// maintenance written into the golden files does not move.
var generatedAt = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// withQueries gives options chstore's queries, and generatedAt unless they
// name a time.
func withQueries(opts Options) Options {
	if opts.Queries == nil {
		opts.Queries = chstore.DashboardQueries{}
	}
	if opts.Now.IsZero() {
		opts.Now = generatedAt
	}
	return opts
}

// Catalogs the tests generate dashboards for.
const (
	testCatalog    = "testdata/catalog.yml"
	exampleCatalog = "../deploy/catalog/catalog.yml"
)

// generateFor generates the dashboards of a catalog file.
func generateFor(t testing.TB, file string, opts Options) []*Dashboard {
	t.Helper()
	cat, err := catalog.Load(file)
	if err != nil {
		t.Fatalf("load catalog: %v", err)
	}
	ds, err := Generate(cat, withQueries(opts))
	if err != nil {
		t.Fatalf("generate dashboards for %s: %v", file, err)
	}
	return ds
}

// builderFor returns the builder Generate uses for a catalog file.
func builderFor(t testing.TB, file string, opts Options) *builder {
	t.Helper()
	cat, err := catalog.Load(file)
	if err != nil {
		t.Fatalf("load catalog: %v", err)
	}
	b, err := newBuilder(cat, withQueries(opts))
	if err != nil {
		t.Fatalf("dashboards for %s: %v", file, err)
	}
	return b
}
