package chstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ninesops/nines/chat"
	"github.com/ninesops/nines/incidents"
)

// The chat sender's tables (migrations 0010–0013) and its reads of the
// incident timeline. The sender is the only writer of its tables and
// writes rarely (a few rows a second at most), so these methods insert
// directly rather than through the incident batcher.

var (
	_ chat.Events         = (*Store)(nil)
	_ chat.Ledger         = (*Store)(nil)
	_ chat.Leases         = (*Store)(nil)
	_ chat.IncidentLister = (*Store)(nil)
)

// ChatEventsSince returns, each once, the timeline events stored at or
// after since (inserted_at_ms) whose own time is at or after notBefore, in
// the order they were stored (chat.Events). notBefore lets ClickHouse skip
// the partitions of old events.
func (s *Store) ChatEventsSince(ctx context.Context, since, notBefore time.Time) ([]chat.StoredEvent, error) {
	const op = "query_chat_events"
	s.metrics.op(op)
	// LIMIT 1 BY id applies after ORDER BY: a replayed event counts at
	// its first storage within the range.
	const q = `SELECT id, incident_id, at_ms, kind, actor, text, fingerprint, inserted_at_ms
FROM incident_events
WHERE inserted_at_ms >= ? AND at >= toDateTime(?)
ORDER BY inserted_at_ms, incident_id, at_ms, id
LIMIT 1 BY id`
	rows, err := s.conn.Query(ctx, q, since.UnixMilli(), max(notBefore.Unix(), 0))
	if err != nil {
		return nil, s.fail(ctx, op, err, "read events since %s", since.UTC().Format(time.RFC3339))
	}
	defer rows.Close()
	var out []chat.StoredEvent
	for rows.Next() {
		var (
			e          chat.StoredEvent
			atMS, inMS int64
			kind       string
		)
		if err := rows.Scan(&e.ID, &e.IncidentID, &atMS, &kind, &e.Actor, &e.Text, &e.Fingerprint, &inMS); err != nil {
			return nil, s.fail(ctx, op, err, "read events")
		}
		e.At, e.Kind, e.InsertedAt = fromMS(atMS), incidents.EventKind(kind), time.UnixMilli(inMS).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "read events")
	}
	return out, nil
}

// ChatIncidents returns the latest version of each incident with its
// alerts; unknown IDs are absent (chat.Events).
func (s *Store) ChatIncidents(ctx context.Context, ids []string) (map[string]*incidents.Incident, error) {
	out := make(map[string]*incidents.Incident, len(ids))
	for chunk := range slices.Chunk(ids, maxInList) {
		incs, err := s.queryIncidents(ctx, "query_chat_incidents", selectIncidents("id IN ?", nil, ""), inList(chunk))
		if err != nil {
			return nil, fmt.Errorf("chat incidents: %w", err)
		}
		for _, inc := range incs {
			out[inc.ID] = inc
		}
	}
	return out, nil
}

// deliveryVersion ranks final states above intents, then later rows
// first; 44 bits of milliseconds last until the year 2527.
func deliveryVersion(state chat.DeliveryState, at time.Time) uint64 {
	rank := uint64(1)
	if state.Final() {
		rank = 2
	}
	ms := uint64(max(at.UnixMilli(), 0)) & (1<<44 - 1)
	return rank<<44 | ms
}

// LoadChat returns the latest state of the messages and deliveries of
// incidents, with each delivery's latest intent by another holder than
// self (chat.Ledger).
func (s *Store) LoadChat(ctx context.Context, ids []string, self string) (chat.Records, error) {
	var out chat.Records
	const qm = `SELECT incident_id, channel, argMax(channel_id, version), argMax(ts, version), argMax(hash, version), max(at_ms)
FROM chat_messages
WHERE incident_id IN ?
GROUP BY incident_id, channel`
	const qd = `SELECT incident_id, channel, delivery_key,
    argMax(kind, version), argMax(state, version), argMax(ts, version), argMax(hash, version), argMax(covers, version),
    argMax(error, version), argMax(holder, version), argMax(at_ms, version),
    maxIf(at_ms, state = 'intent' AND holder != ?)
FROM chat_deliveries
WHERE incident_id IN ?
GROUP BY incident_id, channel, delivery_key`
	for chunk := range slices.Chunk(ids, maxInList) {
		const op = "query_chat_state"
		s.metrics.op(op)
		rows, err := s.conn.Query(ctx, qm, inList(chunk))
		if err != nil {
			return out, s.fail(ctx, op, err, "read chat messages")
		}
		for rows.Next() {
			var (
				m    chat.MessageRecord
				atMS int64
			)
			if err := rows.Scan(&m.IncidentID, &m.Channel, &m.ChannelID, &m.TS, &m.Hash, &atMS); err != nil {
				rows.Close()
				return out, s.fail(ctx, op, err, "read chat messages")
			}
			m.At = time.UnixMilli(atMS).UTC()
			out.Messages = append(out.Messages, m)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return out, s.fail(ctx, op, err, "read chat messages")
		}

		s.metrics.op(op)
		rows, err = s.conn.Query(ctx, qd, self, inList(chunk))
		if err != nil {
			return out, s.fail(ctx, op, err, "read chat deliveries")
		}
		for rows.Next() {
			var (
				d             chat.Delivery
				state         string
				atMS, foreign int64
			)
			if err := rows.Scan(&d.IncidentID, &d.Channel, &d.Key, &d.Kind, &state, &d.TS, &d.Hash, &d.Covers,
				&d.Error, &d.Holder, &atMS, &foreign); err != nil {
				rows.Close()
				return out, s.fail(ctx, op, err, "read chat deliveries")
			}
			d.State = chat.DeliveryState(state)
			d.At = time.UnixMilli(atMS).UTC()
			if foreign > 0 {
				d.ForeignIntentAt = time.UnixMilli(foreign).UTC()
			}
			out.Deliveries = append(out.Deliveries, d)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return out, s.fail(ctx, op, err, "read chat deliveries")
		}
	}
	return out, nil
}

