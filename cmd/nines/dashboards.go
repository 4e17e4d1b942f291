package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/dashboards"
	"github.com/ninesops/nines/incidents"
)

// dashboardsCmd runs `nines dashboards generate|push`: Grafana dashboards
// generated from the service catalog, written as JSON files or published
// through Grafana's HTTP API.
func dashboardsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		dashboardsUsage(stderr)
		return usageError{errors.New("dashboards: no subcommand given")}
	}
	switch args[0] {
	case "generate":
		return dashboardsGenerate(args[1:], stdout, stderr, getenv)
	case "push":
		return dashboardsPush(ctx, args[1:], stdout, stderr, getenv)
	case "help", "-h", "--help":
		dashboardsUsage(stdout)
		return nil
	}
	dashboardsUsage(stderr)
	return usageError{fmt.Errorf("dashboards: unknown subcommand %q", args[0])}
}

func dashboardsUsage(w io.Writer) {
	fmt.Fprint(w, `nines dashboards: Grafana dashboards generated from the service catalog.

Usage:
  nines dashboards generate --out DIR [--catalog.file F] [flags]
      write one JSON file per dashboard into DIR (the overview, one per squad,
      one per service), replacing changed files and removing generated files
      of services no longer in the catalog
  nines dashboards push --grafana.url URL --grafana.token-file F
                        [--folder-uid nines] [--dir DIR | --catalog.file F] [--message M]
      publish dashboards (files from DIR, or generated from the catalog) into a
      Grafana folder, created if missing; unchanged dashboards are skipped

Run 'nines dashboards generate -h' or 'nines dashboards push -h' for flags.
`)
}

// dashboardFlags choose what the generated dashboards contain.
type dashboardFlags struct {
	catalogFile   string
	clickHouseUID string
	prometheusUID string
	ninesURL      string
	window        string
	configFile    string
	asOf          string
}

func (f *dashboardFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.catalogFile, "catalog.file", "", "Service catalog file (YAML); empty: no catalog (only services seen in incidents).")
	fs.StringVar(&f.clickHouseUID, "grafana.clickhouse-uid", dashboards.DefaultClickHouseUID, "UID of the Grafana ClickHouse datasource the dashboards use by default.")
	fs.StringVar(&f.prometheusUID, "grafana.prometheus-uid", dashboards.DefaultPrometheusUID, "UID of the Grafana Prometheus datasource the dashboards use by default.")
	fs.StringVar(&f.ninesURL, "nines.external-url", dashboards.DefaultNinesURL, "nines' URL as browsers reach it, for links to its API.")
	fs.StringVar(&f.window, "dashboards.window", dashboards.DefaultWindow, "Default availability window: "+strings.Join(dashboards.Windows(), ", ")+".")
	fs.StringVar(&f.asOf, "dashboards.as-of", "", "Date (YYYY-MM-DD, UTC) the dashboards are generated for: the catalog's maintenance windows from 400 days before to 62 days after it are written into their SQL. Default: today.")
	fs.StringVar(&f.configFile, "config.file", "", "nines' YAML configuration file, for its availability section's impact weights (as the server's); empty: the defaults.")
}

// generate loads the config file and the catalog and generates the
// dashboards' files: their SQL is the API's (chstore's), with the config's
// impact weights and the catalog's maintenance and time zone.
func (f *dashboardFlags) generate() ([]dashboards.File, error) {
	cfg, cat, err := loadFiles(f.configFile, f.catalogFile)
	if err != nil {
		return nil, err
	}
	asOf := time.Now().UTC().Truncate(24 * time.Hour)
	if f.asOf != "" {
		if asOf, err = time.Parse(time.DateOnly, f.asOf); err != nil {
			return nil, usageError{fmt.Errorf("--dashboards.as-of: want YYYY-MM-DD, got %q", f.asOf)}
		}
	}
	iw := cfg.Availability.ImpactWeights
	ds, err := dashboards.Generate(cat, dashboards.Options{
		ClickHouseUID: f.clickHouseUID,
		PrometheusUID: f.prometheusUID,
		NinesURL:      f.ninesURL,
		Queries:       chstore.DashboardQueries{},
		Weights: &dashboards.Weights{
			Outage:   iw.Weight(incidents.ImpactOutage),
			Degraded: iw.Weight(incidents.ImpactDegraded),
			None:     iw.Weight(incidents.ImpactNone),
		},
		Window: f.window,
		Now:    asOf,
	})
	if err != nil {
		return nil, usageError{err}
	}
	return dashboards.Files(ds)
}

