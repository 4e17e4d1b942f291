package chstore

import (
	"context"
	"fmt"
	"slices"

	"github.com/ninesops/nines/incidents"
)

// The queries in this file let replicas sharing the store see each other's
// writes (incidents.VersionReader); see incidents/replica.go. Each one
// filters on service, the first column of the sort key, so that it reads
// only the granules of the services concerned.

var _ incidents.VersionReader = (*Store)(nil)

// Heads returns, for each ref, the ID and highest stored version of its
// latest incident (the one opened last, as Latest chooses it); refs
// without incidents are absent.
func (s *Store) Heads(ctx context.Context, refs []incidents.GroupRef) (map[incidents.GroupRef]incidents.Head, error) {
	const op = "query_heads"
	const q = `SELECT group_key, service, id, max(version)
FROM incidents
WHERE ` + refsFilter + `
GROUP BY group_key, service, id
ORDER BY min(opened_at) DESC, id DESC
LIMIT 1 BY group_key, service`
	out := make(map[incidents.GroupRef]incidents.Head, len(refs))
	for chunk := range slices.Chunk(refs, maxInList) {
		chunkKeys, want, err := refKeys(chunk)
		if err != nil {
			return nil, err
		}
		s.metrics.op(op)
		rows, err := s.conn.Query(chunkKeys.context(ctx), q)
		if err != nil {
			return nil, s.fail(ctx, op, err, "latest incident versions")
		}
		err = func() error {
			defer rows.Close()
			for rows.Next() {
				var (
					ref incidents.GroupRef
					h   incidents.Head
				)
				if err := rows.Scan(&ref.GroupKey, &ref.Service, &h.ID, &h.Version); err != nil {
					return err
				}
				if want[ref] {
					out[ref] = h
				}
			}
			return rows.Err()
		}()
		if err != nil {
			return nil, s.fail(ctx, op, err, "latest incident versions")
		}
	}
	return out, nil
}

// versionsPerIncident is how many of an incident's highest versions
// Versions returns.
const versionsPerIncident = 16

// Versions returns, for each incident, its highest distinct stored
// versions, highest first, each with the number of different incident
// rows stored under it.
func (s *Store) Versions(ctx context.Context, ks []incidents.IncidentKey) (map[string][]incidents.StoredVersion, error) {
	const op = "query_versions"
	// variants hashes what an incident row holds besides its version, so
	// that two replicas' different rows under one version number show.
	q := fmt.Sprintf(`SELECT id, version, uniqExact(cityHash64(title, impact, state, started_at, acknowledged_at,
    acknowledged_by, resolved_at, resolved_by, flaps, truncated_alerts, caused_by, period_starts, period_ends,
    alert_count, alerts_firing))
FROM incidents
WHERE %s
GROUP BY id, version
ORDER BY id, version DESC
LIMIT %d BY id`, idsFilter, versionsPerIncident)
	out := make(map[string][]incidents.StoredVersion, len(ks))
	for chunk := range slices.Chunk(ks, maxInList) {
		ids, err := newKeyTable("service", "id")
		if err != nil {
			return nil, err
		}
		for _, k := range chunk {
			if err := ids.add(k.Service, k.ID); err != nil {
				return nil, err
			}
		}
		s.metrics.op(op)
		rows, err := s.conn.Query(ids.context(ctx), q)
		if err != nil {
			return nil, s.fail(ctx, op, err, "incident versions")
		}
		err = func() error {
			defer rows.Close()
			for rows.Next() {
				var (
					id       string
					version  uint64
					variants uint64
				)
				if err := rows.Scan(&id, &version, &variants); err != nil {
					return err
				}
				out[id] = append(out[id], incidents.StoredVersion{Version: version, Variants: int(variants)})
			}
			return rows.Err()
		}()
		if err != nil {
			return nil, s.fail(ctx, op, err, "incident versions")
		}
	}
	return out, nil
}

// GetVersions returns incidents as stored at exactly the versions asked
// for, each with every alert stored for it; versions no longer stored
// (collapsed by a merge) are absent.
func (s *Store) GetVersions(ctx context.Context, ks []incidents.VersionKey) (map[incidents.VersionKey]*incidents.Incident, error) {
	// LIMIT 1 BY keeps one row of each version, as two replicas may have
	// written the same version (identical or not).
	const q = `SELECT id, service, group_key, title, impact, state, source, opened_at, started_at,
    acknowledged_at, acknowledged_by, resolved_at, resolved_by, flaps, truncated_alerts, labels, annotations,
    runbook_url, generator_url, external_url, caused_by, period_starts, period_ends, facts, updated_at, version
FROM incidents
WHERE service IN (SELECT service FROM keys) AND (service, id, version) IN (SELECT service, id, version FROM keys)
ORDER BY id, version
LIMIT 1 BY id, version`
	out := make(map[incidents.VersionKey]*incidents.Incident, len(ks))
	for chunk := range slices.Chunk(ks, maxInList) {
		want := make(map[incidents.VersionKey]bool, len(chunk))
		versions, err := newKeyTable("service", "id", "version")
		if err != nil {
			return nil, err
		}
		for _, k := range chunk {
			if !want[k] {
				want[k] = true
				if err := versions.add(k.Service, k.ID, k.Version); err != nil {
					return nil, err
				}
			}
		}
		const op = "query_version_rows"
		s.metrics.op(op)
		rows, err := s.conn.Query(versions.context(ctx), q)
		if err != nil {
			return nil, s.fail(ctx, op, err, "get incident versions")
		}
		incs, err := s.scanIncidents(rows)
		if err != nil {
			return nil, s.fail(ctx, op, err, "get incident versions")
		}
		// Alerts belong to the incident, not to a version: read them once
		// per incident and give every version its own copy.
		first := map[string]*incidents.Incident{}
		var reps []*incidents.Incident
		for _, inc := range incs {
			if first[inc.ID] == nil {
				first[inc.ID] = inc
				reps = append(reps, inc)
			}
		}
		if err := s.loadAlerts(ctx, reps); err != nil {
			return nil, fmt.Errorf("get incident versions: %w", err)
		}
		for _, inc := range incs {
			if rep := first[inc.ID]; rep != inc {
				inc.Alerts = rep.Clone().Alerts
			}
			k := incidents.VersionKey{IncidentKey: incidents.IncidentKey{Service: inc.Service, ID: inc.ID}, Version: inc.Version()}
			if want[k] {
				out[k] = inc
			}
		}
	}
	return out, nil
}