// WriteChat stores the sender's rows, one INSERT per table (chat.Ledger).
func (s *Store) WriteChat(ctx context.Context, r chat.Records) error {
	err := s.insert(ctx, "chat_messages", `INSERT INTO chat_messages (incident_id, channel, channel_id, ts, hash, at_ms, version)`,
		len(r.Messages), func(appendRow func(...any) error) error {
			for _, m := range r.Messages {
				ms := m.At.UnixMilli()
				if err := appendRow(m.IncidentID, m.Channel, m.ChannelID, m.TS, m.Hash, ms, uint64(max(ms, 0))); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return err
	}
	err = s.insert(ctx, "chat_deliveries", `INSERT INTO chat_deliveries (incident_id, channel, delivery_key, kind, state, ts, hash, covers, error, holder, at_ms, version)`,
		len(r.Deliveries), func(appendRow func(...any) error) error {
			for _, d := range r.Deliveries {
				covers := d.Covers
				if covers == nil {
					covers = []string{}
				}
				if err := appendRow(d.IncidentID, d.Channel, d.Key, d.Kind, string(d.State), d.TS, d.Hash, covers, d.Error,
					d.Holder, d.At.UnixMilli(), deliveryVersion(d.State, d.At)); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return err
	}
	return s.insert(ctx, "chat_cursors", `INSERT INTO chat_cursors (name, position_ms, at_ms, version)`,
		len(r.Cursors), func(appendRow func(...any) error) error {
			for _, c := range r.Cursors {
				ms := c.At.UnixMilli()
				if err := appendRow(c.Name, c.Position.UnixMilli(), ms, uint64(max(ms, 0))); err != nil {
					return err
				}
			}
			return nil
		})
}

// ChatCursor returns the latest cursor written under name (chat.Ledger).
func (s *Store) ChatCursor(ctx context.Context, name string) (time.Time, bool, error) {
	const op = "query_chat_cursor"
	s.metrics.op(op)
	var (
		pos int64
		n   uint64
	)
	err := s.conn.QueryRow(ctx, "SELECT argMax(position_ms, version), count() FROM chat_cursors WHERE name = ?", name).Scan(&pos, &n)
	if err != nil {
		return time.Time{}, false, s.fail(ctx, op, err, "read chat cursor %s", name)
	}
	if n == 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(pos).UTC(), true, nil
}

// Heartbeat records that holder is alive at at (chat.Leases).
func (s *Store) Heartbeat(ctx context.Context, name, holder string, at time.Time) error {
	return s.insert(ctx, "chat_leases", `INSERT INTO chat_leases (name, holder, heartbeat_ms, version)`, 1,
		func(appendRow func(...any) error) error {
			ms := at.UnixMilli()
			return appendRow(name, holder, ms, uint64(max(ms, 0)))
		})
}

// LeaseHolders lists, sorted, the holders of name whose latest heartbeat
// is at or after since (chat.Leases).
func (s *Store) LeaseHolders(ctx context.Context, name string, since time.Time) ([]string, error) {
	const op = "query_chat_leases"
	s.metrics.op(op)
	rows, err := s.conn.Query(ctx, `SELECT holder FROM chat_leases WHERE name = ?
GROUP BY holder HAVING max(heartbeat_ms) >= ? ORDER BY holder`, name, since.UnixMilli())
	if err != nil {
		return nil, s.fail(ctx, op, err, "read lease %s", name)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			return nil, s.fail(ctx, op, err, "read lease %s", name)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(ctx, op, err, "read lease %s", name)
	}
	return out, nil
}
