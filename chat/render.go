package chat

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/ninesops/nines/incidents"
)

// Slack's Block Kit limits, and the margins nines keeps below them.
const (
	maxBlocks      = 50   // per message
	maxSectionText = 3000 // per section text
	maxFieldText   = 2000 // per section field
	maxHeaderText  = 150
	maxFallback    = 4000 // the message's text
	// sectionBudget is what nines lets a section hold: well under the
	// limit, so that escaping and a "more" line always fit.
	sectionBudget = 2800
	// maxAlertLines is how many alerts the incident message lists; the
	// rest are summarized with a count and a link.
	maxAlertLines = 10
	// maxFlapLines is how many changes a flap summary lists.
	maxFlapLines = 10
)

// Action IDs of the incident message's buttons.
const (
	ActionAck     = "nines_ack"
	ActionResolve = "nines_resolve"
)

// Metadata event type of every message nines posts. The payload names the
// delivery (event_id) and the incident, so that a message whose posting
// was interrupted can be found again.
const metadataEventType = "nines_event"

// rendered is one Slack message as nines builds it: the fallback text
// (notifications, screen readers) and the blocks.
type rendered struct {
	Text   string        `json:"text"`
	Blocks []slack.Block `json:"blocks"`
}

// hash identifies the content, to tell whether a posted message is
// current.
func (m rendered) hash() string {
	b, err := json.Marshal(m)
	if err != nil { // cannot happen: blocks are plain structs
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// incidentView is everything the incident message shows.
type incidentView struct {
	Inc       *incidents.Incident
	Owner     string // the owning squad, if catalogued
	Runbook   string // the incident's runbook, else the catalog's
	Dashboard string // the service's Grafana dashboard
	Page      string // the incident's page in nines, if nines' URL is known
	Budget    *budgetUse
	// Suspect is the top suspect change, one line ("deployed 12 min
	// before: checkout v1.4.2 at 50% — consider rollback").
	Suspect string
	// Interactive adds the Acknowledge and Resolve buttons (bot
	// messages; incoming webhooks cannot take them).
	Interactive bool
}

// budgetUse is what an incident cost its service's error budget.
type budgetUse struct {
	Window string  // e.g. "30-day"
	Used   float64 // share of the window's budget this incident used
	Left   float64 // share of the budget left (negative once overspent)
}

// renderIncident builds the main message of an incident.
func renderIncident(v incidentView) rendered {
	inc := v.Inc
	var blocks []slack.Block

	blocks = append(blocks, slack.NewHeaderBlock(plain(headerEmoji(inc)+" "+strings.ToUpper(inc.Impact.String())+" · "+inc.Service+": "+inc.Title, maxHeaderText)))

	service := "*Service*\n" + esc(inc.Service)
	if v.Owner != "" {
		service += " (" + esc(v.Owner) + ")"
	}
	fields := []*slack.TextBlockObject{
		mrkdwn(service, maxFieldText),
		mrkdwn("*Impact*\n"+impactEmoji(inc.Impact)+" "+titleCase(inc.Impact.String()), maxFieldText),
		mrkdwn("*State*\n"+stateText(inc), maxFieldText),
		mrkdwn("*Started*\n"+slackDate(inc.StartedAt), maxFieldText),
		mrkdwn("*Duration*\n"+durationText(inc), maxFieldText),
		mrkdwn("*Alerts*\n"+alertCounts(inc), maxFieldText),
	}
	blocks = append(blocks, slack.NewSectionBlock(nil, fields, nil))

	if inc.CausedBy != "" {
		blocks = append(blocks, section(":link: Caused by upstream incident `"+esc(inc.CausedBy)+"`"))
	}
	if v.Budget != nil {
		blocks = append(blocks, section(budgetText(inc.Service, *v.Budget)))
	}
	if v.Suspect != "" {
		blocks = append(blocks, section(":mag: *What changed:* "+esc(clip(v.Suspect, sectionBudget-100))))
	}
	if len(inc.Alerts) > 0 || inc.TruncatedAlerts > 0 {
		blocks = append(blocks, section(alertList(inc)))
	}
	if links := linkLine(inc, v); links != "" {
		blocks = append(blocks, slack.NewContextBlock("links", mrkdwn(links, maxSectionText)))
	}
	if v.Interactive && inc.State.Open() {
		var buttons []slack.BlockElement
		if inc.State == incidents.StateFiring {
			ack := slack.NewButtonBlockElement(ActionAck, inc.ID, plain("Acknowledge", 75))
			ack.Style = slack.StylePrimary
			buttons = append(buttons, ack)
		}
		res := slack.NewButtonBlockElement(ActionResolve, inc.ID, plain("Resolve", 75))
		res.Style = slack.StyleDanger
		buttons = append(buttons, res)
		blocks = append(blocks, slack.NewActionBlock("actions", buttons...))
	}
	blocks = append(blocks, slack.NewContextBlock("id", mrkdwn("nines · `"+inc.ID+"`", maxSectionText)))

	text := fmt.Sprintf("%s %s · %s: %s (%s)", headerEmoji(inc), strings.ToUpper(inc.Impact.String()), inc.Service, inc.Title, stateWord(inc))
	return rendered{Text: clip(esc(text), maxFallback), Blocks: capBlocks(blocks)}
}

// renderEvent builds the thread reply for one timeline event.
func renderEvent(inc *incidents.Incident, ev incidents.Event) rendered {
	line := eventEmoji(ev) + " " + eventText(ev)
	ctx := slackDate(ev.At)
	if ev.Actor != "" {
		ctx += " · " + esc(ev.Actor)
	}
	blocks := []slack.Block{
		section(line),
		slack.NewContextBlock("", mrkdwn(ctx, maxSectionText)),
	}
	return rendered{Text: clip(esc(inc.Service+": "+plainEventText(ev)), maxFallback), Blocks: blocks}
}

// renderFlap builds the one thread reply that stands for a burst of alert
// changes.
func renderFlap(inc *incidents.Incident, evs []incidents.Event, interval time.Duration) rendered {
	counts := map[incidents.EventKind]int{}
	for _, e := range evs {
		counts[e.Kind]++
	}
	// A flap is the incident reopening; in an incident that stays open,
	// an alert firing again.
	flaps := counts[incidents.EventReopened]
	if flaps == 0 {
		flaps = counts[incidents.EventAlertFired]
	}
	var head string
	if counts[incidents.EventReopened] > 0 {
		head = fmt.Sprintf(":repeat: *Flapping:* %s flapped %s in the last %s", esc(inc.Service), times(flaps), incidents.FormatDuration(interval))
	} else {
		head = fmt.Sprintf(":repeat: *%d alert changes* in the last %s", len(evs), incidents.FormatDuration(interval))
	}
	var parts []string
	for _, k := range []incidents.EventKind{incidents.EventReopened, incidents.EventAlertFired, incidents.EventAlertResolved, incidents.EventResolved} {
		if n := counts[k]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d×", kindWord(k), n))
		}
	}
	head += " (" + strings.Join(parts, ", ") + ")"
	var b strings.Builder
	for i, e := range evs {
		if i == maxFlapLines {
			fmt.Fprintf(&b, "…and %d more", len(evs)-i)
			break
		}
		fmt.Fprintf(&b, "• %s %s\n", slackTime(e.At), eventText(e))
	}
	blocks := []slack.Block{section(head), section(strings.TrimSuffix(b.String(), "\n"))}
	text := fmt.Sprintf("%s: %d alert changes in the last %s", inc.Service, len(evs), incidents.FormatDuration(interval))
	return rendered{Text: clip(esc(text), maxFallback), Blocks: blocks}
}

func headerEmoji(inc *incidents.Incident) string {
	if inc.State == incidents.StateResolved {
		return ":white_check_mark:"
	}
	return impactEmoji(inc.Impact)
}

func impactEmoji(i incidents.Impact) string {
	switch i {
	case incidents.ImpactOutage:
		return ":red_circle:"
	case incidents.ImpactDegraded:
		return ":large_orange_circle:"
	}
	return ":white_circle:"
}

func stateWord(inc *incidents.Incident) string {
	switch inc.State {
	case incidents.StateAcknowledged:
		return "acknowledged by " + inc.AcknowledgedBy
	case incidents.StateResolved:
		return "resolved"
	}
	return "firing"
}

func stateText(inc *incidents.Incident) string {
	switch inc.State {
	case incidents.StateAcknowledged:
		return ":eyes: Acknowledged by " + esc(inc.AcknowledgedBy)
	case incidents.StateResolved:
		s := ":white_check_mark: Resolved"
		if inc.ResolvedBy != "" {
			s += " by " + esc(inc.ResolvedBy)
		}
		if inc.AcknowledgedBy != "" {
			s += "\n(acknowledged by " + esc(inc.AcknowledgedBy) + ")"
		}
		return s
	}
	s := ":fire: Firing"
	if inc.Flaps > 0 {
		s += fmt.Sprintf(" (reopened %s)", times(inc.Flaps))
	}
	return s
}

// durationText is the resolved incident's length; an open incident's
// would be stale as soon as it is posted, so it says since when instead.
func durationText(inc *incidents.Incident) string {
	if inc.State == incidents.StateResolved && !inc.ResolvedAt.IsZero() && !inc.StartedAt.IsZero() {
		return incidents.FormatDuration(inc.ResolvedAt.Sub(inc.StartedAt))
	}
	return "ongoing"
}

func alertCounts(inc *incidents.Incident) string {
	firing := 0
	for _, a := range inc.Alerts {
		if a.Status == incidents.AlertFiring {
			firing++
		}
	}
	s := fmt.Sprintf("%d firing, %d resolved", firing, len(inc.Alerts)-firing)
	if inc.TruncatedAlerts > 0 {
		s += fmt.Sprintf(" (+%d not sent by Alertmanager)", inc.TruncatedAlerts)
	}
	return s
}

// alertList lists the firing alerts first, then resolved ones, at most
// maxAlertLines of them, within a section's budget.
func alertList(inc *incidents.Incident) string {
	alerts := make([]incidents.Alert, 0, len(inc.Alerts))
	for _, a := range inc.Alerts {
		if a.Status == incidents.AlertFiring {
			alerts = append(alerts, a)
		}
	}
	for _, a := range inc.Alerts {
		if a.Status != incidents.AlertFiring {
			alerts = append(alerts, a)
		}
	}
	var b strings.Builder
	b.WriteString("*Alerts*\n")
	shown := 0
	for _, a := range alerts {
		line := "• " + alertLine(a) + "\n"
		if shown == maxAlertLines || b.Len()+len(line) > sectionBudget-200 {
			break
		}
		b.WriteString(line)
		shown++
	}
	if rest := len(alerts) - shown + inc.TruncatedAlerts; rest > 0 {
		more := fmt.Sprintf("…and %d more", rest)
		if inc.ExternalURL != "" {
			more += " in " + link(inc.ExternalURL, "Alertmanager")
		}
		b.WriteString(more)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func alertLine(a incidents.Alert) string {
	name := a.Labels["alertname"]
	if name == "" {
		name = a.Fingerprint
	}
	s := "*" + esc(clip(name, 200)) + "*"
	if inst := a.Labels["instance"]; inst != "" {
		s += " on " + esc(clip(inst, 200))
	}
	if sum := a.Annotations["summary"]; sum != "" {
		s += ": " + esc(clip(sum, 300))
	}
	if a.Status == incidents.AlertFiring {
		return impactEmoji(a.Impact) + " " + s + " — since " + slackTime(a.StartsAt)
	}
	return ":large_green_circle: " + s + " — resolved " + slackTime(a.EndsAt)
}

func budgetText(service string, b budgetUse) string {
	left := "overspent"
	if b.Left >= 0 {
		left = percent(b.Left) + " left"
	} else {
		left = "overspent by " + percent(-b.Left)
	}
	return fmt.Sprintf(":hourglass_flowing_sand: This incident has used %s of %s's %s error budget (%s).",
		percent(b.Used), esc(service), b.Window, left)
}

// percent writes a ratio as a whole percentage; a small non-zero share is
// "<1%" rather than a misleading 0%.
func percent(r float64) string {
	p := r * 100
	switch {
	case math.IsNaN(p) || math.IsInf(p, 0):
		return "–"
	case p > 0 && p < 1:
		return "<1%"
	}
	return fmt.Sprintf("%.0f%%", math.Round(p))
}

func linkLine(inc *incidents.Incident, v incidentView) string {
	var links []string
	if v.Page != "" {
		links = append(links, ":page_facing_up: "+link(v.Page, "Incident page"))
	}
	if v.Runbook != "" {
		links = append(links, ":book: "+link(v.Runbook, "Runbook"))
	}
	if v.Dashboard != "" {
		links = append(links, ":bar_chart: "+link(v.Dashboard, "Dashboard"))
	}
	if inc.ExternalURL != "" {
		links = append(links, ":bell: "+link(inc.ExternalURL, "Alertmanager"))
	}
	if inc.GeneratorURL != "" {
		links = append(links, ":mag: "+link(inc.GeneratorURL, "Source"))
	}
	return strings.Join(links, "  ·  ")
}

func eventEmoji(ev incidents.Event) string {
	switch ev.Kind {
	case incidents.EventAlertFired:
		return ":rotating_light:"
	case incidents.EventAlertResolved:
		return ":large_green_circle:"
	case incidents.EventAcknowledged:
		return ":eyes:"
	case incidents.EventNote:
		return ":memo:"
	case incidents.EventResolved:
		return ":white_check_mark:"
	case incidents.EventReopened:
		return ":repeat:"
	case incidents.EventImpactChanged:
		return ":chart_with_upwards_trend:"
	case incidents.EventLinked, incidents.EventUnlinked:
		return ":link:"
	case incidents.EventTruncated:
		return ":warning:"
	case incidents.EventOpened:
		return ":new:"
	}
	return ":information_source:"
}

func kindWord(k incidents.EventKind) string {
	switch k {
	case incidents.EventAlertFired:
		return "fired"
	case incidents.EventAlertResolved:
		return "alert resolved"
	case incidents.EventReopened:
		return "reopened"
	case incidents.EventResolved:
		return "resolved"
	}
	return strings.ReplaceAll(string(k), "_", " ")
}

// eventText is the event's line in mrkdwn.
func eventText(ev incidents.Event) string {
	if ev.Kind == incidents.EventNote {
		return "*Note:* " + esc(clip(ev.Text, sectionBudget-100))
	}
	return esc(clip(plainEventText(ev), sectionBudget-100))
}

func plainEventText(ev incidents.Event) string {
	if ev.Text != "" {
		return ev.Text
	}
	return kindWord(ev.Kind)
}

// section is a mrkdwn section within the section budget.
func section(text string) *slack.SectionBlock {
	return slack.NewSectionBlock(mrkdwn(text, sectionBudget), nil, nil)
}

func mrkdwn(s string, limit int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, clip(s, limit), false, false)
}

func plain(s string, limit int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, clip(s, limit), true, false)
}

// capBlocks keeps a message within Slack's block limit.
func capBlocks(b []slack.Block) []slack.Block {
	if len(b) > maxBlocks {
		return b[:maxBlocks]
	}
	return b
}

// esc escapes the three characters Slack's mrkdwn reserves, so that text
// from alerts and people can neither link nor mention (<!channel>).
func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// incidentPage is the URL of an incident's page under nines' external
// URL, or "" when that is not known.
func incidentPage(base, id string) string {
	if base == "" {
		return ""
	}
	return base + "/incidents/" + id
}

// link writes a mrkdwn link; URLs with characters that would break it
// are shown as escaped text.
func link(url, label string) string {
	if strings.ContainsAny(url, "<>| \n") {
		return esc(label) + " (" + esc(url) + ")"
	}
	return "<" + strings.ReplaceAll(url, "&", "&amp;") + "|" + esc(label) + ">"
}

// clip shortens s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// slackDate renders a time in each reader's own time zone, with a UTC
// fallback for clients that cannot.
func slackDate(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return fmt.Sprintf("<!date^%d^{date_short_pretty} {time}|%s>", t.Unix(), t.UTC().Format("2006-01-02 15:04 UTC"))
}

func slackTime(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	return fmt.Sprintf("<!date^%d^{time}|%s>", t.Unix(), t.UTC().Format("15:04 UTC"))
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// standalone prefixes a thread reply with the incident it belongs to, for
// channels where it cannot be threaded.
func standalone(inc *incidents.Incident, m rendered) rendered {
	head := section(fmt.Sprintf("%s *%s* · %s", headerEmoji(inc), esc(inc.Service), esc(inc.Title)))
	return rendered{Text: m.Text, Blocks: append([]slack.Block{head}, m.Blocks...)}
}
