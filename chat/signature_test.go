package chat

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// Slack's documented example of a signed request
// (https://api.slack.com/authentication/verifying-requests-from-slack).
const (
	docSecret    = "8f742231b10e8888abcd99yyyzzz85a5"
	docTimestamp = "1531420618"
	docBody      = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	docSignature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
)

func headers(ts, sig string) http.Header {
	h := http.Header{}
	if ts != "" {
		h.Set("X-Slack-Request-Timestamp", ts)
	}
	if sig != "" {
		h.Set("X-Slack-Signature", sig)
	}
	return h
}

func TestVerifySignature(t *testing.T) {
	at := time.Unix(1531420618, 0)
	tests := []struct {
		name   string
		secret string
		h      http.Header
		body   string
		now    time.Time
		want   error
	}{
		{"documented example", docSecret, headers(docTimestamp, docSignature), docBody, at.Add(30 * time.Second), nil},
		{"documented example, clock slightly behind", docSecret, headers(docTimestamp, docSignature), docBody, at.Add(-4 * time.Minute), nil},
		{"wrong secret", "another-secret", headers(docTimestamp, docSignature), docBody, at, errBadSignature},
		{"tampered body", docSecret, headers(docTimestamp, docSignature), strings.Replace(docBody, "roadrunner", "coyote", 1), at, errBadSignature},
		{"other timestamp", docSecret, headers("1531420619", docSignature), docBody, at, errBadSignature},
		{"stale", docSecret, headers(docTimestamp, docSignature), docBody, at.Add(5*time.Minute + time.Second), errStale},
		{"from the future", docSecret, headers(docTimestamp, docSignature), docBody, at.Add(-5*time.Minute - time.Second), errStale},
		{"no signature", docSecret, headers(docTimestamp, ""), docBody, at, errNoSignature},
		{"no timestamp", docSecret, headers("", docSignature), docBody, at, errNoSignature},
		{"bad timestamp", docSecret, headers("yesterday", docSignature), docBody, at, errBadTimestamp},
		{"other version", docSecret, headers(docTimestamp, strings.Replace(docSignature, "v0=", "v1=", 1)), docBody, at, errBadSignature},
		{"not hex", docSecret, headers(docTimestamp, "v0=zz"), docBody, at, errBadSignature},
		{"short", docSecret, headers(docTimestamp, docSignature[:20]), docBody, at, errBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := verifySignature(tc.secret, tc.h, []byte(tc.body), tc.now, DefaultMaxRequestAge)
			if !errors.Is(err, tc.want) {
				t.Errorf("verifySignature = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestVerifyAgreesWithSlackGo: for a fresh request, slack-go's verifier
// and nines' accept and reject alike.
func TestVerifyAgreesWithSlackGo(t *testing.T) {
	now := time.Now()
	ts := fmt.Sprint(now.Unix())
	mac := hmac.New(sha256.New, []byte(docSecret))
	mac.Write([]byte("v0:" + ts + ":" + docBody))
	good := "v0=" + hex.EncodeToString(mac.Sum(nil))
	for _, sig := range []string{good, docSignature} {
		h := headers(ts, sig)
		ours := verifySignature(docSecret, h, []byte(docBody), now, DefaultMaxRequestAge)
		sv, err := slack.NewSecretsVerifier(h, docSecret)
		if err == nil {
			_, _ = sv.Write([]byte(docBody))
			err = sv.Ensure()
		}
		if (ours == nil) != (err == nil) {
			t.Errorf("signature %s: nines says %v, slack-go says %v", sig, ours, err)
		}
	}
}

func TestParseInteraction(t *testing.T) {
	payload := func(p string) []byte { return []byte("payload=" + url.QueryEscape(p)) }
	tests := []struct {
		name    string
		body    []byte
		want    buttonPress
		ok      bool
		wantErr bool
	}{
		{"ack", payload(`{"type":"block_actions","user":{"id":"U1","username":"alice","name":"alice"},"response_url":"https://hooks.slack.com/actions/1","actions":[{"action_id":"nines_ack","value":"inc-0123456789abcdef0123"}]}`),
			buttonPress{action: ActionAck, incident: "inc-0123456789abcdef0123", actor: "slack:alice", responseURL: "https://hooks.slack.com/actions/1"}, true, false},
		{"resolve by user id", payload(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"nines_resolve","value":"inc-0123456789abcdef0123"}]}`),
			buttonPress{action: ActionResolve, incident: "inc-0123456789abcdef0123", actor: "slack:U1"}, true, false},
		{"odd characters in the user name", payload(`{"type":"block_actions","user":{"id":"U1","username":"al ice<!channel>"},"actions":[{"action_id":"nines_ack","value":"inc-0123456789abcdef0123"}]}`),
			buttonPress{action: ActionAck, incident: "inc-0123456789abcdef0123", actor: "slack:alicechannel"}, true, false},
		{"someone else's button", payload(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"other","value":"x"}]}`), buttonPress{}, false, false},
		{"not an incident id", payload(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"nines_ack","value":"inc-../../x"}]}`), buttonPress{}, false, false},
		{"a view submission", payload(`{"type":"view_submission","user":{"id":"U1"}}`), buttonPress{}, false, false},
		{"no user", payload(`{"type":"block_actions","actions":[{"action_id":"nines_ack","value":"inc-0123456789abcdef0123"}]}`), buttonPress{}, false, true},
		{"no payload", []byte("text=hi"), buttonPress{}, false, true},
		{"bad json", payload(`{"type":`), buttonPress{}, false, true},
		{"bad form", []byte("payload=%zz"), buttonPress{}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok, err := parseInteraction(tc.body)
			if (err != nil) != tc.wantErr || ok != tc.ok || got != tc.want {
				t.Errorf("parseInteraction = %+v, %v, %v; want %+v, %v, error %v", got, ok, err, tc.want, tc.ok, tc.wantErr)
			}
		})
	}
}

// FuzzParseInteraction: whatever Slack (or anyone holding the secret)
// sends, parsing neither panics nor lets through an action nines does not
// take or an incident ID that is not one.
func FuzzParseInteraction(f *testing.F) {
	for _, s := range []string{
		`payload=` + url.QueryEscape(`{"type":"block_actions","user":{"id":"U1","username":"alice"},"response_url":"https://hooks.slack.com/a","actions":[{"action_id":"nines_ack","value":"inc-0123456789abcdef0123"}]}`),
		`payload=` + url.QueryEscape(`{"type":"block_actions","user":{"id":"U1"},"actions":[{"action_id":"nines_resolve","value":"inc-0123456789abcdef0123"},{"action_id":"x"}]}`),
		`payload=` + url.QueryEscape(`{"type":"view_submission"}`),
		`payload={}`, `payload=`, ``, `a=b&payload=%7B%7D`, docBody,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, ok, err := parseInteraction(body)
		if !ok {
			if p != (buttonPress{}) {
				t.Errorf("not ok but %+v", p)
			}
			return
		}
		if err != nil {
			t.Errorf("ok with an error: %v", err)
		}
		if p.action != ActionAck && p.action != ActionResolve {
			t.Errorf("action %q", p.action)
		}
		if !incidentIDRe.MatchString(p.incident) {
			t.Errorf("incident %q", p.incident)
		}
		if !strings.HasPrefix(p.actor, "slack:") || len(p.actor) <= len("slack:") || strings.ContainsAny(p.actor[6:], " <>&:@!") {
			t.Errorf("actor %q", p.actor)
		}
	})
}
