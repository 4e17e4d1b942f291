package incidents

import (
	"hash/maphash"
	"sync"
)

// startServices remembers the service each alert occurrence was given when
// it was first seen, so that the service of an occurrence is fixed when it
// starts: a catalog change while an alert fires must not send its resolve
// to another service's group (opening a second incident there and leaving
// the first one firing for ever). Memory is bounded by two generations of
// at most limit bytes each (estimated): an occurrence that is still sent
// (every repeat_interval while it fires) stays in the newer one.
//
// An occurrence is known by a 128-bit hash of its group key, fingerprint
// and start, not by those strings: a group key alone is often a hundred
// bytes, and a storm brings hundreds of thousands of occurrences. Two
// occurrences share a hash with odds of about n²/2¹²⁹, and the services
// are those of the catalog, shared.
type startServices struct {
	mu       sync.Mutex
	seeds    [2]maphash.Seed
	limit    int64
	bytes    int64 // of cur
	cur, old map[occurrenceHash]string
}

type occurrenceHash [2]uint64

// startServicesBytes bounds each generation of a Service's startServices.
const startServicesBytes = 4 << 20

// sizeStartEntry estimates what one remembered occurrence costs: its key
// and the service's string header in the map, with the map's overhead.
const sizeStartEntry = 16 + sizeMapElem

func newStartServices(limit int64) *startServices {
	return &startServices{
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		limit: limit, cur: map[occurrenceHash]string{},
	}
}

// key hashes the occurrence of a in groupKey (Alert.Key, in groupKey).
func (m *startServices) key(groupKey string, a Alert) occurrenceHash {
	var k occurrenceHash
	for i := range k {
		var h maphash.Hash
		h.SetSeed(m.seeds[i])
		h.WriteString(groupKey)
		h.WriteByte(0)
		h.WriteString(a.Fingerprint)
		h.WriteByte(0)
		ms := a.StartsAt.UnixMilli()
		for b := 0; b < 64; b += 8 {
			h.WriteByte(byte(ms >> b))
		}
		k[i] = h.Sum64()
	}
	return k
}

// get returns the service remembered for the occurrence, if any.
func (m *startServices) get(groupKey string, a Alert) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := m.key(groupKey, a)
	if s, ok := m.cur[k]; ok {
		return s, true
	}
	s, ok := m.old[k]
	return s, ok
}

// put remembers the services of occurrences, by their refs.
func (m *startServices) put(byRef map[GroupRef][]Alert) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for ref, alerts := range byRef {
		for _, a := range alerts {
			k := m.key(ref.GroupKey, a)
			if m.bytes+sizeStartEntry > m.limit && len(m.cur) > 0 {
				m.old, m.cur, m.bytes = m.cur, make(map[occurrenceHash]string, len(m.cur)), 0
			}
			if _, ok := m.cur[k]; !ok {
				m.bytes += sizeStartEntry
			}
			m.cur[k] = ref.Service
		}
	}
}
