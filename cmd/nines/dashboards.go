package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"

	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/dashboards"
	"github.com/ninesops/nines/incidents"
)

// addDashboards declares `nines dashboards generate|push`: Grafana
// dashboards generated from the service catalog, written as JSON files or
// published through Grafana's HTTP API.
func (c *cli) addDashboards() {
	cmd := c.app.Command("dashboards", "Grafana dashboards generated from the service catalog.")
	c.addDashboardsGenerate(cmd)
	c.addDashboardsPush(cmd)
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

func (f *dashboardFlags) register(fs flagger) {
	fs.Flag("catalog.file", "Service catalog file (YAML); empty: no catalog (only services seen in incidents).").PlaceHolder("FILE").StringVar(&f.catalogFile)
	fs.Flag("grafana.clickhouse-uid", "UID of the Grafana ClickHouse datasource the dashboards use by default.").
		Default(dashboards.DefaultClickHouseUID).StringVar(&f.clickHouseUID)
	fs.Flag("grafana.prometheus-uid", "UID of the Grafana Prometheus datasource the dashboards use by default.").
		Default(dashboards.DefaultPrometheusUID).StringVar(&f.prometheusUID)
	fs.Flag("nines.external-url", "nines' URL as browsers reach it, for links to its API.").
		Default(dashboards.DefaultNinesURL).StringVar(&f.ninesURL)
	fs.Flag("dashboards.window", "Default availability window: "+strings.Join(dashboards.Windows(), ", ")+".").
		Default(dashboards.DefaultWindow).EnumVar(&f.window, dashboards.Windows()...)
	fs.Flag("dashboards.as-of", "Date (YYYY-MM-DD, UTC) the dashboards are generated for: the catalog's maintenance windows from 400 days before to 62 days after it are written into their SQL. Default: today.").
		PlaceHolder("DATE").StringVar(&f.asOf)
	fs.Flag("config.file", "nines' YAML configuration file, for its availability section's impact weights (as the server's); empty: the defaults.").
		PlaceHolder("FILE").StringVar(&f.configFile)
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

func (c *cli) addDashboardsGenerate(parent *kingpin.CmdClause) {
	cmd := parent.Command("generate", "Write one JSON file per dashboard into --out (the overview, one per squad, one per service), replacing changed files and removing generated files of services no longer in the catalog.")
	var gen dashboardFlags
	gen.register(cmd)
	var out string
	cmd.Flag("out", "Directory to write the dashboards into (created if missing).").Required().PlaceHolder("DIR").StringVar(&out)
	c.command(cmd, func(context.Context) error {
		files, err := gen.generate()
		if err != nil {
			return fmt.Errorf("dashboards generate: %w", err)
		}
		res, err := dashboards.WriteDir(out, files)
		if err != nil {
			return fmt.Errorf("dashboards generate: %w", err)
		}
		fmt.Fprintf(c.stdout, "wrote %d dashboards to %s: %d changed, %d unchanged", len(files), out, res.Written, res.Unchanged)
		if len(res.Removed) > 0 {
			fmt.Fprintf(c.stdout, ", removed %s", strings.Join(res.Removed, ", "))
		}
		fmt.Fprintln(c.stdout)
		return nil
	})
}

// pushOptions are the flags of `nines dashboards push`.
type pushOptions struct {
	gen                    dashboardFlags
	grafanaURL, tokenFile  string
	timeout                time.Duration
	folderUID, folderTitle string
	dir, message           string
	dryRun                 bool
}

func (c *cli) addDashboardsPush(parent *kingpin.CmdClause) {
	cmd := parent.Command("push", "Publish dashboards (files from --dir, or generated from --catalog.file) into a Grafana folder, created if missing; unchanged dashboards are skipped.")
	o := &pushOptions{}
	o.gen.register(cmd)
	cmd.Flag("grafana.url", "Grafana's root URL, e.g. https://grafana.example.com.").Required().PlaceHolder("URL").StringVar(&o.grafanaURL)
	cmd.Flag("grafana.token-file", "File holding a Grafana service account token (Editor). Required, except with --dry-run.").PlaceHolder("FILE").StringVar(&o.tokenFile)
	cmd.Flag("grafana.timeout", "Timeout of each request to Grafana.").Default(dashboards.DefaultTimeout.String()).DurationVar(&o.timeout)
	cmd.Flag("folder-uid", "UID of the Grafana folder for the dashboards (created if missing).").Default(dashboards.DefaultFolderUID).StringVar(&o.folderUID)
	cmd.Flag("folder-title", "Title of the folder, when push creates it.").Default(dashboards.DefaultFolderTitle).StringVar(&o.folderTitle)
	cmd.Flag("dir", "Push the dashboards in this directory (as nines dashboards generate wrote them) instead of generating them from --catalog.file.").PlaceHolder("DIR").StringVar(&o.dir)
	cmd.Flag("message", "Version message Grafana keeps with each changed dashboard (default: nines' version).").PlaceHolder("TEXT").StringVar(&o.message)
	cmd.Flag("dry-run", "Print the dashboards that would be pushed, and where; send nothing to Grafana.").BoolVar(&o.dryRun)
	c.command(cmd, func(ctx context.Context) error { return dashboardsPush(ctx, o, c.stdout) })
}

func dashboardsPush(ctx context.Context, o *pushOptions, stdout io.Writer) error {
	switch {
	case o.tokenFile == "" && !o.dryRun:
		return usageError{errors.New("dashboards push: --grafana.token-file is required")}
	case o.dir != "" && o.gen.catalogFile != "":
		return usageError{errors.New("dashboards push: give --dir or --catalog.file, not both")}
	case o.dir == "" && o.gen.catalogFile == "":
		return usageError{errors.New("dashboards push: give --dir DIR (generated files) or --catalog.file F (generate now)")}
	}
	token, err := readSecretFile("grafana.token-file", o.tokenFile)
	if err != nil {
		return usageError{err}
	}
	var files []dashboards.File
	if o.dir != "" {
		files, err = dashboards.ReadDir(o.dir)
	} else {
		files, err = o.gen.generate()
	}
	if err != nil {
		return fmt.Errorf("dashboards push: %w", err)
	}
	base := strings.TrimRight(o.grafanaURL, "/")
	if o.dryRun {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		for _, f := range files {
			fmt.Fprintf(tw, "would push\t%s\t%s\n", f.UID, f.Title)
		}
		tw.Flush()
		fmt.Fprintf(stdout, "%d dashboards would be pushed to folder %s of %s (dry run: nothing sent)\n", len(files), o.folderUID, base)
		return nil
	}
	client, err := dashboards.NewClient(dashboards.ClientOptions{
		URL: o.grafanaURL, Token: token, UserAgent: version.ComponentUserAgent("nines"),
		HTTPClient: &http.Client{Timeout: o.timeout},
	})
	if err != nil {
		return usageError{fmt.Errorf("dashboards push: %w", err)}
	}
	message := o.message
	if message == "" {
		message = "pushed by nines " + version.Info()
	}
	results, err := client.Push(ctx, files, dashboards.PushOptions{FolderUID: o.folderUID, FolderTitle: o.folderTitle, Message: message})
	printPushResults(stdout, base, o.folderUID, results)
	return err
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
