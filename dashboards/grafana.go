package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/grafana-tools/sdk"
)

// Grafana's HTTP API, as far as push needs it. Requests are built here
// (the SDK's client cannot send folderUid or a message, hides status codes
// in error strings and can panic on some error bodies, see README.md);
// responses decode into the SDK's types where those match Grafana's.

// Defaults for ClientOptions and PushOptions.
const (
	DefaultFolderUID   = "nines"
	DefaultFolderTitle = "nines"
	DefaultTimeout     = 30 * time.Second
	defaultMessage     = "nines dashboards push"
	// maxResponse bounds what is read of a Grafana response.
	maxResponse = 32 << 20
)

// ClientOptions configure NewClient.
type ClientOptions struct {
	// URL is Grafana's root URL, e.g. https://grafana.example.com or
	// http://localhost:3000/grafana behind a sub-path.
	URL string
	// Token is a service account token (or API key), sent as a bearer
	// token.
	Token string
	// HTTPClient sends the requests; nil means one with DefaultTimeout.
	HTTPClient *http.Client
	// UserAgent is sent with every request ("nines").
	UserAgent string
}

// Client publishes dashboards through Grafana's HTTP API.
type Client struct {
	base      *url.URL
	token     string
	http      *http.Client
	userAgent string
}

// NewClient returns a client for the Grafana at opts.URL.
func NewClient(opts ClientOptions) (*Client, error) {
	u, err := url.Parse(opts.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("grafana url %q: want an absolute http(s) URL", opts.URL)
	}
	if opts.Token == "" {
		return nil, errors.New("grafana token is required")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, token: opts.Token, http: opts.HTTPClient, userAgent: opts.UserAgent}
	if c.http == nil {
		c.http = &http.Client{Timeout: DefaultTimeout}
	}
	if c.userAgent == "" {
		c.userAgent = "nines"
	}
	return c, nil
}

// APIError is an error answer of Grafana's API.
type APIError struct {
	Method, Path string
	StatusCode   int
	// Status is Grafana's machine-readable status, when it gives one:
	// "version-mismatch", "name-exists", "plugin-dashboard", "not-found".
	Status  string
	Message string
}

// Error says what failed and what to do about it.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.Path, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Status != "" {
		fmt.Fprintf(&b, " (%s)", e.Status)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if h := e.hint(); h != "" {
		fmt.Fprintf(&b, ": %s", h)
	}
	return b.String()
}

func (e *APIError) hint() string {
	switch e.StatusCode {
	case http.StatusUnauthorized:
		return "Grafana rejected the token: check it is a valid service account token of this Grafana"
	case http.StatusForbidden:
		return "the token may not do this: its service account needs the Editor role (or dashboards:write and folders:create)"
	case http.StatusNotFound:
		return "not found: check the Grafana URL (its root URL, with the sub-path if it has one)"
	case http.StatusConflict:
		return "another folder has this title: push to that folder's uid, or rename it"
	case http.StatusPreconditionFailed:
		switch e.Status {
		case "version-mismatch":
			return "the dashboard changed in Grafana meanwhile: push again"
		case "name-exists":
			return "another dashboard in the folder has this title: rename or delete it"
		case "plugin-dashboard":
			return "the dashboard belongs to a plugin"
		}
	case http.StatusBadRequest:
		if strings.Contains(strings.ToLower(e.Message), "provisioned") {
			return "Grafana provisions this dashboard from a file: change the file, or push to another folder"
		}
		return "Grafana rejected the request"
	}
	if e.StatusCode >= 500 {
		return "Grafana failed: try again, or look at its logs"
	}
	return ""
}

// call sends a request with a JSON body (if in is not nil) and decodes a
// 2xx JSON answer into out (if not nil). Other answers become *APIError.
func (c *Client) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// The full path, sub-path included, helps find a wrong URL.
		return apiError(method, u.Path, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: %d but not the JSON Grafana sends (%s): %w", method, path, resp.StatusCode, snippet(data), err)
	}
	return nil
}

// apiError reads Grafana's error body: {"message": …, "status": …}, or
// anything else (a proxy's HTML page) as text.
func apiError(method, path string, code int, data []byte) *APIError {
	e := &APIError{Method: method, Path: path, StatusCode: code}
	var body struct {
		Message string `json:"message"`
		Status  string `json:"status"`
	}
	if json.Unmarshal(data, &body) == nil {
		e.Message, e.Status = body.Message, body.Status
	} else {
		e.Message = snippet(data)
	}
	return e
}