func dashboardsGenerate(args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlagSet("dashboards generate", stderr)
	var gen dashboardFlags
	gen.register(fs)
	out := fs.String("out", "", "Directory to write the dashboards into (created if missing). Required.")
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if *out == "" {
		return usageError{errors.New("dashboards generate: --out DIR is required")}
	}
	files, err := gen.generate()
	if err != nil {
		return fmt.Errorf("dashboards generate: %w", err)
	}
	res, err := dashboards.WriteDir(*out, files)
	if err != nil {
		return fmt.Errorf("dashboards generate: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %d dashboards to %s: %d changed, %d unchanged", len(files), *out, res.Written, res.Unchanged)
	if len(res.Removed) > 0 {
		fmt.Fprintf(stdout, ", removed %s", strings.Join(res.Removed, ", "))
	}
	fmt.Fprintln(stdout)
	return nil
}

func dashboardsPush(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	fs := newFlagSet("dashboards push", stderr)
	var gen dashboardFlags
	gen.register(fs)
	var (
		grafanaURL  = fs.String("grafana.url", "", "Grafana's root URL, e.g. https://grafana.example.com. Required.")
		tokenFile   = fs.String("grafana.token-file", "", "File holding a Grafana service account token (Editor). Required.")
		timeout     = fs.Duration("grafana.timeout", dashboards.DefaultTimeout, "Timeout of each request to Grafana.")
		folderUID   = fs.String("folder-uid", dashboards.DefaultFolderUID, "UID of the Grafana folder for the dashboards (created if missing).")
		folderTitle = fs.String("folder-title", dashboards.DefaultFolderTitle, "Title of the folder, when push creates it.")
		dir         = fs.String("dir", "", "Push the dashboards in this directory (as `nines dashboards generate` wrote them) instead of generating them from --catalog.file.")
		message     = fs.String("message", "", "Version message Grafana keeps with each changed dashboard (default: nines' version).")
	)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	switch {
	case *grafanaURL == "":
		return usageError{errors.New("dashboards push: --grafana.url is required")}
	case *tokenFile == "":
		return usageError{errors.New("dashboards push: --grafana.token-file is required")}
	case *dir != "" && gen.catalogFile != "" && dashboardsCatalogArg(args):
		return usageError{errors.New("dashboards push: give --dir or --catalog.file, not both")}
	case *dir == "" && gen.catalogFile == "":
		return usageError{errors.New("dashboards push: give --dir DIR (generated files) or --catalog.file F (generate now)")}
	}
	token, err := readSecretFile("grafana.token-file", *tokenFile)
	if err != nil {
		return usageError{err}
	}
	var files []dashboards.File
	if *dir != "" {
		files, err = dashboards.ReadDir(*dir)
	} else {
		files, err = gen.generate()
	}
	if err != nil {
		return fmt.Errorf("dashboards push: %w", err)
	}
	client, err := dashboards.NewClient(dashboards.ClientOptions{
		URL: *grafanaURL, Token: token, UserAgent: "nines/" + version,
		HTTPClient: &http.Client{Timeout: *timeout},
	})
	if err != nil {
		return usageError{fmt.Errorf("dashboards push: %w", err)}
	}
	if *message == "" {
		*message = "pushed by " + versionString()
	}
	results, err := client.Push(ctx, files, dashboards.PushOptions{FolderUID: *folderUID, FolderTitle: *folderTitle, Message: *message})
	printPushResults(stdout, strings.TrimRight(*grafanaURL, "/"), *folderUID, results)
	return err
}

// dashboardsCatalogArg reports whether --catalog.file was given as an
// argument rather than through NINES_CATALOG_FILE: --dir wins over the
// environment's catalog, which serve uses too.
func dashboardsCatalogArg(args []string) bool {
	for _, a := range args {
		if a == "--" {
			break
		}
		name := strings.TrimLeft(a, "-")
		if strings.HasPrefix(a, "-") && (name == "catalog.file" || strings.HasPrefix(name, "catalog.file=")) {
			return true
		}
	}
	return false
}

// printPushResults writes a line per dashboard and a summary.
func printPushResults(w io.Writer, base, folder string, results []dashboards.Result) {
	if len(results) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	count := map[dashboards.Action]int{}
	for _, r := range results {
		count[r.Action]++
		switch {
		case r.Err != nil:
			fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Action, r.UID, r.Err)
		case r.URL != "":
			fmt.Fprintf(tw, "%s\t%s\tversion %d\t%s%s\n", r.Action, r.UID, r.Version, base, r.URL)
		default:
			fmt.Fprintf(tw, "%s\t%s\tversion %d\n", r.Action, r.UID, r.Version)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "%d dashboards in folder %s of %s: %d created, %d updated, %d unchanged, %d failed\n",
		len(results), folder, base, count[dashboards.Created], count[dashboards.Updated], count[dashboards.Unchanged], count[dashboards.Failed])
}
