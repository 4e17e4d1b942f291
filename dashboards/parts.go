package dashboards

import (
	"fmt"
	"strings"
)

// Building blocks shared by the dashboards: datasources, variables, links,
// panels and field settings.

// Variable names. Queries refer to them as ${name}.
const (
	varClickHouse = "ds_clickhouse"
	varPrometheus = "ds_prometheus"
	varWindow     = "window"
	varService    = "service"
	varSquad      = "squad"
	varNinesURL   = "nines_url"
	// allValue is what a multi-value variable's "All" stands for in
	// queries, so that SQL can tell "everything" from a list of values.
	allValue = "__all__"
)

// Dashboard tags: every nines dashboard has tagNines, and one of the kind
// tags, which dashboard links select.
const (
	tagNines    = "nines"
	tagOverview = "nines-overview"
	tagSquad    = "nines-squad"
	tagService  = "nines-service"
)

func squadTag(squad string) string { return "squad:" + squad }

func clickHouseDS() *DataSourceRef {
	return &DataSourceRef{Type: ClickHousePluginID, UID: "${" + varClickHouse + "}"}
}

func prometheusDS() *DataSourceRef {
	return &DataSourceRef{Type: "prometheus", UID: "${" + varPrometheus + "}"}
}

// datasourceVariables let users pick the ClickHouse and Prometheus
// datasources; they default to the provisioned ones.
func (b *builder) datasourceVariables() []Variable {
	return []Variable{
		{
			Type: "datasource", Name: varClickHouse, Label: "ClickHouse",
			Description: "ClickHouse datasource holding nines' incidents (database nines)",
			Query:       ClickHousePluginID,
			Current:     &VariableOption{Selected: true, Text: b.opts.ClickHouseUID, Value: b.opts.ClickHouseUID},
			Options:     []VariableOption{},
			Refresh:     refreshOnLoad,
		},
		{
			Type: "datasource", Name: varPrometheus, Label: "Prometheus",
			Description: "Prometheus that scrapes nines' /metrics",
			Query:       "prometheus",
			Current:     &VariableOption{Selected: true, Text: b.opts.PrometheusUID, Value: b.opts.PrometheusUID},
			Options:     []VariableOption{},
			Refresh:     refreshOnLoad,
		},
	}
}

// windowVariable chooses the availability window. Panels that report "for
// the window" use it as their relative time (timeFrom), so their SQL sees
// it as $__fromTime…$__toTime; Prometheus queries match it to the window
// label; links pass it to nines' API.
func (b *builder) windowVariable() Variable {
	var opts []VariableOption
	for _, w := range Windows() {
		opts = append(opts, VariableOption{Selected: w == b.opts.Window, Text: w, Value: w})
	}
	return Variable{
		Type: "custom", Name: varWindow, Label: "Window",
		Description: "Availability window (rolling, ending now)",
		Query:       strings.Join(Windows(), ","),
		Current:     &VariableOption{Selected: true, Text: b.opts.Window, Value: b.opts.Window},
		Options:     opts,
	}
}

// constantVariable is a hidden variable with a fixed value.
func constantVariable(name, value string) Variable {
	return Variable{
		Type: "constant", Name: name, Hide: hideVariable, Query: value,
		Current:     &VariableOption{Selected: true, Text: value, Value: value},
		Options:     []VariableOption{{Selected: true, Text: value, Value: value}},
		SkipURLSync: true,
	}
}

// allSelected is the current value of a multi-value variable set to All.
func allSelected() *VariableOption {
	return &VariableOption{Selected: true, Text: []string{"All"}, Value: []string{"$__all"}}
}

// serviceQueryVariable lists the services to show, from ClickHouse: those
// of the catalog (and, with uncatalogued, the others that have incidents)
// whose owner passes ownerCond.
func (b *builder) serviceQueryVariable(ownerCond string, uncatalogued bool) Variable {
	sql := "SELECT service\nFROM\n" + sub(b.servicesSQL(uncatalogued)) + "\nWHERE " + ownerCond + "\nORDER BY service"
	return Variable{
		Type: "query", Name: varService, Label: "Service",
		Datasource: clickHouseDS(),
		Query: &ClickHouseVariableQuery{
			RefID: "nines-service", EditorType: "sql", QueryType: "sql", RawSQL: sql,
			columns: []string{"service"},
		},
		Current:    allSelected(),
		Options:    []VariableOption{},
		Multi:      true,
		IncludeAll: true,
		Refresh:    refreshOnLoad,
		Sort:       sortAlphabetical,
	}
}

