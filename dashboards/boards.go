package dashboards

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ninesops/nines/catalog"
)

// The three kinds of dashboards.

// overview is every service's availability against its SLO, open
// incidents, incidents and downtime over time, MTTA/MTTR, the services
// burning budget fastest, and nines' own health.
func (b *builder) overview() *Dashboard {
	squadVar := Variable{
		Type: "custom", Name: varSquad, Label: "Squad",
		Description: "Owning squad (catalog owner); All also shows uncatalogued services",
		Query:       strings.Join(b.squads, ","),
		Current:     allSelected(),
		Options:     []VariableOption{},
		Multi:       true,
		IncludeAll:  true,
		AllValue:    allValue,
	}
	ownerCond := "('" + allValue + "' IN (${squad:singlequote}) OR owner IN (${squad:singlequote}))"
	vars := append(b.datasourceVariables(),
		b.windowVariable(),
		squadVar,
		b.serviceQueryVariable(ownerCond, true),
		constantVariable(varNinesURL, b.opts.NinesURL),
	)
	links := append(navigationLinks()[1:],
		link("nines API: availability", "Every service's figures for the window, worst first", apiURL("/api/v1/availability?window=${window}"), true),
	)

	var l layout
	l.row("Availability over ${window}")
	l.add(b.availabilityTable(true), 24, 10)

	l.row("Incidents")
	l.add(b.openIncidentsTable(), 16, 8)
	openProm := panel("stat", "Open incidents by impact (collector)",
		"Open incidents of the selected services as nines' collector reports them.",
		promQuery("A", `sum by (impact) (nines_incidents_open{service=~"${service:regex}"})`, "{{impact}}", true))
	openProm.FieldConfig.Defaults.Unit = "none"
	openProm.FieldConfig.Defaults.Color = &FieldColor{Mode: "thresholds"}
	openProm.FieldConfig.Defaults.Thresholds = thresholds("green", step("red", 1))
	openProm.Options["textMode"] = "value_and_name"
	l.add(openProm, 8, 8)

	l.add(b.incidentsOpened(), 12, 8)
	l.add(b.downtimeByService(), 12, 8)
	l.add(b.mttaMTTR(), 12, 8)
	l.add(b.burnRate(), 12, 8)

	l.row("Collector (Prometheus)")
	avail := panel("bargauge", "Availability over ${window} (collector)",
		"nines_service_availability_ratio for the window, as Prometheus scraped it from nines.",
		promQuery("A", `sort(nines_service_availability_ratio{service=~"${service:regex}", window="${window}"})`, "{{service}}", true))
	avail.FieldConfig.Defaults.Unit = "percentunit"
	avail.FieldConfig.Defaults.Decimals = intp(3)
	avail.FieldConfig.Defaults.Min = floatp(0.99)
	avail.FieldConfig.Defaults.Max = floatp(1)
	avail.FieldConfig.Defaults.Color = &FieldColor{Mode: "thresholds"}
	avail.FieldConfig.Defaults.Thresholds = thresholds("red", step("orange", 0.99), step("yellow", 0.999), step("green", 0.9995))
	l.add(avail, 12, 8)
	webhook := panel("timeseries", "Webhook requests",
		"Alertmanager notifications nines received, per second, by HTTP status code.",
		promQuery("A", `sum by (code) (rate(nines_webhook_requests_total[$__rate_interval]))`, "{{code}}", false))
	webhook.FieldConfig.Defaults.Unit = "reqps"
	l.add(webhook, 8, 8)
	up := panel("stat", "Collector up",
		"1 when nines' collector computed its figures from ClickHouse at the last scrape.",
		promQuery("A", `min(nines_collector_up)`, "", true))
	up.FieldConfig.Defaults.Color = &FieldColor{Mode: "thresholds"}
	up.FieldConfig.Defaults.Thresholds = thresholds("red", step("green", 1))
	up.FieldConfig.Defaults.Mappings = []ValueMapping{{Type: "value", Options: map[string]ValueMappingResult{
		"0": {Text: "down", Color: "red", Index: 0},
		"1": {Text: "up", Color: "green", Index: 1},
	}}}
	up.Options["colorMode"] = "background"
	l.add(up, 4, 8)

	return b.dashboard(overviewUID, "nines — Overview",
		"Every service's availability against its SLO, open incidents, incidents and downtime over time, MTTA/MTTR and the services burning their error budget fastest.",
		[]string{tagNines, tagOverview}, vars, links, &l)
}