// snippet is the start of a body, on one line, for error messages.
func snippet(data []byte) string {
	s := strings.Join(strings.Fields(string(data)), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

func isStatus(err error, code int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.StatusCode == code
}

// TitleTakenError is the refusal to create a dashboard whose title
// another dashboard in the folder has: saving it would make Grafana
// replace that dashboard (what its API answers 412 name-exists for).
type TitleTakenError struct {
	Title, OtherUID, FolderUID string
}

// Error says which dashboard is in the way.
func (e *TitleTakenError) Error() string {
	return fmt.Sprintf("name-exists: dashboard %q (uid %s) in folder %s has the same title: rename or delete it", e.Title, e.OtherUID, e.FolderUID)
}

// Health asks Grafana whether it is up and which version it runs.
func (c *Client) Health(ctx context.Context) (sdk.HealthResponse, error) {
	var h sdk.HealthResponse
	if err := c.call(ctx, http.MethodGet, "/api/health", nil, nil, &h); err != nil {
		return h, fmt.Errorf("grafana health: %w", err)
	}
	if h.Database != "ok" {
		return h, fmt.Errorf("grafana health: database %q, want ok", h.Database)
	}
	return h, nil
}

// EnsureFolder makes sure the folder with uid exists, creating it with
// title if not. It reports whether it created it.
func (c *Client) EnsureFolder(ctx context.Context, uid, title string) (bool, error) {
	var f sdk.Folder
	err := c.call(ctx, http.MethodGet, "/api/folders/"+url.PathEscape(uid), nil, nil, &f)
	if err == nil {
		return false, nil
	}
	if !isStatus(err, http.StatusNotFound) {
		return false, fmt.Errorf("look up folder %s: %w", uid, err)
	}
	in := struct {
		UID   string `json:"uid"`
		Title string `json:"title"`
	}{uid, title}
	if err := c.call(ctx, http.MethodPost, "/api/folders", nil, in, &f); err != nil {
		return false, fmt.Errorf("create folder %s: %w", uid, err)
	}
	return true, nil
}

// storedDashboard is Grafana's answer to GET /api/dashboards/uid/{uid}.
// The SDK's BoardProperties lacks folderUid and provisioned.
type storedDashboard struct {
	Dashboard json.RawMessage `json:"dashboard"`
	Meta      struct {
		FolderUID   string `json:"folderUid"`
		Version     int    `json:"version"`
		URL         string `json:"url"`
		Provisioned bool   `json:"provisioned"`
	} `json:"meta"`
}

// dashboard fetches a dashboard by UID; nil when there is none.
func (c *Client) dashboard(ctx context.Context, uid string) (*storedDashboard, error) {
	var d storedDashboard
	err := c.call(ctx, http.MethodGet, "/api/dashboards/uid/"+url.PathEscape(uid), nil, nil, &d)
	if isStatus(err, http.StatusNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// search finds dashboards by title in a folder.
func (c *Client) search(ctx context.Context, folderUID, title string) ([]sdk.FoundBoard, error) {
	q := url.Values{"type": {"dash-db"}, "query": {title}, "folderUIDs": {folderUID}}
	var found []sdk.FoundBoard
	if err := c.call(ctx, http.MethodGet, "/api/search", q, nil, &found); err != nil {
		return nil, err
	}
	return found, nil
}

// saveDashboard is the body of POST /api/dashboards/db. The SDK's
// SetDashboardParams has neither folderUid nor message.
type saveDashboard struct {
	Dashboard json.RawMessage `json:"dashboard"`
	FolderUID string          `json:"folderUid"`
	Overwrite bool            `json:"overwrite"`
	Message   string          `json:"message,omitempty"`
}

// PushOptions configure Push.
type PushOptions struct {
	// FolderUID and FolderTitle name the folder that holds the dashboards
	// (DefaultFolderUID, DefaultFolderTitle). It is created if missing.
	FolderUID   string
	FolderTitle string
	// Message is the version message Grafana keeps with each change.
	Message string
}

// Action is what push did with a dashboard.
type Action string

// Actions.
const (
	Created   Action = "created"
	Updated   Action = "updated"
	Unchanged Action = "unchanged"
	Failed    Action = "failed"
)

// Result is the outcome for one dashboard.
type Result struct {
	UID, Title string
	Action     Action
	Version    int    // Grafana's version after the push; 0 if unknown
	URL        string // path in Grafana, e.g. /d/uid/slug
	Err        error  // for Failed
}

// Push publishes dashboards into a folder (created if missing): a
// dashboard that Grafana does not have is created, one that differs (or
// sits in another folder) is overwritten by UID, one that is the same is
// left alone. It returns one Result per file, in order. The error is
// non-nil when Grafana cannot be reached or the folder cannot be had
// (then results are nil), or when any dashboard failed (then it joins
// their errors).
func (c *Client) Push(ctx context.Context, files []File, opts PushOptions) ([]Result, error) {
	if opts.FolderUID == "" {
		opts.FolderUID = DefaultFolderUID
	}
	if opts.FolderTitle == "" {
		opts.FolderTitle = DefaultFolderTitle
	}
	if opts.Message == "" {
		opts.Message = defaultMessage
	}
	if !validUID(opts.FolderUID) {
		return nil, fmt.Errorf("push dashboards: folder uid %q: want 1-40 letters, digits, '-' or '_'", opts.FolderUID)
	}
	if _, err := c.Health(ctx); err != nil {
		return nil, fmt.Errorf("push dashboards: %w", err)
	}
	if _, err := c.EnsureFolder(ctx, opts.FolderUID, opts.FolderTitle); err != nil {
		return nil, fmt.Errorf("push dashboards: %w", err)
	}
	results := make([]Result, 0, len(files))
	var errs []error
	for _, f := range files {
		r := c.pushOne(ctx, f, opts)
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("dashboard %s (%s): %w", f.UID, f.Name, r.Err))
		}
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) > 0 {
		return results, fmt.Errorf("push dashboards: %d of %d failed: %w", len(errs), len(files), errors.Join(errs...))
	}
	return results, nil
}

// pushOne publishes one dashboard.
func (c *Client) pushOne(ctx context.Context, f File, opts PushOptions) Result {
	r := Result{UID: f.UID, Title: f.Title, Action: Failed}
	var ours map[string]any
	if err := json.Unmarshal(f.Data, &ours); err != nil {
		r.Err = fmt.Errorf("not JSON: %w", err)
		return r
	}
	if uid, _ := ours["uid"].(string); uid != f.UID || !validUID(uid) {
		r.Err = fmt.Errorf("uid %q in the file, want %q", ours["uid"], f.UID)
		return r
	}
	existing, err := c.dashboard(ctx, f.UID)
	if err != nil {
		r.Err = err
		return r
	}
	if existing != nil {
		r.Version, r.URL = existing.Meta.Version, existing.Meta.URL
		if existing.Meta.FolderUID == opts.FolderUID && sameDashboard(existing.Dashboard, ours) {
			r.Action = Unchanged
			return r
		}
	} else {
		// With overwrite, Grafana would replace a dashboard of the same
		// title in the folder, taking its UID: refuse instead, and say so.
		found, err := c.search(ctx, opts.FolderUID, f.Title)
		if err != nil {
			r.Err = err
			return r
		}
		for _, fb := range found {
			if fb.Title == f.Title && fb.UID != f.UID {
				r.Err = &TitleTakenError{Title: fb.Title, OtherUID: fb.UID, FolderUID: opts.FolderUID}
				return r
			}
		}
	}
	// Grafana assigns IDs and versions; the generated file has id null.
	delete(ours, "version")
	ours["id"] = nil
	body, err := json.Marshal(ours)
	if err != nil {
		r.Err = fmt.Errorf("encode: %w", err)
		return r
	}
	var saved sdk.StatusMessage
	err = c.call(ctx, http.MethodPost, "/api/dashboards/db", nil,
		saveDashboard{Dashboard: body, FolderUID: opts.FolderUID, Overwrite: true, Message: opts.Message}, &saved)
	if err != nil {
		r.Err = err
		return r
	}
	r.Action = Created
	if existing != nil {
		r.Action = Updated
	}
	if saved.Version != nil {
		r.Version = *saved.Version
	}
	if saved.URL != nil {
		r.URL = *saved.URL
	}
	return r
}

// sameDashboard reports whether Grafana's copy of a dashboard is ours:
// equal JSON but for the id and version Grafana assigns.
func sameDashboard(stored json.RawMessage, ours map[string]any) bool {
	var theirs map[string]any
	if json.Unmarshal(stored, &theirs) != nil {
		return false
	}
	a, b := make(map[string]any, len(theirs)), make(map[string]any, len(ours))
	for k, v := range theirs {
		a[k] = v
	}
	for k, v := range ours {
		b[k] = v
	}
	for _, m := range []map[string]any{a, b} {
		delete(m, "id")
		delete(m, "version")
	}
	return reflect.DeepEqual(a, b)
}
