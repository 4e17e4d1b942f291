package dashboards

// Change annotations: a service dashboard marks the service's deploys,
// rollbacks and flag changes (package changes) on its time series, each
// kind an annotation query of the ClickHouse datasource that can be
// toggled on its own.

// changeAnnotation is one kind of change drawn as annotations.
type changeAnnotation struct {
	name, kind, color string
}

// changeAnnotations are the kinds of change service dashboards mark.
func changeAnnotations() []changeAnnotation {
	return []changeAnnotation{
		{"Deploys", "deploy", "blue"},
		{"Rollbacks", "rollback", "orange"},
		{"Flag changes", "feature_flag", "purple"},
	}
}

// annotationColumns are what an annotation query returns, named as Grafana
// maps them.
func annotationColumns() []string { return []string{"time", "title", "text", "tags"} }

// changesAnnotationSQL lists the selected service's changes of one kind
// in the dashboard's time range, at their time, latest recorded version
// each (as nines' API lists them): a title like the API's label
// ("checkout v1.4.2 (rollback) at 50%"), its status, environment, actor,
// description and link as text, and tags for Grafana's annotation
// filters.
func (b *builder) changesAnnotationSQL(kind string) string {
	cond := serviceCond + " AND at_ms >= toInt64(toUInt32($__fromTime)) * 1000 AND at_ms < (toInt64(toUInt32($__toTime)) + 1) * 1000"
	return `SELECT
    toDateTime(toUInt32(intDiv(at_ms, 1000)), 'UTC') AS time,
    concat(service,
        if(c_version != '', concat(' ', c_version), if(c_commit != '', concat(' ', substring(c_commit, 1, 12)), '')),
        if(c_kind != 'deploy', concat(' (', replaceAll(c_kind, '_', ' '), ')'), ''),
        if(c_rollout < 1, concat(' at ', toString(round(c_rollout * 100, 4)), '%'), '')) AS title,
    concat(c_status,
        if(c_environment != '', concat(' in ', c_environment), ''),
        if(c_actor != '', concat(' by ', c_actor), ''),
        if(c_description != '', concat('\n', c_description), ''),
        if(c_url != '', concat('\n', c_url), '')) AS text,
    concat('nines,change,', c_kind, ',', c_status) AS tags
FROM
` + sub(b.opts.Queries.Changes(cond)) + `
WHERE c_kind = ` + sqlString(kind) + `
ORDER BY time, id
LIMIT 1000`
}

// changeAnnotationQueries are a service dashboard's annotation queries
// of its changes.
func (b *builder) changeAnnotationQueries() []Annotation {
	var out []Annotation
	for _, c := range changeAnnotations() {
		q := chQuery("nines-"+c.kind, b.changesAnnotationSQL(c.kind), false, annotationColumns()...)
		out = append(out, Annotation{
			Datasource: *clickHouseDS(),
			Enable:     true,
			IconColor:  c.color,
			Name:       c.name,
			Target:     q,
		})
	}
	return out
}
