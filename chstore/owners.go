package chstore

import (
	"context"
	"slices"
	"strconv"

	"github.com/ninesops/nines/incidents"
)

var _ incidents.AlertOwnerFinder = (*Store)(nil)

// AlertOwners returns, for the alert occurrences asked for (by ref, keys
// as incidents.Alert.Key), the incident of that ref that holds each one;
// occurrences no incident holds are absent.
func (s *Store) AlertOwners(ctx context.Context, want map[incidents.GroupRef][]incidents.Alert) (map[incidents.GroupRef]map[string]string, error) {
	refList := make([]incidents.GroupRef, 0, len(want))
	fps := map[string]bool{}
	keys := map[incidents.GroupRef]map[string]bool{}
	for ref, alerts := range want {
		refList = append(refList, ref)
		keys[ref] = map[string]bool{}
		for _, a := range alerts {
			fps[a.Fingerprint] = true
			keys[ref][a.Key()] = true
		}
	}
	out := map[incidents.GroupRef]map[string]string{}
	if len(fps) == 0 {
		return out, nil
	}
	// The refs' incidents (incidents is sorted by service), then those of
	// their alerts asked for (incident_alerts is sorted by incident).
	const op = "query_alert_owners"
	refs, _, err := refKeys(refList)
	if err != nil {
		return nil, err
	}
	s.metrics.op(op)
	rows, err := s.conn.Query(refs.context(ctx), `SELECT id, group_key, service FROM incidents
WHERE `+refsFilter+` GROUP BY id, group_key, service`)
	if err != nil {
		return nil, s.fail(ctx, op, err, "find alert owners")
	}
	owner := map[string]incidents.GroupRef{}
	err = func() error {
		defer rows.Close()
		for rows.Next() {
			var (
				id  string
				ref incidents.GroupRef
			)
			if err := rows.Scan(&id, &ref.GroupKey, &ref.Service); err != nil {
				return err
			}
			if keys[ref] != nil {
				owner[id] = ref
			}
		}
		return rows.Err()
	}()
	if err != nil {
		return nil, s.fail(ctx, op, err, "find alert owners")
	}
	if len(owner) == 0 {
		return out, nil
	}
	ids := make(map[string]bool, len(owner))
	for id := range owner {
		ids[id] = true
	}
	fpKeys, err := stringKeys("fingerprint", sorted(fps))
	if err != nil {
		return nil, err
	}
	for chunk := range slices.Chunk(sorted(ids), maxInList) {
		s.metrics.op(op)
		rows, err := s.conn.Query(fpKeys.context(ctx), `SELECT incident_id, fingerprint, starts_at_ms FROM incident_alerts
WHERE incident_id IN ? AND fingerprint IN (SELECT fingerprint FROM keys)
GROUP BY incident_id, fingerprint, starts_at_ms
HAVING argMax(status, version) != 'moved'`, inList(chunk))
		if err != nil {
			return nil, s.fail(ctx, op, err, "find alert owners")
		}
		err = func() error {
			defer rows.Close()
			for rows.Next() {
				var (
					id, fp string
					ms     int64
				)
				if err := rows.Scan(&id, &fp, &ms); err != nil {
					return err
				}
				ref := owner[id]
				if k := fp + "@" + strconv.FormatInt(ms, 10); keys[ref][k] {
					if out[ref] == nil {
						out[ref] = map[string]string{}
					}
					out[ref][k] = id
				}
			}
			return rows.Err()
		}()
		if err != nil {
			return nil, s.fail(ctx, op, err, "find alert owners")
		}
	}
	return out, nil
}

func sorted(m map[string]bool) []string {
	out := keys(m)
	slices.Sort(out)
	return out
}
