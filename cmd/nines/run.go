package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// Build information, stamped by the Makefile with -ldflags -X.
var (
	version   = "dev"
	revision  = ""
	buildDate = ""
)

// run is nines' whole program: main only adds signals and the exit code.
// reload delivers SIGHUP (reload the catalog); it may be nil.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, reload <-chan os.Signal) error {
	if len(args) == 0 {
		usage(stderr)
		return usageError{errors.New("no command given")}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, stderr, reload, os.Getenv)
	case "migrate":
		return migrate(ctx, rest, stderr, os.Getenv)
	case "report":
		return report(ctx, rest, stdout, stderr, os.Getenv)
	case "rules":
		return rulesCmd(ctx, rest, stdout, stderr, os.Getenv)
	case "dashboards":
		return dashboardsCmd(ctx, rest, stdout, stderr, os.Getenv)
	case "change":
		return changeCmd(ctx, rest, stdout, stderr, os.Getenv)
	case "spool":
		return spoolCmd(ctx, rest, stdout, stderr, os.Getenv)
	case "check":
		return checkCmd(ctx, rest, stdout, stderr)
	case "incidents":
		return incidentsCmd(ctx, rest, stdout, stderr, os.Getenv)
	case "version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "--help":
		usage(stdout)
		return nil
	}
	usage(stderr)
	return usageError{fmt.Errorf("unknown command %q", cmd)}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `nines: incidents from Alertmanager, availability from incidents.

Usage:
  nines serve    [flags]   run the server (webhook intake, API, metrics)
  nines migrate  [flags]   apply the ClickHouse schema and exit
  nines report   --window 30d [--service S] [--format table|json|csv|markdown]
                           availability figures per service
  nines rules generate [flags]
                           Prometheus error-budget alerts for the catalog
  nines dashboards generate --out DIR [--catalog.file F]
  nines dashboards push --grafana.url U --grafana.token-file F
                           Grafana dashboards from the service catalog
  nines change record [flags]
                           record a deploy, rollback, config or flag change
  nines spool inspect --spool.dir D [--format text|json]
                           list the spool's dead letters (answered 2xx,
                           refused by the store)
  nines spool replay --spool.dir D [--clickhouse.dsn …]
                           apply the dead letters again; keep those refused
  nines incidents postmortem [--url URL] ID
                           an incident's postmortem draft, as Markdown
  nines check config|catalog|rules FILE…
                           check files offline, like promtool check
  nines version            print the version
  nines help               this text

Every flag can also be set as NINES_<FLAG> in the environment, e.g.
--clickhouse.dsn as NINES_CLICKHOUSE_DSN. Run 'nines serve -h' for flags.
`)
}

func versionString() string {
	v, rev := version, revision
	if info, ok := debug.ReadBuildInfo(); ok && rev == "" {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	return fmt.Sprintf("nines %s (revision %s, built %s)", v, orDash(rev), orDash(buildDate))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, flag.ErrHelp) {
		return 2
	}
	return 1
}
