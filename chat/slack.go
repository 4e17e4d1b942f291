package chat

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// DefaultAPIURL is Slack's Web API.
const DefaultAPIURL = slack.APIURL

// Slack API methods nines calls, as metric labels.
const (
	methodPost    = "chat.postMessage"
	methodUpdate  = "chat.update"
	methodHistory = "conversations.history"
	methodReplies = "conversations.replies"
	methodList    = "conversations.list"
	methodWebhook = "incoming_webhook"
	methodRespond = "response_url"
)

// Outcomes of a Slack call, as metric labels.
const (
	resultOK          = "ok"
	resultRetry       = "retry"
	resultRateLimited = "rate_limited"
	resultPermanent   = "permanent_error"
)

// callError is a failed Slack call, classified.
type callError struct {
	result string        // resultRetry, resultRateLimited or resultPermanent
	code   string        // Slack's error string, or the HTTP status
	wait   time.Duration // Retry-After, for rate limits
	// uncertain means Slack may have acted although the call failed (a
	// timeout, a dropped connection, a 5xx): a post must be looked up
	// before it is sent again.
	uncertain bool
	err       error
}

func (e *callError) Error() string { return e.err.Error() }
func (e *callError) Unwrap() error { return e.err }

// transientCodes are Slack error strings worth retrying; every other
// ok:false answer is final (channel_not_found, not_in_channel,
// invalid_auth, account_inactive, is_archived, msg_too_long, …).
var transientCodes = map[string]bool{
	"internal_error":      true,
	"fatal_error":         true,
	"service_unavailable": true,
	"request_timeout":     true,
	"ratelimited":         true,
	"team_added_to_org":   true,
}

// knownCodes bound the error label of nines_chat_permanent_errors_total.
var knownCodes = map[string]bool{
	"channel_not_found": true, "not_in_channel": true, "invalid_auth": true, "account_inactive": true,
	"is_archived": true, "token_revoked": true, "not_authed": true, "missing_scope": true,
	"msg_too_long": true, "invalid_blocks": true, "message_not_found": true, "cant_update_message": true,
	"no_permission": true, "restricted_action": true, "invalid_arguments": true, "no_text": true,
	"channel_is_archived": true, "action_prohibited": true, "no_service": true, "invalid_payload": true,
	"edit_window_closed": true, "http_4xx": true,
}

// classify turns a slack-go error into a callError.
func classify(err error) *callError {
	if err == nil {
		return nil
	}
	var (
		ce   *callError
		rl   *slack.RateLimitedError
		sc   slack.StatusCodeError
		resp slack.SlackErrorResponse
	)
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.As(err, &rl):
		wait := rl.RetryAfter
		if wait <= 0 {
			wait = time.Second
		}
		return &callError{result: resultRateLimited, code: "ratelimited", wait: wait, err: err}
	case errors.As(err, &sc):
		switch {
		case sc.Code == http.StatusTooManyRequests:
			return &callError{result: resultRateLimited, code: "ratelimited", wait: time.Second, err: err}
		case sc.Code >= 500 || sc.Code == http.StatusRequestTimeout:
			return &callError{result: resultRetry, code: fmt.Sprintf("http_%d", sc.Code), uncertain: true, err: err}
		}
		// Incoming webhooks answer 4xx with a reason in the body
		// (no_service, channel_is_archived, …): final.
		return &callError{result: resultPermanent, code: "http_4xx", err: err}
	case errors.As(err, &resp):
		code := resp.Err
		if code == "ratelimited" {
			return &callError{result: resultRateLimited, code: code, wait: time.Second, err: err}
		}
		if transientCodes[code] {
			return &callError{result: resultRetry, code: code, uncertain: true, err: err}
		}
		return &callError{result: resultPermanent, code: code, err: err}
	}
	// Transport errors, timeouts, unreadable answers: Slack may have
	// acted.
	return &callError{result: resultRetry, code: "transport", uncertain: true, err: err}
}

// slackAPI is the part of Slack's Web API nines uses, with each call
// counted by method and outcome.
type slackAPI struct {
	client  *slack.Client
	http    *http.Client
	metrics *metrics

	mu         sync.Mutex
	channelIDs map[string]string // #name → ID, learned from answers
}

func newSlackAPI(token, apiURL string, hc *http.Client, m *metrics) *slackAPI {
	if apiURL == "" {
		apiURL = DefaultAPIURL
	}
	if !strings.HasSuffix(apiURL, "/") {
		apiURL += "/"
	}
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	var client *slack.Client
	if token != "" {
		client = slack.New(token, slack.OptionAPIURL(apiURL), slack.OptionHTTPClient(hc))
	}
	return &slackAPI{client: client, http: hc, metrics: m, channelIDs: map[string]string{}}
}

// count records one call's outcome and returns the classified error.
func (a *slackAPI) count(method string, err error) *callError {
	ce := classify(err)
	if ce == nil {
		a.metrics.calls.WithLabelValues(method, resultOK).Inc()
		return nil
	}
	a.metrics.calls.WithLabelValues(method, ce.result).Inc()
	if ce.result == resultPermanent {
		code := ce.code
		if !knownCodes[code] {
			code = "other"
		}
		a.metrics.permanent.WithLabelValues(code).Inc()
	}
	return ce
}

// deliveryMeta is the Slack message metadata that names a delivery.
type deliveryMeta struct {
	Key        string
	IncidentID string
}