// link returns a dashboard link to a URL.
func link(title, tooltip, u string, newTab bool) Link {
	icon := "dashboard"
	if newTab {
		icon = "external link"
	}
	return Link{
		Icon: icon, KeepTime: !newTab, Tags: []string{}, TargetBlank: newTab,
		Title: title, Tooltip: tooltip, Type: "link", URL: u,
	}
}

// tagLink returns a link to the dashboards with all of the tags, as a
// dropdown.
func tagLink(title string, tags ...string) Link {
	return Link{
		AsDropdown: true, Icon: "dashboard", KeepTime: true, Tags: tags,
		Title: title, Tooltip: "", Type: "dashboards",
	}
}

// navigationLinks lead from any nines dashboard to the others.
func navigationLinks() []Link {
	return []Link{
		link("Overview", "All services", "/d/"+overviewUID+"?var-window=${window}", false),
		tagLink("Squads", tagNines, tagSquad),
		tagLink("Services", tagNines, tagService),
	}
}

// apiURL is a link into nines' API.
func apiURL(path string) string { return "${" + varNinesURL + "}" + path }

// dashboardURL links to a generated dashboard whose UID a query returns
// in the column field.
func dashboardURL(field string) string {
	return "/d/${__data.fields." + field + "}?${__url_time_range}&var-window=${window}"
}

// chQuery returns a ClickHouse query: a table (format 1) or a time series
// whose first column is the time (format 0).
func chQuery(refID, sql string, timeSeries bool, columns ...string) *ClickHouseQuery {
	q := &ClickHouseQuery{
		RefID: refID, Datasource: clickHouseDS(), EditorType: "sql",
		QueryType: queryTypeTable, Format: formatTable,
		PluginVersion: clickHousePluginVersion, RawSQL: sql, columns: columns,
	}
	if timeSeries {
		q.QueryType, q.Format = queryTypeTimeSeries, formatTimeSeries
	}
	return q
}

// promQuery returns a PromQL query for a graph (range) or for current
// values (instant). Either way its result is one series per label set,
// named by legend, which stats and bar gauges show side by side.
func promQuery(refID, expr, legend string, instant bool) *PrometheusQuery {
	return &PrometheusQuery{
		RefID: refID, Datasource: prometheusDS(), EditorMode: "code",
		Expr: expr, LegendFormat: legend, Range: !instant, Instant: instant,
		Format: "time_series",
	}
}

// panel returns a panel of a type with one or more queries.
func panel(typ, title, description string, targets ...Target) *Panel {
	p := &Panel{
		Type: typ, Title: title, Description: description, Targets: targets,
		FieldConfig: FieldConfigSource{Overrides: []Override{}},
		Options:     map[string]any{},
	}
	if len(targets) > 0 {
		switch targets[0].(type) {
		case *ClickHouseQuery:
			p.Datasource = clickHouseDS()
		case *PrometheusQuery:
			p.Datasource = prometheusDS()
		}
	}
	switch typ {
	case "stat":
		p.Options = map[string]any{
			"colorMode":     "value",
			"graphMode":     "none",
			"justifyMode":   "auto",
			"orientation":   "auto",
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"textMode":      "auto",
			"wideLayout":    true,
		}
	case "table":
		p.Options = map[string]any{
			"cellHeight": "sm",
			"footer":     map[string]any{"show": false, "reducer": []string{"sum"}, "fields": ""},
			"showHeader": true,
		}
		p.FieldConfig.Defaults.Custom = map[string]any{"align": "auto", "cellOptions": map[string]any{"type": "auto"}, "filterable": true}
	case "timeseries":
		p.Options = map[string]any{
			"legend":  map[string]any{"calcs": []string{}, "displayMode": "list", "placement": "bottom", "showLegend": true},
			"tooltip": map[string]any{"mode": "multi", "sort": "desc"},
		}
		p.FieldConfig.Defaults.Color = &FieldColor{Mode: "palette-classic"}
		p.FieldConfig.Defaults.Custom = map[string]any{
			"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
			"spanNulls": false, "axisSoftMin": 0,
		}
	case "state-timeline":
		p.Options = map[string]any{
			"alignValue":  "left",
			"legend":      map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true},
			"mergeValues": true,
			"rowHeight":   0.8,
			"showValue":   "never",
			"tooltip":     map[string]any{"mode": "single", "sort": "none"},
		}
		p.FieldConfig.Defaults.Custom = map[string]any{"fillOpacity": 80, "lineWidth": 0}
	case "bargauge":
		p.Options = map[string]any{
			"displayMode":   "basic",
			"orientation":   "horizontal",
			"reduceOptions": map[string]any{"calcs": []string{"lastNotNull"}, "fields": "", "values": false},
			"showUnfilled":  true,
			"valueMode":     "color",
		}
	case "text":
		p.Options = map[string]any{"mode": "markdown", "content": description}
		p.Description = ""
	}
	return p
}

