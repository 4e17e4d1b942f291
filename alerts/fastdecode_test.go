package alerts

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/ninesops/nines/incidents"
)

// decodeStandard is Decode with encoding/json only: the reference the fast
// path must agree with.
func decodeStandard(body []byte, limit int64) (incidents.Notification, error) {
	m, err := readMessage(&bodyReader{r: bytes.NewReader(body), limit: limit})
	if err != nil {
		return incidents.Notification{}, err
	}
	w := fromMessage(&m)
	refused, err := validate(&w)
	if err == nil {
		err = strict(refused)
	}
	if err != nil {
		return incidents.Notification{}, err
	}
	return w.notification(), nil
}

// sameDecoding checks that Decode and decodeStandard give the same
// notification or the same error for body.
func sameDecoding(t *testing.T, body []byte, limit int64) {
	t.Helper()
	got, gotErr := Decode(bytes.NewReader(body), limit)
	want, wantErr := decodeStandard(body, limit)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("Decode(%q)\n err %v\nwant %v", body, gotErr, wantErr)
	case gotErr != nil:
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("Decode(%q)\n err %q\nwant %q", body, gotErr, wantErr)
		}
		var g, w *DecodeError
		if !errors.As(gotErr, &g) || !errors.As(wantErr, &w) || g.Field != w.Field {
			t.Fatalf("Decode(%q): error %#v, want %#v", body, gotErr, wantErr)
		}
	case !reflect.DeepEqual(got, want):
		t.Fatalf("Decode(%q)\n got %+v\nwant %+v", body, got, want)
	}
}

// Alertmanager's own notifications, and the benchmark's, take the fast
// path and decode as encoding/json decodes them.
func TestFastPathReadsAlertmanagerOutput(t *testing.T) {
	t.Parallel()
	bodies := map[string][]byte{"generated 64": notification(t, 64)}
	for _, name := range fixtureNames() {
		bodies[name] = readFixture(t, name)
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, ok := parseFast(body); !ok {
				t.Errorf("parseFast did not take %s", name)
			}
			sameDecoding(t, body, 0)
		})
	}
}

