package incidents

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// randomText returns strings that exercise every branch of JSON quoting:
// HTML characters, control characters, quotes, invalid UTF-8, U+2028,
// characters outside the BMP.
func randomText(rng *rand.Rand) string {
	pieces := []string{"", "a", "api", "<b>", "&", "\"", "\\", "\n", "\t", "\x00", "\x1f", "\b", "\f", "\r",
		"\u2028", "\u2029", "é", "😀", "\xff", "\xe2\x82", "/", "{}", "ok=1&x=<2>", "'; DROP TABLE x; --"}
	var b bytes.Buffer
	for range rng.IntN(5) {
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return b.String()
}

func randomMap(rng *rand.Rand) map[string]string {
	switch rng.IntN(4) {
	case 0:
		return nil
	case 1:
		return map[string]string{}
	}
	m := map[string]string{}
	for range 1 + rng.IntN(6) {
		m[randomText(rng)] = randomText(rng)
	}
	return m
}

func randomTime(rng *rand.Rand) time.Time {
	zones := []*time.Location{time.UTC, time.FixedZone("X", 5*3600+1800), time.FixedZone("Y", -7*3600)}
	switch rng.IntN(5) {
	case 0:
		return time.Time{}
	case 1:
		return time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	}
	return time.Unix(1_700_000_000+rng.Int64N(100_000_000), rng.Int64N(1_000_000_000)).In(zones[rng.IntN(len(zones))])
}

func randomNotification(rng *rand.Rand) Notification {
	n := Notification{
		Receiver: randomText(rng), Status: AlertStatus(randomText(rng)), GroupKey: randomText(rng),
		GroupLabels: randomMap(rng), CommonLabels: randomMap(rng), CommonAnnotations: randomMap(rng),
		ExternalURL: randomText(rng), TruncatedAlerts: rng.IntN(3) * rng.IntN(1000), ReceivedAt: randomTime(rng),
	}
	if rng.IntN(5) > 0 {
		n.Alerts = []Alert{}
	}
	for range rng.IntN(4) {
		n.Alerts = append(n.Alerts, Alert{
			Fingerprint: randomText(rng), Status: AlertStatus(randomText(rng)), Labels: randomMap(rng),
			Annotations: randomMap(rng), StartsAt: randomTime(rng), EndsAt: randomTime(rng), GeneratorURL: randomText(rng),
		})
	}
	return n
}

// decodeJSON is UnmarshalNotification through encoding/json alone.
func decodeJSON(b []byte) (Notification, error) {
	var j StoredNotification
	if err := json.Unmarshal(b, &j); err != nil {
		return Notification{}, err
	}
	return j.Notification(), nil
}

// TestStoredCodecMatchesEncodingJSON: the stored form's fast codec writes
// exactly the bytes encoding/json writes (the log's content hashes, and
// so its deduplication, depend on them, across versions of nines) and
// reads what encoding/json reads, on random notifications full of
// characters JSON must escape.
func TestStoredCodecMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 20))
	for i := range 3000 {
		n := randomNotification(rng)
		want, err := json.Marshal(StoredForm(n))
		if err != nil {
			t.Fatal(err)
		}
		got, err := MarshalNotification(n)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("notification %d: fast encoding\n%s\nencoding/json\n%s", i, got, want)
		}
		fast, err := parseStored(want)
		if err != nil {
			t.Fatalf("notification %d: the fast reader gave up on what encoding/json wrote: %v\n%s", i, err, want)
		}
		slow, err := decodeJSON(want)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("notification %d: fast reader\n%#v\nencoding/json\n%#v", i, fast, slow)
		}
	}
}

