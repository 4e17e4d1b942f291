// Package collector exposes nines' availability figures and incident counts
// as Prometheus metrics, and generates the Prometheus alerting rules that
// watch them (error budget burn and budget left, per catalogued service).
//
// Scrapes are cheap and bounded. A Collector never queries the store while
// it is being collected: it serves a cache of ready-made metrics that Run
// refreshes in the background, every refresh interval, with a few aggregate
// queries for all services at once (per window, availability.Service.All,
// which the ClickHouse store answers with two queries, and the DORA figures
// in one more; then one incident count). If a refresh fails the last good values stay in
// service, nines_collector_up drops to 0 and nines_collector_data_age_seconds
// keeps growing; the scrape itself still succeeds. The only time a scrape
// waits is before anything has been computed (just after start), for the
// first refresh, and then at most the scrape timeout. Scrapes never start
// refreshes: however many Prometheus servers scrape how often, the store
// sees one refresh per interval.
//
// # Metrics
//
// Per service (catalogued, and uncatalogued ones that have incidents) and
// configured window (default 1h, 24h, 7d, 30d), with the definitions of
// package availability:
//
//	nines_service_availability_ratio{service,owner,window}
//	nines_service_own_availability_ratio{service,owner,window}
//	nines_service_error_budget_remaining_ratio{service,owner,window}
//	nines_service_downtime_seconds{service,owner,window,impact}
//	nines_service_mttr_seconds{service,owner,window}   (absent when undefined)
//	nines_service_mtta_seconds{service,owner,window}   (absent when undefined)
//	nines_service_slo_target_ratio{service,owner}
//
// With a DORASource (nines serve passes changes.Service.DORA, what GET
// /api/v1/dora answers), the delivery figures per service that has
// changes or restored incidents, and window:
//
//	nines_service_deployment_frequency_per_day{service,owner,window}
//	nines_service_change_failure_ratio{service,owner,window}      (absent without deploys)
//	nines_service_rollback_ratio{service,owner,window}            (absent without deploys)
//	nines_service_time_to_restore_seconds{service,owner,window}   (absent when nothing was restored)
//
// From the incident store, so that every replica exports the same values
// and counters survive restarts:
//
//	nines_incidents_open{service,owner,impact,state}
//	nines_incidents_opened_total{service,impact}   impact the incident was opened with
//	nines_incident_flaps_total{service}
//
// About the collector itself:
//
//	nines_collector_up
//	nines_collector_last_success_timestamp_seconds
//	nines_collector_data_age_seconds
//	nines_collector_refresh_duration_seconds      (histogram)
//	nines_collector_refresh_failures_total
//
// Counters stay counters: nines_incidents_opened_total counts an incident
// under the impact it was opened with, which never changes, so a later
// escalation moves nothing between series; both counters come from the
// store, so they survive restarts and replicas agree. Counters and open
// counts are exported at zero too, so that increase() sees a first
// incident and a resolved one shows as a drop to 0.
//
// # Alerting rules
//
// GenerateRules (nines rules generate) writes, per catalogued service,
// multi-window multi-burn-rate alerts on nines_service_availability_ratio
// and an alert when over 75% of the 30-day budget is spent, with the
// service's SLO target and owner from the catalog. The rules use only the
// windows the collector exports (the same --collector.windows): a tier of
// the SRE workbook (1h/5m at 14.4, 6h/30m at 6, 24h/2h at 3, 3d/6h at 1) is
// generated when its long window is exported, paired with its short window
// if exported, else with the longest exported window at most a twelfth as
// long, else alone. With the default windows that gives a page on the last
// hour at 14.4 and a ticket on the last day and hour at 3; exporting
// 5m,30m,1h,2h,6h,24h,3d,7d,30d gives all four tiers with both windows, at
// one more query per window and refresh.
package collector
