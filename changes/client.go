package changes

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Client records changes in a running nines, for CI/CD pipelines.
type Client struct {
	BaseURL string // e.g. http://nines:9095
	Token   string // nines' API token
	HTTP    *http.Client
}

// Record posts a change and returns it as nines stored it.
func (c *Client) Record(ctx context.Context, ch Change) (Change, error) {
	body, err := json.Marshal(ch)
	if err != nil {
		return ch, fmt.Errorf("encode change: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/api/v1/changes", bytes.NewReader(body))
	if err != nil {
		return ch, fmt.Errorf("record change: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.Token)
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return ch, fmt.Errorf("record change: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return ch, fmt.Errorf("record change: nines answered %d: %s", resp.StatusCode, e.Error)
		}
		return ch, fmt.Errorf("record change: nines answered %d", resp.StatusCode)
	}
	var out Change
	if err := json.Unmarshal(b, &out); err != nil {
		return ch, fmt.Errorf("record change: decode answer: %w", err)
	}
	return out, nil
}
