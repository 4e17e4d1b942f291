package incidents

import (
	"sort"
	"unsafe"
)

// DefaultCacheBytes is the default byte budget of a Service's cache of
// groups (Options.CacheBytes).
const DefaultCacheBytes = 32 << 20

// groupCache holds what a Service remembers of each group, with an
// estimate of the bytes each entry holds and when it was last used, so
// that it can be bounded by bytes and by count, least recently used
// first. It is guarded by the Service's mutex.
type groupCache struct {
	slots map[GroupRef]*cacheSlot
	bytes int64
	tick  uint64
}

type cacheSlot struct {
	e    *entry
	size int64
	used uint64
}

func newGroupCache() groupCache { return groupCache{slots: map[GroupRef]*cacheSlot{}} }

func (c *groupCache) len() int { return len(c.slots) }

// at returns the entry of ref, nil if there is none, and marks it used.
func (c *groupCache) at(ref GroupRef) *entry {
	e, _ := c.get(ref)
	return e
}

// get returns the entry of ref and marks it used.
func (c *groupCache) get(ref GroupRef) (*entry, bool) {
	sl, ok := c.slots[ref]
	if !ok {
		return nil, false
	}
	c.tick++
	sl.used = c.tick
	return sl.e, true
}

// put remembers e, which is not changed afterwards, for ref.
func (c *groupCache) put(ref GroupRef, e *entry) {
	c.tick++
	size := e.size(ref)
	if sl, ok := c.slots[ref]; ok {
		c.bytes += size - sl.size
		sl.e, sl.size, sl.used = e, size, c.tick
		return
	}
	c.slots[ref] = &cacheSlot{e: e, size: size, used: c.tick}
	c.bytes += size
}

func (c *groupCache) del(ref GroupRef) {
	if sl, ok := c.slots[ref]; ok {
		c.bytes -= sl.size
		delete(c.slots, ref)
	}
}

// shrink drops the least recently used entries for which drop is true
// until keep says the cache is small enough.
func (c *groupCache) shrink(drop func(GroupRef, *entry) bool, keep func() bool) {
	if keep() {
		return
	}
	type cand struct {
		ref  GroupRef
		used uint64
	}
	var cands []cand
	for r, sl := range c.slots {
		if drop(r, sl.e) {
			cands = append(cands, cand{r, sl.used})
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].used < cands[j].used })
	for _, cd := range cands {
		if keep() {
			return
		}
		c.del(cd.ref)
	}
}

// Sizes of the fixed parts of what an entry holds, as the Go runtime lays
// them out, plus a map's overhead per element.
const (
	sizeEntry    = int64(unsafe.Sizeof(entry{})) + int64(unsafe.Sizeof(cacheSlot{}))
	sizeIncident = int64(unsafe.Sizeof(Incident{}))
	sizeAlert    = int64(unsafe.Sizeof(Alert{}))
	sizePeriod   = int64(unsafe.Sizeof(Period{}))
	sizeSegment  = int64(unsafe.Sizeof(Segment{}))
	sizeAction   = int64(unsafe.Sizeof(Action{}))
	sizeMapElem  = 48
)

// size estimates the bytes e holds for ref: its incidents with their
// alerts (labels and annotations included) and its bookkeeping. A string
// shared within the entry (the label names and repeated values of alerts
// decoded from one notification) is counted once; maps shared with other
// entries are counted in each. The heap the entries take is about an
// eighth above it (strings are allocated in size classes, and the
// Service's other bookkeeping grows with them: TestCacheEstimateIsTheHeap).
func (e *entry) size(ref GroupRef) int64 {
	z := sizer{seen: map[*byte]struct{}{}}
	n := sizeEntry + 2*int64(len(ref.GroupKey)+len(ref.Service))
	n += z.incident(e.inc)
	for _, inc := range e.earlier {
		n += z.incident(inc)
	}
	for k := range e.closed {
		n += int64(len(k)) + sizeMapElem
	}
	for k := range e.reconciled {
		n += int64(len(k)) + sizeMapElem
	}
	for k, v := range e.written {
		n += int64(len(k)+len(v)) + sizeMapElem
	}
	for _, a := range e.actions {
		n += sizeAction + int64(len(a.Incident)+len(a.Actor)+len(a.CausedBy))
		if a.Excluded != nil {
			n += int64(unsafe.Sizeof(*a.Excluded)) + int64(len(a.Excluded.By)+len(a.Excluded.Reason))
		}
	}
	return n
}

// sizer counts the bytes of strings once each.
type sizer struct{ seen map[*byte]struct{} }

// str is the bytes s holds unless counted already.
func (z sizer) str(s string) int64 {
	if len(s) == 0 {
		return 0
	}
	p := unsafe.StringData(s)
	if _, ok := z.seen[p]; ok {
		return 0
	}
	z.seen[p] = struct{}{}
	return int64(len(s))
}

func (z sizer) incident(inc *Incident) int64 {
	if inc == nil {
		return 0
	}
	n := sizeIncident + int64(len(inc.ID)+len(inc.Service)+len(inc.GroupKey)+len(inc.Title)+len(inc.Source)+
		len(inc.AcknowledgedBy)+len(inc.ResolvedBy)+len(inc.RunbookURL)+len(inc.GeneratorURL)+len(inc.ExternalURL)+len(inc.CausedBy))
	n += z.strMap(inc.Labels) + z.strMap(inc.Annotations)
	n += int64(cap(inc.Alerts)) * sizeAlert // the slice's room too
	for i := range inc.Alerts {
		a := &inc.Alerts[i]
		n += int64(len(a.Fingerprint)) + z.str(a.GeneratorURL) + z.strMap(a.Labels) + z.strMap(a.Annotations)
	}
	n += int64(cap(inc.Periods))*sizePeriod + int64(cap(inc.Segments))*sizeSegment
	for _, x := range inc.Excluded {
		n += int64(unsafe.Sizeof(x)) + int64(len(x.By)+len(x.Reason))
	}
	return n
}

func (z sizer) strMap(m map[string]string) int64 {
	if m == nil {
		return 0
	}
	n := int64(sizeMapElem)
	for k, v := range m {
		n += z.str(k) + z.str(v) + sizeMapElem
	}
	return n
}
