package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/ninesops/nines/chstore/chtest"
)

// TestStatusPageAccess: with basic auth for the whole server, every page
// needs credentials, while the status listener serves the status page and
// health to anyone, and nothing else.
func TestStatusPageAccess(t *testing.T) {
	dsn := chtest.Database(t)
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	addr, statusAddr := freePort(t), freePort(t)
	args := []string{"serve", "--storage.path=" + t.TempDir(), "--web.listen-address=" + addr, "--clickhouse.dsn=" + dsn, "--log.level=error",
		"--webhook.bearer-token-file=" + writeFile(t, dir, "webhook.token", "s3cr3t-token\n"),
		"--web.config.file=" + writeFile(t, dir, "web.yml", "basic_auth_users:\n  alice: "+string(hash)+"\n"),
		"--web.status-page.listen-address=" + statusAddr,
		"--catalog.file=" + writeFile(t, dir, "catalog.yml", "services:\n  - {name: api, system: shop}\n"),
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() { done <- run(ctx, args, io.Discard, &syncWriter{buf: &stderr}, nil) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("nines: %v", err)
			}
		case <-time.After(40 * time.Second):
			t.Error("nines did not stop")
		}
	})
	get := func(u string, auth bool) (int, string) {
		req, _ := http.NewRequest("GET", u, nil)
		if auth {
			req.SetBasicAuth("alice", "pw")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	eventually(t, 30*time.Second, "nines ready", func() bool {
		code, _ := get("http://"+statusAddr+"/-/ready", false)
		return code == http.StatusOK
	})
	tests := []struct {
		name, url string
		auth      bool
		want      int
		body      string
	}{
		{"overview needs credentials", "http://" + addr + "/", false, 401, ""},
		{"status on the main listener needs them too", "http://" + addr + "/status", false, 401, ""},
		{"overview with credentials", "http://" + addr + "/", true, 200, "Services, worst first"},
		{"status with credentials", "http://" + addr + "/status", true, 200, "shop"},
		{"public status page", "http://" + statusAddr + "/status", false, 200, "shop"},
		{"public status JSON", "http://" + statusAddr + "/api/v1/status", false, 200, `"groups"`},
		{"public style sheet", "http://" + statusAddr + "/static/style.css", false, 200, "--outage"},
		{"public health", "http://" + statusAddr + "/-/healthy", false, 200, "healthy"},
		{"no overview on the status listener", "http://" + statusAddr + "/", false, 404, ""},
		{"no incidents on the status listener", "http://" + statusAddr + "/api/v1/incidents", false, 404, ""},
		{"no services on the status listener", "http://" + statusAddr + "/services/api", false, 404, ""},
		{"no metrics on the status listener", "http://" + statusAddr + "/metrics", false, 404, ""},
	}
	for _, tc := range tests {
		code, body := get(tc.url, tc.auth)
		if code != tc.want || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d %.300s, want %d with %q", tc.name, code, body, tc.want, tc.body)
		}
	}
}
