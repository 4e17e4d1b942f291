package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ninesops/nines/availability"
	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/chstore"
	"github.com/ninesops/nines/incidents"
)

// slackFlags are the Slack flags of `nines serve` and `nines report
// --post`. Secrets come from files only, never from the command line.
type slackFlags struct {
	tokenFile         string
	signingSecretFile string
	apiURL            string
	webhookURLFile    string
}

func (f *slackFlags) register(fs flagger) {
	fs.Flag("slack.token-file", "File holding the Slack bot token (xoxb-…) that posts incidents, keeps them current and threads their timeline. Without it (and without webhooks) nothing is posted to Slack.").
		PlaceHolder("FILE").StringVar(&f.tokenFile)
	fs.Flag("slack.signing-secret-file", "File holding the Slack app's signing secret, which verifies button presses and /nines commands. Without it those endpoints answer 404.").
		PlaceHolder("FILE").StringVar(&f.signingSecretFile)
	fs.Flag("slack.api-url", "Slack Web API base URL; a Slack-compatible or test endpoint may stand in.").
		Default(chat.DefaultAPIURL).StringVar(&f.apiURL)
	fs.Flag("slack.webhook-url-file", "File holding an incoming-webhook URL for the operations channel, for workspaces without the bot (posts only: no updates, no threads).").
		PlaceHolder("FILE").StringVar(&f.webhookURLFile)
}

// slackSecrets are what the Slack flags' files hold.
type slackSecrets struct {
	token, signingSecret, webhookURL string
}

func (f *slackFlags) load() (slackSecrets, error) {
	var s slackSecrets
	var err error
	if s.token, err = readSecretFile("slack.token-file", f.tokenFile); err != nil {
		return s, err
	}
	if s.signingSecret, err = readSecretFile("slack.signing-secret-file", f.signingSecretFile); err != nil {
		return s, err
	}
	if s.webhookURL, err = readSecretFile("slack.webhook-url-file", f.webhookURLFile); err != nil {
		return s, err
	}
	if s.webhookURL != "" && !strings.HasPrefix(s.webhookURL, "https://") && !strings.HasPrefix(s.webhookURL, "http://") {
		return s, usageError{errors.New("--slack.webhook-url-file: the file does not hold an http(s) URL")}
	}
	return s, nil
}

// webhookURLs merges the config's incoming webhooks with the one for the
// operations channel from --slack.webhook-url-file.
func webhookURLs(cfg *chat.Config, flagURL string) (map[string]string, error) {
	urls, err := cfg.WebhookURLs()
	if err != nil {
		return nil, err
	}
	if flagURL != "" {
		ops := cfg.OperationsChannel
		if ops == "" {
			ops = chat.DefaultOperationsChannel
		}
		if _, dup := urls[ops]; dup {
			return nil, usageError{fmt.Errorf("--slack.webhook-url-file: chat.webhooks already has a webhook for %s", ops)}
		}
		urls[ops] = flagURL
	}
	return urls, nil
}

// chatDeps is what the chat parts of `nines serve` are built from.
type chatDeps struct {
	flags   slackFlags
	cfg     chat.Config
	weights availability.ImpactWeights
	store   *chstore.Store
	actor   chat.Actor // the journal: actions go through the log
	avail   *availability.Service
	// suspects names the top suspect change of an incident (optional).
	suspects chat.Suspects
	// dora gives the digest the delivery figures (optional).
	dora    chat.DORASource
	catalog func() *catalog.Catalog
	log     *slog.Logger
	reg     prometheus.Registerer
	// externalURL (--web.external-url) makes messages link to the
	// incident pages.
	externalURL string
}

// chatParts are the running parts of chat; a nil field is turned off.
type chatParts struct {
	sender  *chat.Sender  // posts to Slack (bot token or webhooks)
	handler *chat.Handler // buttons and /nines (signing secret)
}

// newChat builds the Slack sender and the interactive handler from the
// flags and the config's chat section. Without a token or webhooks there
// is no sender; without a signing secret there is no handler.
func newChat(d chatDeps) (*chatParts, error) {
	sec, err := d.flags.load()
	if err != nil {
		return nil, err
	}
	hooks, err := webhookURLs(&d.cfg, sec.webhookURL)
	if err != nil {
		return nil, err
	}
	var avail chat.Availability
	if d.avail != nil {
		avail = chatAvailability{svc: d.avail}
	}
	p := &chatParts{}
	if sec.token != "" || len(hooks) > 0 {
		p.sender, err = chat.New(chat.Options{
			Config: d.cfg, Token: sec.token, APIURL: d.flags.apiURL, WebhookURLs: hooks,
			Events: d.store, Ledger: d.store, Leases: d.store, Incidents: d.store,
			Catalog: d.catalog, Availability: avail, BudgetWeight: d.weights.Weight,
			Suspects: d.suspects, DORA: d.dora, Logger: d.log, Registerer: d.reg, ExternalURL: d.externalURL,
		})
		if err != nil {
			return nil, err
		}
	} else {
		d.log.Info("Slack is off: no --slack.token-file and no incoming webhooks")
	}
	if sec.signingSecret != "" {
		p.handler, err = chat.NewHandler(chat.HandlerOptions{
			SigningSecret: sec.signingSecret, Actor: d.actor, Incidents: d.store, Availability: avail,
			Logger: d.log, Registerer: d.reg,
		})
		if err != nil {
			return nil, err
		}
	} else if sec.token != "" {
		d.log.Warn("no --slack.signing-secret-file: Slack buttons and /nines are off")
	}
	return p, nil
}

