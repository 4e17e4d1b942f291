package web

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"

	"github.com/ninesops/nines/availability"
)

// Charts are inline SVG built here, each with a title and a description
// for screen readers, a <title> per mark, and shapes or words besides
// colour: outage stretches are hatched, degraded ones dotted, and bars
// below the SLO are shorter and marked.

const chartWidth = 900.0

func svgOpen(b *strings.Builder, id string, height float64, title, desc string) {
	fmt.Fprintf(b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-labelledby="%s-t %s-d" xmlns="http://www.w3.org/2000/svg">`, chartWidth, height, id, id)
	fmt.Fprintf(b, `<title id="%s-t">%s</title><desc id="%s-d">%s</desc>`, id, html.EscapeString(title), id, html.EscapeString(desc))
	b.WriteString(`<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" class="outage"/><line x1="0" y1="0" x2="0" y2="6" class="hatch"/></pattern>` +
		`<pattern id="dots" width="5" height="5" patternUnits="userSpaceOnUse"><rect width="5" height="5" class="degraded"/><circle cx="2.5" cy="2.5" r="1" class="dot"/></pattern></defs>`)
}

func fill(impact string) string {
	switch impact {
	case "outage":
		return `fill="url(#hatch)"`
	case "degraded":
		return `fill="url(#dots)"`
	}
	return `class="none"`
}

// stripSVG draws an incident's impact over time.
func stripSVG(v IncidentView) template.HTML {
	var b strings.Builder
	span := v.To.Sub(v.From)
	if span <= 0 {
		span = time.Second
	}
	var parts []string
	for _, s := range v.Segments {
		parts = append(parts, fmt.Sprintf("%s from %s for %s", s.Impact, s.Start.Format("15:04:05"), Duration(s.Seconds())))
	}
	desc := "No impact recorded."
	if len(parts) > 0 {
		desc = strings.Join(parts, "; ") + "."
	}
	svgOpen(&b, "strip", 46, "Impact over time, "+v.From.UTC().Format(timeFmt)+" to "+v.To.UTC().Format(timeFmt), desc)
	b.WriteString(`<rect x="0" y="0" width="900" height="28" class="track"/>`)
	for _, s := range v.Segments {
		x := chartWidth * float64(s.Start.Sub(v.From)) / float64(span)
		w := max(chartWidth*float64(s.End.Sub(s.Start))/float64(span), 1)
		fmt.Fprintf(&b, `<rect x="%.1f" y="0" width="%.1f" height="28" %s><title>%s</title></rect>`, x, w, fill(s.Impact),
			html.EscapeString(fmt.Sprintf("%s, %s – %s (%s)", s.Impact, s.Start.Format(timeFmt), s.End.Format(timeFmt), Duration(s.Seconds()))))
		if w > 60 {
			fmt.Fprintf(&b, `<text x="%.1f" y="19" class="seglabel">%s</text>`, x+4, s.Impact)
		}
	}
	fmt.Fprintf(&b, `<text x="0" y="42" class="axis">%s</text><text x="900" y="42" class="axis end">%s</text></svg>`,
		v.From.UTC().Format("Jan 2 15:04"), v.To.UTC().Format("Jan 2 15:04 MST"))
	return template.HTML(b.String())
}

// barHeight maps an availability to a bar height: full at 100%, the
// floor below 95%.
func barHeight(a, full float64) float64 {
	const floor = 0.95
	r := (a - floor) / (1 - floor)
	return 4 + (full-4)*min(max(r, 0), 1)
}

// barsSVG draws a service's daily availability.
func barsSVG(days []availability.Day, slo float64) template.HTML {
	var b strings.Builder
	below := 0
	for _, d := range days {
		if d.Availability < slo {
			below++
		}
	}
	svgOpen(&b, "daily", 70, fmt.Sprintf("Daily availability, last %d days", len(days)),
		fmt.Sprintf("%d days, %d below the SLO of %s.", len(days), below, Avail(slo)))
	step := chartWidth / float64(max(len(days), 1))
	for i, d := range days {
		h := barHeight(d.Availability, 50)
		cls := "ok"
		mark := ""
		if d.Availability < slo {
			cls = "bad"
			mark = fmt.Sprintf(`<text x="%.1f" y="66" class="mark">▲</text>`, float64(i)*step+step/2)
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="%s"><title>%s: %s, %s down, %d incidents</title></rect>%s`,
			float64(i)*step+0.5, 54-h, max(step-1, 1), h, cls, d.Date, Avail(d.Availability), Duration(int64(d.DowntimeSeconds)), d.Incidents, mark)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// statusSVG draws a status group's worst availability per day.
func statusSVG(g StatusGroup) template.HTML {
	var b strings.Builder
	bad := 0
	for _, d := range g.Days {
		if d.Availability < 1 {
			bad++
		}
	}
	svgOpen(&b, "st-"+strings.Map(idRune, g.Name), 40, "Uptime of "+g.Name+", last 90 days",
		fmt.Sprintf("%d of %d days with downtime.", bad, len(g.Days)))
	step := chartWidth / float64(HistoryDays)
	off := HistoryDays - len(g.Days)
	for i, d := range g.Days {
		h := barHeight(d.Availability, 34)
		cls := "ok"
		if d.Availability < 1 {
			cls = "bad"
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" class="%s"><title>%s: %s</title></rect>`,
			float64(off+i)*step+0.5, 36-h, max(step-1.5, 1), h, cls, d.Date, Avail(d.Availability))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func idRune(r rune) rune {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
		return r
	}
	return '-'
}

// axisSVG draws a service's incidents and changes on one time axis.
func axisSVG(v ServiceView) template.HTML {
	var b strings.Builder
	span := v.To.Sub(v.From)
	x := func(t time.Time) float64 {
		return min(max(chartWidth*float64(t.Sub(v.From))/float64(span), 0), chartWidth)
	}
	svgOpen(&b, "axis", 84, fmt.Sprintf("Incidents and changes, last %d days", HistoryDays),
		fmt.Sprintf("%d incidents (upper row) and %d changes (lower row, triangles).", len(v.Spans), len(v.Changes)))
	b.WriteString(`<text x="0" y="12" class="axis">incidents</text><rect x="0" y="16" width="900" height="20" class="track"/>`)
	for _, s := range v.Spans {
		end := v.To
		if s.EndedAt != nil {
			end = *s.EndedAt
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="16" width="%.1f" height="20" %s><title>%s</title></rect>`, x(s.StartedAt), max(x(end)-x(s.StartedAt), 2), fill(s.Impact),
			html.EscapeString(fmt.Sprintf("%s (%s), %s, %s", s.Title, s.Impact, s.StartedAt.Format(timeFmt), Duration(s.DurationSeconds))))
	}
	b.WriteString(`<text x="0" y="50" class="axis">changes</text>`)
	for _, c := range v.Changes {
		cx := x(c.At)
		fmt.Fprintf(&b, `<path d="M%.1f 56 l-5 10 h10 z" class="change-%s"><title>%s</title></path>`, cx, html.EscapeString(string(c.Kind)),
			html.EscapeString(fmt.Sprintf("%s %s %s (%s), %s", c.Kind, c.Service, c.Version, c.Status, c.At.UTC().Format(timeFmt))))
	}
	fmt.Fprintf(&b, `<text x="0" y="80" class="axis">%s</text><text x="900" y="80" class="axis end">%s</text></svg>`,
		v.From.UTC().Format("Jan 2"), v.To.UTC().Format("Jan 2"))
	return template.HTML(b.String())
}
