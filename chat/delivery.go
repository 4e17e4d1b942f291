package chat

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/ninesops/nines/incidents"
)

// DORAFigure is a service's delivery (DORA) figures over a window, as
// GET /api/v1/dora answers them: rates are nil where there is nothing to
// divide by.
type DORAFigure struct {
	Service              string
	Owner                string
	Deployments          int
	DeploymentsPerDay    float64
	ChangeFailureRate    *float64
	RollbackRate         *float64
	Restored             int
	TimeToRestoreSeconds *float64
}

// DORASource knows how to compute every service's delivery figures over a
// window such as "7d", as GET /api/v1/dora does. cmd/nines adapts
// *changes.Service to it.
type DORASource interface {
	DORA(ctx context.Context, window string) ([]DORAFigure, error)
}

// maxDeliveryRows bounds the services the digest's delivery section lists.
const maxDeliveryRows = 20

// addDelivery adds the week's delivery figures, by service.
func (d *digester) addDelivery(ctx context.Context, dd *digestData) error {
	figs, err := d.dora.DORA(ctx, digestWeek)
	if err != nil {
		return fmt.Errorf("digest: delivery figures over %s: %w", digestWeek, err)
	}
	dd.Delivery = slices.Clone(figs)
	slices.SortFunc(dd.Delivery, func(a, b DORAFigure) int { return strings.Compare(a.Service, b.Service) })
	return nil
}

// deliverySection lists the delivery figures, one service a line.
func deliverySection(figs []DORAFigure) []slack.Block {
	if len(figs) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("*Delivery (last 7 days, as GET /api/v1/dora)*")
	for i, f := range figs {
		if i == maxDeliveryRows {
			fmt.Fprintf(&b, "\n…and %d more services", len(figs)-i)
			break
		}
		b.WriteString("\n• " + deliveryLine(f))
	}
	return []slack.Block{section(b.String())}
}

// deliveryLine is one service's figures: "*checkout* — 3 deploys (0.43 a
// day) · change failure rate 33.3% · rollback rate 0.0% · time to
// restore 30m (1 incident)".
func deliveryLine(f DORAFigure) string {
	deploys := "deploys"
	if f.Deployments == 1 {
		deploys = "deploy"
	}
	parts := []string{fmt.Sprintf("%d %s (%s a day)", f.Deployments, deploys, strconv.FormatFloat(f.DeploymentsPerDay, 'f', 2, 64))}
	if f.ChangeFailureRate != nil {
		parts = append(parts, "change failure rate "+ratio1(*f.ChangeFailureRate))
	}
	if f.RollbackRate != nil {
		parts = append(parts, "rollback rate "+ratio1(*f.RollbackRate))
	}
	if f.TimeToRestoreSeconds != nil {
		n := "incidents"
		if f.Restored == 1 {
			n = "incident"
		}
		ttr := time.Duration(math.Round(*f.TimeToRestoreSeconds)) * time.Second
		parts = append(parts, fmt.Sprintf("time to restore %s (%d %s)", incidents.FormatDuration(ttr), f.Restored, n))
	}
	return "*" + esc(f.Service) + "* — " + strings.Join(parts, " · ")
}

// ratio1 writes a ratio as a percentage with one decimal.
func ratio1(r float64) string {
	return strconv.FormatFloat(r*100, 'f', 1, 64) + "%"
}
