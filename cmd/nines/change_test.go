package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chat/slacktest"
	"github.com/ninesops/nines/chstore/chtest"
)

// TestChangeSuspectAcceptance: a deploy recorded with the CLI 10 minutes
// before an incident on a service's dependency is the incident's top
// suspect, with a hint people can act on.
func TestChangeSuspectAcceptance(t *testing.T) {
	dir := t.TempDir()
	catalogFile := writeFile(t, dir, "catalog.yml", `
services:
  - {name: frontend, owner: web, dependencies: [checkout]}
  - {name: checkout, owner: payments}
  - {name: search, owner: discovery}
`)
	fake := slacktest.NewServer(t, chatTestToken)
	fake.AddChannel("#operations")
	n := startNines(t, chtest.Database(t), "--catalog.file="+catalogFile,
		"--slack.token-file="+writeFile(t, dir, "slack.token", chatTestToken+"\n"), "--slack.api-url="+fake.APIURL(),
		"--config.file="+writeFile(t, dir, "config.yml", "chat:\n  digest: {cadence: \"off\"}\n"))
	tokenFile := writeFile(t, dir, "token", n.apiToken)
	t.Setenv("NINES_URL", n.base) // the client's address and token from the environment, as a CI job gives them
	t.Setenv("NINES_API_TOKEN_FILE", tokenFile)
	now := time.Now().UTC().Truncate(time.Second)
	record := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := run(context.Background(), append([]string{"change", "record"}, args...), &out, &errb, nil); err != nil {
			t.Fatalf("nines change record %v: %v\n%s", args, err, errb.String())
		}
		return out.String()
	}
	out := record("--service=checkout", "--kind=deploy", "--version=v1.4.2", "--rollout=0.5",
		"--at="+now.Add(-10*time.Minute).Format(time.RFC3339))
	if !strings.Contains(out, "checkout v1.4.2 at 50%") {
		t.Errorf("CLI said %q", out)
	}
	record("--service=search", "--version=v9", "--at="+now.Add(-5*time.Minute).Format(time.RFC3339))
	record("--service=frontend", "--version=v2", "--at="+now.Add(-3*time.Hour).Format(time.RFC3339))

	// An incident opens on frontend now.
	body := fmt.Sprintf(`{"version":"4","status":"firing","receiver":"nines","groupKey":"{}:{alertname=\"FrontendDown\"}",
"alerts":[{"status":"firing","fingerprint":"f1","labels":{"alertname":"FrontendDown","service":"frontend","severity":"critical"},
"annotations":{},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z"}]}`, now.Format(time.RFC3339))
	req, _ := http.NewRequest("POST", n.base+"/api/v1/alerts", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer s3cr3t-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("webhook: %v %v", err, resp)
	}
	resp.Body.Close()
	page := n.incidents()
	if len(page.Incidents) != 1 {
		t.Fatalf("incidents = %+v", page)
	}
	code, b := n.do("GET", "/api/v1/incidents/"+page.Incidents[0].ID+"/suspects", "", nil)
	if code != 200 {
		t.Fatalf("suspects: %d %s", code, b)
	}
	var got struct {
		Suspects []struct {
			Change struct{ Service, Version string }
			Hint   string
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	// search is not a dependency and the frontend deploy is older than
	// the look-back: only the checkout canary is a suspect.
	if len(got.Suspects) != 1 || got.Suspects[0].Change.Service != "checkout" {
		t.Fatalf("suspects = %s", b)
	}
	if want := "deployed 10m before: checkout v1.4.2 at 50% — consider rollback"; got.Suspects[0].Hint != want {
		t.Errorf("hint = %q, want %q", got.Suspects[0].Hint, want)
	}
	// The incident's Slack message says what changed.
	eventually(t, 40*time.Second, "the suspect in the Slack message", func() bool {
		msgs := fake.Messages("#operations")
		return len(msgs) == 1 && strings.Contains(string(msgs[0].Blocks), "deployed 10m before: checkout v1.4.2 at 50% — consider rollback")
	})
	// Recording without the token is refused.
	if code, _ := n.do("POST", "/api/v1/changes", "", map[string]string{"service": "x"}); code != 401 {
		t.Errorf("record without token: %d, want 401", code)
	}
	// A rollback while the incident is open lands on its timeline.
	record("--service=checkout", "--kind=rollback", "--version=v1.4.1", "--actor=alice")
	_, b = n.do("GET", "/api/v1/incidents/"+page.Incidents[0].ID, "", nil)
	if !strings.Contains(string(b), "Rollback: checkout v1.4.1 (rollback) by alice") {
		t.Errorf("timeline lacks the rollback: %s", b)
	}
}
