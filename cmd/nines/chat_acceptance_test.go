package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/chat/slacktest"
	"github.com/ninesops/nines/chstore/chtest"
)

const (
	chatTestToken   = "xoxb-acceptance"
	chatTestSecret  = "8f742231b10e8888abcd99yyyzzz85a5"
	chatTestCatalog = `
squads:
  - {name: payments, channel: "#payments-ops"}
services:
  - {name: checkout, owner: payments, channel: "#checkout", slo_target: 99.9}
`
	chatTestConfig = `
chat:
  operations_channel: "#operations"
  digest: {cadence: "off"}
`
)

func slackSign(body string, now time.Time) (ts, sig string) {
	ts = fmt.Sprint(now.Unix())
	mac := hmac.New(sha256.New, []byte(chatTestSecret))
	mac.Write([]byte("v0:" + ts + ":" + body))
	return ts, "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// TestAcceptanceSlack: alerts pushed into a real Alertmanager produce one
// message in #operations and one in the owner's channel, thread replies
// for each timeline event and an in-place update on resolve; a signed
// button press acks the incident; `nines report --post` posts the digest.
func TestAcceptanceSlack(t *testing.T) {
	dsn := chtest.Database(t)
	alertmanagerBinary(t)
	fake := slacktest.NewServer(t, chatTestToken)
	for _, ch := range []string{"#operations", "#checkout", "#payments-ops"} {
		fake.AddChannel(ch)
	}
	dir := t.TempDir()
	slackArgs := []string{
		"--slack.token-file=" + writeFile(t, dir, "slack.token", chatTestToken+"\n"),
		"--slack.api-url=" + fake.APIURL(),
		"--catalog.file=" + writeFile(t, dir, "catalog.yml", chatTestCatalog),
		"--config.file=" + writeFile(t, dir, "config.yml", chatTestConfig),
	}
	n := startNines(t, dsn, append(slackArgs, "--slack.signing-secret-file="+writeFile(t, dir, "slack.secret", chatTestSecret+"\n"))...)
	am := startAlertmanager(t, n.base)

	start := time.Now().Add(-2 * time.Minute).UTC().Truncate(time.Second)
	alert := map[string]any{
		"labels":      map[string]string{"alertname": "CheckoutDown", "service": "checkout", "severity": "critical"},
		"annotations": map[string]string{"summary": "Checkout is down", "runbook_url": "https://runbooks.example.com/checkout"},
		"startsAt":    start.Format(time.RFC3339),
	}
	postAlerts(t, am, []map[string]any{alert})
	eventually(t, 40*time.Second, "the incident in #operations and #checkout", func() bool {
		return len(fake.Messages("#operations")) == 1 && len(fake.Messages("#checkout")) == 1
	})
	id := n.incidents().Incidents[0].ID

	payload := fmt.Sprintf(`{"type":"block_actions","user":{"id":"U1","username":"alice"},"response_url":%q,"actions":[{"action_id":"nines_ack","value":%q}]}`,
		fake.ResponseURL("r1"), id)
	body := "payload=" + url.QueryEscape(payload)
	ts, sig := slackSign(body, time.Now())
	req, _ := http.NewRequest(http.MethodPost, n.base+"/api/v1/slack/interactions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", sig)
	began := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || time.Since(began) > 3*time.Second {
		t.Fatalf("interaction: %d after %s", resp.StatusCode, time.Since(began))
	}
	eventually(t, 30*time.Second, "the ack in both channels", func() bool {
		for _, ch := range []string{"#operations", "#checkout"} {
			m := fake.Messages(ch)[0]
			if m.Updates() < 1 || len(m.Replies) < 1 || !strings.Contains(string(m.Blocks), "Acknowledged by slack:alice") {
				return false
			}
		}
		return true
	})
	// The same signed request again is a replay: refused.
	req, _ = http.NewRequest(http.MethodPost, n.base+"/api/v1/slack/interactions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", ts)
	req.Header.Set("X-Slack-Signature", sig)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("replayed interaction: %v %v, want 401", err, resp)
	} else {
		resp.Body.Close()
	}

	alert["endsAt"] = time.Now().Add(-10 * time.Second).UTC().Format(time.RFC3339)
	postAlerts(t, am, []map[string]any{alert})
	eventually(t, 40*time.Second, "the resolve in both channels", func() bool {
		for _, ch := range []string{"#operations", "#checkout"} {
			msgs := fake.Messages(ch)
			if len(msgs) != 1 || len(msgs[0].Replies) != 3 || !strings.Contains(string(msgs[0].Blocks), "Resolved by alertmanager") {
				return false
			}
		}
		return true
	})
	for _, ch := range []string{"#operations", "#checkout"} {
		if m := fake.Messages(ch)[0]; m.Updates() != 2 {
			t.Errorf("%s: %d updates, want 2 (ack, resolve)", ch, m.Updates())
		}
	}

	var out, errOut bytes.Buffer
	args := append([]string{"report", "--post", "--clickhouse.dsn=" + dsn, "--log.level=warn"}, slackArgs...)
	if err := run(context.Background(), args, &out, &errOut, nil); err != nil {
		t.Fatalf("report --post: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "#operations") {
		t.Errorf("report --post said %q", out.String())
	}
	digest := false
	for _, m := range fake.Messages("#operations") {
		if strings.Contains(string(m.Blocks), "Availability report") && strings.Contains(string(m.Blocks), "checkout") {
			digest = true
		}
	}
	if !digest {
		t.Error("no digest in #operations")
	}

	code, b := n.do("GET", "/metrics", "", nil)
	if code != http.StatusOK || !strings.Contains(string(b), `nines_chat_messages_total{method="chat.postMessage",result="ok"}`) ||
		!strings.Contains(string(b), "nines_chat_leader 1") {
		t.Errorf("metrics: %d", code)
	}
}