func (m deliveryMeta) slack() slack.SlackMetadata {
	return slack.SlackMetadata{EventType: metadataEventType, EventPayload: map[string]any{
		"event_id": m.Key, "incident_id": m.IncidentID,
	}}
}

// post posts m to channel (a name or an ID), in the thread threadTS when
// set, and returns the channel's ID and the message's ts.
func (a *slackAPI) post(ctx context.Context, channel, threadTS string, m rendered, meta deliveryMeta) (channelID, ts string, err error) {
	opts := []slack.MsgOption{
		slack.MsgOptionText(m.Text, false),
		slack.MsgOptionBlocks(m.Blocks...),
		slack.MsgOptionMetadata(meta.slack()),
		slack.MsgOptionDisableLinkUnfurl(),
	}
	if threadTS != "" {
		opts = append(opts, slack.MsgOptionTS(threadTS))
	}
	channelID, ts, err = a.client.PostMessageContext(ctx, channel, opts...)
	if ce := a.count(methodPost, err); ce != nil {
		return "", "", ce
	}
	a.learn(channel, channelID)
	return channelID, ts, nil
}

// update replaces the content of the message ts in channelID.
func (a *slackAPI) update(ctx context.Context, channelID, ts string, m rendered) error {
	_, _, _, err := a.client.UpdateMessageContext(ctx, channelID, ts,
		slack.MsgOptionText(m.Text, false), slack.MsgOptionBlocks(m.Blocks...))
	if ce := a.count(methodUpdate, err); ce != nil {
		return ce
	}
	return nil
}

// maxLookupPages bounds how much history a lookup reads.
const maxLookupPages = 20

// find looks for the message nines posted for meta in channelID since
// oldest: among top-level messages, or among the replies of threadTS. It
// returns the message's ts, or "" when there is none.
func (a *slackAPI) find(ctx context.Context, channelID, threadTS string, oldest time.Time, meta deliveryMeta) (string, error) {
	oldestTS := fmt.Sprintf("%d.000000", max(oldest.Unix(), 0))
	cursor := ""
	for range maxLookupPages {
		var (
			msgs []slack.Message
			next string
			err  error
		)
		if threadTS == "" {
			var resp *slack.GetConversationHistoryResponse
			resp, err = a.client.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
				ChannelID: channelID, Oldest: oldestTS, Limit: 200, Cursor: cursor, IncludeAllMetadata: true,
			})
			if resp != nil {
				msgs, next = resp.Messages, resp.ResponseMetaData.NextCursor
			}
			if ce := a.count(methodHistory, err); ce != nil {
				return "", ce
			}
		} else {
			msgs, _, next, err = a.client.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
				ChannelID: channelID, Timestamp: threadTS, Oldest: oldestTS, Limit: 200, Cursor: cursor, IncludeAllMetadata: true,
			})
			if ce := a.count(methodReplies, err); ce != nil {
				return "", ce
			}
		}
		for _, msg := range msgs {
			if msg.Metadata.EventType != metadataEventType {
				continue
			}
			p := msg.Metadata.EventPayload
			if fmt.Sprint(p["event_id"]) == meta.Key && fmt.Sprint(p["incident_id"]) == meta.IncidentID {
				return msg.Timestamp, nil
			}
		}
		if next == "" {
			return "", nil
		}
		cursor = next
	}
	return "", nil
}

// channelID returns the ID of a channel given by name or ID: known from
// earlier answers, else looked up with conversations.list (which needs
// the channels:read and groups:read scopes).
func (a *slackAPI) channelID(ctx context.Context, channel string) (string, error) {
	if isChannelID(channel) {
		return channel, nil
	}
	a.mu.Lock()
	id, ok := a.channelIDs[channel]
	a.mu.Unlock()
	if ok {
		return id, nil
	}
	name := strings.TrimPrefix(channel, "#")
	cursor := ""
	for range maxLookupPages {
		chans, next, err := a.client.GetConversationsContext(ctx, &slack.GetConversationsParameters{
			Cursor: cursor, Limit: 1000, Types: []string{"public_channel", "private_channel"}, ExcludeArchived: true,
		})
		if ce := a.count(methodList, err); ce != nil {
			return "", ce
		}
		for _, c := range chans {
			if c.Name == name {
				a.learn(channel, c.ID)
				return c.ID, nil
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	return "", &callError{result: resultPermanent, code: "channel_not_found", err: fmt.Errorf("channel %s not found", channel)}
}

// authTest checks the token and names the bot and workspace.
func (a *slackAPI) authTest(ctx context.Context) (string, error) {
	resp, err := a.client.AuthTestContext(ctx)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s in %s", resp.User, resp.Team), nil
}

// learn remembers a channel's ID.
func (a *slackAPI) learn(channel, id string) {
	if id == "" || channel == id {
		return
	}
	a.mu.Lock()
	a.channelIDs[channel] = id
	a.mu.Unlock()
}

// webhook posts m through an incoming webhook.
func (a *slackAPI) webhook(ctx context.Context, url string, m rendered) error {
	blocks := slack.Blocks{BlockSet: m.Blocks}
	noUnfurl := false
	err := slack.PostWebhookCustomHTTPContext(ctx, url, a.http, &slack.WebhookMessage{
		Text: m.Text, Blocks: &blocks, UnfurlLinks: &noUnfurl,
	})
	if ce := a.count(methodWebhook, err); ce != nil {
		return ce
	}
	return nil
}
