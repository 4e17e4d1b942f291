package incidents

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The stored form is written and read on every notification four times
// (the webhook, the spool's append and replay, the deriver), so it has a
// codec of its own: appendStored writes exactly the bytes encoding/json
// writes for StoredNotification (the log's content hashes depend on them),
// and parseStored reads them. Anything parseStored does not expect (a
// field it does not know, a null, a number where a string goes) makes
// UnmarshalNotification fall back to encoding/json, which decides.
// TestStoredCodecMatchesEncodingJSON holds the two to each other.

// appendStored appends n's stored form. ok is false when encoding/json
// must decide (a time outside the years 0–9999, which it refuses).
func appendStored(b []byte, n *Notification) ([]byte, bool) {
	var ok bool
	if b, ok = appendStoredHead(b, n); !ok {
		return b, false
	}
	for i := range n.Alerts {
		a := &n.Alerts[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAlertHead(b, a.Fingerprint, a.Status)
		b = appendMapField(b, `,"labels":`, a.Labels)
		b = appendMapField(b, `,"annotations":`, a.Annotations)
		if b, ok = appendAlertTail(b, a.StartsAt, a.EndsAt, a.GeneratorURL); !ok {
			return b, false
		}
	}
	return append(b, "]}"...), true
}

// appendStoredHead appends n's stored form up to its first alert: every
// field but its alerts, and the alerts' opening bracket.
func appendStoredHead(b []byte, n *Notification) ([]byte, bool) {
	b = append(b, `{"receiver":`...)
	b = appendJSONString(b, n.Receiver)
	b = append(b, `,"status":`...)
	b = appendJSONString(b, string(n.Status))
	b = append(b, `,"group_key":`...)
	b = appendJSONString(b, n.GroupKey)
	b = appendMapField(b, `,"group_labels":`, n.GroupLabels)
	b = appendMapField(b, `,"common_labels":`, n.CommonLabels)
	b = appendMapField(b, `,"common_annotations":`, n.CommonAnnotations)
	if n.ExternalURL != "" {
		b = append(b, `,"external_url":`...)
		b = appendJSONString(b, n.ExternalURL)
	}
	if n.TruncatedAlerts != 0 {
		b = append(b, `,"truncated_alerts":`...)
		b = strconv.AppendInt(b, int64(n.TruncatedAlerts), 10)
	}
	var ok bool
	b = append(b, `,"received_at":`...)
	if b, ok = appendJSONTime(b, n.ReceivedAt); !ok {
		return b, false
	}
	return append(b, `,"alerts":[`...), true
}

// appendAlertHead opens an alert's stored form: its fingerprint and status.
func appendAlertHead(b []byte, fingerprint string, status AlertStatus) []byte {
	b = append(b, `{"fingerprint":`...)
	b = appendJSONString(b, fingerprint)
	b = append(b, `,"status":`...)
	return appendJSONString(b, string(status))
}

// appendAlertTail closes an alert's stored form, after its labels and
// annotations.
func appendAlertTail(b []byte, startsAt, endsAt time.Time, generatorURL string) ([]byte, bool) {
	var ok bool
	b = append(b, `,"starts_at":`...)
	if b, ok = appendJSONTime(b, startsAt); !ok {
		return b, false
	}
	b = append(b, `,"ends_at":`...)
	if b, ok = appendJSONTime(b, endsAt); !ok {
		return b, false
	}
	if generatorURL != "" {
		b = append(b, `,"generator_url":`...)
		b = appendJSONString(b, generatorURL)
	}
	return append(b, '}'), true
}

// Pair is one label or annotation: its name and value.
type Pair struct{ Name, Value string }

// PairAlert is an Alert whose labels and annotations are pairs rather
// than maps: what the webhook holds of an alert, since it writes the
// stored form as it decodes (MarshalPairs) and never needs to look a
// label up. Names are unique within each set.
type PairAlert struct {
	Fingerprint  string
	Status       AlertStatus
	Labels       []Pair
	Annotations  []Pair
	StartsAt     time.Time
	EndsAt       time.Time // zero while firing
	GeneratorURL string
}

// Alert returns a with its labels and annotations as maps (nil when it
// has none).
func (a *PairAlert) Alert() Alert {
	return Alert{
		Fingerprint: a.Fingerprint, Status: a.Status, Labels: pairMap(a.Labels), Annotations: pairMap(a.Annotations),
		StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL,
	}
}

func pairMap(pairs []Pair) map[string]string {
	if len(pairs) == 0 {
		return nil
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		m[p.Name] = p.Value
	}
	return m
}

// MarshalPairs encodes in its stored form the notification n with alerts
// in place of n.Alerts (which must be empty): exactly the bytes
// MarshalNotification writes when the alerts' pairs are maps
// (TestMarshalPairsMatchesMarshalNotification). It sorts each alert's
// pairs by name in place, and refuses a name given twice.
func MarshalPairs(n *Notification, alerts []PairAlert) ([]byte, error) {
	if len(n.Alerts) > 0 {
		return nil, errors.New("encode notification: both Alerts and pair alerts given")
	}
	size := storedSize(n)
	for i := range alerts {
		a := &alerts[i]
		size += storedAlertSize(a.Fingerprint, a.Status, a.GeneratorURL, storedPairsSize(a.Labels)+storedPairsSize(a.Annotations))
	}
	b, ok := appendStoredHead(make([]byte, 0, size), n)
	for i := 0; ok && i < len(alerts); i++ {
		a := &alerts[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAlertHead(b, a.Fingerprint, a.Status)
		if b, ok = appendPairsField(b, `,"labels":`, a.Labels); !ok {
			return nil, fmt.Errorf("encode notification: alert %s: a label name given twice", a.Fingerprint)
		}
		if b, ok = appendPairsField(b, `,"annotations":`, a.Annotations); !ok {
			return nil, fmt.Errorf("encode notification: alert %s: an annotation name given twice", a.Fingerprint)
		}
		b, ok = appendAlertTail(b, a.StartsAt, a.EndsAt, a.GeneratorURL)
	}
	if !ok { // a time encoding/json refuses: so does MarshalNotification
		withMaps := *n
		withMaps.Alerts = make([]Alert, len(alerts))
		for i := range alerts {
			withMaps.Alerts[i] = alerts[i].Alert()
		}
		return MarshalNotification(withMaps)
	}
	return append(b, "]}"...), nil
}

// storedPairsSize is storedMapSize for pairs.
func storedPairsSize(pairs []Pair) int {
	size := 24
	for _, p := range pairs {
		size += len(p.Name) + len(p.Value) + 6
	}
	return size
}

// appendPairsField appends name and pairs, sorted by name, unless there
// are none (omitempty). ok is false when a name repeats.
func appendPairsField(b []byte, name string, pairs []Pair) ([]byte, bool) {
	if len(pairs) == 0 {
		return b, true
	}
	slices.SortFunc(pairs, func(x, y Pair) int { return strings.Compare(x.Name, y.Name) })
	b = append(b, name...)
	b = append(b, '{')
	for i, p := range pairs {
		if i > 0 {
			if p.Name == pairs[i-1].Name {
				return b, false
			}
			b = append(b, ',')
		}
		b = appendJSONString(b, p.Name)
		b = append(b, ':')
		b = appendJSONString(b, p.Value)
	}
	return append(b, '}'), true
}

// storedSize is about the length of n's stored form (escapes aside), so
// that appendStored writes it into one allocation: grown from a small
// buffer, a storm's notification of 64 alerts (42 kB) was copied six times,
// and that garbage was a good part of the webhook's garbage collection.
func storedSize(n *Notification) int {
	size := 256 + len(n.Receiver) + len(n.Status) + len(n.GroupKey) + len(n.ExternalURL) +
		storedMapSize(n.GroupLabels) + storedMapSize(n.CommonLabels) + storedMapSize(n.CommonAnnotations)
	for i := range n.Alerts {
		a := &n.Alerts[i]
		size += storedAlertSize(a.Fingerprint, a.Status, a.GeneratorURL, storedMapSize(a.Labels)+storedMapSize(a.Annotations))
	}
	return size
}

// storedAlertSize is about the length of an alert in a stored form, sets
// being that of its labels and annotations: the field names, the times
// and the strings.
func storedAlertSize(fingerprint string, status AlertStatus, generatorURL string, sets int) int {
	return 160 + len(fingerprint) + len(status) + len(generatorURL) + sets
}

// storedMapSize is about the length of m in a stored form: its name, the
// braces, and each key and value with quotes, colon and comma.
func storedMapSize(m map[string]string) int {
	size := 24
	for k, v := range m {
		size += len(k) + len(v) + 6
	}
	return size
}

// appendMapField appends name and m, sorted by key, unless m is empty
// (omitempty).
func appendMapField(b []byte, name string, m map[string]string) []byte {
	if len(m) == 0 {
		return b
	}
	b = append(b, name...)
	var room [16]string // most label sets: no allocation for the sort
	keys := room[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

// appendJSONTime appends t as time.Time.MarshalJSON does; ok is false
// for the years it refuses.
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s quoted as encoding/json does (with HTML
// escaping, its default): invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// errFallback: the fast reader met something encoding/json must decide.
var errFallback = errors.New("stored form: not the fast path")

// storedReader reads a stored form as appendStored (or encoding/json)
// writes it.
type storedReader struct {
	b []byte
	i int
	// check makes the reader only check the grammar: it refuses exactly
	// what it refuses otherwise, but builds no strings, maps or alerts
	// (CheckStored).
	check bool
	// strs holds one copy of each short string read so far: the alerts
	// of a group repeat their label names and most values (alertname,
	// service, severity, job, …); sharing one copy of each, a storm's
	// notification decoded takes 1.64× its stored bytes, not 2.08×
	// (TestDecodedNotificationHeap). Per notification, not process-wide
	// (unique.Make): nothing to bound or to collect.
	strs map[string]string
}

// maxShared is the length up to which storedReader shares strings:
// longer ones (descriptions, summaries) are seldom repeated.
const maxShared = 128

// shared returns b as a string, the same one for equal short b.
func (r *storedReader) shared(b []byte) string {
	if len(b) > maxShared {
		return string(b)
	}
	if s, ok := r.strs[string(b)]; ok {
		return s
	}
	if r.strs == nil {
		r.strs = make(map[string]string, 32)
	}
	s := string(b)
	r.strs[s] = s
	return s
}

// CheckStored returns nil exactly when UnmarshalNotification(b) succeeds,
// and otherwise its error. What the fast reader takes is checked without
// building anything (no allocation, but for a key written with escapes);
// anything else is decided by UnmarshalNotification itself. It lets the
// spool's replay hand stored forms on without decoding them, yet still
// put aside a record that would not decode.
func CheckStored(b []byte) error {
	r := storedReader{b: b, check: true}
	if _, err := r.notification(); err == nil {
		return nil
	}
	_, err := UnmarshalNotification(b)
	return err
}

func parseStored(b []byte) (Notification, error) {
	r := storedReader{b: b}
	return r.notification()
}

// notification reads a whole stored form; in check mode, the
// Notification it returns is empty.
func (r *storedReader) notification() (Notification, error) {
	var n Notification
	err := r.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "receiver":
			n.Receiver, err = r.str()
		case "status":
			var s string
			s, err = r.str()
			n.Status = AlertStatus(s)
		case "group_key":
			n.GroupKey, err = r.str()
		case "group_labels":
			n.GroupLabels, err = r.strMap()
		case "common_labels":
			n.CommonLabels, err = r.strMap()
		case "common_annotations":
			n.CommonAnnotations, err = r.strMap()
		case "external_url":
			n.ExternalURL, err = r.str()
		case "truncated_alerts":
			n.TruncatedAlerts, err = r.integer()
		case "received_at":
			n.ReceivedAt, err = r.time()
		case "alerts":
			n.Alerts, err = r.alerts()
		default:
			return errFallback
		}
		return err
	})
	if err != nil {
		return Notification{}, err
	}
	r.space()
	if r.i != len(r.b) {
		return Notification{}, errFallback
	}
	if r.check {
		return Notification{}, nil
	}
	// As StoredNotification.Notification: times in UTC, a zero end
	// while firing, no nil alert list.
	n.ReceivedAt = n.ReceivedAt.UTC()
	if n.Alerts == nil {
		n.Alerts = []Alert{}
	}
	return n, nil
}

func (r *storedReader) alerts() ([]Alert, error) {
	r.space()
	if !r.take('[') {
		return nil, errFallback
	}
	out := []Alert{}
	r.space()
	if r.take(']') {
		return out, nil
	}
	if r.check {
		out = nil
	}
	for {
		var a Alert
		var starts, ends time.Time
		err := r.object(func(key []byte) error {
			var err error
			switch string(key) {
			case "fingerprint":
				a.Fingerprint, err = r.str()
			case "status":
				var s string
				s, err = r.sharedStr()
				a.Status = AlertStatus(s)
			case "labels":
				a.Labels, err = r.strMap()
			case "annotations":
				a.Annotations, err = r.strMap()
			case "starts_at":
				starts, err = r.time()
			case "ends_at":
				ends, err = r.time()
			case "generator_url":
				a.GeneratorURL, err = r.sharedStr()
			default:
				return errFallback
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if !r.check {
			a.StartsAt = starts.UTC()
			if !ends.IsZero() {
				a.EndsAt = ends.UTC()
			}
			out = append(out, a)
		}
		r.space()
		if r.take(']') {
			return out, nil
		}
		if !r.take(',') {
			return nil, errFallback
		}
	}
}

// object reads an object, calling field with each key, positioned at its
// value.
func (r *storedReader) object(field func(key []byte) error) error {
	r.space()
	if !r.take('{') {
		return errFallback
	}
	r.space()
	if r.take('}') {
		return nil
	}
	for {
		k, err := r.text(true) // a key of the raw bytes unless escaped
		if err != nil {
			return err
		}
		r.space()
		if !r.take(':') {
			return errFallback
		}
		if err := field(k); err != nil {
			return err
		}
		r.space()
		if r.take('}') {
			return nil
		}
		if !r.take(',') {
			return errFallback
		}
		r.space()
	}
}

func (r *storedReader) strMap() (map[string]string, error) {
	if r.check {
		return nil, r.object(func([]byte) error {
			_, err := r.str()
			return err
		})
	}
	m := map[string]string{}
	err := r.object(func(key []byte) error {
		v, err := r.sharedStr()
		m[r.shared(key)] = v
		return err
	})
	return m, err
}

func (r *storedReader) integer() (int, error) {
	r.space()
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	for r.i < len(r.b) && r.b[r.i] >= '0' && r.b[r.i] <= '9' {
		r.i++
	}
	v, err := strconv.Atoi(string(r.b[start:r.i]))
	if err != nil {
		return 0, errFallback
	}
	return v, nil
}

func (r *storedReader) time() (time.Time, error) {
	r.space()
	start := r.i
	if _, err := r.rawString(); err != nil {
		return time.Time{}, err
	}
	var t time.Time
	if err := t.UnmarshalJSON(r.b[start:r.i]); err != nil {
		return time.Time{}, errFallback
	}
	return t, nil
}

// rawString moves past a string, reporting whether it holds escapes.
func (r *storedReader) rawString() (escaped bool, err error) {
	if !r.take('"') {
		return false, errFallback
	}
	for r.i < len(r.b) {
		switch c := r.b[r.i]; {
		case c == '"':
			r.i++
			return escaped, nil
		case c == '\\':
			escaped = true
			r.i += 2
		case c < 0x20:
			return false, errFallback
		default:
			r.i++
		}
	}
	return false, errFallback
}

// sharedStr reads a string as str does, sharing it (shared).
func (r *storedReader) sharedStr() (string, error) {
	b, err := r.text(!r.check)
	if err != nil || r.check {
		return "", err
	}
	return r.shared(b), nil
}

// str reads a string as encoding/json does: escapes decoded, invalid
// UTF-8 and lone surrogates as U+FFFD. In check mode it returns "".
func (r *storedReader) str() (string, error) {
	b, err := r.text(!r.check)
	return string(b), err
}

// text reads a string as str does, as bytes; with keep false it only
// checks the string and returns nil, without allocating.
func (r *storedReader) text(keep bool) ([]byte, error) {
	r.space()
	start := r.i
	escaped, err := r.rawString()
	if err != nil {
		return nil, err
	}
	raw := r.b[start+1 : r.i-1]
	if !escaped {
		switch {
		case !keep:
			// Invalid UTF-8 becomes U+FFFD, never an error.
			return nil, nil
		case utf8.Valid(raw):
			return raw, nil
		}
	}
	if !keep {
		var scratch [2 * utf8.UTFMax]byte
		if _, ok := unescape(scratch[:0], raw, true); !ok {
			return nil, errFallback
		}
		return nil, nil
	}
	out, ok := unescape(make([]byte, 0, len(raw)), raw, false)
	if !ok {
		return nil, errFallback
	}
	return out, nil
}

// unescape appends raw, the inside of a JSON string, decoded to out; ok
// is false for an escape the fast reader does not take. With check, out
// keeps only the last step's output (a few bytes), so that a small
// buffer on the caller's stack does.
func unescape(out, raw []byte, check bool) (_ []byte, ok bool) {
	for i := 0; i < len(raw); {
		if check {
			out = out[:0]
		}
		c := raw[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				out = append(out, c)
				i++
				continue
			}
			ru, size := utf8.DecodeRune(raw[i:])
			out = utf8.AppendRune(out, ru) // RuneError for invalid bytes
			i += size
			continue
		}
		if i+1 >= len(raw) {
			return nil, false
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			out = append(out, raw[i+1])
			i += 2
		case 'b':
			out = append(out, '\b')
			i += 2
		case 'f':
			out = append(out, '\f')
			i += 2
		case 'n':
			out = append(out, '\n')
			i += 2
		case 'r':
			out = append(out, '\r')
			i += 2
		case 't':
			out = append(out, '\t')
			i += 2
		case 'u':
			ru, ok := hex4(raw[i+2:])
			if !ok {
				return nil, false
			}
			i += 6
			if utf16.IsSurrogate(ru) {
				ru2, ok2 := rune(-1), false
				if i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					ru2, ok2 = hex4(raw[i+2:])
				}
				if dec := utf16.DecodeRune(ru, ru2); ok2 && dec != utf8.RuneError {
					ru = dec
					i += 6
				} else {
					ru = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, ru)
		default:
			return nil, false
		}
	}
	return out, true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var v rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | rune(c)
	}
	return v, true
}

func (r *storedReader) take(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *storedReader) space() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}
