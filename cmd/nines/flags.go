package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// newFlagSet returns a flag set for a subcommand whose usage goes to w.
func newFlagSet(name string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("nines "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	return fs
}

// envName maps a dotted flag name to its environment variable:
// --clickhouse.dsn ↔ NINES_CLICKHOUSE_DSN.
func envName(flagName string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "NINES_" + strings.ToUpper(r.Replace(flagName))
}

// parseFlags parses args, then fills every flag not given on the command
// line from its NINES_… environment variable. Flags win over environment.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageError{fmt.Errorf("%s=%q: %w", envName(f.Name), v, e)}
			}
		}
	})
	if err == nil && fs.NArg() > 0 {
		err = usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	return err
}

// usageError marks errors in how nines was called (exit code 2).
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// readSecretFile reads a secret from a file, trimming the final newline.
// The secret itself never appears in errors.
func readSecretFile(flagName, path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flagName, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("--%s: %s is empty", flagName, path)
	}
	return s, nil
}
