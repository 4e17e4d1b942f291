package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ninesops/nines/incidents"
	"github.com/ninesops/nines/web"
)

// clientFlags say where a running nines is: the commands that are clients
// of its API (incidents, change record).
type clientFlags struct {
	url       string
	tokenFile string
}

// defaultServerURL is nines serve's default address, seen from its host.
const defaultServerURL = "http://127.0.0.1:9095"

func (f *clientFlags) register(fs flagger, tokenHelp string) {
	fs.Flag("server.url", "nines' base URL.").Default(defaultServerURL).Envar(envURL).StringVar(&f.url)
	fs.Flag("url", "Old name of --server.url.").Hidden().StringVar(&f.url)
	fs.Flag("api.token-file", tokenHelp).Envar(envTokenFile).PlaceHolder("FILE").StringVar(&f.tokenFile)
}

// apiClient calls the incident API of a running nines.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func (f *clientFlags) client() (*apiClient, error) {
	if _, err := url.ParseRequestURI(f.url); err != nil || !strings.HasPrefix(f.url, "http") {
		return nil, usageError{fmt.Errorf("--server.url: want an http(s) URL, got %q", f.url)}
	}
	tok, err := readSecretFile("api.token-file", f.tokenFile)
	if err != nil {
		return nil, usageError{err}
	}
	return &apiClient{base: strings.TrimRight(f.url, "/"), token: tok, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// do sends a request with a JSON body (when in is not nil) and decodes a
// JSON answer into out; an answer other than 200 is an error that quotes
// nines' own message.
func (c *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: nines answered %d: %s", method, path, resp.StatusCode, e.Error)
		}
		return fmt.Errorf("%s %s: nines answered %d", method, path, resp.StatusCode)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// incidentList is GET /api/v1/incidents' answer.
type incidentList struct {
	Incidents  []incidents.IncidentJSON `json:"incidents"`
	NextCursor string                   `json:"next_cursor"`
}

// addIncidents declares `nines incidents list|show|ack|resolve|note|postmortem`.
func (c *cli) addIncidents() {
	parent := c.app.Command("incidents", "Incidents of a running nines, through its API (--server.url or "+envURL+").")
	const readHelp = "File holding the API token, sent if given (reading needs none)."
	const writeHelp = "File holding the API token (nines serve's --api.token-file); acting on an incident needs it."

	var (
		list, show, postmortem clientFlags
		service, state, since  string
		limit                  int
		listJSON, showJSON     bool
		showID, postmortemID   string
		listCmd                = parent.Command("list", "List incidents, newest first.")
		showCmd                = parent.Command("show", "Show an incident with its alerts and timeline.")
		postmortemCmd          = parent.Command("postmortem", "An incident's postmortem draft, as Markdown.")
	)
	list.register(listCmd, readHelp)
	listCmd.Flag("service", "Only incidents of this service.").PlaceHolder("NAME").StringVar(&service)
	listCmd.Flag("state", "Only incidents in this state: firing, acknowledged or resolved.").PlaceHolder("STATE").EnumVar(&state, "firing", "acknowledged", "resolved")
	listCmd.Flag("since", "Only incidents that started at or after this time (RFC 3339).").PlaceHolder("TIME").StringVar(&since)
	listCmd.Flag("limit", "Most incidents listed (1 to 1000).").Default("50").IntVar(&limit)
	listCmd.Flag("json", "Print the API's JSON instead of a table.").BoolVar(&listJSON)
	c.command(listCmd, func(ctx context.Context) error {
		if limit < 1 || limit > 1000 {
			return usageError{fmt.Errorf("--limit: want 1 to 1000, got %d", limit)}
		}
		if since != "" {
			if _, err := time.Parse(time.RFC3339, since); err != nil {
				return usageError{fmt.Errorf("--since: want an RFC 3339 time, got %q", since)}
			}
		}
		api, err := list.client()
		if err != nil {
			return err
		}
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		for k, v := range map[string]string{"service": service, "state": state, "since": since} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var out incidentList
		if err := api.do(ctx, http.MethodGet, "/api/v1/incidents?"+q.Encode(), nil, &out); err != nil {
			return err
		}
		if listJSON {
			return writeJSON(c.stdout, out)
		}
		return printIncidentList(c.stdout, out.Incidents)
	})

	show.register(showCmd, readHelp)
	showCmd.Arg("id", "The incident's ID (inc-…).").Required().StringVar(&showID)
	showCmd.Flag("json", "Print the API's JSON instead of text.").BoolVar(&showJSON)
	c.command(showCmd, func(ctx context.Context) error {
		api, err := show.client()
		if err != nil {
			return err
		}
		var inc incidents.IncidentJSON
		if err := api.do(ctx, http.MethodGet, "/api/v1/incidents/"+url.PathEscape(showID), nil, &inc); err != nil {
			return err
		}
		if showJSON {
			return writeJSON(c.stdout, inc)
		}
		return printIncident(c.stdout, inc)
	})

	for _, a := range []struct{ name, help, path, text string }{
		{"ack", "Acknowledge an incident.", "ack", ""},
		{"resolve", "Resolve an incident by hand.", "resolve", ""},
		{"note", "Add a note to an incident's timeline.", "notes", "The note."},
	} {
		var (
			cf         clientFlags
			id, text   = new(string), new(string)
			actor      = new(string)
			cmd        = parent.Command(a.name, a.help)
			pathSuffix = a.path
		)
		cf.register(cmd, writeHelp)
		cmd.Arg("id", "The incident's ID (inc-…).").Required().StringVar(id)
		if a.text != "" {
			cmd.Arg("text", a.text).Required().StringVar(text)
		}
		cmd.Flag("actor", "Who acts, as the timeline shows it (default: api).").PlaceHolder("NAME").StringVar(actor)
		c.command(cmd, func(ctx context.Context) error {
			api, err := cf.client()
			if err != nil {
				return err
			}
			if api.token == "" {
				return usageError{errors.New("an API token is needed: --api.token-file or " + envTokenFile)}
			}
			body := map[string]string{"actor": *actor, "text": *text}
			var inc incidents.IncidentJSON
			if err := api.do(ctx, http.MethodPost, "/api/v1/incidents/"+url.PathEscape(*id)+"/"+pathSuffix, body, &inc); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "%s: %s, %s\n", inc.ID, inc.State, inc.Title)
			return nil
		})
	}

	postmortem.register(postmortemCmd, readHelp)
	postmortemCmd.Arg("id", "The incident's ID (inc-…).").Required().StringVar(&postmortemID)
	c.command(postmortemCmd, func(ctx context.Context) error {
		api, err := postmortem.client()
		if err != nil {
			return err
		}
		wc := &web.Client{BaseURL: api.base, Token: api.token, HTTP: api.http}
		md, err := wc.Postmortem(ctx, postmortemID)
		if err != nil {
			return err
		}
		_, err = fmt.Fprint(c.stdout, md)
		return err
	})
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printIncidentList writes a line per incident.
func printIncidentList(w io.Writer, incs []incidents.IncidentJSON) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tIMPACT\tSERVICE\tSTARTED\tDURATION\tTITLE")
	for _, inc := range incs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", inc.ID, inc.State, inc.Impact, inc.Service,
			timeOrDash(inc.StartedAt), time.Duration(inc.DurationSeconds)*time.Second, cut(inc.Title, 80))
	}
	return tw.Flush()
}

