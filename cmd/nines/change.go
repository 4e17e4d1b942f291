package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ninesops/nines/changes"
)

// changeOptions are the flags of `nines change record`.
type changeOptions struct {
	client       clientFlags
	c            changes.Change
	at           string
	token        string
	kind, status string
	dryRun       bool
}

// addChange declares `nines change record …`, the one line a CI/CD job
// adds to tell nines what it deployed. No flag of it reads the
// environment but the server's address and the token: a deployment's
// NINES_VERSION (an image tag) is not the version it records.
func (c *cli) addChange() {
	cmd := c.app.Command("change", "Changes: deploys, rollbacks, config and flag changes.").Command("record", "Record a deploy, rollback, config or flag change.")
	o := &changeOptions{}
	o.client.register(cmd, "File holding the API token (nines serve's --api.token-file).")
	cmd.Flag("api.token", "API token (prefer --api.token-file, or "+envToken+").").Envar(envToken).PlaceHolder("TOKEN").StringVar(&o.token)
	cmd.Flag("kind", "What changed: deploy, rollback, config, feature_flag or scale.").Default("deploy").EnumVar(&o.kind, "deploy", "rollback", "config", "feature_flag", "scale")
	cmd.Flag("status", "How it went: started, succeeded, failed or rolled_back.").Default("succeeded").EnumVar(&o.status, "started", "succeeded", "failed", "rolled_back")
	cmd.Flag("id", "Idempotency key: recording the same id again updates the change (default: derived).").PlaceHolder("KEY").StringVar(&o.c.ID)
	cmd.Flag("service", "Service changed.").Required().PlaceHolder("NAME").StringVar(&o.c.Service)
	cmd.Flag(changeVersionFlag, "Version deployed; --version works too.").PlaceHolder("VERSION").StringVar(&o.c.Version)
	cmd.Flag("commit", "Commit deployed.").PlaceHolder("SHA").StringVar(&o.c.Commit)
	cmd.Flag("environment", "Environment, e.g. production.").PlaceHolder("NAME").StringVar(&o.c.Environment)
	cmd.Flag("rollout", "Fraction reached, e.g. 0.05 for a 5% canary.").Default("1").Float64Var(&o.c.Rollout)
	cmd.Flag("actor", "Who made the change.").PlaceHolder("NAME").StringVar(&o.c.Actor)
	cmd.Flag("link", "Link to the pipeline run or change request.").PlaceHolder("URL").StringVar(&o.c.URL)
	cmd.Flag("description", "What changed.").PlaceHolder("TEXT").StringVar(&o.c.Description)
	cmd.Flag("at", "When (RFC 3339; default now).").PlaceHolder("TIME").StringVar(&o.at)
	cmd.Flag("dry-run", "Print the change that would be recorded; send nothing.").BoolVar(&o.dryRun)
	c.command(cmd, func(ctx context.Context) error { return changeRecord(ctx, o, c.stdout) })
}

// changeVersionFlag is the name change record's --version is declared
// under: kingpin leaves every flag at its zero value, ignoring defaults
// and the environment, when a flag named "version" is given (it takes it
// for the application's --version). changeArgs renames it.
const changeVersionFlag = "change.version"

// changeArgs renames `nines change …`'s --version to --change.version.
func changeArgs(args []string) []string {
	if len(args) == 0 || args[0] != "change" {
		return args
	}
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case a == "--":
			copy(out[i:], args[i:])
			return out
		case a == "--version":
			a = "--" + changeVersionFlag
		case strings.HasPrefix(a, "--version="):
			a = "--" + changeVersionFlag + strings.TrimPrefix(a, "--version")
		}
		out[i] = a
	}
	return out
}

func changeRecord(ctx context.Context, o *changeOptions, stdout io.Writer) error {
	ch := o.c
	ch.Kind, ch.Status = changes.Kind(o.kind), changes.Status(o.status)
	if o.at != "" {
		t, err := time.Parse(time.RFC3339, o.at)
		if err != nil {
			return usageError{fmt.Errorf("--at: %w", err)}
		}
		ch.At = t
	}
	api, err := o.client.client()
	if err != nil {
		return err
	}
	tok := api.token
	if tok == "" {
		tok = o.token
	}
	if err := ch.Normalize(time.Now()); err != nil {
		return usageError{err}
	}
	if o.dryRun {
		fmt.Fprintf(stdout, "would record %s: %s (%s, %s) at %s on %s (dry run: nothing sent)\n",
			ch.ID, ch.Label(), ch.Kind, ch.Status, ch.At.UTC().Format(time.RFC3339), api.base)
		return nil
	}
	if tok == "" {
		return usageError{errors.New("an API token is needed: --api.token-file (or " + envTokenFile + "), or " + envToken)}
	}
	client := &changes.Client{BaseURL: api.base, Token: tok}
	got, err := client.Record(ctx, ch)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "recorded %s: %s (%s, %s)\n", got.ID, got.Label(), got.Kind, got.Status)
	return nil
}
