package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/fault"
)

// reportFormats are the output formats of `nines report`.
var reportFormats = []string{"table", "json", "csv", "markdown"}

// report prints availability figures: every service (or one) over a
// window, worst first, as a table for people or as JSON, CSV or Markdown.
func report(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlagSet("report", stderr)
	var (
		sf          storeFlags
		lf          logFlags
		window      string
		service     string
		format      string
		explain     bool
		catalogFile string
		configFile  string
		from, to    string
		dora        bool
	)
	fs.StringVar(&from, "from", "", "Explicit window start (RFC 3339), with --to; instead of --window.")
	fs.StringVar(&to, "to", "", "Explicit window end (RFC 3339), with --from.")
	fs.BoolVar(&dora, "dora", false, "Report delivery figures (DORA) per service and squad instead of availability.")
	fs.StringVar(&window, "window", availability.DefaultWindow, "Window: 1h, 24h, 7d, 30d, 90d, any duration, month, quarter, year, previous-month, previous-quarter, previous-year, …")
	fs.StringVar(&service, "service", "", "Report on this service only (default: every service, worst first).")
	fs.StringVar(&format, "format", "table", "Output format: "+strings.Join(reportFormats, ", ")+".")
	fs.BoolVar(&explain, "explain", false, "Also list the incidents behind each figure.")
	fs.StringVar(&catalogFile, "catalog.file", "", "Service catalog (YAML): owners, SLO targets, maintenance windows, time zone.")
	fs.StringVar(&configFile, "config.file", "", "YAML configuration file (its availability section: impact weights).")
	var df digestFlags
	df.register(fs)
	sf.register(fs)
	lf.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if !contains(reportFormats, format) {
		return usageError{fmt.Errorf("--format: want one of %s, got %q", strings.Join(reportFormats, ", "), format)}
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	cfg, err := loadConfig(configFile)
	if err != nil {
		return err
	}
	cat, err := catalog.Load(catalogFile)
	if err != nil {
		return fmt.Errorf("--catalog.file: %w", err)
	}
	store, err := sf.open(ctx, log, nil)
	if err != nil {
		return err
	}
	defer store.Close()
	svc, err := availability.New(availability.Options{
		Source: store, Catalog: func() *catalog.Catalog { return cat }, Config: cfg.Availability, Logger: log,
	})
	if err != nil {
		return err
	}
	if df.post {
		return postDigest(ctx, df, cfg.Chat, svc, store, func() *catalog.Catalog { return cat }, log, stdout)
	}
	w, err := reportWindow(svc, window, from, to)
	if err != nil {
		return usageError{err}
	}
	if dora {
		raws, err := store.DORA(ctx, w.From, w.To)
		if err != nil {
			return err
		}
		services, squads := changes.Summarize(raws, w, func(s string) string {
			sv, _ := cat.Service(s)
			return sv.Owner
		})
		return writeDORA(stdout, format, w, services, squads)
	}
	var figs []availability.Figure
	if service != "" {
		f, err := svc.Service(ctx, service, w, explain)
		if err != nil {
			if errors.Is(err, fault.ErrNotFound) {
				return usageError{fmt.Errorf("--service: %w", err)}
			}
			return err
		}
		figs = []availability.Figure{f}
	} else if figs, err = svc.All(ctx, w, explain); err != nil {
		return err
	}
	rep := availability.NewReport(w, figs)
	switch format {
	case "json":
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case "csv":
		return writeReportCSV(stdout, rep)
	case "markdown":
		return writeReportMarkdown(stdout, rep, cat.Location())
	}
	return writeReportTable(stdout, rep, cat.Location())
}

// reportWindow is --window, or --from/--to when given.
func reportWindow(svc *availability.Service, window, from, to string) (availability.Window, error) {
	if from == "" && to == "" {
		return svc.ParseWindow(window)
	}
	f, err := time.Parse(time.RFC3339, from)
	if err != nil {
		return availability.Window{}, fmt.Errorf("--from: want an RFC 3339 time, got %q", from)
	}
	t, err := time.Parse(time.RFC3339, to)
	if err != nil {
		return availability.Window{}, fmt.Errorf("--to: want an RFC 3339 time, got %q", to)
	}
	return availability.WindowBetween(f, t)
}

// writeDORA prints delivery figures.
func writeDORA(w io.Writer, format string, win availability.Window, services, squads []changes.DORA) error {
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
	for _, group := range [][]changes.DORA{services, squads} {
		for _, d := range group {
			name := d.Service
			if name == "" {
				name = "squad " + d.Squad
			}
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%s\t%s\t%s\n", name, d.Deployments, d.DeploymentsPerDay,
				rate(d.ChangeFailureRate), rate(d.RollbackRate), formatSeconds(d.TimeToRestoreSeconds))
		}
	}
	return tw.Flush()
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// reportRow is one service in the human formats.
func reportRow(f availability.Figure) []string {
	owner := f.Owner
	if !f.Catalogued {
		owner = "(uncatalogued)"
	} else if owner == "" {
		owner = "-"
	}
	return []string{
		f.Service, owner, formatAvailability(f.Availability), formatPercent(f.SLOTarget),
		fmt.Sprintf("%.1f%%", f.ErrorBudgetRemaining*100), strconv.Itoa(f.Incidents), formatSeconds(f.MTTRSeconds),
	}
}

var reportHeader = []string{"SERVICE", "OWNER", "AVAILABILITY", "SLO", "BUDGET LEFT", "INCIDENTS", "MTTR"}

func reportTitle(rep availability.Report, loc *time.Location) string {
	const layout = "2006-01-02 15:04 MST"
	return fmt.Sprintf("Availability over %s (%s – %s)", rep.Window, rep.From.In(loc).Format(layout), rep.To.In(loc).Format(layout))
}

func writeReportTable(w io.Writer, rep availability.Report, loc *time.Location) error {
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

func writeReportMarkdown(w io.Writer, rep availability.Report, loc *time.Location) error {
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
func writeExplanations(w io.Writer, rep availability.Report, indent string) error {
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
				strings.Join(u.IncidentIDs, ", "), formatSeconds(&u.DowntimeSeconds))
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

func writeReportCSV(w io.Writer, rep availability.Report) error {
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
	return fmt.Sprintf("%s%% (%.1f nines)", p, availability.Nines(a))
}

// formatPercent shows an SLO target ratio as a percentage: 99.9%.
func formatPercent(r float64) string {
	return strconv.FormatFloat(math.Round(r*1e8)/1e6, 'f', -1, 64) + "%"
}

// formatSeconds shows a duration in seconds like 1h23m, 45m10s or 12s; "-"
// when undefined.
func formatSeconds(p *float64) string {
	if p == nil {
		return "-"
	}
	s := (time.Duration(math.Round(*p)) * time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