// squad is one squad's services side by side.
func (b *builder) squad(name string) *Dashboard {
	ownerCond := "owner = " + sqlString(name)
	vars := append(b.datasourceVariables(),
		b.windowVariable(),
		constantVariable(varSquad, name),
		b.serviceQueryVariable(ownerCond, false),
		constantVariable(varNinesURL, b.opts.NinesURL),
	)
	links := append(navigationLinks(),
		tagLink("Services of "+name, tagService, squadTag(name)),
	)

	var l layout
	l.row("Availability over ${window}")
	stat := panel("stat", "${service}", "The service's availability over the window; red below its SLO target.",
		chQuery("A", b.availabilitySQL(false), false, "availability"))
	stat.FieldConfig.Defaults.Unit = "percentunit"
	stat.FieldConfig.Defaults.Decimals = intp(3)
	stat.FieldConfig.Defaults.Color = &FieldColor{Mode: "thresholds"}
	stat.FieldConfig.Defaults.Thresholds = thresholds("red", step("orange", 0.99), step("green", 0.999))
	stat.TimeFrom = "${window}"
	stat.Repeat, stat.RepeatDirection, stat.MaxPerRow = varService, "h", 6
	stat.Options["colorMode"] = "background"
	l.add(stat, 4, 4)
	l.add(b.availabilityTable(false), 24, 8)

	l.row("Incidents")
	l.add(b.openIncidentsTable(), 12, 8)
	l.add(b.downtimeByService(), 12, 8)
	budget := panel("bargauge", "Error budget left over ${window} (collector)",
		"nines_service_error_budget_remaining_ratio of the squad's services, as Prometheus scraped it from nines.",
		promQuery("A", `sort(nines_service_error_budget_remaining_ratio{owner="${squad}", window="${window}"})`, "{{service}}", true))
	budget.FieldConfig.Defaults.Unit = "percentunit"
	budget.FieldConfig.Defaults.Min = floatp(0)
	budget.FieldConfig.Defaults.Max = floatp(1)
	budget.FieldConfig.Defaults.Color = &FieldColor{Mode: "thresholds"}
	budget.FieldConfig.Defaults.Thresholds = budgetThresholds()
	l.add(budget, 12, 8)
	l.add(b.incidentsOpened(), 12, 8)

	return b.dashboard(squadUID(name), "nines — Squad "+name,
		"The services squad "+name+" owns, side by side: availability against SLO, incidents and downtime.",
		[]string{tagNines, tagSquad}, vars, links, &l)
}

