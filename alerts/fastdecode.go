package alerts

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/template"

	"github.com/ninesops/nines/incidents"
)

// Decoding without reflection.
//
// encoding/json decodes a notification by reflection, one map entry and
// one string at a time, and was the largest part of nines' CPU time per
// notification. parseFast reads the form Alertmanager actually sends
// (objects of known fields, strings, a plain truncatedAlerts) directly into
// a message, giving each alert's strings one shared allocation. Whatever it
// is not certain to read exactly as encoding/json would (null, duplicate
// keys, keys that only match a field ignoring case, numbers that are not
// plain digits, invalid UTF-8, malformed JSON…) it leaves to encoding/json,
// which then decodes the same bytes and accepts or refuses them with its
// own result and error. So the fast path changes speed only; FuzzFastDecode
// checks that both paths agree.

// bufPool recycles request bodies: nothing keeps a reference to a body
// once it is decoded (every string is copied out).
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest buffer returned to the pool.
const maxPooledBody = 1 << 20

// decode reads the whole body, parses it on the fast path, and falls back
// to encoding/json on the same bytes (and the same read failure, if any).
// Alerts that fail their checks are left out of the notification and
// returned with their problems (see validate).
func decode(body *bodyReader) (incidents.Notification, []*DecodeError, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bufPool.Put(buf)
		}
	}()
	_, _ = buf.ReadFrom(body) // a failure is remembered by body
	var (
		m  message
		ok bool
	)
	if body.failure() == nil {
		m, ok = parseFast(buf.Bytes())
	}
	if !ok {
		// The same bytes, then the same failure: encoding/json sees the
		// stream the client sent and reports what it would have.
		var err error
		m, err = readMessage(&bodyReader{r: &replay{data: buf.Bytes(), err: body.failure()}})
		if err != nil {
			return incidents.Notification{}, nil, err
		}
	}
	refused, err := validate(&m)
	if err != nil {
		return incidents.Notification{}, nil, err
	}
	return convert(&m), refused, nil
}

// replay reads data, then fails with err (io.EOF when nil).
type replay struct {
	data []byte
	err  error
}

func (r *replay) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		if r.err == nil {
			return 0, io.EOF
		}
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// parseFast parses b as a notification, or reports false when it cannot
// be sure to read it exactly as encoding/json would.
func parseFast(b []byte) (message, bool) {
	p := fastParser{b: b}
	var m message
	if !p.object(func(ks, ke int) bool { return p.messageField(&m, p.b[ks:ke]) }) {
		return message{}, false
	}
	p.space()
	if p.i != len(p.b) {
		return message{}, false
	}
	return m, true
}

// fastParser reads JSON from b at i. Every method reports false for
// anything it does not handle, leaving i wherever it was.
type fastParser struct {
	b []byte
	i int
	// Scratch for the label and annotation pairs of the alert being read.
	labels, annotations []pair
}

// span is a JSON string's contents in b, escapes included.
type span struct {
	start, end int
	escaped    bool
}

// pair is one key and value of an object of strings.
type pair struct{ k, v span }

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c.
func (p *fastParser) consume(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// peek skips whitespace and returns the next byte, or 0.
func (p *fastParser) peek() byte {
	p.space()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// object reads {"key": value, …}, calling field with the bounds of every
// key in b and i at its value. A key seen twice is not handled
// (encoding/json merges repeated objects and arrays in ways not worth
// repeating here).
func (p *fastParser) object(field func(ks, ke int) bool) bool {
	if !p.consume('{') {
		return false
	}
	if p.consume('}') {
		return true
	}
	var seen [16][]byte
	n := 0
	for {
		start, end, escaped, ok := p.stringSpan()
		if !ok || escaped {
			return false
		}
		key := p.b[start:end]
		for _, k := range seen[:min(n, len(seen))] {
			if bytes.Equal(k, key) {
				return false
			}
		}
		if n >= len(seen) {
			return false // more keys than any notification object has
		}
		seen[n] = key
		n++
		if !p.consume(':') || !field(start, end) {
			return false
		}
		if p.consume('}') {
			return true
		}
		if !p.consume(',') {
			return false
		}
	}
}

// stringSpan reads a JSON string and returns the bounds of its contents
// (between the quotes) and whether it holds escapes. Control characters,
// malformed escapes and invalid UTF-8 are not handled.
func (p *fastParser) stringSpan() (start, end int, escaped, ok bool) {
	if !p.consume('"') {
		return 0, 0, false, false
	}
	start = p.i
	ascii := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			end = p.i
			p.i++
			if !ascii && !utf8.Valid(p.b[start:end]) {
				return 0, 0, false, false
			}
			return start, end, escaped, true
		case c == '\\':
			escaped = true
			if p.i+1 >= len(p.b) {
				return 0, 0, false, false
			}
			switch p.b[p.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.i += 2
			case 'u':
				if p.i+6 > len(p.b) || !isHex4(p.b[p.i+2:p.i+6]) {
					return 0, 0, false, false
				}
				p.i += 6
			default:
				return 0, 0, false, false
			}
		case c < ' ':
			return 0, 0, false, false
		default:
			if c >= utf8.RuneSelf {
				ascii = false
			}
			p.i++
		}
	}
	return 0, 0, false, false
}

