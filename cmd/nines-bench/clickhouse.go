package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// chHTTP runs plain queries on ClickHouse's HTTP interface. The bench uses
// it for system tables and clean-up, so that only chstore
// imports the ClickHouse driver.
type chHTTP struct {
	base   string // http://host:port
	client *http.Client
}

func newCHHTTP(addr string) *chHTTP {
	return &chHTTP{base: "http://" + addr, client: &http.Client{Timeout: 30 * time.Second}}
}

func (c *chHTTP) query(ctx context.Context, q string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/", strings.NewReader(q))
	if err != nil {
		return "", err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("clickhouse: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("clickhouse: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}

func (c *chHTTP) dropDatabase(ctx context.Context, db string) error {
	// A busy server can take a while to drop a database whose parts are
	// being merged.
	slow := &chHTTP{base: c.base, client: &http.Client{Timeout: 2 * time.Minute}}
	_, err := slow.query(ctx, "DROP DATABASE IF EXISTS `"+db+"`")
	return err
}

// probe measures ClickHouse's round trip for SELECT 1 every interval while
// a phase runs: how responsive the server is, whatever nines asks of it.
type probe struct {
	stop chan struct{}
	done chan struct{}
	lat  []time.Duration
}

func startProbe(ctx context.Context, c *chHTTP, every time.Duration) *probe {
	p := &probe{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			start := time.Now()
			if _, err := c.query(ctx, "SELECT 1"); err == nil {
				p.lat = append(p.lat, time.Since(start))
			}
			select {
			case <-t.C:
			case <-p.stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

// result stops the probe and returns its round trips, sorted.
func (p *probe) result() []time.Duration {
	close(p.stop)
	<-p.done
	slices.Sort(p.lat)
	return p.lat
}
