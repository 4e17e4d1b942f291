package spool

import (
	"time"

	"github.com/ninesops/nines/incidents"
)

// encodeRecord frames n, accepted at at, as one record, as Ingest does.
func encodeRecord(n incidents.Notification, at time.Time) ([]byte, error) {
	payload, err := incidents.MarshalNotification(n)
	if err != nil {
		return nil, err
	}
	return framePayload(payload, at)
}
