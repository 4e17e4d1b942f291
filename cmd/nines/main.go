// Command nines turns Alertmanager notifications into incidents and
// incidents into availability figures. See README.md.
//
// The command line is kingpin's, as in Prometheus and Alertmanager: one
// command per job (serve, migrate, report, rules generate, dashboards
// generate|push, change record, spool inspect|replay, check
// config|catalog|rules, incidents list|show|ack|resolve|note|postmortem),
// each declared with its flags in flags.go's newCLI and the command's own
// file (serve's flags all in addServe). -h prints a command's flags;
// nines --version prints the version. Environment variables are opt-in
// per flag (.Envar), listed in flags.go. Exit status: 0 on success, 2 for
// a usage error (usageError), 1 for any other error.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // time zones for catalogs and reports on hosts without zoneinfo
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, hup)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "nines:", err)
		os.Exit(exitCode(err))
	}
}