// service is one service: availability over 24h/7d/30d/90d, error budget
// and its burndown, downtime per day, its incidents and their timeline, and
// its upstream dependencies with the downtime they caused.
func (b *builder) service(s serviceInfo) *Dashboard {
	vars := append(b.datasourceVariables(),
		b.windowVariable(),
		constantVariable(varService, s.Name),
		constantVariable(varNinesURL, b.opts.NinesURL),
	)
	links := navigationLinks()
	if s.Owner != "" {
		links = append(links,
			link("Squad "+s.Owner, "The squad's services side by side", "/d/"+s.squadUID+"?var-window=${window}", false),
			tagLink("Services of "+s.Owner, tagService, squadTag(s.Owner)))
	}
	links = append(links, link("nines API: "+s.Name, "The service's availability for the window, with the incidents that make it up", apiURL("/api/v1/services/"+s.Name+"/availability?window=${window}&explain=1"), true))
	if s.RunbookURL != "" {
		links = append(links, link("Runbook", "", s.RunbookURL, true))
	}
	if s.DashboardURL != "" {
		links = append(links, link("Service dashboard", "The service's own dashboard", s.DashboardURL, true))
	}

	var l layout
	l.row("Availability (SLO " + catalog.Percent(s.SLOTarget) + ")")
	for _, w := range Windows() {
		p := panel("stat", "Availability "+w, "Availability over the last "+w+"; red below the SLO target.",
			chQuery("A", b.availabilitySQL(false), false, "availability"))
		b.availabilityField(p, s.SLOTarget)
		p.TimeFrom = w
		p.HideTimeOverride = true
		l.add(p, 4, 4)
	}
	own := panel("stat", "Own availability over ${window}",
		"Availability without the downtime of incidents nines linked to an upstream incident (caused_by).",
		chQuery("A", b.availabilitySQL(true), false, "availability", "own_availability"))
	b.availabilityField(own, s.SLOTarget)
	own.FieldConfig.Overrides = []Override{
		override("availability", prop("displayName", "experienced")),
		override("own_availability", prop("displayName", "own")),
	}
	own.Options["textMode"] = "value_and_name"
	own.TimeFrom = "${window}"
	own.HideTimeOverride = true
	l.add(own, 4, 4)
	slo := panel("stat", "SLO target (collector)", "nines_service_slo_target_ratio, as Prometheus scraped it from nines.",
		promQuery("A", `nines_service_slo_target_ratio{service="${service}"}`, "", true))
	slo.FieldConfig.Defaults.Unit = "percentunit"
	slo.FieldConfig.Defaults.Decimals = intp(3)
	slo.FieldConfig.Defaults.Color = &FieldColor{Mode: "fixed", FixedColor: "text"}
	l.add(slo, 4, 4)

	l.row("Error budget over ${window}")
	budget := panel("stat", "Error budget",
		"Share of the error budget left over the window, the downtime, and the downtime the SLO target allows.",
		chQuery("A", b.errorBudgetSQL(s.SLOTarget), false, "error_budget_remaining", "downtime_seconds", "allowed_downtime_seconds"))
	budget.FieldConfig.Defaults.Color = &FieldColor{Mode: "thresholds"}
	budget.FieldConfig.Defaults.Thresholds = budgetThresholds()
	budget.FieldConfig.Overrides = []Override{
		override("error_budget_remaining", prop("displayName", "budget left"), prop("unit", "percentunit"), prop("decimals", 1)),
		override("downtime_seconds", prop("displayName", "downtime"), prop("unit", "s"), prop("color", map[string]any{"mode": "fixed", "fixedColor": "text"})),
		override("allowed_downtime_seconds", prop("displayName", "allowed"), prop("unit", "s"), prop("color", map[string]any{"mode": "fixed", "fixedColor": "text"})),
	}
	budget.Options["orientation"] = "horizontal"
	budget.Options["textMode"] = "value_and_name"
	budget.TimeFrom = "${window}"
	budget.HideTimeOverride = true
	l.add(budget, 6, 8)
	burn := panel("timeseries", "Error budget burndown",
		"Error budget left at each moment of the window, against the line of a budget spent evenly over it.",
		chQuery("A", b.burndownSQL(s), true, "time", "error_budget_remaining", "even_burn"))
	burn.FieldConfig.Defaults.Unit = "percentunit"
	burn.FieldConfig.Defaults.Custom["axisSoftMin"] = 0
	burn.FieldConfig.Defaults.Custom["thresholdsStyle"] = map[string]any{"mode": "line+area"}
	burn.FieldConfig.Defaults.Thresholds = thresholds("red", step("transparent", 0))
	burn.FieldConfig.Overrides = []Override{
		override("error_budget_remaining", prop("displayName", "budget left"), prop("custom.lineWidth", 2)),
		override("even_burn", prop("displayName", "spent evenly"), prop("custom.lineStyle", map[string]any{"fill": "dash", "dash": []int{10, 10}}),
			prop("color", map[string]any{"mode": "fixed", "fixedColor": "text"}), prop("custom.fillOpacity", 0)),
	}
	burn.TimeFrom = "${window}"
	l.add(burn, 18, 8)
	perDay := bars(panel("timeseries", "Downtime per day",
		"Downtime weighted by impact, maintenance left out, per day of the catalog's time zone ("+b.tz+"), as nines' daily series computes it.",
		chQuery("A", b.downtimePerDaySQL(s), true, "time", "downtime_seconds")))
	perDay.FieldConfig.Defaults.Unit = "s"
	perDay.FieldConfig.Overrides = []Override{
		override("downtime_seconds", prop("displayName", "downtime"), prop("color", map[string]any{"mode": "fixed", "fixedColor": "red"})),
	}
	perDay.Interval = "1d"
	l.add(perDay, 12, 8)
	trend := panel("timeseries", "Availability (collector)",
		"nines_service_availability_ratio and nines_service_own_availability_ratio by window, as Prometheus scraped them from nines.",
		promQuery("A", `nines_service_availability_ratio{service="${service}"}`, "{{window}}", false),
		promQuery("B", `nines_service_own_availability_ratio{service="${service}"}`, "own {{window}}", false))
	trend.FieldConfig.Defaults.Unit = "percentunit"
	trend.FieldConfig.Defaults.Decimals = intp(3)
	trend.FieldConfig.Defaults.Custom["thresholdsStyle"] = map[string]any{"mode": "dashed"}
	trend.FieldConfig.Defaults.Thresholds = thresholds("transparent", step("red", s.SLOTarget))
	delete(trend.FieldConfig.Defaults.Custom, "axisSoftMin")
	l.add(trend, 12, 8)

	l.row("Incidents")
	timeline := panel("state-timeline", "Incident timeline",
		"The worst impact of the service's incidents firing in each interval.",
		chQuery("A", b.timelineSQL(), true, "time", "incident"))
	timeline.FieldConfig.Defaults.Color = &FieldColor{Mode: "thresholds"}
	timeline.FieldConfig.Defaults.Thresholds = thresholds("green")
	timeline.FieldConfig.Defaults.Mappings = []ValueMapping{{Type: "value", Options: map[string]ValueMappingResult{
		"0": {Text: "no incident", Color: "green", Index: 0},
		"1": {Text: "incident without impact", Color: "blue", Index: 1},
		"2": {Text: "degraded", Color: "orange", Index: 2},
		"3": {Text: "outage", Color: "red", Index: 3},
	}}}
	timeline.FieldConfig.Overrides = []Override{override("incident", prop("displayName", s.Name))}
	timeline.Options["legend"] = map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": false}
	l.add(timeline, 24, 5)
	l.add(b.incidentsTable(), 24, 10)
	l.add(b.incidentsOpened(), 8, 7)
	mtt := panel("stat", "MTTA / MTTR over ${window} (collector)",
		"Mean time to acknowledge and to resolve, as nines' collector reports them.",
		promQuery("A", `nines_service_mtta_seconds{service="${service}", window="${window}"}`, "MTTA", true),
		promQuery("B", `nines_service_mttr_seconds{service="${service}", window="${window}"}`, "MTTR", true))
	mtt.FieldConfig.Defaults.Unit = "s"
	mtt.FieldConfig.Defaults.Color = &FieldColor{Mode: "fixed", FixedColor: "text"}
	mtt.Options["textMode"] = "value_and_name"
	l.add(mtt, 8, 7)
	down := panel("stat", "Downtime by impact over ${window} (collector)",
		"nines_service_downtime_seconds by impact, as Prometheus scraped it from nines.",
		promQuery("A", `nines_service_downtime_seconds{service="${service}", window="${window}"}`, "{{impact}}", true))
	down.FieldConfig.Defaults.Unit = "s"
	down.FieldConfig.Defaults.Color = &FieldColor{Mode: "fixed", FixedColor: "text"}
	down.Options["textMode"] = "value_and_name"
	l.add(down, 8, 7)

	l.row("Dependencies")
	if len(s.upstream) > 0 {
		l.add(b.upstreamTable(s), 12, 8)
	} else {
		l.add(panel("text", "Upstream services", "**"+s.Name+"** declares no dependencies in the service catalog."), 12, 8)
	}
	l.add(b.causedIncidentsTable(), 12, 8)

	tags := []string{tagNines, tagService}
	if s.Owner != "" {
		tags = append(tags, squadTag(s.Owner))
	}
	if s.Tier > 0 {
		tags = append(tags, "tier:"+strconv.Itoa(s.Tier))
	}
	desc := "Availability, error budget, incidents and dependencies of " + s.Name + "."
	if s.Description != "" {
		desc += " " + s.Description
	}
	title := "nines — " + s.Name
	d := b.dashboard(s.uid, title, desc, tags, vars, links, &l)
	d.Annotations.List = append(d.Annotations.List, b.changeAnnotationQueries()...)
	return d
}