func isHex4(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// str reads a JSON string value.
func (p *fastParser) str() (string, bool) {
	start, end, escaped, ok := p.stringSpan()
	if !ok {
		return "", false
	}
	if escaped {
		return unquote(p.b[start:end]), true
	}
	return string(p.b[start:end]), true
}

// span reads a JSON string value and returns where it is.
func (p *fastParser) span() (span, bool) {
	start, end, escaped, ok := p.stringSpan()
	return span{start, end, escaped}, ok
}

// pairs reads an object of strings, appending its pairs to dst.
func (p *fastParser) pairs(dst []pair) ([]pair, bool) {
	if p.peek() != '{' {
		return dst, false
	}
	ok := p.object(func(ks, ke int) bool {
		v, ok := p.span()
		dst = append(dst, pair{span{ks, ke, false}, v})
		return ok
	})
	return dst, ok
}

// unquote decodes the contents of a valid JSON string with escapes, as
// encoding/json does: an unpaired surrogate becomes U+FFFD. stringSpan
// has checked every escape and that the rest is valid UTF-8.
func unquote(s []byte) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := i + 1
			for j < len(s) && s[j] != '\\' {
				j++
			}
			b.Write(s[i:j])
			i = j
			continue
		}
		switch s[i+1] {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, hex4(s[i+2:i+6])); dec != unicode.ReplacementChar {
						b.WriteRune(dec)
						i += 6
						continue
					}
				}
				r = unicode.ReplacementChar
			}
			b.WriteRune(r)
			continue
		default: // '"', '\\', '/'
			b.WriteByte(s[i+1])
		}
		i += 2
	}
	return b.String()
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// stringMap reads an object of strings into a new map. Keys are known to
// be unique (object refuses repeats).
func (p *fastParser) stringMap() (template.KV, bool) {
	if p.peek() != '{' {
		return nil, false
	}
	m := template.KV{}
	ok := p.object(func(ks, ke int) bool {
		v, ok := p.str()
		if ok {
			m[string(p.b[ks:ke])] = v
		}
		return ok
	})
	return m, ok
}

// messageField reads the value of one top-level field.
func (p *fastParser) messageField(m *message, key []byte) bool {
	var ok bool
	switch string(key) {
	case "receiver":
		m.Receiver, ok = p.str()
	case "status":
		m.Status, ok = p.str()
	case "alerts":
		m.Alerts, ok = p.alerts()
	case "notification_reason":
		m.NotificationReason, ok = p.str()
	case "groupLabels":
		m.GroupLabels, ok = p.stringMap()
	case "commonLabels":
		m.CommonLabels, ok = p.stringMap()
	case "commonAnnotations":
		m.CommonAnnotations, ok = p.stringMap()
	case "routeLabels":
		m.RouteLabels, ok = p.stringMap()
	case "externalURL":
		m.ExternalURL, ok = p.str()
	case "version":
		m.Version, ok = p.str()
	case "groupKey":
		m.GroupKey, ok = p.str()
	case "truncatedAlerts":
		m.TruncatedAlerts, ok = p.uint()
	default:
		return p.unknown(key, messageFields)
	}
	return ok
}

// Field names as encoding/json knows them, to recognise keys it would
// match ignoring case.
var (
	messageFields = []string{"receiver", "status", "alerts", "notification_reason", "groupLabels", "commonLabels",
		"commonAnnotations", "routeLabels", "externalURL", "version", "groupKey", "truncatedAlerts"}
	alertFields = []string{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
)

// unknown skips the value of a key that names no field. A key that
// encoding/json would match to a field ignoring case (or by Unicode case
// folding) is not handled.
func (p *fastParser) unknown(key []byte, fields []string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f, string(key)) {
			return false
		}
	}
	return p.skip()
}

// skip passes over any valid JSON value.
func (p *fastParser) skip() bool {
	p.space()
	start := p.i
	depth := 0
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case '"':
			if _, _, _, ok := p.stringSpan(); !ok {
				return false
			}
			if depth == 0 {
				return p.valid(start)
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 { // the end of the enclosing object: a scalar ended
				return p.valid(start)
			}
			if depth--; depth == 0 {
				p.i++
				return p.valid(start)
			}
		case ',':
			if depth == 0 {
				return p.valid(start)
			}
		}
		p.i++
	}
	return false
}

