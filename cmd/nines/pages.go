package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ninesops/nines/catalog"
	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/dashboards"
)

// pageFlags are the flags of nines' pages.
type pageFlags struct {
	externalURL    string
	statusListen   string
	statusTitles   bool
	slackWorkspace string
}

func (f *pageFlags) register(fs flagger) {
	fs.Flag("web.external-url", "The URL under which people reach nines (e.g. https://nines.example.com). Pages, Slack messages and the digest link to incident pages with it; empty: pages link relatively and messages carry no incident link.").
		PlaceHolder("URL").StringVar(&f.externalURL)
	fs.Flag("web.status-page.listen-address", "Address of a listener of its own serving only the status page (/status, /api/v1/status) and the health endpoints, without --web.config.file's authentication; empty: the status page is served only on the main listener, behind it.").
		PlaceHolder("ADDRESS").StringVar(&f.statusListen)
	fs.Flag("slack.workspace-url", "The Slack workspace's URL (e.g. https://acme.slack.com); incident pages then link to the incident's Slack thread.").
		PlaceHolder("URL").StringVar(&f.slackWorkspace)
	fs.Flag("web.status-page.show-titles", "Show incidents' own titles on the status page. Without it, an incident shows its public_title annotation or \"Outage of <service>\"; labels are never shown. The catalog's status_page section, when present, decides per group instead.").BoolVar(&f.statusTitles)
}

// serveStatus starts the public status listener on wg; it stops when ctx
// ends.
func (f *pageFlags) serveStatus(ctx context.Context, wg *sync.WaitGroup, h http.Handler, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", f.statusListen)
	if err != nil {
		return nil, fmt.Errorf("--web.status-page.listen-address: %w", err)
	}
	srv := &http.Server{
		Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("status page listening", "address", ln.Addr().String())
	wg.Go(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("status listener stopped", "err", err)
		}
	})
	wg.Go(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	return srv, nil
}

// chatMessages knows how to read where incidents' Slack messages are
// (*chstore.Store).
type chatMessages interface {
	LoadChat(ctx context.Context, ids []string, self string) (chat.Records, error)
}

// slackThreadLink gives an incident's Slack message in the operations
// channel (else in any channel) as a permalink under the workspace's URL;
// nil without a workspace URL.
func slackThreadLink(store chatMessages, workspace, operations string) func(context.Context, string) (string, error) {
	if workspace == "" {
		return nil
	}
	workspace = strings.TrimSuffix(workspace, "/")
	return func(ctx context.Context, id string) (string, error) {
		recs, err := store.LoadChat(ctx, []string{id}, "")
		if err != nil {
			return "", err
		}
		var best *chat.MessageRecord
		for i, m := range recs.Messages {
			if m.ChannelID == "" || m.TS == "" {
				continue
			}
			if best == nil || m.Channel == operations {
				best = &recs.Messages[i]
			}
		}
		if best == nil {
			return "", nil
		}
		return workspace + "/archives/" + best.ChannelID + "/p" + strings.ReplaceAll(best.TS, ".", ""), nil
	}
}

// dashboardLink gives a service's Grafana dashboard: the catalog's
// dashboard_url, else the generated dashboard under chat.grafana_url.
func dashboardLink(cat func() *catalog.Catalog, grafanaURL string) func(string) string {
	return func(service string) string {
		if sv, ok := cat().Service(service); ok && sv.DashboardURL != "" {
			return sv.DashboardURL
		}
		if grafanaURL == "" {
			return ""
		}
		return strings.TrimSuffix(grafanaURL, "/") + "/d/" + dashboards.ServiceUID(service)
	}
}