// availabilityField formats an availability stat: percent, coloured red
// below the SLO target.
func (b *builder) availabilityField(p *Panel, slo float64) {
	p.FieldConfig.Defaults.Unit = "percentunit"
	p.FieldConfig.Defaults.Decimals = intp(3)
	p.FieldConfig.Defaults.Min = floatp(0)
	p.FieldConfig.Defaults.Max = floatp(1)
	p.FieldConfig.Defaults.Color = &FieldColor{Mode: "thresholds"}
	p.FieldConfig.Defaults.Thresholds = sloThresholds(slo)
	p.Options["colorMode"] = "background"
}

// availabilityTable is the services' availability against their SLO.
func (b *builder) availabilityTable(uncatalogued bool) *Panel {
	p := panel("table", "Availability vs SLO over ${window}",
		"Every selected service's availability over the window, as nines' API computes it (downtime weighted by impact: "+
			b.weightsNote()+"; maintenance left out), own availability (without downtime caused upstream), and the error budget left. Worst budget first.",
		chQuery("A", b.availabilityTableSQL(uncatalogued), false,
			"service", "owner", "tier", "slo_target", "availability", "own_availability", "downtime_seconds",
			"incident_count", "error_budget_remaining", "dashboard_uid", "squad_uid"))
	percent := func(name, display string) Override {
		return override(name, prop("displayName", display), prop("unit", "percentunit"), prop("decimals", 3))
	}
	p.FieldConfig.Overrides = []Override{
		override("service", prop("displayName", "Service"), serviceLinks("dashboard_uid")),
		override("owner", prop("displayName", "Squad"), links(DataLink{Title: "Squad ${__value.text}", URL: dashboardURL("squad_uid")})),
		override("tier", prop("displayName", "Tier"), prop("custom.width", 60)),
		percent("slo_target", "SLO"),
		percent("availability", "Availability"),
		percent("own_availability", "Own availability"),
		override("downtime_seconds", prop("displayName", "Downtime"), prop("unit", "s")),
		override("incident_count", prop("displayName", "Incidents")),
		override("error_budget_remaining", prop("displayName", "Budget left"), prop("unit", "percentunit"), prop("decimals", 1),
			prop("thresholds", budgetThresholds()), prop("color", map[string]any{"mode": "thresholds"}), colorCell("basic")),
		hidden("dashboard_uid"),
		hidden("squad_uid"),
	}
	p.TimeFrom = "${window}"
	p.HideTimeOverride = true
	return p
}

