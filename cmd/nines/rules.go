package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/collector"
)

// rulesCmd runs `nines rules generate`: Prometheus alerting rules on every
// catalogued service's error budget, over the windows the collector
// exports. --collector.windows (NINES_COLLECTOR_WINDOWS) is the flag of
// `nines serve` too, so that one setting serves both.
func rulesCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "generate" {
		fmt.Fprint(stderr, "Usage: nines rules generate [--catalog.file FILE] [--out FILE] [--collector.windows LIST]\n")
		if len(args) == 0 {
			return usageError{errors.New("rules: no subcommand given (want generate)")}
		}
		return usageError{fmt.Errorf("rules: unknown subcommand %q (want generate)", args[0])}
	}
	fs := newFlagSet("rules generate", stderr)
	var catalogFile, out, windows string
	fs.StringVar(&catalogFile, "catalog.file", "", "Service catalog YAML to generate rules for (required).")
	fs.StringVar(&out, "out", "-", "File to write the rules to; - is standard output. The file is replaced whole, or left alone on error.")
	fs.StringVar(&windows, "collector.windows", strings.Join(collector.DefaultWindows(), ","),
		"Windows the collector exports, comma-separated, as given to nines serve: the rules use only these.")
	if err := parseFlags(fs, args[1:], getenv); err != nil {
		return err
	}
	if catalogFile == "" {
		return usageError{errors.New("rules generate: --catalog.file (or NINES_CATALOG_FILE) is required")}
	}
	ws, err := collector.ParseWindowList(windows)
	if err != nil {
		return usageError{fmt.Errorf("--collector.windows: %w", err)}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	cat, err := catalog.Load(catalogFile)
	if err != nil {
		return fmt.Errorf("--catalog.file: %w", err)
	}
	rules, err := collector.GenerateRules(cat, ws)
	if err != nil {
		return fmt.Errorf("rules generate: %w", err)
	}
	if out == "-" {
		if _, err := stdout.Write(rules); err != nil {
			return fmt.Errorf("rules generate: write: %w", err)
		}
		return nil
	}
	return writeFileAtomic(out, rules)
}

// writeFileAtomic replaces path with data through a temporary file in the
// same directory, so that Prometheus never loads a half-written rule file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}
