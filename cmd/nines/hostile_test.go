package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chstore/chtest"
)

// TestHostileRun is the short hostile run of `make test`: inputs a
// careless or hostile sender makes, each checked against the promises
// (answered 2xx means stored; bad input gets a 4xx that says why; nines
// stays up and takes the next notification). The longer cases have tests
// of their own: TestBigNotificationsAreStored (huge keys, storms of new
// services), TestBadInputNeverHurts (times the store cannot hold, time
// filters), TestServeWaitsForClickHouse, the spool's damaged-file tests.
func TestHostileRun(t *testing.T) {
	n := startNines(t, chtest.Database(t))
	addr := strings.TrimPrefix(n.base, "http://")
	start := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)
	post := n.postAlerts
	// raw sends a request with the headers given and streams size bytes
	// of body, whatever Content-Length says, and returns the status line.
	raw := func(contentLength string, size int) string {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		hdr := "POST /api/v1/alerts HTTP/1.1\r\nHost: nines\r\nAuthorization: Bearer " + webhookToken +
			"\r\nContent-Type: application/json\r\n"
		if contentLength == "" {
			hdr += "Transfer-Encoding: chunked\r\n\r\n"
		} else {
			hdr += "Content-Length: " + contentLength + "\r\n\r\n"
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			if _, err := io.WriteString(c, hdr); err != nil {
				return
			}
			// One long string: a body as large as it claims, not one
			// that fails early for being nested too deep.
			chunk := bytes.Repeat([]byte("x"), 1<<16)
			copy(chunk, `{"receiver":"`)
			for sent := 0; sent < size; sent += len(chunk) {
				var err error
				if contentLength == "" {
					_, err = fmt.Fprintf(c, "%x\r\n%s\r\n", len(chunk), chunk)
				} else {
					_, err = c.Write(chunk)
				}
				if err != nil {
					return // nines closed the connection: fine
				}
				chunk = bytes.Repeat([]byte("x"), 1<<16)
			}
		}()
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		<-done
		if err != nil {
			return "no answer: " + err.Error()
		}
		return strings.TrimSpace(line)
	}

	t.Run("64 MB body with a lying Content-Length", func(t *testing.T) {
		const size = 64 << 20
		tests := []struct {
			name, contentLength, want string
		}{
			{"claims 1 KiB", "1024", "400"},
			{"claims 64 MB", fmt.Sprint(size), "413"},
			{"claims 10 bytes", "10", "400"},
			{"chunked, no length", "", "413"},
		}
		for _, tc := range tests {
			if got := raw(tc.contentLength, size); !strings.Contains(got, " "+tc.want+" ") {
				t.Errorf("%s: %q, want %s", tc.name, got, tc.want)
			}
		}
	})

	t.Run("the same fingerprint in two groups", func(t *testing.T) {
		// Two routes of one Alertmanager group the same alert: one
		// incident per group, each holding it.
		for _, g := range []string{"a", "b"} {
			code, b := post(webhookNote(`{}/`+g+`:{alertname="Shared"}`,
				inputAlert("shared-fp", map[string]string{"alertname": "Shared", "service": "shared"}, start, "0001-01-01T00:00:00Z", "firing")))
			if code != 200 {
				t.Fatalf("group %s: %d %s", g, code, b)
			}
		}
		incs := listService(t, n, "shared")
		if len(incs) != 2 {
			t.Fatalf("incidents %+v, want one per group", incs)
		}
		for _, inc := range incs {
			if got := getIncident(t, n, inc.ID); len(got.Alerts) != 1 {
				t.Errorf("incident of %s holds %d alerts, want the shared one", got.GroupKey, len(got.Alerts))
			}
		}
	})

	t.Run("clock skew between Alertmanagers", func(t *testing.T) {
		// Two Alertmanagers disagree on when the alert started by a
		// minute: each copy is stored, in one incident of the group.
		for i, at := range []time.Time{time.Now().Add(-10 * time.Minute), time.Now().Add(-9 * time.Minute)} {
			code, b := post(webhookNote(`{}:{alertname="Skew"}`,
				inputAlert("skew", map[string]string{"alertname": "Skew", "service": "skew"}, at.UTC().Format(time.RFC3339Nano), "0001-01-01T00:00:00Z", "firing")))
			if code != 200 {
				t.Fatalf("copy %d: %d %s", i, code, b)
			}
		}
		if incs := listService(t, n, "skew"); len(incs) != 1 {
			t.Errorf("incidents %+v, want one", incs)
		}
	})

	// nines is still up and takes the next notification.
	code, b := post(webhookNote(`{}:{alertname="After"}`,
		inputAlert("after", map[string]string{"alertname": "After", "service": "after"}, start, "0001-01-01T00:00:00Z", "firing")))
	if code != 200 || len(listService(t, n, "after")) != 1 {
		t.Errorf("after the hostile run: %d %s", code, b)
	}
}
