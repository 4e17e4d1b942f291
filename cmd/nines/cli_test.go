package main

import (
	"io"
	"strings"

	"github.com/alecthomas/kingpin/v2"
)

// serveFlagModels are the flags `nines serve` accepts (its own and the
// application's), by name.
func serveFlagModels() map[string]*kingpin.FlagModel {
	c := newCLI(io.Discard, io.Discard, nil)
	out := map[string]*kingpin.FlagModel{}
	for _, m := range c.app.Model().Flags {
		out[m.Name] = m
	}
	if cmd := c.app.GetCommand("serve"); cmd != nil {
		for _, m := range cmd.Model().Flags {
			out[m.Name] = m
		}
	}
	return out
}

// serveFlagsByEnv maps each environment variable serve reads to its flag.
func serveFlagsByEnv() map[string]string {
	byEnv := map[string]string{}
	for name, m := range serveFlagModels() {
		if m.Envar != "" {
			byEnv[m.Envar] = name
		}
	}
	return byEnv
}

// parseServe parses `nines serve ARGS` as nines does, with env standing in
// for the process' environment (kingpin reads os.Getenv): a variable sets
// its flag unless the command line gives it. It returns the options and
// the flags set, by name.
func parseServe(args []string, env map[string]string) (*serveOptions, map[string]string, error) {
	byEnv := serveFlagsByEnv()
	given := map[string]bool{}
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		given[name] = true
	}
	full := append([]string{"serve"}, args...)
	for k, v := range env {
		if name := byEnv[k]; name != "" && !given[name] && v != "" {
			full = append(full, "--"+name+"="+v)
		}
	}
	c := newCLI(io.Discard, io.Discard, nil)
	if _, err := c.parse(full); err != nil {
		return nil, nil, err
	}
	pc, err := c.app.ParseContext(full)
	if err != nil {
		return nil, nil, err
	}
	set := map[string]string{}
	for _, el := range pc.Elements {
		if f, ok := el.Clause.(*kingpin.FlagClause); ok {
			if el.Value != nil {
				set[f.Model().Name] = *el.Value
			} else {
				set[f.Model().Name] = "true"
			}
		}
	}
	return c.serve, set, nil
}

// withDefaults is args followed by each of defaults whose flag args does
// not give: kingpin refuses a flag given twice, so a test's flag replaces
// the harness' default.
func withDefaults(args []string, defaults ...string) []string {
	given := map[string]bool{}
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		given[name] = true
	}
	out := append([]string(nil), args...)
	for _, d := range defaults {
		if name, _, _ := strings.Cut(strings.TrimLeft(d, "-"), "="); !given[name] {
			out = append(out, d)
		}
	}
	return out
}
