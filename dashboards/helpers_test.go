package dashboards

import (
	"testing"

	"github.com/ninesops/nines/catalog"
)

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
	ds, err := Generate(cat, opts)
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
	b, err := newBuilder(cat, opts)
	if err != nil {
		t.Fatalf("dashboards for %s: %v", file, err)
	}
	return b
}