// run starts the chat parts on wg; they stop when ctx ends.
func (p *chatParts) run(ctx context.Context, wg *sync.WaitGroup, log *slog.Logger) {
	if p.sender != nil {
		wg.Go(func() {
			actx, cancel := context.WithTimeout(ctx, 15*time.Second)
			who, err := p.sender.CheckAuth(actx)
			cancel()
			switch {
			case err != nil:
				log.Warn("Slack did not accept the bot token; posts will fail until it does", "err", err)
			case who != "":
				log.Info("Slack bot token accepted", "bot", who)
			}
			if err := p.sender.Run(ctx); err != nil {
				log.Error("chat sender stopped", "err", err)
			}
		})
	}
	if p.handler != nil {
		wg.Go(func() {
			if err := p.handler.Run(ctx); err != nil {
				log.Error("chat handler stopped", "err", err)
			}
		})
	}
}

// chatAvailability adapts *availability.Service to chat.Availability.
type chatAvailability struct{ svc *availability.Service }

// Figures implements chat.Availability.
func (a chatAvailability) Figures(ctx context.Context, window string) ([]chat.Figure, error) {
	w, err := a.svc.ParseWindow(window)
	if err != nil {
		return nil, err
	}
	figs, err := a.svc.All(ctx, w, false)
	if err != nil {
		return nil, err
	}
	out := make([]chat.Figure, len(figs))
	for i, f := range figs {
		out[i] = toChatFigure(f)
	}
	return out, nil
}

// Figure implements chat.Availability.
func (a chatAvailability) Figure(ctx context.Context, service, window string) (chat.Figure, error) {
	w, err := a.svc.ParseWindow(window)
	if err != nil {
		return chat.Figure{}, err
	}
	f, err := a.svc.Service(ctx, service, w, false)
	if err != nil {
		return chat.Figure{}, err
	}
	return toChatFigure(f), nil
}

func toChatFigure(f availability.Figure) chat.Figure {
	left := f.ErrorBudgetRemaining
	if math.IsInf(left, 0) || math.IsNaN(left) {
		left = -1
	}
	return chat.Figure{
		Service: f.Service, Owner: f.Owner, Availability: f.Availability, SLOTarget: f.SLOTarget,
		BudgetSeconds: f.ErrorBudgetSeconds, BudgetRemaining: left, DowntimeSeconds: f.DowntimeSeconds, Incidents: f.Incidents,
	}
}

// digestFlags are the flags of `nines report --post`.
type digestFlags struct {
	post        bool
	channels    string
	slack       slackFlags
	externalURL string
}

func (f *digestFlags) register(fs flagger) {
	fs.Flag("post", "Post the availability digest to Slack (the operations channel and each squad's channel) instead of printing figures.").BoolVar(&f.post)
	fs.Flag("post.channels", "With --post: comma-separated channels to post to (default: all).").PlaceHolder("LIST").StringVar(&f.channels)
	fs.Flag("web.external-url", "With --post: the URL under which people reach nines; the digest links incidents to their pages.").PlaceHolder("URL").StringVar(&f.externalURL)
	f.slack.register(fs)
}

// postDigest posts the availability digest once, for `nines report
// --post`, and says where to stdout.
func postDigest(ctx context.Context, f digestFlags, cfg chat.Config, avail *availability.Service, list chat.IncidentLister,
	dora chat.DORASource, cat func() *catalog.Catalog, log *slog.Logger, stdout io.Writer) error {
	sec, err := f.slack.load()
	if err != nil {
		return err
	}
	hooks, err := webhookURLs(&cfg, sec.webhookURL)
	if err != nil {
		return err
	}
	if sec.token == "" && len(hooks) == 0 {
		return usageError{errors.New("--post needs --slack.token-file, --slack.webhook-url-file or chat.webhooks in --config.file")}
	}
	var channels []string
	for _, c := range strings.Split(f.channels, ",") {
		if c = strings.TrimSpace(c); c != "" {
			channels = append(channels, c)
		}
	}
	posted, err := chat.PostDigest(ctx, chat.DigestOptions{
		Config: cfg, Token: sec.token, APIURL: f.slack.apiURL, WebhookURLs: hooks,
		Availability: chatAvailability{svc: avail}, Incidents: list, DORA: dora, Catalog: cat, Channels: channels, Logger: log,
		ExternalURL: f.externalURL,
	})
	if len(posted) > 0 {
		fmt.Fprintf(stdout, "posted the availability digest to %s\n", strings.Join(posted, ", "))
	}
	if err != nil {
		return fmt.Errorf("post digest: %w", err)
	}
	if len(posted) == 0 {
		return errors.New("post digest: no channel to post to")
	}
	return nil
}

// Compile-time checks that the store and the incident service fit chat.
var (
	_ chat.Actor          = (*incidents.Service)(nil)
	_ chat.IncidentLister = (*chstore.Store)(nil)
)