func TestFastPathAgrees(t *testing.T) {
	t.Parallel()
	const alert = `{"status":"firing","labels":{"alertname":"A","service":"s"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"f"}`
	wrap := func(alerts string, extra string) string {
		return `{"version":"4","status":"firing","groupKey":"k","alerts":[` + alerts + `]` + extra + `}`
	}
	tests := []struct {
		name string
		body string
		fast bool // whether the fast path should take it
	}{
		{"plain", wrap(alert, ""), true},
		{"whitespace everywhere", " \n{ \"version\" : \"4\" ,\t\"status\":\"firing\",\r\"groupKey\":\"k\",\"alerts\" : [ " + alert + " ] } \n", true},
		{"escapes", wrap(strings.Replace(alert, `"A"`, `"A\u0026\n\"\\\/\b\f\r\t\u00e9\ud83d\ude00"`, 1), ""), true},
		{"unpaired surrogate", wrap(strings.Replace(alert, `"A"`, `"x\ud83dy\udc00"`, 1), ""), true},
		{"unicode", wrap(strings.Replace(alert, `"A"`, `"Überlast ✓"`, 1), ""), true},
		{"unknown fields skipped", wrap(alert, `,"extra":{"a":[1,2.5e3,true,null,"x"]},"more":-0.5`), true},
		{"unknown alert field", wrap(strings.Replace(alert, `{"status"`, `{"future":[{}],"status"`, 1), ""), true},
		{"truncatedAlerts", wrap(alert, `,"truncatedAlerts":18446744073709551615`), true},
		{"resolved", wrap(`{"status":"resolved","labels":{"a":"b"},"annotations":{},"startsAt":"2026-01-01T00:00:00+02:00","endsAt":"2026-01-01T01:00:00.123456789Z","fingerprint":"f","generatorURL":"u"}`, ""), true},
		{"route labels and reason", wrap(alert, `,"routeLabels":{"r":"1"},"notification_reason":"new"`), true},
		{"no alerts", `{"version":"4","status":"firing","groupKey":"k","alerts":[]}`, true},

		{"truncatedAlerts overflow", wrap(alert, `,"truncatedAlerts":18446744073709551616`), false},
		{"truncatedAlerts float", wrap(alert, `,"truncatedAlerts":1.0`), false},
		{"truncatedAlerts negative", wrap(alert, `,"truncatedAlerts":-1`), false},
		{"truncatedAlerts leading zero", wrap(alert, `,"truncatedAlerts":01`), false},
		{"truncatedAlerts string", wrap(alert, `,"truncatedAlerts":"1"`), false},
		{"null labels", wrap(strings.Replace(alert, `{"alertname":"A","service":"s"}`, `null`, 1), ""), false},
		{"null alerts", `{"version":"4","status":"firing","groupKey":"k","alerts":null}`, false},
		{"duplicate key", wrap(alert, `,"groupKey":"k2"`), false},
		{"duplicate labels", wrap(strings.Replace(alert, `"startsAt"`, `"labels":{"b":"c"},"startsAt"`, 1), ""), false},
		{"key differing in case", wrap(alert, `,"GroupKey":"k2"`), false},
		{"key matching by folding", wrap(alert, `,"ſtatus":"resolved"`), false},
		{"escaped key", wrap(alert, `,"gr\u006fupKey":"k2"`), false},
		{"invalid UTF-8", wrap(strings.Replace(alert, `"A"`, "\"\xff\"", 1), ""), false},
		{"control character", wrap(strings.Replace(alert, `"A"`, "\"a\tb\"", 1), ""), false},
		{"invalid escape", wrap(strings.Replace(alert, `"A"`, `"\'"`, 1), ""), false},
		{"short unicode escape", wrap(strings.Replace(alert, `"A"`, `"\u12"`, 1), ""), false},
		{"number label", wrap(strings.Replace(alert, `"A"`, `1`, 1), ""), false},
		{"bad time", wrap(strings.Replace(alert, `2026-01-01T00:00:00Z`, `yesterday`, 1), ""), false},
		{"time as number", wrap(strings.Replace(alert, `"2026-01-01T00:00:00Z"`, `1`, 1), ""), false},
		{"trailing data", wrap(alert, "") + "{}", false},
		{"trailing comma", wrap(alert, ","), false},
		{"invalid unknown value", wrap(alert, `,"extra":[1,]`), false},
		{"invalid unknown number", wrap(alert, `,"extra":01`), false},
		{"unterminated", wrap(alert, "")[:40], false},
		{"empty", "", false},
		{"null", "null", false},
		{"array", "[]", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, ok := parseFast([]byte(tc.body)); ok != tc.fast {
				t.Errorf("parseFast took it: %v, want %v", ok, tc.fast)
			}
			sameDecoding(t, []byte(tc.body), 0)
		})
	}
}

func TestFastPathAgreesOverLimit(t *testing.T) {
	t.Parallel()
	body := notification(t, 16)
	for _, limit := range []int64{int64(len(body)) - 1, int64(len(body)), 10, 1} {
		sameDecoding(t, body, limit)
	}
}

// FuzzFastDecode checks that the fast path never changes what Decode
// returns: the same notification, or the same error.
func FuzzFastDecode(f *testing.F) {
	for _, name := range fixtureNames() {
		f.Add(readFixture(f, name))
	}
	f.Add(notification(f, 3))
	f.Add([]byte(`{"version":"4","status":"firing","groupKey":"k","alerts":[{"status":"firing","labels":{"a":"\u00e9\ud800"},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"f","x":[{"y":null}]}],"truncatedAlerts":7}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		sameDecoding(t, body, 64<<10)
	})
}

// The fast path agrees on every input FuzzDecode has kept.
func TestFastPathAgreesOnFuzzCorpus(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzDecode", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)
		if len(lines) != 2 || lines[0] != "go test fuzz v1" {
			t.Fatalf("%s: not a corpus file", f)
		}
		quoted, ok := strings.CutPrefix(lines[1], "[]byte(")
		if !ok {
			t.Fatalf("%s: want one []byte", f)
		}
		body, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) { sameDecoding(t, []byte(body), 64<<10) })
	}
}
