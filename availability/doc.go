// Package availability turns incidents into availability figures: per
// service and window, how much of the time the service was down, how much of
// its error budget that cost, how quickly incidents were acknowledged and
// resolved, and which upstream services caused some of it.
//
// The arithmetic over incidents runs in the incident store (a Source, which
// package chstore implements with a few aggregate ClickHouse
// queries for all services at once); this package owns the definitions,
// windows, the catalog's part (SLO targets, owners, maintenance windows, time
// zone) and the HTTP API. Every definition below is what the tests check,
// against a plain-Go reference implementation.
//
// # Windows
//
// A window is a span [From, To) in whole seconds. Rolling windows end now:
// "1h", "24h", any Go duration, "7d" (7×24 hours: rolling days are exact
// durations, not calendar days), "2w". Calendar windows are meant in the
// catalog's time zone: "day", "week" (from Monday), "month", "quarter" and
// "year" run from the start of the current period to now; "previous-day",
// "previous-week", "previous-month", "previous-quarter" and "previous-year"
// are the whole previous period. A calendar month has 28 to 31 days and a
// calendar day across a daylight saving change 23 or 25 hours. WindowBetween
// gives an explicit window. Time after now is never counted: the figures of a
// window cover [From, min(To, now)), whose length is window_seconds.
//
// Incidents keep their times to the millisecond (the API shows them so);
// the figures count whole seconds, each time cut to its second first: an
// incident firing 10:00:00.900–10:00:10.100 was down 10 s and, if
// acknowledged at 10:00:05.100, was acknowledged after 5 s.
//
// # Downtime
//
// An incident is down during its firing periods; a period still open counts
// up to now. The periods of all of a service's incidents are clamped to the
// window and merged: two incidents that overlap count once. Time inside the
// service's maintenance windows (from the catalog) counts neither as
// downtime nor as window time; the eligible time of a window is its length
// less maintenance.
//
// Downtime is weighted by impact (Config.ImpactWeights: outage 1, degraded 0
// and none 0 by default). At every instant the weight is that of the worst
// impact open then, among the incidents' impact segments (incidents.Segment:
// a warning 12:00–13:00 and a critical 12:10–12:20 of one incident are
// degraded 12:00–13:00 and outage 12:10–12:20); an incident without
// segments (opened by hand) has its one impact during all its periods. So
// an outage overlapping a degraded period counts the outage's weight once:
//
//	downtime_seconds = Σ over instants outside maintenance of weight(worst impact open)
//	downtime_by_impact_seconds.X = length of the union of the segments (periods) of
//	                               impact X (unweighted, outside maintenance)
//	availability = 1 − downtime_seconds / eligible time (1 when there is no eligible time)
//
// Downtime comes from when alerts fired, not from what people said about
// the incident: a resolve by hand ends the incident's period (the incident
// is resolved, a firing notification of the same alert does not reopen
// it), but not its impact segments, which run until the alert resolves
// (incidents/derive.go). So an alert firing 17:08–18:32 whose incident was
// resolved by hand at 17:13 is 84 minutes of downtime, not 5. Figures
// that count incidents (incidents, MTTA, MTTR, longest) follow the
// incident's periods.
//
// # Not downtime
//
// A person may mark a period of an incident as not downtime (a false
// positive, a test alert: POST /api/v1/incidents/{id}/not-downtime, with a
// required reason; incidents.Exclusion). The mark is a fact kept on the
// incident with who made it, when and why, and an entry on its timeline;
// withdrawing it (with a reason, also on the timeline) makes the period
// count again.
// The marked period [from, to) (by default the whole incident: from its
// start until it ends) is cut out of that incident's impact segments
// (periods) before anything is counted, so it leaves the incident's
// downtime and nothing else:
//
//   - downtime_seconds, own_downtime_seconds, downtime_by_impact_seconds,
//     the error budget consumed, the burn rates, the upstream costs and
//     the daily series leave it out; another incident of the service open
//     at the same time still counts (the mark is about that incident);
//   - eligible time keeps it: the service was in service, only this
//     incident did not take it down (unlike maintenance);
//   - mtbf_seconds leaves it out of failing time (the service was not
//     failing then), and still counts the incident among those that
//     started in the window;
//   - incidents, mtta_seconds, mttr_seconds and longest_incident_seconds
//     follow the incident's periods, which the mark does not change: a
//     false positive still paged someone and took time to deal with.
//
// With explain=1 (nines report --explain), each figure lists the marks on
// the incidents overlapping the window (not_downtime): incident, period,
// who marked it and why, and removed_seconds, the incident's weighted
// downtime inside the mark within the window and outside maintenance (the
// service's downtime falls by less where another incident was down at the
// same time).
//
// own_downtime_seconds and own_availability are the same over the service's
// own incidents only: incidents with a caused_by link to an upstream
// incident are left out, since their downtime was caused elsewhere.
// upstream lists, for each service whose incidents caused some of this
// service's (through caused_by), the upstream incident IDs and the weighted
// downtime of the union of the incidents they caused, most costly first. An
// upstream service of "" means the linked incident is not in the store.
//
// # Incidents and times to respond
//
//   - incidents: the number of incidents overlapping the window, whatever
//     their impact (an impact-none incident weighs nothing but is counted).
//     A period overlaps [From, end) when it starts before end and either
//     starts at or after From or ends after it.
//   - mtta_seconds: the mean time to acknowledge, (acknowledged_at −
//     started_at) over incidents overlapping the window that started in it
//     and were acknowledged before its end (PagerDuty's and incident.io's
//     MTTA: from the start of the incident to the first acknowledgement);
//     null when there are none.
//   - mttr_seconds: the mean time to recover, per incident: over incidents
//     overlapping the window that started in it, the mean of their firing
//     time up to the window's end (the sum of their periods clamped to the
//     window; the gaps of a reopened incident are not downtime and do not
//     count). An incident resolved after the window's end, or not yet,
//     counts its firing time up to the end, so that a past window's figure
//     never changes with the time of asking; for a window that ends now,
//     an incident still firing counts its firing time so far. Null when no
//     incident started in the window. (The Google SRE workbook's "time to
//     recover" and incident.io's "time to resolve" measure from the start
//     of impact to its end; PagerDuty's MTTR from trigger to resolve. nines
//     measures the impact as the alerts saw it: an incident firing
//     12:00–12:10 and 12:20–12:30 recovered in 1,200 s, not 1,800 s.)
//     Maintenance is not subtracted.
//   - mtbf_seconds: the mean time between failures, (eligible time −
//     failing time) / the number of incidents overlapping the window that
//     started in it, where failing time is the time outside maintenance
//     with any outage or degraded incident open, unweighted (a failure
//     whatever the impact weights say it costs); null when no incident
//     started in the window.
//   - longest_incident_seconds: the largest total firing time within the
//     window of one incident (its periods clamped to the window;
//     maintenance not subtracted).
//
// # Error budget
//
//	error_budget_seconds           = (1 − slo_target) × eligible time
//	error_budget_consumed_seconds  = downtime_seconds
//	error_budget_remaining_seconds = error_budget_seconds − consumed (negative once overspent)
//	error_budget_remaining         = remaining seconds / error_budget_seconds (1 with no budget and nothing consumed)
//	burn_rate_1h, burn_rate_24h    = (weighted downtime / eligible time over the last hour or day
//	                                  of the window, up to its end) / (1 − slo_target)
//
// A burn rate of 1 spends the budget exactly over the window; 14.4 over an
// hour is the classic fast-burn page for a 30-day 99.9% SLO. The burn rates
// of a past window are those of its end, not of now, so a report on last
// month says how fast its budget burned as the month ended.
//
// # Figures of a past window
//
// Every figure of a window that has ended depends only on what happened
// before its end: periods, acknowledgements and resolves after it do not
// count (downtime and MTTR clamp to the end, MTTA counts acknowledgements
// before it, the burn rates are of the end). Only a late
// notification that changes the incidents themselves (an alert delivered
// after the fact) changes a past window's figures.
//
// # Daily series
//
// Daily splits [from, to] into calendar days of the catalog's time zone
// (23 or 25 hours across daylight saving changes) and gives each day its
// availability, weighted downtime, maintenance and the number of incidents
// overlapping it, by the definitions above. Days that have not started yet
// are left out; today counts up to now. DailyServices gives the same series
// for many catalogued services at once, in one query when the Source can
// (ManyDailySource).
package availability