// printIncident writes an incident, its alerts and its timeline.
func printIncident(w io.Writer, inc incidents.IncidentJSON) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"ID", inc.ID}, {"Title", inc.Title}, {"Service", inc.Service}, {"State", inc.State}, {"Impact", inc.Impact},
		{"Started", timeOrDash(inc.StartedAt)}, {"Acknowledged", timeOrDash(inc.AcknowledgedAt) + by(inc.AcknowledgedBy)},
		{"Resolved", timeOrDash(inc.ResolvedAt) + by(inc.ResolvedBy)},
		{"Duration", (time.Duration(inc.DurationSeconds) * time.Second).String()}, {"Runbook", inc.RunbookURL},
	} {
		if kv[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nAlerts (%d):\n", len(inc.Alerts))
	for _, a := range inc.Alerts {
		fmt.Fprintf(w, "  %s  %s  %s  since %s\n", a.Fingerprint, a.Status, a.Labels["alertname"], timeOrDash(a.StartsAt))
	}
	fmt.Fprintf(w, "\nTimeline (%d):\n", len(inc.Timeline))
	for _, e := range inc.Timeline {
		fmt.Fprintf(w, "  %s  %-14s %s  %s\n", e.At.UTC().Format(time.RFC3339), e.Kind, e.Actor, cut(e.Text, 200))
	}
	return nil
}

func timeOrDash(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func by(who string) string {
	if who == "" {
		return ""
	}
	return " by " + who
}
