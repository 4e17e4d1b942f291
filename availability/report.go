package availability

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/incidents"
)

// ReportFormats are the formats WriteReport writes: a table for people,
// JSON (the API's), CSV (every figure, one column each) and Markdown.
var ReportFormats = []string{"table", "json", "csv", "markdown"}

// WriteReport writes rep to w in format, one of ReportFormats; the human
// formats show times in loc. It is what nines report prints.
func WriteReport(w io.Writer, rep Report, format string, loc *time.Location) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "csv":
		return writeReportCSV(w, rep)
	case "markdown":
		return writeReportMarkdown(w, rep, loc)
	case "table":
		return writeReportTable(w, rep, loc)
	}
	return fmt.Errorf("report format %q: want one of %s", format, strings.Join(ReportFormats, ", "))
}

// reportRow is one service in the human formats.
func reportRow(f Figure) []string {
	owner := f.Owner
	if !f.Catalogued {
		owner = "(uncatalogued)"
	} else if owner == "" {
		owner = "-"
	}
	return []string{
		f.Service, owner, formatAvailability(f.Availability), catalog.Percent(f.SLOTarget),
		fmt.Sprintf("%.1f%%", f.ErrorBudgetRemaining*100), strconv.Itoa(f.Incidents), incidents.FormatSeconds(f.MTTRSeconds),
	}
}

var reportHeader = []string{"SERVICE", "OWNER", "AVAILABILITY", "SLO", "BUDGET LEFT", "INCIDENTS", "MTTR"}

func reportTitle(rep Report, loc *time.Location) string {
	const layout = "2006-01-02 15:04 MST"
	return fmt.Sprintf("Availability over %s (%s – %s)", rep.Window, rep.From.In(loc).Format(layout), rep.To.In(loc).Format(layout))
}

func writeReportTable(w io.Writer, rep Report, loc *time.Location) error {
	fmt.Fprintln(w, reportTitle(rep, loc))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(reportHeader, "\t"))
	for _, f := range rep.Services {
		fmt.Fprintln(tw, strings.Join(reportRow(f), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return writeExplanations(w, rep, "  ")
}

func writeReportMarkdown(w io.Writer, rep Report, loc *time.Location) error {
	esc := strings.NewReplacer("|", `\|`, "\n", " ")
	fmt.Fprintf(w, "## %s\n\n", reportTitle(rep, loc))
	fmt.Fprintf(w, "| %s |\n", strings.Join(reportHeader, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat(" --- |", len(reportHeader)))
	for _, f := range rep.Services {
		row := reportRow(f)
		for i := range row {
			row[i] = esc.Replace(row[i])
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	return writeExplanations(w, rep, "- ")
}

// writeExplanations lists the incidents and upstream causes behind each
// figure, when --explain asked for them.
func writeExplanations(w io.Writer, rep Report, indent string) error {
	for _, f := range rep.Services {
		if len(f.IncidentIDs) == 0 && len(f.Upstream) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", f.Service)
		if len(f.IncidentIDs) > 0 {
			fmt.Fprintf(w, "%sincidents: %s\n", indent, strings.Join(f.IncidentIDs, ", "))
		}
		for _, u := range f.Upstream {
			fmt.Fprintf(w, "%scaused by %s (%s): %s of downtime\n", indent, orDash(u.Service),
				strings.Join(u.IncidentIDs, ", "), incidents.FormatSeconds(&u.DowntimeSeconds))
		}
		for _, n := range f.NotDowntime {
			to := "until it ends"
			if n.To != nil {
				to = "to " + n.To.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%snot downtime: %s from %s %s, marked by %s (%s): %s removed\n", indent, n.IncidentID,
				n.From.Format(time.RFC3339), to, n.By, strings.Join(strings.Fields(n.Reason), " "), incidents.FormatSeconds(&n.RemovedSeconds))
		}
	}
	return nil
}

// reportCSVHeader names every column of the CSV format: the JSON fields,
// with per-impact downtime in columns of their own.
var reportCSVHeader = []string{
	"service", "owner", "catalogued", "window", "from", "to", "window_seconds", "availability", "own_availability",
	"downtime_seconds", "outage_seconds", "degraded_seconds", "none_seconds", "own_downtime_seconds",
	"maintenance_seconds", "incidents", "mtta_seconds", "mttr_seconds", "mtbf_seconds", "longest_incident_seconds",
	"slo_target", "error_budget_seconds", "error_budget_consumed_seconds", "error_budget_remaining",
	"error_budget_remaining_seconds", "burn_rate_1h", "burn_rate_24h", "upstream", "incident_ids",
}

func writeReportCSV(w io.Writer, rep Report) error {
	cw := csv.NewWriter(w)
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
	opt := func(p *float64) string {
		if p == nil {
			return ""
		}
		return num(*p)
	}
	_ = cw.Write(reportCSVHeader)
	for _, f := range rep.Services {
		var ups []string
		for _, u := range f.Upstream {
			ups = append(ups, fmt.Sprintf("%s:%s", u.Service, num(u.DowntimeSeconds)))
		}
		_ = cw.Write([]string{
			f.Service, f.Owner, strconv.FormatBool(f.Catalogued), f.Window, f.From.Format(time.RFC3339), f.To.Format(time.RFC3339),
			strconv.FormatInt(f.WindowSeconds, 10), num(f.Availability), num(f.OwnAvailability),
			num(f.DowntimeSeconds), strconv.FormatInt(f.DowntimeByImpactSeconds.Outage, 10),
			strconv.FormatInt(f.DowntimeByImpactSeconds.Degraded, 10), strconv.FormatInt(f.DowntimeByImpactSeconds.None, 10),
			num(f.OwnDowntimeSeconds), strconv.FormatInt(f.MaintenanceSeconds, 10), strconv.Itoa(f.Incidents),
			opt(f.MTTASeconds), opt(f.MTTRSeconds), opt(f.MTBFSeconds), strconv.FormatInt(f.LongestIncidentSeconds, 10),
			num(f.SLOTarget), num(f.ErrorBudgetSeconds), num(f.ErrorBudgetConsumedSeconds), num(f.ErrorBudgetRemaining),
			num(f.ErrorBudgetRemainingSeconds), num(f.BurnRate1h), num(f.BurnRate24h),
			strings.Join(ups, ";"), strings.Join(f.IncidentIDs, " "),
		})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// formatAvailability shows a ratio as a percentage with the count of
// nines: "99.95% (3.3 nines)", "100% (∞ nines)". The percentage gets more
// decimals rather than rounding up to 100%.
func formatAvailability(a float64) string {
	if a >= 1 {
		return "100% (∞ nines)"
	}
	p := ""
	for d := 2; d <= 6; d++ {
		if p = strconv.FormatFloat(a*100, 'f', d, 64); !strings.HasPrefix(p, "100") {
			break
		}
	}
	return fmt.Sprintf("%s%% (%.1f nines)", p, Nines(a))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