func formatWeight(w float64) string { return strconv.FormatFloat(w, 'g', -1, 64) }

func (b *builder) weightsNote() string {
	w := b.opts.Weights
	return fmt.Sprintf("outage %s, degraded %s, none %s", formatWeight(w.Outage), formatWeight(w.Degraded), formatWeight(w.None))
}

// openIncidentsTable lists open incidents, worst first.
func (b *builder) openIncidentsTable() *Panel {
	p := panel("table", "Open incidents", "Incidents not resolved yet, worst impact first, then oldest.",
		chQuery("A", b.openIncidentsSQL(), false,
			"id", "service", "title", "impact", "state", "started_at", "acknowledged", "open_seconds"))
	p.FieldConfig.Overrides = []Override{
		override("id", prop("displayName", "Incident"), incidentLinks()),
		override("service", prop("displayName", "Service")),
		override("title", prop("displayName", "Title")),
		override("impact", prop("displayName", "Impact"), prop("mappings", impactMappings()), colorCell("basic")),
		override("state", prop("displayName", "State"), prop("mappings", stateMappings()), colorCell("basic")),
		override("started_at", prop("displayName", "Started"), prop("unit", "dateTimeAsIso")),
		override("acknowledged", prop("displayName", "Acknowledged"), prop("unit", "dateTimeAsIso")),
		override("open_seconds", prop("displayName", "Open for"), prop("unit", "s")),
	}
	return p
}