// TestStoredCodecFallsBack: what the fast reader does not expect is
// decided by encoding/json, as before.
func TestStoredCodecFallsBack(t *testing.T) {
	tests := []struct {
		name, body string
	}{
		{"whitespace and escapes", `{ "receiver" : "a\u00e9\ud83d\ude00\ud800x\/" , "status":"firing","group_key":"g","received_at":"2026-11-01T12:00:00Z","alerts":[ ]}`},
		{"a key in another case", `{"Receiver":"a","status":"firing","group_key":"g","received_at":"2026-11-01T12:00:00Z","alerts":[]}`},
		{"an unknown field", `{"receiver":"a","later":{"x":[1,2]},"status":"firing","group_key":"g","received_at":"2026-11-01T12:00:00Z","alerts":[]}`},
		{"null maps", `{"receiver":"a","status":"firing","group_key":"g","group_labels":null,"received_at":"2026-11-01T12:00:00Z","alerts":null}`},
		{"no alerts", `{"receiver":"a","status":"firing","group_key":"g","received_at":"2026-11-01T12:00:00Z"}`},
		{"invalid UTF-8", "{\"receiver\":\"a\xffb\",\"status\":\"firing\",\"group_key\":\"g\",\"received_at\":\"2026-11-01T12:00:00Z\",\"alerts\":[]}"},
		{"duplicate keys", `{"receiver":"a","receiver":"b","status":"firing","group_key":"g","group_labels":{"x":"1","x":"2"},"received_at":"2026-11-01T12:00:00Z","alerts":[]}`},
		{"broken", `{"receiver":"a","status":`},
		{"trailing bytes", `{"receiver":"a","status":"firing","group_key":"g","received_at":"2026-11-01T12:00:00Z","alerts":[]}x`},
		{"a bad time", `{"receiver":"a","status":"firing","group_key":"g","received_at":"yesterday","alerts":[]}`},
		{"a float count", `{"receiver":"a","status":"firing","group_key":"g","truncated_alerts":1.5,"received_at":"2026-11-01T12:00:00Z","alerts":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, gotErr := UnmarshalNotification([]byte(tc.body))
			want, wantErr := decodeJSON([]byte(tc.body))
			if (gotErr != nil) != (wantErr != nil) {
				t.Fatalf("error %v, encoding/json: %v", gotErr, wantErr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got\n%#v\nencoding/json\n%#v", got, want)
			}
		})
	}
}

// FuzzStoredCodec: whatever the bytes, UnmarshalNotification decides as
// encoding/json does, and CheckStored as UnmarshalNotification.
func FuzzStoredCodec(f *testing.F) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		b, _ := MarshalNotification(randomNotification(rng))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, gotErr := UnmarshalNotification(b)
		want, wantErr := decodeJSON(b)
		if (gotErr != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v, %v; encoding/json %#v, %v", b, got, gotErr, want, wantErr)
		}
		if checkErr := CheckStored(b); (checkErr == nil) != (gotErr == nil) {
			t.Fatalf("%q: CheckStored says %v, UnmarshalNotification %v", b, checkErr, gotErr)
		}
		if gotErr == nil {
			again, err := MarshalNotification(got)
			ref, refErr := json.Marshal(StoredForm(got))
			if (err != nil) != (refErr != nil) || !bytes.Equal(again, ref) {
				t.Fatalf("re-encoding differs:\n%s, %v\n%s, %v", again, err, ref, refErr)
			}
		}
	})
}

// BenchmarkStoredCodec: a storm's notification (64 alerts with a dozen
// labels) through the fast codec and through encoding/json.
func BenchmarkStoredCodec(b *testing.B) {
	n := Notification{Receiver: "nines", Status: AlertFiring, GroupKey: `{}:{alertname="Down"}`,
		GroupLabels: map[string]string{"alertname": "Down"}, ExternalURL: "http://alertmanager:9093", ReceivedAt: time.Now()}
	for i := range 64 {
		labels := map[string]string{"alertname": "Down", "service": "api", "severity": "critical", "instance": fmt.Sprintf("10.0.0.%d:9100", i)}
		for j := range 8 {
			labels[fmt.Sprint("label", j)] = fmt.Sprint("value-", i, "-", j)
		}
		n.Alerts = append(n.Alerts, Alert{Fingerprint: fmt.Sprintf("%016x", i), Status: AlertFiring, Labels: labels,
			Annotations: map[string]string{"summary": "Instance down", "runbook_url": "https://runbooks/x?a=1&b=2"},
			StartsAt:    time.Now(), GeneratorURL: "http://prometheus:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"})
	}
	body, _ := json.Marshal(StoredForm(n))
	b.Run("encode/fast", func(b *testing.B) {
		for b.Loop() {
			_, _ = MarshalNotification(n)
		}
	})
	b.Run("encode/encoding-json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(StoredForm(n))
		}
	})
	b.Run("decode/fast", func(b *testing.B) {
		for b.Loop() {
			_, _ = UnmarshalNotification(body)
		}
	})
	b.Run("decode/encoding-json", func(b *testing.B) {
		for b.Loop() {
			_, _ = decodeJSON(body)
		}
	})
}

// TestCheckStored: CheckStored accepts exactly what UnmarshalNotification
// decodes, whether the fast reader or encoding/json decides, and takes
// what the fast reader reads without allocating.
func TestCheckStored(t *testing.T) {
	const ok = `"received_at":"2026-11-01T12:00:00Z","alerts":[]}`
	tests := []struct {
		name, body string
		valid      bool
	}{
		{"written by MarshalNotification", string(stormBody(t)), true},
		{"escapes and invalid UTF-8", "{\"receiver\":\"a\\u00e9\\ud83d\\ude00\\ud800x\\/\\n\xff\",\"group_labels\":{\"k\":\"\\t\\\"\"}," + ok, true},
		{"an unknown field (encoding/json decides)", `{"receiver":"a","later":{"x":[1,2]},` + ok, true},
		{"null maps (encoding/json decides)", `{"receiver":"a","group_labels":null,"received_at":"2026-11-01T12:00:00Z","alerts":null}`, true},
		{"an alert with every field", `{"receiver":"a","alerts":[{"fingerprint":"f","status":"resolved","labels":{"a":"b"},"annotations":{"c":"d"},"starts_at":"2026-11-01T12:00:00Z","ends_at":"2026-11-01T13:00:00+01:00","generator_url":"u"}],"received_at":"2026-11-01T12:00:00Z"}`, true},
		{"a count", `{"truncated_alerts":-3,` + ok, true},
		{"empty", ``, false},
		{"not an object", `[]`, false},
		{"broken", `{"receiver":"a","status":`, false},
		{"trailing bytes", `{"receiver":"a",` + ok + `x`, false},
		{"a bad escape", `{"receiver":"a\x",` + ok, false},
		{"a short unicode escape", `{"receiver":"a\u12",` + ok, false},
		{"a control character in a string", "{\"receiver\":\"a\x01\"," + ok, false},
		{"a bad time", `{"received_at":"yesterday","alerts":[]}`, false},
		{"a bad alert time", `{"alerts":[{"starts_at":"soon"}],"received_at":"2026-11-01T12:00:00Z"}`, false},
		{"a float count", `{"truncated_alerts":1.5,` + ok, false},
		{"a number for a label", `{"group_labels":{"a":1},` + ok, false},
		{"a string for the alerts", `{"receiver":"a","received_at":"2026-11-01T12:00:00Z","alerts":"x"}`, false},
		{"an unclosed alert list", `{"receiver":"a","received_at":"2026-11-01T12:00:00Z","alerts":[{}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, decodeErr := UnmarshalNotification([]byte(tc.body))
			if (decodeErr == nil) != tc.valid {
				t.Fatalf("the test is wrong: UnmarshalNotification says %v", decodeErr)
			}
			err := CheckStored([]byte(tc.body))
			if (err == nil) != tc.valid {
				t.Fatalf("CheckStored says %v, UnmarshalNotification %v", err, decodeErr)
			}
			if err != nil && err.Error() != decodeErr.Error() {
				t.Errorf("CheckStored's error %q, UnmarshalNotification's %q", err, decodeErr)
			}
		})
	}
	t.Run("no allocation", func(t *testing.T) {
		for _, body := range [][]byte{stormBody(t), []byte(tests[1].body)} {
			if allocs := testing.AllocsPerRun(20, func() { _ = CheckStored(body) }); allocs != 0 {
				t.Errorf("CheckStored allocates %v times per call on %.80q", allocs, body)
			}
		}
	})
}

// stormBody is the stored form of a storm's notification, as cmd/nines-bench
// sends it: 64 alerts with 8 labels and 3 annotations each.
func stormBody(tb testing.TB) []byte {
	tb.Helper()
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	n := Notification{Receiver: "nines", Status: AlertFiring,
		GroupKey:          `{}/{severity=~"critical|warning|info"}:{alertname="InstanceDown", cluster="eu-1", service="api"}`,
		GroupLabels:       map[string]string{"alertname": "InstanceDown", "cluster": "eu-1", "service": "api"},
		CommonLabels:      map[string]string{"alertname": "InstanceDown", "cluster": "eu-1", "service": "api", "severity": "critical", "job": "api", "namespace": "prod", "team": "team-01"},
		CommonAnnotations: map[string]string{"runbook_url": "https://runbooks.example.com/InstanceDown"},
		ExternalURL:       "http://alertmanager.example.net:9093", ReceivedAt: start}
	for i := range 64 {
		instance := fmt.Sprintf("api-%d.eu-1.example.net:9100", i)
		n.Alerts = append(n.Alerts, Alert{Fingerprint: fmt.Sprintf("%016x", i), Status: AlertFiring,
			Labels: map[string]string{"alertname": "InstanceDown", "service": "api", "cluster": "eu-1", "severity": "critical",
				"instance": instance, "job": "api", "team": "team-01", "namespace": "prod"},
			Annotations: map[string]string{
				"summary":     "Instance down on " + instance,
				"description": fmt.Sprintf("InstanceDown has fired on %s for more than 5 minutes (group 7).", instance),
				"runbook_url": "https://runbooks.example.com/InstanceDown",
			},
			StartsAt: start.Add(time.Duration(i) * 15 * time.Second), GeneratorURL: "http://prometheus.example.net:9090/graph?g0.expr=InstanceDown%7Bservice%3D%22api%22%7D&g0.tab=1"})
	}
	b, err := MarshalNotification(n)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkCheckStored: checking a storm's notification (64 alerts, 8
// labels and 3 annotations each) against decoding it, as the spool's
// replay did for every record.
func BenchmarkCheckStored(b *testing.B) {
	body := stormBody(b)
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if err := CheckStored(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := UnmarshalNotification(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDecodedNotificationHeap: a group's alerts decoded from the log (as
// the deriver reads them) share one copy of each label name and repeated
// value of their notification: 1.64× the stored form's bytes on the heap
// (each of their maps has its own table), where a copy each took 2.08×.
// The deriver holds pages of them, so this is most of its memory in a
// storm.
func TestDecodedNotificationHeap(t *testing.T) {
	const groups = 200
	bodies := storedGroups(t, groups, 64)
	stored := 0
	for _, b := range bodies {
		stored += len(b)
	}
	decoded := make([]Notification, 0, groups)
	before := heapInUse()
	for _, b := range bodies {
		n, err := UnmarshalNotification(b)
		if err != nil {
			t.Fatal(err)
		}
		decoded = append(decoded, n)
	}
	held := heapInUse() - before
	runtime.KeepAlive(bodies) // not freed while measuring
	if r := float64(held) / float64(stored); r > 1.8 {
		t.Errorf("%d notifications of 64 alerts: %d bytes stored take %d bytes of heap decoded (%.2f×, want at most 1.8×)", groups, stored, held, r)
	} else {
		t.Logf("%d bytes stored, %d decoded (%.2f×)", stored, held, r)
	}
	runtime.KeepAlive(decoded)
}

// TestMarshalNotificationAllocatesOnce: the webhook encodes every
// notification's stored form; a storm's notification of 64 alerts is
// written into one buffer of about its size, not grown from a small one
// (each growth a copy, and garbage for the collector), and sorting its
// label sets allocates nothing.
func TestMarshalNotificationAllocatesOnce(t *testing.T) {
	n := benchGroup(1, 64, t0)[0]
	var b []byte
	allocs := testing.AllocsPerRun(20, func() {
		var err error
		if b, err = MarshalNotification(n); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 1 {
		t.Errorf("encoding a notification of 64 alerts (%d bytes) allocates %v times, want once", len(b), allocs)
	}
	if c := cap(b); c > len(b)*5/4 {
		t.Errorf("its %d bytes are held in a buffer of %d", len(b), c)
	}
}

// TestMarshalPairsMatchesMarshalNotification: the webhook's encoding of
// alerts held as pairs writes exactly the bytes MarshalNotification writes
// for the same alerts as maps, whatever order the pairs come in (the log's
// content hashes, and so its deduplication, depend on it), and refuses a
// name given twice rather than store one of them.
func TestMarshalPairsMatchesMarshalNotification(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	pairsOf := func(m map[string]string) []Pair {
		var out []Pair
		for k, v := range m {
			out = append(out, Pair{k, v})
		}
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
		return out
	}
	for i := range 3000 {
		n := randomNotification(rng)
		if i%50 == 0 && len(n.Alerts) > 0 {
			n.Alerts[0].StartsAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // encoding/json refuses it
		}
		head := n
		head.Alerts = nil
		alerts := make([]PairAlert, len(n.Alerts))
		for j, a := range n.Alerts {
			alerts[j] = PairAlert{Fingerprint: a.Fingerprint, Status: a.Status, Labels: pairsOf(a.Labels),
				Annotations: pairsOf(a.Annotations), StartsAt: a.StartsAt, EndsAt: a.EndsAt, GeneratorURL: a.GeneratorURL}
		}
		want, wantErr := MarshalNotification(n)
		got, err := MarshalPairs(&head, alerts)
		if (err != nil) != (wantErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("notification %d:\nMarshalPairs        %s (err %v)\nMarshalNotification %s (err %v)", i, got, err, want, wantErr)
		}
	}

	twice := []PairAlert{{Fingerprint: "f", Status: AlertFiring, Labels: []Pair{{"a", "1"}, {"b", "2"}, {"a", "3"}},
		StartsAt: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)}}
	if b, err := MarshalPairs(&Notification{GroupKey: "g"}, twice); err == nil {
		t.Fatalf("a label name given twice was encoded: %s", b)
	}
}
