// Command nines-bench measures nines end to end against a real ClickHouse
// and puts the figures beside those of Alertmanager, a decode-only
// receiver and ClickHouse's own insert rate, on the same notifications.
// See `nines-bench -h` and the README's "Performance" section.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "nines-bench:", err)
		os.Exit(1)
	}
}
