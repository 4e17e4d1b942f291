package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
)

// cli is nines' command line: a kingpin application whose commands each
// hold their own options and the action that runs them. The flags given
// to every command (--log.level, --log.format) are the application's.
type cli struct {
	app            *kingpin.Application
	stdout, stderr io.Writer
	reload         <-chan os.Signal
	logConfig      promslog.Config
	actions        map[string]func(context.Context) error // by kingpin's FullCommand

	// serve is `nines serve`'s options, for tests that check deployment
	// files against them.
	serve *serveOptions
}

// Environment variables are opt-in per flag (kingpin's .Envar): only those
// the shipped deployments and the docs use. README.md lists them; a flag
// given on the command line wins over its variable.
const (
	envDSN       = "NINES_CLICKHOUSE_DSN"     // every command that opens the store
	envCluster   = "NINES_CLICKHOUSE_CLUSTER" // idem
	envListen    = "NINES_WEB_LISTEN_ADDRESS" // serve
	envLogLevel  = "NINES_LOG_LEVEL"          // every command
	envLogFormat = "NINES_LOG_FORMAT"         // every command
	envURL       = "NINES_URL"                // the API's clients: incidents, change record
	envTokenFile = "NINES_API_TOKEN_FILE"     // idem
	envToken     = "NINES_API_TOKEN"          // change record, for CI jobs whose secrets are variables
)

// newCLI declares every command and flag of nines.
func newCLI(stdout, stderr io.Writer, reload <-chan os.Signal) *cli {
	app := kingpin.New("nines", "Incidents from Alertmanager, availability from incidents. nines --version prints the version; "+
		"the environment variables nines reads are shown next to their flags ($NINES_…).")
	c := &cli{app: app, stdout: stdout, stderr: stderr, reload: reload, actions: map[string]func(context.Context) error{}}
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.Terminate(func(code int) { panic(terminated(code)) })
	promslogflag.AddFlags(app, &c.logConfig)
	app.GetFlag(promslogflag.LevelFlagName).Envar(envLogLevel)
	app.GetFlag(promslogflag.FormatFlagName).Envar(envLogFormat)

	c.addServe()
	c.addMigrate()
	c.addReport()
	c.addRules()
	c.addDashboards()
	c.addChange()
	c.addSpool()
	c.addCheck()
	c.addIncidents()
	c.addReplay()
	ver := app.Command("version", "Print the version (as --version does).").Hidden()
	c.command(ver, func(context.Context) error {
		_, err := fmt.Fprintln(stdout, version.Print("nines"))
		return err
	})
	return c
}

// command registers what a command does once its flags are parsed.
func (c *cli) command(cmd *kingpin.CmdClause, action func(context.Context) error) {
	c.actions[cmd.FullCommand()] = action
}

// terminated is how kingpin's --help ends parsing: run turns
// it into a return (exit status 0) instead of os.Exit.
type terminated int

// parse parses args and returns the chosen command's action; nil (and no
// error) when parsing printed help or the version.
func (c *cli) parse(args []string) (action func(context.Context) error, err error) {
	defer func() {
		if r := recover(); r != nil {
			code, ok := r.(terminated)
			if !ok {
				panic(r)
			}
			action = nil
			if err == nil && code != 0 {
				err = usageError{fmt.Errorf("exit status %d", code)}
			}
		}
	}()
	name, err := c.app.Parse(args)
	if err != nil {
		return nil, c.explain(args, err)
	}
	return c.actions[name], nil
}

// explain names the flag (or environment variable) behind a parse error,
// which kingpin's value errors do not, and says where help is.
func (c *cli) explain(args []string, err error) error {
	hint := "nines --help"
	pc, _ := c.app.ParseContext(args)
	if pc == nil {
		return usageError{fmt.Errorf("%w (see %s)", err, hint)}
	}
	if pc.SelectedCommand != nil {
		hint = "nines " + pc.SelectedCommand.FullCommand() + " --help"
	}
	// Setting the values again, one by one, finds the one that fails;
	// the parse failed, so nothing will use them.
	for _, el := range pc.Elements {
		f, ok := el.Clause.(*kingpin.FlagClause)
		if !ok || el.Value == nil {
			continue
		}
		if m := f.Model(); m.Value != nil {
			if ferr := m.Value.Set(*el.Value); ferr != nil {
				return usageError{fmt.Errorf("--%s=%q: %w (see %s)", m.Name, *el.Value, ferr, hint)}
			}
		}
	}
	flags := c.app.Model().Flags
	if pc.SelectedCommand != nil {
		flags = append(flags, pc.SelectedCommand.Model().Flags...)
	}
	for _, m := range flags {
		if v := os.Getenv(m.Envar); m.Envar != "" && v != "" && m.Value != nil {
			if ferr := m.Value.Set(v); ferr != nil {
				return usageError{fmt.Errorf("$%s=%q (--%s): %w", m.Envar, v, m.Name, ferr)}
			}
		}
	}
	return usageError{fmt.Errorf("%w (see %s)", err, hint)}
}

// logger is the logger of --log.level and --log.format, writing to stderr.
func (c *cli) logger() *slog.Logger {
	cfg := c.logConfig
	cfg.Writer = c.stderr
	return slog.New(boundHandler{promslog.New(&cfg).Handler()})
}

// flagger is what flags are declared on: the application or a command.
type flagger interface {
	Flag(name, help string) *kingpin.FlagClause
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
