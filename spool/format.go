package spool

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"time"

	"github.com/ninesops/nines/incidents"
)

// On disk, a spool is a directory of segment files, a checkpoint file and
// a lock file:
//
//	LOCK                   flock(2)ed while a process uses the spool
//	checkpoint             "segment=<hex> offset=<n>": the next record to apply
//	0000000000000001.seg   segments, appended to in order
//
// A segment starts with segmentMagic, then records:
//
//	u32 length of the payload (big endian)
//	u32 CRC-32C of the next 8 + length bytes
//	i64 when the record was accepted, Unix milliseconds
//	    payload: the notification as JSON
//
// A record is written with one write(2) and fsync(2)ed before the webhook
// is answered. A crash can leave a torn record at the end of the last
// segment; opening the spool cuts it off. A record whose checksum fails in
// the middle of a segment (a damaged disk) is skipped: the reader looks for
// the next offset where a whole record checks out.

const (
	segmentMagic  = "NINESPL1"
	headerSize    = 16
	segmentSuffix = ".seg"
	// maxRecord bounds one record's payload: well above the webhook's body
	// limit, so that a damaged length cannot make the reader allocate
	// gigabytes.
	maxRecord = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// framePayload frames a stored notification (incidents.MarshalNotification),
// accepted at at, as one record.
func framePayload(payload []byte, at time.Time) ([]byte, error) {
	if len(payload) > maxRecord {
		return nil, fmt.Errorf("%w: notification of %d bytes is too large to spool", incidents.ErrInvalid, len(payload))
	}
	return frame(payload, at), nil
}

// frame makes one record of payload, accepted at at.
func frame(payload []byte, at time.Time) []byte {
	b := make([]byte, headerSize+len(payload))
	binary.BigEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.BigEndian.PutUint64(b[8:16], uint64(at.UnixMilli()))
	copy(b[headerSize:], payload)
	binary.BigEndian.PutUint32(b[4:8], crc32.Checksum(b[8:], castagnoli))
	return b
}

// record is one spooled record and where it is.
type record struct {
	seq        uint64 // segment
	off, end   int64  // offsets of the record and of what follows it
	acceptedAt time.Time
	body       []byte // the notification's stored form, as spooled
	// n is body decoded, only once something needs it (notification):
	// a StoredIngester takes body as it is.
	n *incidents.Notification
	// payload and decodeErr are set instead of body when the payload
	// does not decode.
	payload   []byte
	decodeErr error
}

// notification returns r's notification, decoding its body the first
// time. An error (never expected: the replay checked the body with
// incidents.CheckStored) leaves r as a record that does not decode.
func (r *record) notification() (*incidents.Notification, error) {
	if r.n == nil && r.decodeErr == nil {
		n, err := incidents.UnmarshalNotification(r.body)
		if err != nil {
			r.payload, r.decodeErr, r.body = slices.Clone(r.body), err, nil
		} else {
			r.n = &n
		}
	}
	return r.n, r.decodeErr
}

// parseStatus says what parse found at an offset.
type parseStatus int

const (
	parseOK        parseStatus = iota
	parseShort                 // not enough bytes for a whole record: the end, or a torn tail
	parseCorrupt               // a bad length or checksum
	parseUndecoded             // framing and checksum fine, payload not a notification
)

// parse reads the record at the start of b. It returns the record's size
// and, unless the status says otherwise, its time and payload.
func parse(b []byte) (size int, at time.Time, payload []byte, st parseStatus) {
	if len(b) < headerSize {
		return 0, time.Time{}, nil, parseShort
	}
	n := binary.BigEndian.Uint32(b[0:4])
	if n > maxRecord {
		return 0, time.Time{}, nil, parseCorrupt
	}
	size = headerSize + int(n)
	if len(b) < size {
		return 0, time.Time{}, nil, parseShort
	}
	if crc32.Checksum(b[8:size], castagnoli) != binary.BigEndian.Uint32(b[4:8]) {
		return 0, time.Time{}, nil, parseCorrupt
	}
	at = time.UnixMilli(int64(binary.BigEndian.Uint64(b[8:16]))).UTC()
	return size, at, b[headerSize:size], parseOK
}

// resync returns the offset of the first whole, valid record in b after
// its first byte, or -1.
func resync(b []byte) int {
	for i := 1; i+headerSize <= len(b); i++ {
		if _, _, _, st := parse(b[i:]); st == parseOK {
			return i
		}
	}
	return -1
}

// A record's payload is the notification's stored form
// (incidents.MarshalNotification), shared with the raw notification log.

func segmentName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, segmentSuffix) }
