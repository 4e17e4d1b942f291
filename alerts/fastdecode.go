package alerts

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ninesops/nines/incidents"
)

// Decoding without reflection.
//
// encoding/json decodes a notification by reflection, one map entry and
// one string at a time, and was the largest part of nines' CPU time per
// notification. parseFast reads the form Alertmanager actually sends
// (objects of known fields, strings, a plain truncatedAlerts) directly into
// a webhook: its strings slices of one copy of the body, its alerts' labels
// and annotations pairs, from which the stored form is written without a
// map (webhook.stored). Whatever it
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
func decode(body *bodyReader) (webhook, []*DecodeError, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bufPool.Put(buf)
		}
	}()
	_, _ = buf.ReadFrom(body) // a failure is remembered by body
	var (
		w  webhook
		ok bool
	)
	if body.failure() == nil {
		w, ok = parseFast(buf.Bytes())
	}
	if !ok {
		// The same bytes, then the same failure: encoding/json sees the
		// stream the client sent and reports what it would have.
		m, err := readMessage(&bodyReader{r: &replay{data: buf.Bytes(), err: body.failure()}})
		if err != nil {
			return webhook{}, nil, err
		}
		w = fromMessage(&m)
	}
	refused, err := validate(&w)
	if err != nil {
		return webhook{}, nil, err
	}
	return w, refused, nil
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
// be sure to read it exactly as encoding/json would. Its strings without
// escapes are slices of one copy of b: a notification's strings take one
// allocation, and its labels and annotations (pairs, not maps) a few more.
func parseFast(b []byte) (webhook, bool) {
	p := fastParser{b: b, s: string(b), pairs: make([]incidents.Pair, 0, len(b)/40+4)}
	var w webhook
	if !p.object(func(ks, ke int) bool { return p.messageField(&w, p.s[ks:ke]) }) {
		return webhook{}, false
	}
	p.space()
	if p.i != len(p.b) {
		return webhook{}, false
	}
	return w, true
}

// fastParser reads JSON from b at i. Every method reports false for
// anything it does not handle, leaving i wherever it was.
type fastParser struct {
	b []byte
	s string // b's contents, which unescaped strings are sliced from
	i int
	// pairs holds every label and annotation read so far: each alert's
	// sets are slices of it.
	pairs []incidents.Pair
}

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
	return p.s[start:end], true
}

// pairSet reads an object of strings into pairs: a slice of p.pairs that
// nothing can append to.
func (p *fastParser) pairSet() ([]incidents.Pair, bool) {
	if p.peek() != '{' {
		return nil, false
	}
	start := len(p.pairs)
	ok := p.object(func(ks, ke int) bool {
		v, ok := p.str()
		p.pairs = append(p.pairs, incidents.Pair{Name: p.s[ks:ke], Value: v})
		return ok
	})
	end := len(p.pairs)
	return p.pairs[start:end:end], ok
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
func (p *fastParser) stringMap() (map[string]string, bool) {
	if p.peek() != '{' {
		return nil, false
	}
	m := map[string]string{}
	ok := p.object(func(ks, ke int) bool {
		v, ok := p.str()
		if ok {
			m[p.s[ks:ke]] = v
		}
		return ok
	})
	return m, ok
}

// messageField reads the value of one top-level field.
func (p *fastParser) messageField(w *webhook, key string) bool {
	var (
		ok     bool
		status string
	)
	switch key {
	case "receiver":
		w.head.Receiver, ok = p.str()
	case "status":
		status, ok = p.str()
		w.head.Status = incidents.AlertStatus(status)
	case "alerts":
		w.alerts, ok = p.alerts()
	case "notification_reason":
		_, ok = p.str()
	case "groupLabels":
		w.head.GroupLabels, ok = p.stringMap()
	case "commonLabels":
		w.head.CommonLabels, ok = p.stringMap()
	case "commonAnnotations":
		w.head.CommonAnnotations, ok = p.stringMap()
	case "routeLabels":
		_, ok = p.stringMap()
	case "externalURL":
		w.head.ExternalURL, ok = p.str()
	case "version":
		w.version, ok = p.str()
	case "groupKey":
		w.head.GroupKey, ok = p.str()
	case "truncatedAlerts":
		var n uint64
		n, ok = p.uint()
		w.head.TruncatedAlerts = int(min(n, math.MaxInt))
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
func (p *fastParser) unknown(key string, fields []string) bool {
	for i := range len(key) {
		if key[i] >= utf8.RuneSelf {
			return false
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f, key) {
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
func (p *fastParser) alerts() ([]incidents.PairAlert, bool) {
	if !p.consume('[') {
		return nil, false
	}
	out := []incidents.PairAlert{}
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

// alert reads one alert.
func (p *fastParser) alert() (incidents.PairAlert, bool) {
	var a incidents.PairAlert
	ok := p.object(func(ks, ke int) bool {
		var (
			ok     bool
			status string
		)
		switch key := p.s[ks:ke]; key {
		case "status":
			status, ok = p.str()
			a.Status = incidents.AlertStatus(status)
		case "labels":
			a.Labels, ok = p.pairSet()
		case "annotations":
			a.Annotations, ok = p.pairSet()
		case "startsAt":
			ok = p.time(&a.StartsAt)
		case "endsAt":
			ok = p.time(&a.EndsAt)
		case "generatorURL":
			a.GeneratorURL, ok = p.str()
		case "fingerprint":
			a.Fingerprint, ok = p.str()
		default:
			return p.unknown(key, alertFields)
		}
		return ok
	})
	return a, ok
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
