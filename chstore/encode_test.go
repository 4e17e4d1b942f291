package chstore

import (
	"encoding/json"
	"testing"
)

// encodeMap must write what json.Marshal writes: stored labels are read
// back with json.Unmarshal and searched in SQL (visitParamExtract*).
func TestEncodeMapMatchesJSONMarshal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    map[string]string
	}{
		{"nil", nil},
		{"empty", map[string]string{}},
		{"plain", map[string]string{"service": "api", "alertname": "HighLatency", "instance": "api-1:9100"}},
		{"quotes and backslashes", map[string]string{`a"b`: `c\d`, "k": `"`}},
		{"html", map[string]string{"summary": "p99 < 500ms & > 1s"}},
		{"control characters", map[string]string{"d": "line\nnext\ttab\x00\x1f"}},
		{"unicode", map[string]string{"ключ": "значение ✓", "sep": "a\u2028b\u2029c", "del": "\x7f"}},
		{"invalid UTF-8", map[string]string{"bad": "a\xffb", "\xfe": "x"}},
		{"empty strings", map[string]string{"": ""}},
		{"many keys", map[string]string{
			"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "h": "8", "i": "9",
			"j": "10", "k": "11", "l": "12", "m": "13", "n": "14", "o": "15", "p": "16", "q": "17", "r": "18",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := "{}"
			if len(tc.m) > 0 {
				b, err := json.Marshal(tc.m)
				if err != nil {
					t.Fatal(err)
				}
				want = string(b)
			}
			if got := encodeMap(tc.m); got != want {
				t.Errorf("encodeMap = %s, want %s", got, want)
			}
		})
	}
}

func FuzzEncodeMap(f *testing.F) {
	f.Add("k", "v", "k2", "<&>\"\\\n")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		m := map[string]string{k1: v1, k2: v2}
		b, err := json.Marshal(m)
		if err != nil {
			t.Skip()
		}
		if got := encodeMap(m); got != string(b) {
			t.Errorf("encodeMap = %s, want %s", got, b)
		}
	})
}
