package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client reads pages' JSON twins from a running nines, for the command
// line.
type Client struct {
	BaseURL string // e.g. http://nines:9095
	Token   string // nines' API token, sent when set (reads do not need it)
	HTTP    *http.Client
}

// Postmortem returns an incident's postmortem draft as Markdown.
func (c *Client) Postmortem(ctx context.Context, id string) (string, error) {
	u := strings.TrimRight(c.BaseURL, "/") + "/api/v1/incidents/" + url.PathEscape(id) + "/postmortem?format=markdown"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("postmortem: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("postmortem: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return "", fmt.Errorf("postmortem of %s: nines answered %d: %s", id, resp.StatusCode, e.Error)
		}
		return "", fmt.Errorf("postmortem of %s: nines answered %d", id, resp.StatusCode)
	}
	return string(b), nil
}