// incidentsOpened counts incidents by start and impact.
func (b *builder) incidentsOpened() *Panel {
	p := bars(panel("timeseries", "Incidents opened",
		"Incidents that started in each interval, by impact.",
		chQuery("A", b.incidentsOpenedSQL(), true, "time", "outage", "degraded", "no_impact")))
	p.FieldConfig.Defaults.Unit = "none"
	p.FieldConfig.Defaults.Decimals = intp(0)
	p.FieldConfig.Overrides = []Override{
		override("outage", prop("color", map[string]any{"mode": "fixed", "fixedColor": "red"})),
		override("degraded", prop("color", map[string]any{"mode": "fixed", "fixedColor": "orange"})),
		override("no_impact", prop("displayName", "no impact"), prop("color", map[string]any{"mode": "fixed", "fixedColor": "blue"})),
	}
	p.Interval = "1h"
	return p
}

// downtimeByService is each service's outage time per interval.
func (b *builder) downtimeByService() *Panel {
	p := bars(panel("timeseries", "Outage time by service",
		"Seconds of each interval during which the service had an outage (overlapping incidents count once).",
		chQuery("A", b.downtimeByServiceSQL(), true, "time", "service", "outage_seconds")))
	p.FieldConfig.Defaults.Unit = "s"
	p.FieldConfig.Defaults.DisplayName = "${__field.labels.service}"
	p.Interval = "1h"
	return p
}

// mttaMTTR is the trend of mean times to acknowledge and resolve.
func (b *builder) mttaMTTR() *Panel {
	p := panel("timeseries", "MTTA / MTTR",
		"Mean time to acknowledge, and to recover (firing time, gaps of a reopened incident excluded), of the incidents that started each day.",
		chQuery("A", b.mttaMTTRSQL(), true, "time", "mtta_seconds", "mttr_seconds"))
	p.FieldConfig.Defaults.Unit = "s"
	p.FieldConfig.Defaults.Custom["showPoints"] = "always"
	p.FieldConfig.Defaults.Custom["spanNulls"] = true
	p.FieldConfig.Overrides = []Override{
		override("mtta_seconds", prop("displayName", "MTTA")),
		override("mttr_seconds", prop("displayName", "MTTR")),
	}
	p.Interval = "1d"
	return p
}

// burnRate ranks services by error budget burn rate.
func (b *builder) burnRate() *Panel {
	p := panel("table", "Burning error budget fastest",
		"Services spending their error budget fastest: downtime over the last hour and the last 24 hours as a multiple of the rate that would spend the budget exactly (1×).",
		chQuery("A", b.burnRateSQL(), false, "service", "owner", "slo_target", "burn_rate_1h", "burn_rate_window", "dashboard_uid"))
	burn := func(name, display string) Override {
		return override(name, prop("displayName", display), prop("unit", "suffix:×"), prop("decimals", 1),
			prop("thresholds", burnThresholds()), prop("color", map[string]any{"mode": "thresholds"}), colorCell("basic"))
	}
	p.FieldConfig.Overrides = []Override{
		override("service", prop("displayName", "Service"), serviceLinks("dashboard_uid")),
		override("owner", prop("displayName", "Squad")),
		override("slo_target", prop("displayName", "SLO"), prop("unit", "percentunit"), prop("decimals", 3)),
		burn("burn_rate_1h", "Burn rate 1h"),
		burn("burn_rate_window", "Burn rate 24h"),
		hidden("dashboard_uid"),
	}
	p.TimeFrom = "24h"
	p.HideTimeOverride = true
	return p
}

