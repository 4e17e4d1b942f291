package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/changes"
	"github.com/ninesops/nines/fault"
)

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
	fs.StringVar(&format, "format", "table", "Output format: "+strings.Join(availability.ReportFormats, ", ")+".")
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
	if !slices.Contains(availability.ReportFormats, format) {
		return usageError{fmt.Errorf("--format: want one of %s, got %q", strings.Join(availability.ReportFormats, ", "), format)}
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	cfg, cat, err := loadFiles(configFile, catalogFile)
	if err != nil {
		return err
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
		chg, err := changes.New(changes.Options{Store: store, Catalog: func() *catalog.Catalog { return cat }, Logger: log})
		if err != nil {
			return err
		}
		services, squads, err := chg.DORA(ctx, w)
		if err != nil {
			return err
		}
		return changes.WriteDORA(stdout, format, w, services, squads)
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
	return availability.WriteReport(stdout, availability.NewReport(w, figs), format, cat.Location())
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
