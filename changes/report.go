package changes

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/incidents"
)

// WriteDORA writes delivery figures per service, then per squad, as
// JSON when format is "json" and as a table for people otherwise. It is
// what nines report --dora prints.
func WriteDORA(w io.Writer, format string, win availability.Window, services, squads []DORA) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"window": win.String(), "from": win.From, "to": win.To, "services": services, "squads": squads})
	}
	rate := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprintf("%.1f%%", *p*100)
	}
	fmt.Fprintf(w, "Delivery (DORA) %s: %s – %s\n\n", win, win.From.Format(time.RFC3339), win.To.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE/SQUAD\tDEPLOYS\tPER DAY\tCHANGE FAILURE\tROLLBACKS\tTIME TO RESTORE")
	for _, group := range [][]DORA{services, squads} {
		for _, d := range group {
			name := d.Service
			if name == "" {
				name = "squad " + d.Squad
			}
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%s\t%s\t%s\n", name, d.Deployments, d.DeploymentsPerDay,
				rate(d.ChangeFailureRate), rate(d.RollbackRate), incidents.FormatSeconds(d.TimeToRestoreSeconds))
		}
	}
	return tw.Flush()
}
