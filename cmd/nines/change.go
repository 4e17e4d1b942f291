package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ninesops/nines/changes"
)

// changeCmd implements `nines change record …`, the one line a CI/CD job
// adds to tell nines what it deployed.
func changeCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "record" {
		return usageError{errors.New("usage: nines change record --service S --kind deploy --version V [flags]")}
	}
	fs := newFlagSet("change record", stderr)
	var (
		c         changes.Change
		at        string
		url       = fs.String("url", "http://127.0.0.1:9095", "nines' base URL.")
		token     = fs.String("api.token", "", "API token (prefer --api.token-file or NINES_API_TOKEN).")
		tokenFile = fs.String("api.token-file", "", "File holding the API token.")
		kind      = fs.String("kind", "deploy", "deploy, rollback, config, feature_flag or scale.")
		status    = fs.String("status", "succeeded", "started, succeeded, failed or rolled_back.")
	)
	fs.StringVar(&c.ID, "id", "", "Idempotency key: recording the same id again updates the change (default: derived).")
	fs.StringVar(&c.Service, "service", "", "Service changed (required).")
	fs.StringVar(&c.Version, "version", "", "Version deployed.")
	fs.StringVar(&c.Commit, "commit", "", "Commit deployed.")
	fs.StringVar(&c.Environment, "environment", "", "Environment, e.g. production.")
	fs.Float64Var(&c.Rollout, "rollout", 1, "Fraction reached, e.g. 0.05 for a 5% canary.")
	fs.StringVar(&c.Actor, "actor", "", "Who made the change.")
	fs.StringVar(&c.URL, "link", "", "Link to the pipeline run or change request.")
	fs.StringVar(&c.Description, "description", "", "What changed.")
	fs.StringVar(&at, "at", "", "When (RFC 3339; default now).")
	if err := parseFlags(fs, args[1:], getenv); err != nil {
		return err
	}
	c.Kind, c.Status = changes.Kind(*kind), changes.Status(*status)
	if at != "" {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return usageError{fmt.Errorf("--at: %w", err)}
		}
		c.At = t
	}
	tok := *token
	if *tokenFile != "" {
		var err error
		if tok, err = readSecretFile("api.token-file", *tokenFile); err != nil {
			return err
		}
	}
	if tok == "" {
		return usageError{errors.New("an API token is needed: --api.token-file, or NINES_API_TOKEN")}
	}
	if err := c.Normalize(time.Now()); err != nil {
		return usageError{err}
	}
	client := &changes.Client{BaseURL: *url, Token: tok}
	got, err := client.Record(ctx, c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "recorded %s: %s (%s, %s)\n", got.ID, got.Label(), got.Kind, got.Status)
	return nil
}