// incidentsTable lists a service's incidents of the dashboard's range.
func (b *builder) incidentsTable() *Panel {
	p := panel("table", "Incidents",
		"The service's incidents open at some time of the dashboard's range, latest first. Links open them in nines' API.",
		chQuery("A", b.incidentsSQL(), false,
			"id", "title", "impact", "state", "started_at", "acknowledged", "resolved", "duration_seconds", "flaps", "caused_by"))
	p.FieldConfig.Overrides = []Override{
		override("id", prop("displayName", "Incident"), incidentLinks()),
		override("title", prop("displayName", "Title")),
		override("impact", prop("displayName", "Impact"), prop("mappings", impactMappings()), colorCell("basic")),
		override("state", prop("displayName", "State"), prop("mappings", stateMappings()), colorCell("basic")),
		override("started_at", prop("displayName", "Started"), prop("unit", "dateTimeAsIso")),
		override("acknowledged", prop("displayName", "Acknowledged"), prop("unit", "dateTimeAsIso")),
		override("resolved", prop("displayName", "Resolved"), prop("unit", "dateTimeAsIso")),
		override("duration_seconds", prop("displayName", "Duration"), prop("unit", "s")),
		override("flaps", prop("displayName", "Flaps")),
		override("caused_by", prop("displayName", "Caused by"), incidentLinks()),
	}
	return p
}

// upstreamTable lists a service's upstream services.
func (b *builder) upstreamTable(s serviceInfo) *Panel {
	p := panel("table", "Upstream services over ${window}",
		"The services "+s.Name+" depends on (catalog), their availability over the window, and the downtime of "+s.Name+"'s incidents nines linked to one of theirs.",
		chQuery("A", b.upstreamSQL(s), false, "service", "relation", "availability", "caused_downtime_seconds", "dashboard_uid"))
	p.FieldConfig.Overrides = []Override{
		override("service", prop("displayName", "Upstream"), serviceLinks("dashboard_uid")),
		override("relation", prop("displayName", "Dependency")),
		override("availability", prop("displayName", "Its availability"), prop("unit", "percentunit"), prop("decimals", 3)),
		override("caused_downtime_seconds", prop("displayName", "Downtime caused here"), prop("unit", "s"),
			prop("thresholds", thresholds("green", step("red", 1))), prop("color", map[string]any{"mode": "thresholds"}), colorCell("basic")),
		hidden("dashboard_uid"),
	}
	p.TimeFrom = "${window}"
	p.HideTimeOverride = true
	return p
}

// causedIncidentsTable lists a service's incidents caused upstream.
func (b *builder) causedIncidentsTable() *Panel {
	p := panel("table", "Incidents caused upstream",
		"The service's incidents of the dashboard's range that nines linked to an upstream incident.",
		chQuery("A", b.causedIncidentsSQL(), false,
			"id", "title", "impact", "started_at", "duration_seconds", "caused_by", "upstream_service"))
	p.FieldConfig.Overrides = []Override{
		override("id", prop("displayName", "Incident"), incidentLinks()),
		override("title", prop("displayName", "Title")),
		override("impact", prop("displayName", "Impact"), prop("mappings", impactMappings()), colorCell("basic")),
		override("started_at", prop("displayName", "Started"), prop("unit", "dateTimeAsIso")),
		override("duration_seconds", prop("displayName", "Duration"), prop("unit", "s")),
		override("caused_by", prop("displayName", "Caused by"), incidentLinks()),
		override("upstream_service", prop("displayName", "Upstream service")),
	}
	return p
}
