package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
)

// postAlerts posts a webhook body with the webhook's credentials and
// returns the status and body of the answer (0 and the error if none).
func (n *nines) postAlerts(body []byte) (int, string) {
	req, _ := http.NewRequest("POST", n.base+"/api/v1/alerts", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+webhookToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBigNotificationsAreStored posts what broke ClickHouse's query size
// limit when keys were bound into the query text: a 300 KiB group key,
// and 12 concurrent notifications of 1,000 new services each, which the
// store's batching merges into one flush. Every one is answered 200 and
// stored.
func TestBigNotificationsAreStored(t *testing.T) {
	n := startNines(t, chtest.Database(t))
	start := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	post := n.postAlerts

	hugeKey := `{}:{alertname="Huge",x="` + strings.Repeat("k", 300<<10) + `"}`
	if code, b := post(webhookNote(hugeKey, inputAlert("huge", map[string]string{"alertname": "Huge", "service": "hugekey"}, start, "0001-01-01T00:00:00Z", "firing"))); code != 200 {
		t.Fatalf("300 KiB group key: %d %.300s", code, b)
	}
	if incs := listService(t, n, "hugekey"); len(incs) != 1 {
		t.Errorf("300 KiB group key: %d incidents, want 1", len(incs))
	}

	const notes, services = 12, 1000
	var wg sync.WaitGroup
	errs := make(chan error, notes)
	for i := range notes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var alerts []map[string]any
			for j := range services {
				alerts = append(alerts, inputAlert(fmt.Sprintf("storm-%02d-%04d", i, j),
					map[string]string{"alertname": "Storm", "service": fmt.Sprintf("storm-%02d-%04d", i, j)}, start, "0001-01-01T00:00:00Z", "firing"))
			}
			if code, b := post(webhookNote(fmt.Sprintf(`{}:{alertname="Storm",batch="%d"}`, i), alerts...)); code != 200 {
				errs <- fmt.Errorf("notification %d: %d %.300s", i, code, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, svc := range []string{"storm-00-0000", "storm-11-0999"} {
		if incs := listService(t, n, svc); len(incs) != 1 {
			t.Errorf("service %s: %d incidents, want 1", svc, len(incs))
		}
	}
}

// TestLogLinesAreBounded logs values as large as a notification may
// carry (group keys, label values, errors quoting them): every line stays
// short, in both formats.
func TestLogLinesAreBounded(t *testing.T) {
	huge := strings.Repeat("é", 1<<19) // 1 MiB
	for _, format := range []string{"logfmt", "json"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			c := newCLI(io.Discard, &buf, nil)
			if _, err := c.parse([]string{"version", "--log.format=" + format}); err != nil {
				t.Fatal(err)
			}
			log := c.logger()
			log.Error("webhook not stored", "group_key", huge, "err", fmt.Errorf("look up: %w", errors.New(huge)))
			log.With("group_key", huge).Warn("spooling", "alerts", 3)
			sc := bufio.NewScanner(&buf)
			sc.Buffer(nil, 8<<20)
			lines := 0
			for sc.Scan() {
				lines++
				if len(sc.Text()) > 4096 {
					t.Errorf("log line of %d bytes: %.200s…", len(sc.Text()), sc.Text())
				}
				if !strings.Contains(sc.Text(), "(1048576 bytes)") {
					t.Errorf("log line does not say how long the value was: %.200s…", sc.Text())
				}
			}
			if lines != 2 {
				t.Errorf("%d log lines, want 2", lines)
			}
		})
	}
}
