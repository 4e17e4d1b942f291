package incidents

import (
	"encoding/json"
	"fmt"
	"time"
)

// A notification's stored form: how the spool (on disk) and the raw
// notification log (in the store) keep a notification. It is its own
// format, so that changes to Notification's Go fields do not silently
// change what stored notifications mean: add fields, never rename them.

// StoredNotification is a notification as nines stores it.
type StoredNotification struct {
	Receiver          string            `json:"receiver"`
	Status            string            `json:"status"`
	GroupKey          string            `json:"group_key"`
	GroupLabels       map[string]string `json:"group_labels,omitempty"`
	CommonLabels      map[string]string `json:"common_labels,omitempty"`
	CommonAnnotations map[string]string `json:"common_annotations,omitempty"`
	ExternalURL       string            `json:"external_url,omitempty"`
	TruncatedAlerts   int               `json:"truncated_alerts,omitempty"`
	ReceivedAt        time.Time         `json:"received_at"`
	Alerts            []StoredAlert     `json:"alerts"`
}

// StoredAlert is an alert of a stored notification.
type StoredAlert struct {
	Fingerprint  string            `json:"fingerprint"`
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"starts_at"`
	EndsAt       time.Time         `json:"ends_at"`
	GeneratorURL string            `json:"generator_url,omitempty"`
}

// StoredForm returns n as nines stores it.
func StoredForm(n Notification) StoredNotification {
	out := StoredNotification{
		Receiver: n.Receiver, Status: string(n.Status), GroupKey: n.GroupKey,
		GroupLabels: n.GroupLabels, CommonLabels: n.CommonLabels, CommonAnnotations: n.CommonAnnotations,
		ExternalURL: n.ExternalURL, TruncatedAlerts: n.TruncatedAlerts, ReceivedAt: n.ReceivedAt,
		Alerts: make([]StoredAlert, len(n.Alerts)),
	}
	for i, a := range n.Alerts {
		out.Alerts[i] = StoredAlert{
			Fingerprint: a.Fingerprint, Status: string(a.Status), Labels: a.Labels, Annotations: a.Annotations,
			StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL,
		}
	}
	return out
}

// Notification returns the notification j stores.
func (j StoredNotification) Notification() Notification {
	n := Notification{
		Receiver: j.Receiver, Status: AlertStatus(j.Status), GroupKey: j.GroupKey,
		GroupLabels: j.GroupLabels, CommonLabels: j.CommonLabels, CommonAnnotations: j.CommonAnnotations,
		ExternalURL: j.ExternalURL, TruncatedAlerts: j.TruncatedAlerts, ReceivedAt: j.ReceivedAt.UTC(),
		Alerts: make([]Alert, len(j.Alerts)),
	}
	for i, a := range j.Alerts {
		n.Alerts[i] = Alert{
			Fingerprint: a.Fingerprint, Status: AlertStatus(a.Status), Labels: a.Labels,
			Annotations: a.Annotations, StartsAt: a.StartsAt.UTC(), GeneratorURL: a.GeneratorURL,
		}
		if !a.EndsAt.IsZero() {
			n.Alerts[i].EndsAt = a.EndsAt.UTC()
		}
	}
	return n
}

// MarshalNotification encodes n in its stored form.
func MarshalNotification(n Notification) ([]byte, error) {
	if b, ok := appendStored(make([]byte, 0, storedSize(&n)), &n); ok {
		return b, nil
	}
	b, err := json.Marshal(StoredForm(n))
	if err != nil {
		return nil, fmt.Errorf("encode notification: %w", err)
	}
	return b, nil
}

// UnmarshalNotification decodes a notification's stored form.
func UnmarshalNotification(b []byte) (Notification, error) {
	if n, err := parseStored(b); err == nil {
		return n, nil
	}
	var j StoredNotification
	if err := json.Unmarshal(b, &j); err != nil {
		return Notification{}, fmt.Errorf("decode stored notification: %w", err)
	}
	return j.Notification(), nil
}
