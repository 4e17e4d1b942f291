package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/fault"
)

// reportOptions are the flags of `nines report`.
type reportOptions struct {
	store       storeFlags
	digest      digestFlags
	window      string
	service     string
	format      string
	explain     bool
	catalogFile string
	configFile  string
	from, to    string
	dora        bool
	server      clientFlags // with a URL: ask that nines instead of ClickHouse
}

// addReport declares `nines report`.
func (c *cli) addReport() {
	cmd := c.app.Command("report", "Availability figures per service (or delivery figures, or the digest posted to Slack).")
	o := &reportOptions{}
	cmd.Flag("from", "Explicit window start (RFC 3339), with --to; instead of --window.").PlaceHolder("TIME").StringVar(&o.from)
	cmd.Flag("to", "Explicit window end (RFC 3339), with --from.").PlaceHolder("TIME").StringVar(&o.to)
	cmd.Flag("dora", "Report delivery figures (DORA) per service and squad instead of availability.").BoolVar(&o.dora)
	cmd.Flag("window", "Window: 1h, 24h, 7d, 30d, 90d, any duration, month, quarter, year, previous-month, previous-quarter, previous-year, …").
		Default(availability.DefaultWindow).StringVar(&o.window)
	cmd.Flag("service", "Report on this service only (default: every service, worst first).").PlaceHolder("NAME").StringVar(&o.service)
	cmd.Flag("format", "Output format: "+strings.Join(availability.ReportFormats, ", ")+".").
		Default("table").EnumVar(&o.format, availability.ReportFormats...)
	cmd.Flag("explain", "Also list the incidents behind each figure.").BoolVar(&o.explain)
	cmd.Flag("catalog.file", "Service catalog (YAML): owners, SLO targets, maintenance windows, time zone.").
		PlaceHolder("FILE").StringVar(&o.catalogFile)
	cmd.Flag("config.file", "YAML configuration file (its availability section: impact weights).").
		PlaceHolder("FILE").StringVar(&o.configFile)
	cmd.Flag("server.url", "A running nines' base URL: report the server's figures, with its catalog, config and time zone, instead of reading ClickHouse.").
		Envar(envURL).PlaceHolder("URL").StringVar(&o.server.url)
	cmd.Flag("api.token-file", "File holding the API token, if the server asks for one.").
		Envar(envTokenFile).PlaceHolder("FILE").StringVar(&o.server.tokenFile)
	o.digest.register(cmd)
	o.store.register(cmd)
	c.command(cmd, func(ctx context.Context) error { return report(ctx, o, c.logger(), c.stdout) })
}

// report prints availability figures: every service (or one) over a
// window, worst first, as a table for people or as JSON, CSV or Markdown.
// Everything the command line says is checked before ClickHouse is.
func report(ctx context.Context, o *reportOptions, log *slog.Logger, stdout io.Writer) error {
	if o.server.url != "" && !o.dora && !o.digest.post {
		return reportFromServer(ctx, o, stdout)
	}
	if err := o.store.check(); err != nil {
		return err
	}
	if o.catalogFile == "" {
		log.Warn("reading ClickHouse without --catalog.file: default SLO targets, no owners, no maintenance, UTC days; set NINES_URL (or --server.url) to report what the server shows")
	}
	cfg, cat, err := loadFiles(o.configFile, o.catalogFile)
	if err != nil {
		return err
	}
	w, err := reportWindow(o.window, o.from, o.to, time.Now(), cat.Location())
	if err != nil {
		return usageError{err}
	}
	store, err := o.store.open(ctx, log, nil)
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
	if o.digest.post {
		chg, err := changes.New(changes.Options{Store: store, Catalog: func() *catalog.Catalog { return cat }, Logger: log})
		if err != nil {
			return err
		}
		return postDigest(ctx, o.digest, cfg.Chat, svc, store, chatDORA{chg: chg, avail: svc}, func() *catalog.Catalog { return cat }, log, stdout)
	}
	if o.dora {
		chg, err := changes.New(changes.Options{Store: store, Catalog: func() *catalog.Catalog { return cat }, Logger: log})
		if err != nil {
			return err
		}
		services, squads, err := chg.DORA(ctx, w)
		if err != nil {
			return err
		}
		return changes.WriteDORA(stdout, o.format, w, services, squads)
	}
	var figs []availability.Figure
	if o.service != "" {
		f, err := svc.Service(ctx, o.service, w, o.explain)
		if err != nil {
			if errors.Is(err, fault.ErrNotFound) {
				return usageError{fmt.Errorf("--service: %w", err)}
			}
			return err
		}
		figs = []availability.Figure{f}
	} else if figs, err = svc.All(ctx, w, o.explain); err != nil {
		return err
	}
	rep := availability.NewReport(w, figs)
	rep.TimeZone = cat.Location().String()
	return availability.WriteReport(stdout, rep, o.format, cat.Location())
}

// reportFromServer prints the figures a running nines serves (GET
// /api/v1/availability): its catalog's SLOs and time zone, its config's
// weights, its services.
func reportFromServer(ctx context.Context, o *reportOptions, stdout io.Writer) error {
	if o.catalogFile != "" || o.configFile != "" {
		return usageError{errors.New("--catalog.file and --config.file are the server's with --server.url (NINES_URL): give one or the other")}
	}
	if (o.from == "") != (o.to == "") {
		return usageError{errors.New("--from and --to go together")}
	}
	cl, err := o.server.client()
	if err != nil {
		return err
	}
	q := url.Values{}
	if o.from != "" {
		q.Set("from", o.from)
		q.Set("to", o.to)
	} else {
		q.Set("window", o.window)
	}
	if o.explain {
		q.Set("explain", "1")
	}
	var rep availability.Report
	if err := cl.do(ctx, http.MethodGet, "/api/v1/availability?"+q.Encode(), nil, &rep); err != nil {
		return err
	}
	if o.service != "" {
		i := slices.IndexFunc(rep.Services, func(f availability.Figure) bool { return f.Service == o.service })
		if i < 0 {
			return usageError{fmt.Errorf("--service: %q is neither in the server's catalog nor in any incident", o.service)}
		}
		rep.Services = rep.Services[i : i+1]
	}
	if rep.TimeZone == "" {
		rep.TimeZone = "UTC" // an older server
	}
	loc, err := time.LoadLocation(rep.TimeZone)
	if err != nil {
		return fmt.Errorf("the server's time zone %q: %w", rep.TimeZone, err)
	}
	return availability.WriteReport(stdout, rep, o.format, loc)
}

// reportWindow is --window, or --from/--to when given (both).
func reportWindow(window, from, to string, now time.Time, loc *time.Location) (availability.Window, error) {
	switch {
	case from == "" && to == "":
		return availability.ParseWindow(window, now, loc)
	case to == "":
		return availability.Window{}, errors.New("--from needs --to")
	case from == "":
		return availability.Window{}, errors.New("--to needs --from")
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
