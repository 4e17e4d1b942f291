package incidents

import "sync"

// startServices remembers the service each alert occurrence was given when
// it was first seen, so that the service of an occurrence is fixed when it
// starts: a catalog change while an alert fires must not send its resolve
// to another service's group (opening a second incident there and leaving
// the first one firing for ever). Memory is bounded by two generations of
// at most limit bytes each (keys, services and map overhead, estimated):
// an occurrence that is still sent (every repeat_interval while it fires)
// stays in the newer one.
type startServices struct {
	mu       sync.Mutex
	limit    int64
	bytes    int64 // of cur
	cur, old map[string]string
}

// startServicesBytes bounds each generation of a Service's startServices.
const startServicesBytes = 16 << 20

func newStartServices(limit int64) *startServices {
	return &startServices{limit: limit, cur: map[string]string{}}
}

func startKey(groupKey string, a Alert) string { return groupKey + "\x00" + a.Key() }

// get returns the service remembered for the occurrence, if any.
func (m *startServices) get(groupKey string, a Alert) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := startKey(groupKey, a)
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
			k := startKey(ref.GroupKey, a)
			n := int64(len(k)+len(ref.Service)) + sizeMapElem
			if m.bytes+n > m.limit && len(m.cur) > 0 {
				m.old, m.cur, m.bytes = m.cur, make(map[string]string, len(m.cur)), 0
			}
			if _, ok := m.cur[k]; !ok {
				m.bytes += n
			}
			m.cur[k] = ref.Service
		}
	}
}
