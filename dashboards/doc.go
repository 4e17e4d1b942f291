// Package dashboards owns nines' Grafana dashboards as code: it generates
// them from the service catalog (an overview, one dashboard per service and
// one per squad), writes and reads them as JSON files, and publishes them
// through Grafana's HTTP API.
//
// Panels read incidents straight from ClickHouse through the official
// Grafana ClickHouse datasource plugin (its version 4 query model, raw SQL
// with the plugin's macros) and nines' own metrics from Prometheus. Every
// availability figure is the API's, from the API's own SQL: a Queries
// (package chstore's DashboardQueries) writes chstore's availability and
// daily queries with the plugin's macros where the store binds values, and
// the generator adds the catalog's maintenance (written out around the
// time of generation, as runs of intervals at a fixed step: a few per
// recurring window, so that the SQL stays within ClickHouse's
// max_query_size), the config file's impact weights and the catalog's
// time zone. The SQL runs on ClickHouse 18.16 and on current releases.
//
// It is the only package that imports github.com/grafana-tools/sdk; see
// README.md for what that SDK does here and what plain Go types do
// instead.
package dashboards
