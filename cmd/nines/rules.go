package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/collector"
)

// addRules declares `nines rules generate`: Prometheus alerting rules on
// every catalogued service's error budget, over the windows the collector
// exports. --collector.windows is the flag of `nines serve` too, so that
// one setting serves both.
func (c *cli) addRules() {
	cmd := c.app.Command("rules", "Prometheus rules for the catalog.").Command("generate", "Prometheus error-budget alerts for every catalogued service.")
	var catalogFile, out, windows string
	cmd.Flag("catalog.file", "Service catalog YAML to generate rules for (required).").
		PlaceHolder("FILE").StringVar(&catalogFile)
	cmd.Flag("out", "File to write the rules to; - is standard output. The file is replaced whole, or left alone on error.").
		Default("-").StringVar(&out)
	(*serveOptions)(nil).registerCollector(cmd, &windows)
	c.command(cmd, func(ctx context.Context) error { return rulesGenerate(ctx, catalogFile, out, windows, c.stdout) })
}

func rulesGenerate(ctx context.Context, catalogFile, out, windows string, stdout io.Writer) error {
	if catalogFile == "" {
		return usageError{errors.New("rules generate: --catalog.file is required")}
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
