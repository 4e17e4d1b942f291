package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
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
	var server serverFlags
	server.register(fs)
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
	if server.url == "" {
		server.url = getenv("NINES_URL")
	}
	if server.url != "" && !dora && !df.post {
		// A client of the server: its catalog, config and time zone.
		if catalogFile != "" || configFile != "" {
			return usageError{errors.New("--catalog.file and --config.file are the server's with --server.url (NINES_URL): give one or the other")}
		}
		rep, err := server.availability(ctx, getenv, window, from, to, explain)
		if err != nil {
			return err
		}
		if service != "" {
			i := slices.IndexFunc(rep.Services, func(f availability.Figure) bool { return f.Service == service })
			if i < 0 {
				return usageError{fmt.Errorf("--service: %q is neither in the server's catalog nor in any incident", service)}
			}
			rep.Services = rep.Services[i : i+1]
		}
		loc, err := time.LoadLocation(rep.TimeZone)
		if err != nil {
			return fmt.Errorf("the server's time zone %q: %w", rep.TimeZone, err)
		}
		return availability.WriteReport(stdout, rep, format, loc)
	}
	if catalogFile == "" {
		fmt.Fprintln(stderr, "nines report: reading ClickHouse without --catalog.file: default SLO targets, no owners, no maintenance, UTC days; set NINES_URL (or --server.url) to report what the server shows")
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
	rep := availability.NewReport(w, figs)
	rep.TimeZone = cat.Location().String()
	return availability.WriteReport(stdout, rep, format, cat.Location())
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

// serverFlags reach a running nines, whose API already has the figures.
// (An HTTP GET of its own, in this file for now: cmd/nines/client.go, the
// incidents API client, is the place to fold it into.)
type serverFlags struct {
	url, token, tokenFile string
	timeout               time.Duration
}

func (f *serverFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.url, "server.url", "", "A running nines' base URL (default: NINES_URL): report the server's figures, with its catalog, config and time zone, instead of reading ClickHouse.")
	fs.StringVar(&f.tokenFile, "api.token-file", "", "File holding the API token, if the server asks for one (or NINES_API_TOKEN).")
	fs.DurationVar(&f.timeout, "server.timeout", time.Minute, "Timeout of the request to the server.")
}

// availability asks the server for GET /api/v1/availability.
func (f *serverFlags) availability(ctx context.Context, getenv func(string) string, window, from, to string, explain bool) (availability.Report, error) {
	var rep availability.Report
	q := url.Values{}
	if from != "" || to != "" {
		q.Set("from", from)
		q.Set("to", to)
	} else {
		q.Set("window", window)
	}
	if explain {
		q.Set("explain", "1")
	}
	u, err := url.Parse(strings.TrimRight(f.url, "/") + "/api/v1/availability?" + q.Encode())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return rep, usageError{fmt.Errorf("--server.url: want an http(s) URL, got %q", f.url)}
	}
	token := getenv("NINES_API_TOKEN")
	if f.tokenFile != "" {
		if token, err = readSecretFile("api.token-file", f.tokenFile); err != nil {
			return rep, usageError{err}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return rep, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return rep, fmt.Errorf("ask %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return rep, fmt.Errorf("read %s: %w", u.Redacted(), err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(body[:min(len(body), 200)]))
		}
		err := fmt.Errorf("%s answered %s: %s", u.Redacted(), resp.Status, e.Error)
		if resp.StatusCode == http.StatusBadRequest {
			return rep, usageError{err}
		}
		return rep, err
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return rep, fmt.Errorf("read %s: %w", u.Redacted(), err)
	}
	if rep.TimeZone == "" {
		rep.TimeZone = "UTC" // an older server
	}
	return rep, nil
}
