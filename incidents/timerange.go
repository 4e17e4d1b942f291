package incidents

import (
	"math"
	"time"
)

// maxUnix is the last second a store must hold: the end of ClickHouse's
// DateTime (unsigned 32-bit seconds), 2106-02-07T06:28:15Z.
const maxUnix = math.MaxUint32

// MaxTime returns the latest time every store holds. The edges (the
// webhook decoder, the API) refuse later times, so that nothing they
// accept, and answer 2xx for, is refused by the store afterwards.
func MaxTime() time.Time { return time.Unix(maxUnix, 0).UTC() }

// Storable reports whether a store holds t: from the Unix epoch to
// MaxTime.
func Storable(t time.Time) bool {
	u := t.Unix()
	return u >= 0 && u <= maxUnix
}
