package chat

import (
	"context"
	"time"

	"github.com/ninesops/nines/incidents"
)

// StoredEvent is a timeline event with the time it was stored (the flush
// that wrote it), by which the sender tails the timeline.
type StoredEvent struct {
	incidents.Event
	InsertedAt time.Time
}

// Events knows how to read the incident timeline as it is stored.
// chstore implements it.
type Events interface {
	// ChatEventsSince returns, each once, the events stored at or after
	// since whose own time is at or after notBefore, in the order they
	// were stored.
	ChatEventsSince(ctx context.Context, since, notBefore time.Time) ([]StoredEvent, error)
	// ChatIncidents returns the latest version of each incident, with its
	// alerts; IDs it does not know are absent.
	ChatIncidents(ctx context.Context, ids []string) (map[string]*incidents.Incident, error)
}

// Ledger knows how to keep the sender's durable state: which messages
// exist, which deliveries were attempted and made, and how far the
// timeline has been read. chstore implements it.
type Ledger interface {
	// LoadChat returns the latest state of every message and delivery of
	// the incidents. Each delivery's ForeignIntentAt is the time of its
	// latest intent by a holder other than self.
	LoadChat(ctx context.Context, incidentIDs []string, self string) (Records, error)
	// WriteChat stores rows; later rows of a key win (see Delivery).
	WriteChat(ctx context.Context, r Records) error
	// ChatCursor returns the latest cursor position written under name.
	ChatCursor(ctx context.Context, name string) (pos time.Time, ok bool, err error)
}

// Leases knows how to record lease heartbeats and list live holders.
// chstore implements it.
type Leases interface {
	// Heartbeat records that holder is alive at at.
	Heartbeat(ctx context.Context, name, holder string, at time.Time) error
	// LeaseHolders lists, sorted, the holders of name whose latest
	// heartbeat is at or after since.
	LeaseHolders(ctx context.Context, name string, since time.Time) ([]string, error)
}

// Records are rows of the sender's durable state.
type Records struct {
	Messages   []MessageRecord
	Deliveries []Delivery
	Cursors    []Cursor
}

func (r *Records) len() int { return len(r.Messages) + len(r.Deliveries) + len(r.Cursors) }

// MessageRecord is an incident's message in a channel. The latest record
// (by At) of an incident and channel wins.
type MessageRecord struct {
	IncidentID string
	Channel    string // as routed: #name or ID
	ChannelID  string // Slack's ID of the channel
	TS         string // the message's timestamp, its ID in the channel
	Hash       string // of the content last written (rendered.hash)
	At         time.Time
}

// DeliveryState is where a delivery stands.
type DeliveryState string

// Delivery states. An intent is written before each Slack call that posts
// and is superseded by one of the final states; final states outrank
// intents whatever their times.
const (
	// StateIntent: about to be posted, or maybe posted (look it up).
	StateIntent DeliveryState = "intent"
	// StateSent: posted; TS is the message.
	StateSent DeliveryState = "sent"
	// StateFailed: Slack refused it for good (Error says why).
	StateFailed DeliveryState = "failed"
	// StateCovered: needs no message of its own: the incident's main
	// message or a flap summary shows it.
	StateCovered DeliveryState = "covered"
)

// Final reports whether the state ends the delivery.
func (s DeliveryState) Final() bool { return s == StateSent || s == StateFailed || s == StateCovered }

// Delivery kinds.
const (
	KindMain   = "main"   // the incident's message
	KindReply  = "reply"  // a thread reply for one event
	KindChurn  = "churn"  // a thread reply for one alert change (throttled)
	KindFlap   = "flap"   // a summary of throttled alert changes
	KindDigest = "digest" // the availability digest
)

// Delivery is one message nines owes a channel: the main message of an
// incident (Key "main"), the reply for a timeline event (Key is the event
// ID), a flap summary or a digest.
type Delivery struct {
	IncidentID string
	Channel    string
	Key        string
	Kind       string
	State      DeliveryState
	TS         string   // the message, once sent
	Hash       string   // of the content posted (main messages)
	Covers     []string // event IDs the message stands for
	Error      string   // Slack's reason, when failed
	Holder     string   // the replica that wrote the row
	At         time.Time
	// ForeignIntentAt is filled by LoadChat: the latest intent written by
	// another holder (zero if none).
	ForeignIntentAt time.Time
}

// Cursor is how far the sender has handled the timeline: every event
// stored before Position (less the look-back) is handled.
type Cursor struct {
	Name     string
	Position time.Time
	At       time.Time
}

// digestIncident is the pseudo incident ID under which digests are
// recorded.
const digestIncident = "digest"
