package changes

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ninesops/nines/availability"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestWriteDORA: nines report --dora's output, against golden files.
func TestWriteDORA(t *testing.T) {
	t.Parallel()
	p := func(v float64) *float64 { return &v }
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	w := availability.Window{Name: "30d", From: from, To: from.Add(30 * 24 * time.Hour)}
	services := []DORA{{Service: "checkout", Deployments: 12, DeploymentsPerDay: 0.4, ChangeFailureRate: p(0.25), RollbackRate: p(0.0833), TimeToRestoreSeconds: p(5400)},
		{Service: "search", Deployments: 0}}
	squads := []DORA{{Squad: "payments", Deployments: 12, DeploymentsPerDay: 0.4, ChangeFailureRate: p(0.25), RollbackRate: p(0.0833), TimeToRestoreSeconds: p(5400)}}
	for _, format := range []string{"table", "json"} {
		var b bytes.Buffer
		if err := WriteDORA(&b, format, w, services, squads); err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "dora."+format+".golden")
		if *update {
			if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b.Bytes(), want) {
			t.Errorf("%s differs from %s:\n%s", format, golden, b.Bytes())
		}
	}
}
