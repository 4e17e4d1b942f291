package main

import (
	"context"
	"errors"
	"io"
	"os"
)

// run is nines' whole program: main only adds signals and the exit code.
// reload delivers SIGHUP (reload the catalog); it may be nil.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, reload <-chan os.Signal) error {
	c := newCLI(stdout, stderr, reload)
	if len(args) == 0 {
		c.app.UsageWriter(stderr)
		c.app.Usage(nil)
		return usageError{errors.New("no command given")}
	}
	if args[0] == "--version" {
		// Not kingpin's Version flag: `nines change record --version V` is
		// the version deployed, and kingpin refuses a flag of that name on a
		// command when the application has one.
		args = []string{"version"}
	}
	action, err := c.parse(changeArgs(args))
	if err != nil || action == nil {
		return err
	}
	return action(ctx)
}

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}
