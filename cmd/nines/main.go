// Command nines turns Alertmanager notifications into incidents and
// incidents into availability figures. See README.md.
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
