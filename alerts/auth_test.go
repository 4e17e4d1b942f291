package alerts

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSecret(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNewAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		token     string // file content; "-" for no file
		basic     string // file content; "-" for no file
		wantErr   string // substring; empty for success
		wantToken string // a token that must then pass
		wantBasic [2]string
	}{
		{name: "token", token: "s3cr3t-token\n", basic: "-", wantToken: "s3cr3t-token"},
		{name: "token with CRLF and spaces", token: "  s3cr3t-token \r\n", basic: "-", wantToken: "s3cr3t-token"},
		{name: "basic", token: "-", basic: "alertmanager:pa:ss word\n", wantBasic: [2]string{"alertmanager", "pa:ss word"}},
		{name: "both", token: "tok", basic: "am:pw", wantToken: "tok", wantBasic: [2]string{"am", "pw"}},
		{name: "empty token file", token: "\n", basic: "-", wantErr: "is empty"},
		{name: "token on two lines", token: "zebra\nb\n", basic: "-", wantErr: "one line"},
		{name: "basic without colon", token: "-", basic: "zebra\n", wantErr: "want one line user:password"},
		{name: "basic without user", token: "-", basic: ":zebra\n", wantErr: "want one line user:password"},
		{name: "basic without password", token: "-", basic: "zebra:\n", wantErr: "want one line user:password"},
		{name: "basic on two lines", token: "-", basic: "am:zebra\nother:zebra\n", wantErr: "want one line user:password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var tokenFile, basicFile string
			if tc.token != "-" {
				tokenFile = writeSecret(t, tc.token)
			}
			if tc.basic != "-" {
				basicFile = writeSecret(t, tc.basic)
			}
			a, err := NewAuth(tokenFile, basicFile)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NewAuth error = %v, want %q", err, tc.wantErr)
				}
				// Secrets must not appear in errors.
				if strings.Contains(err.Error(), "zebra") {
					t.Errorf("error %q quotes the file's contents", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewAuth: %v", err)
			}
			if tc.wantToken != "" {
				r := httptest.NewRequest("POST", "/api/v1/alerts", nil)
				r.Header.Set("Authorization", "Bearer "+tc.wantToken)
				if !a.Check(r) {
					t.Error("token refused")
				}
			}
			if tc.wantBasic[0] != "" {
				r := httptest.NewRequest("POST", "/api/v1/alerts", nil)
				r.SetBasicAuth(tc.wantBasic[0], tc.wantBasic[1])
				if !a.Check(r) {
					t.Error("basic auth refused")
				}
			}
		})
	}
}

// TestNewAuthNone checks that no credentials mean a nil Auth, which cmd
// takes as "no authentication configured".
func TestNewAuthNone(t *testing.T) {
	t.Parallel()
	if a, err := NewAuth("", ""); a != nil || err != nil {
		t.Errorf("NewAuth(\"\", \"\") = %v, %v, want nil, nil", a, err)
	}
	if a, err := NewAuthFromValues("", "", ""); a != nil || err != nil {
		t.Errorf("NewAuthFromValues(\"\", \"\", \"\") = %v, %v, want nil, nil", a, err)
	}
}

func TestNewAuthMissingFile(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := NewAuth(missing, ""); err == nil || !strings.HasPrefix(err.Error(), "read bearer token file: ") {
		t.Errorf("NewAuth = %v, want a read error", err)
	}
	if _, err := NewAuth("", missing); err == nil || !strings.HasPrefix(err.Error(), "read basic auth file: ") {
		t.Errorf("NewAuth = %v, want a read error", err)
	}
}

func TestNewAuthFromValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		token, user, pass string
		wantErr           bool
	}{
		{name: "token", token: "t"},
		{name: "basic", user: "u", pass: "p"},
		{name: "both", token: "t", user: "u", pass: "p"},
		{name: "user only", user: "u", wantErr: true},
		{name: "password only", token: "t", pass: "p", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewAuthFromValues(tc.token, tc.user, tc.pass)
			if (err != nil) != tc.wantErr {
				t.Errorf("NewAuthFromValues error = %v, want error %v", err, tc.wantErr)
			}
		})
	}
}

func TestAuthCheck(t *testing.T) {
	t.Parallel()
	tokenOnly, err := NewAuthFromValues("s3cr3t-token", "", "")
	if err != nil {
		t.Fatal(err)
	}
	basicOnly, err := NewAuthFromValues("", "am", "pw")
	if err != nil {
		t.Fatal(err)
	}
	both, err := NewAuthFromValues("s3cr3t-token", "am", "pw")
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(v string) func(*testing.T) string { return func(*testing.T) string { return v } }
	basic := func(user, pass string) func(*testing.T) string {
		return func(*testing.T) string {
			r := httptest.NewRequest("POST", "/", nil)
			r.SetBasicAuth(user, pass)
			return r.Header.Get("Authorization")
		}
	}
	tests := []struct {
		name   string
		auth   *Auth
		header func(*testing.T) string
		want   bool
	}{
		{"fixture header", tokenOnly, func(t *testing.T) string { return fixtureAuthorization(t) }, true},
		{"bearer", tokenOnly, bearer("Bearer s3cr3t-token"), true},
		{"bearer scheme in lower case", tokenOnly, bearer("bearer s3cr3t-token"), true},
		{"bearer with extra spaces", tokenOnly, bearer("Bearer   s3cr3t-token"), true},
		{"no header", tokenOnly, bearer(""), false},
		{"wrong token", tokenOnly, bearer("Bearer s3cr3t-tokem"), false},
		{"token prefix", tokenOnly, bearer("Bearer s3cr3t"), false},
		{"token with suffix", tokenOnly, bearer("Bearer s3cr3t-token2"), false},
		{"empty token", tokenOnly, bearer("Bearer "), false},
		{"scheme only", tokenOnly, bearer("Bearer"), false},
		{"other scheme", tokenOnly, bearer("Token s3cr3t-token"), false},
		{"basic to a token auth", tokenOnly, basic("s3cr3t-token", "s3cr3t-token"), false},
		{"basic", basicOnly, basic("am", "pw"), true},
		{"basic wrong password", basicOnly, basic("am", "px"), false},
		{"basic wrong user", basicOnly, basic("ax", "pw"), false},
		{"basic swapped", basicOnly, basic("pw", "am"), false},
		{"bearer to a basic auth", basicOnly, bearer("Bearer pw"), false},
		{"both: bearer", both, bearer("Bearer s3cr3t-token"), true},
		{"both: basic", both, basic("am", "pw"), true},
		{"both: wrong basic", both, basic("am", "s3cr3t-token"), false},
		{"nil auth", nil, bearer("Bearer s3cr3t-token"), false},
		{"zero auth", &Auth{}, bearer("Bearer "), false},
		{"zero auth with basic", &Auth{}, basic("", ""), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("POST", "/api/v1/alerts", nil)
			if h := tc.header(t); h != "" {
				r.Header.Set("Authorization", h)
			}
			if got := tc.auth.Check(r); got != tc.want {
				t.Errorf("Check = %v, want %v", got, tc.want)
			}
		})
	}
}
