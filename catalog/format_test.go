package catalog_test

import (
	"testing"

	"github.com/ninesops/nines/catalog"
)

func TestPercent(t *testing.T) {
	t.Parallel()
	for ratio, want := range map[float64]string{
		0.99999: "99.999%", 0.9995: "99.95%", 0.999: "99.9%", 0.95: "95%", 0.75: "75%", 0.999999: "99.9999%",
	} {
		if got := catalog.Percent(ratio); got != want {
			t.Errorf("Percent(%v) = %q, want %q", ratio, got, want)
		}
	}
}