// bars draws a time series panel as stacked bars.
func bars(p *Panel) *Panel {
	p.FieldConfig.Defaults.Custom["drawStyle"] = "bars"
	p.FieldConfig.Defaults.Custom["fillOpacity"] = 80
	p.FieldConfig.Defaults.Custom["stacking"] = map[string]any{"group": "A", "mode": "normal"}
	return p
}

// Field settings.

func intp(i int) *int           { return &i }
func floatp(f float64) *float64 { return &f }
func step(color string, v float64) ThresholdStep {
	return ThresholdStep{Color: color, Value: floatp(v)}
}

// thresholds colours by steps above a base colour.
func thresholds(base string, steps ...ThresholdStep) *Thresholds {
	return &Thresholds{Mode: "absolute", Steps: append([]ThresholdStep{{Color: base}}, steps...)}
}

// sloThresholds is red below the SLO target, green from it on.
func sloThresholds(slo float64) *Thresholds { return thresholds("red", step("green", slo)) }

// budgetThresholds colours the share of error budget left.
func budgetThresholds() *Thresholds {
	return thresholds("red", step("orange", 0), step("yellow", 0.25), step("green", 0.5))
}

// burnThresholds colours a burn rate: 1 spends the budget exactly over the
// window; 14.4 over an hour is the classic page-now rate.
func burnThresholds() *Thresholds {
	return thresholds("green", step("yellow", 1), step("orange", 6), step("red", 14.4))
}

func prop(id string, value any) Property { return Property{ID: id, Value: value} }

// override applies properties to the field called name.
func override(name string, props ...Property) Override {
	return Override{Matcher: Matcher{ID: "byName", Options: name}, Properties: props}
}

func hidden(name string) Override { return override(name, prop("custom.hidden", true)) }

func links(ls ...DataLink) Property { return prop("links", ls) }

func colorCell(mode string) Property {
	return prop("custom.cellOptions", map[string]any{"type": "color-background", "mode": mode})
}

// impactMappings names incidents' impact values.
func impactMappings() []ValueMapping {
	return []ValueMapping{{Type: "value", Options: map[string]ValueMappingResult{
		"0": {Text: "none", Color: "blue", Index: 0},
		"1": {Text: "degraded", Color: "orange", Index: 1},
		"2": {Text: "outage", Color: "red", Index: 2},
	}}}
}

// stateMappings colours incidents' states.
func stateMappings() []ValueMapping {
	return []ValueMapping{{Type: "value", Options: map[string]ValueMappingResult{
		"firing":       {Color: "red", Index: 0},
		"acknowledged": {Color: "orange", Index: 1},
		"resolved":     {Color: "green", Index: 2},
	}}}
}

// incidentLinks link a column of incident IDs to the incident's page in
// nines (with its timeline) and to its postmortem draft.
func incidentLinks() Property {
	return links(
		DataLink{Title: "Incident ${__value.text} (nines)", URL: apiURL("/incidents/${__value.raw}"), TargetBlank: true},
		DataLink{Title: "Postmortem draft (nines)", URL: apiURL("/incidents/${__value.raw}/postmortem"), TargetBlank: true},
	)
}

// serviceLinks link a service column to the service's dashboard (whose
// UID the query returns in uidField) and to its figures in nines' API.
func serviceLinks(uidField string) Property {
	return links(
		DataLink{Title: "${__value.text} dashboard", URL: dashboardURL(uidField)},
		DataLink{Title: "${__value.text} in nines", URL: apiURL("/services/${__value.raw}"), TargetBlank: true},
		DataLink{Title: "${__value.text} availability (nines API)", URL: apiURL("/api/v1/services/${__value.raw}/availability?window=${window}"), TargetBlank: true},
	)
}

// String names a panel in messages.
func (p *Panel) String() string { return fmt.Sprintf("panel %d %q", p.ID, p.Title) }
