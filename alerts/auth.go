package alerts

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// Auth knows how to check the credentials Alertmanager sends with a webhook:
// a bearer token (http_config.authorization), a basic-auth user and password
// (http_config.basic_auth), or either of the two when both are configured.
//
// Secrets are kept only as SHA-256 digests and compared in constant time, so
// neither their contents nor their lengths leak through timing.
//
// Check on the zero Auth, or on a nil *Auth, accepts nothing: an Auth fails
// closed. Running without webhook authentication is done by leaving
// Options.Auth nil (what NewAuth returns when no file is given); cmd refuses
// to start that way unless an explicit insecure flag is set.
type Auth struct {
	hasToken bool
	token    [sha256.Size]byte

	hasBasic bool
	user     [sha256.Size]byte
	pass     [sha256.Size]byte
}

// NewAuth reads webhook credentials from files. bearerTokenFile holds the
// token; surrounding whitespace is trimmed, as Alertmanager does for its
// credentials_file, so both can read the same file. basicAuthFile holds one
// line "user:password"; only the trailing newline is trimmed, and the
// password may contain colons. Either file name may be empty.
//
// With both empty, NewAuth returns a nil *Auth and no error: no
// credentials are configured, and a Handler given a nil Auth accepts
// unauthenticated webhooks. Whether that is allowed is the caller's
// decision: cmd refuses to start so unless --webhook.allow-unauthenticated
// is set.
func NewAuth(bearerTokenFile, basicAuthFile string) (*Auth, error) {
	if bearerTokenFile == "" && basicAuthFile == "" {
		return nil, nil
	}
	var token, user, pass string
	if bearerTokenFile != "" {
		b, err := os.ReadFile(bearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("read bearer token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("bearer token file %s is empty", bearerTokenFile)
		}
		if strings.ContainsAny(token, "\r\n") {
			return nil, fmt.Errorf("bearer token file %s: want the token on one line", bearerTokenFile)
		}
	}
	if basicAuthFile != "" {
		b, err := os.ReadFile(basicAuthFile)
		if err != nil {
			return nil, fmt.Errorf("read basic auth file: %w", err)
		}
		line := strings.TrimRight(string(b), "\r\n")
		var ok bool
		user, pass, ok = strings.Cut(line, ":")
		// The contents are never quoted in errors: they are secret.
		if !ok || user == "" || pass == "" || strings.ContainsAny(line, "\r\n") {
			return nil, fmt.Errorf("basic auth file %s: want one line user:password", basicAuthFile)
		}
	}
	return NewAuthFromValues(token, user, pass)
}

// NewAuthFromValues builds an Auth from the secrets themselves, for tests
// and for callers that already hold them. An empty token disables bearer
// authentication; empty user and pass disable basic authentication, which
// otherwise needs both. With all three empty it returns a nil *Auth and no
// error, as NewAuth does.
func NewAuthFromValues(token, user, pass string) (*Auth, error) {
	if token == "" && user == "" && pass == "" {
		return nil, nil
	}
	a := &Auth{}
	if token != "" {
		a.hasToken = true
		a.token = sha256.Sum256([]byte(token))
	}
	switch {
	case user != "" && pass != "":
		a.hasBasic = true
		a.user = sha256.Sum256([]byte(user))
		a.pass = sha256.Sum256([]byte(pass))
	case user != "" || pass != "":
		return nil, errors.New("basic auth needs both a user and a password")
	}
	return a, nil
}

// Check reports whether r carries valid credentials. A nil or zero Auth
// accepts nothing.
func (a *Auth) Check(r *http.Request) bool {
	if a == nil {
		return false
	}
	if a.hasToken {
		if token, ok := bearerToken(r); ok && equalDigest(a.token, token) {
			return true
		}
	}
	if a.hasBasic {
		if user, pass, ok := r.BasicAuth(); ok {
			// Both comparisons always run, so timing does not tell which
			// of the two was wrong.
			userOK := equalDigest(a.user, user)
			passOK := equalDigest(a.pass, pass)
			return userOK && passOK
		}
	}
	return false
}

// challenges lists the WWW-Authenticate values for a refused request.
func (a *Auth) challenges() []string {
	var c []string
	if a == nil || a.hasToken || !a.hasBasic {
		c = append(c, `Bearer realm="nines"`)
	}
	if a != nil && a.hasBasic {
		c = append(c, `Basic realm="nines", charset="UTF-8"`)
	}
	return c
}

// bearerToken returns the credentials of an "Authorization: Bearer …"
// header. The scheme is case-insensitive (RFC 9110, section 11.1).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	return token, token != ""
}

// equalDigest compares a secret's digest with the digest of a presented
// value in constant time. Hashing first makes the lengths equal, so the
// comparison does not leak the secret's length.
func equalDigest(want [sha256.Size]byte, got string) bool {
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], sum[:]) == 1
}