// valid reports whether b[start:i] is one valid JSON value, leaving i at
// its end (without trailing whitespace).
func (p *fastParser) valid(start int) bool {
	v := bytes.TrimRight(p.b[start:p.i], " \t\n\r")
	if len(v) == 0 || len(v) > 1<<20 || !json.Valid(v) {
		return false
	}
	p.i = start + len(v)
	return true
}

// uint reads a non-negative integer written as plain digits.
func (p *fastParser) uint() (uint64, bool) {
	p.space()
	start := p.i
	for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
		p.i++
	}
	digits := p.b[start:p.i]
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	return n, err == nil
}

// alerts reads the alerts array.
func (p *fastParser) alerts() (template.Alerts, bool) {
	if !p.consume('[') {
		return nil, false
	}
	out := template.Alerts{}
	if p.consume(']') {
		return out, true
	}
	for {
		a, ok := p.alert()
		if !ok {
			return nil, false
		}
		out = append(out, a)
		if p.consume(']') {
			return out, true
		}
		if !p.consume(',') {
			return nil, false
		}
	}
}

// alert reads one alert. Its strings without escapes (labels,
// annotations, fingerprint, status, generator URL) are copied into one
// string and sliced from it: one allocation for all of them, holding
// nothing else, since the incident service keeps alerts for as long as
// their incident may change.
func (p *fastParser) alert() (template.Alert, bool) {
	var (
		a                                template.Alert
		status, fingerprint, generator   span
		hasLabels, hasAnnotations        bool
		hasStatus, hasFingerprint, hasGU bool
	)
	p.labels, p.annotations = p.labels[:0], p.annotations[:0]
	ok := p.object(func(ks, ke int) bool {
		key := p.b[ks:ke]
		var ok bool
		switch string(key) {
		case "status":
			status, ok = p.span()
			hasStatus = true
		case "labels":
			p.labels, ok = p.pairs(p.labels)
			hasLabels = true
		case "annotations":
			p.annotations, ok = p.pairs(p.annotations)
			hasAnnotations = true
		case "startsAt":
			ok = p.time(&a.StartsAt)
		case "endsAt":
			ok = p.time(&a.EndsAt)
		case "generatorURL":
			generator, ok = p.span()
			hasGU = true
		case "fingerprint":
			fingerprint, ok = p.span()
			hasFingerprint = true
		default:
			return p.unknown(key, alertFields)
		}
		return ok
	})
	if !ok {
		return template.Alert{}, false
	}

	// Copy every plain string once, then slice.
	n := status.end - status.start + fingerprint.end - fingerprint.start + generator.end - generator.start
	for _, kv := range p.labels {
		n += kv.k.end - kv.k.start + kv.v.end - kv.v.start
	}
	for _, kv := range p.annotations {
		n += kv.k.end - kv.k.start + kv.v.end - kv.v.start
	}
	var sb strings.Builder
	sb.Grow(n)
	write := func(s span) {
		if !s.escaped {
			sb.Write(p.b[s.start:s.end])
		}
	}
	write(status)
	write(fingerprint)
	write(generator)
	for _, kv := range p.labels {
		write(kv.k)
		write(kv.v)
	}
	for _, kv := range p.annotations {
		write(kv.k)
		write(kv.v)
	}
	all, off := sb.String(), 0
	str := func(s span) string {
		if s.escaped {
			return unquote(p.b[s.start:s.end])
		}
		out := all[off : off+s.end-s.start]
		off += s.end - s.start
		return out
	}
	kv := func(pairs []pair) template.KV {
		m := make(template.KV, len(pairs))
		for _, kv := range pairs {
			k := str(kv.k)
			m[k] = str(kv.v)
		}
		return m
	}
	if hasStatus {
		a.Status = str(status)
	}
	if hasFingerprint {
		a.Fingerprint = str(fingerprint)
	}
	if hasGU {
		a.GeneratorURL = str(generator)
	}
	if hasLabels {
		a.Labels = kv(p.labels)
	}
	if hasAnnotations {
		a.Annotations = kv(p.annotations)
	}
	return a, true
}

// time reads a timestamp with time.Time's own UnmarshalJSON, as
// encoding/json does.
func (p *fastParser) time(t *time.Time) bool {
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return false
	}
	start := p.i
	_, end, escaped, ok := p.stringSpan()
	if !ok || escaped {
		return false
	}
	return t.UnmarshalJSON(p.b[start:end+1]) == nil
}
