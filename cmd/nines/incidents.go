package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ninesops/nines/web"
)

// incidentsCmd implements `nines incidents postmortem ID`: the postmortem
// draft of an incident, as Markdown, from a running nines.
func incidentsCmd(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 || args[0] != "postmortem" {
		return usageError{errors.New("usage: nines incidents postmortem [--url URL] ID")}
	}
	fs := newFlagSet("incidents postmortem", stderr)
	var (
		url       = fs.String("url", "http://127.0.0.1:9095", "nines' base URL.")
		tokenFile = fs.String("api.token-file", "", "File holding the API token, sent if given (reading needs none).")
	)
	// The ID comes first or last: `postmortem ID --url U` or
	// `postmortem --url U ID`.
	rest := args[1:]
	if len(rest) == 0 {
		return usageError{errors.New("usage: nines incidents postmortem [--url URL] ID: give an incident ID")}
	}
	var id string
	if !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	} else {
		id, rest = rest[len(rest)-1], rest[:len(rest)-1]
	}
	if err := parseFlags(fs, rest, getenv); err != nil {
		return err
	}
	tok, err := readSecretFile("api.token-file", *tokenFile)
	if err != nil {
		return err
	}
	c := &web.Client{BaseURL: *url, Token: tok}
	md, err := c.Postmortem(ctx, id)
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(stdout, md)
	return err
}
