package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/ninesops/nines/chstore/chtest"
)

// Secrets the security tests give nines; none may ever show in its logs,
// its answers or /metrics. startNines fixes the webhook and API tokens.
const (
	webhookToken = "s3cr3t-token"
	apiToken     = "api-secret-token"
	basicPass    = "basic-pass-s3cret"
	dsnPass      = "dsn-pass-s3cret"
	webPass      = "web-pass-s3cret"
)

var allSecrets = []string{webhookToken, apiToken, basicPass, dsnPass, webPass}

// transcript collects everything nines answered, to search for secrets.
type transcript struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (tr *transcript) add(resp *http.Response, body []byte) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	fmt.Fprintf(&tr.buf, "%s %s → %d\n", resp.Request.Method, resp.Request.URL, resp.StatusCode)
	for k, v := range resp.Header {
		fmt.Fprintf(&tr.buf, "%s: %s\n", k, strings.Join(v, ", "))
	}
	tr.buf.Write(body)
	tr.buf.WriteByte('\n')
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.buf.String()
}

// request sends one request and records the answer.
func (tr *transcript) request(t *testing.T, client *http.Client, method, url string, body []byte, header http.Header) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	tr.add(resp, b)
	return resp.StatusCode, b
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "alerts", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func noSecrets(t *testing.T, where, text string) {
	t.Helper()
	for _, s := range allSecrets {
		if strings.Contains(text, s) {
			i := strings.Index(text, s)
			t.Errorf("secret %q appears in %s: …%s…", s, where, text[max(0, i-200):min(len(text), i+len(s)+100)])
		}
	}
}

// TestSecretsNeverLeak runs nines with every kind of secret (webhook
// token, basic-auth password, API token, a password in the ClickHouse
// DSN), at debug level, drives it through successes and failures (bad
// credentials, bad input, ClickHouse down) and searches its log, its
// answers and /metrics for the secrets.
func TestSecretsNeverLeak(t *testing.T) {
	srv := chtest.StartServer(t, chtest.WithUser("nines", dsnPass))
	dsn := "clickhouse://nines:" + dsnPass + "@" + srv.Addr() + "/secrets?dial_timeout=2s"
	basicFile := writeFile(t, t.TempDir(), "basic", "alertmanager:"+basicPass+"\n")
	var n *nines
	// Registered before startNines, so it runs after nines has stopped.
	t.Cleanup(func() { noSecrets(t, "the log", n.stderr.String()) })
	n = startNines(t, dsn, "--webhook.basic-auth-file="+basicFile, "--log.level=debug")
	tr := &transcript{}
	c := http.DefaultClient
	body := fixture(t, "02-checkout-down-firing.json")
	json := hdr("Content-Type", "application/json")

	steps := []struct {
		name, method, path string
		body               []byte
		header             http.Header
		want               int
	}{
		{"webhook with the token", "POST", "/api/v1/alerts", body, hdr("Authorization", "Bearer "+webhookToken), 200},
		{"webhook with basic auth", "POST", "/api/v1/alerts", body, basic("alertmanager", basicPass), 200},
		{"webhook, wrong token", "POST", "/api/v1/alerts", body, hdr("Authorization", "Bearer "+webhookToken+"x"), 401},
		{"webhook, wrong password", "POST", "/api/v1/alerts", body, basic("alertmanager", basicPass+"x"), 401},
		{"webhook, API token", "POST", "/api/v1/alerts", body, hdr("Authorization", "Bearer "+apiToken), 401},
		{"webhook, no credentials", "POST", "/api/v1/alerts", body, json, 401},
		{"webhook, bad JSON", "POST", "/api/v1/alerts", []byte(`{"version":"4",`), hdr("Authorization", "Bearer "+webhookToken), 400},
		{"ack, no token", "POST", "/api/v1/incidents/inc-00000000000000000000/ack", nil, json, 401},
		{"ack, webhook token", "POST", "/api/v1/incidents/inc-00000000000000000000/ack", nil, hdr("Authorization", "Bearer "+webhookToken), 401},
		{"ack, unknown incident", "POST", "/api/v1/incidents/inc-00000000000000000000/ack", nil, hdr("Authorization", "Bearer "+apiToken), 404},
		{"open, bad body", "POST", "/api/v1/incidents", []byte(`{"service": 1}`), hdr("Authorization", "Bearer "+apiToken), 400},
		{"list, bad limit", "GET", "/api/v1/incidents?limit=lots", nil, nil, 400},
		{"metrics", "GET", "/metrics", nil, nil, 200},
		{"ready", "GET", "/-/ready", nil, nil, 200},
	}
	for _, s := range steps {
		if code, b := tr.request(t, c, s.method, n.base+s.path, s.body, s.header); code != s.want {
			t.Errorf("%s: %d %s, want %d", s.name, code, b, s.want)
		}
	}
	// ClickHouse down: the errors that reach the log and the answers are
	// the driver's, with addresses in them; never the DSN's password.
	srv.Stop()
	tr.request(t, c, "POST", n.base+"/api/v1/alerts", fixture(t, "05-checkout-down-resolved.json"), hdr("Authorization", "Bearer "+webhookToken))
	tr.request(t, c, "GET", n.base+"/-/ready", nil, nil)
	tr.request(t, c, "GET", n.base+"/api/v1/incidents", nil, nil)
	tr.request(t, c, "POST", n.base+"/api/v1/incidents/inc-00000000000000000000/notes", []byte(`{"text":"x"}`), hdr("Authorization", "Bearer "+apiToken))
	tr.request(t, c, "GET", n.base+"/metrics", nil, nil)
	srv.Start()
	noSecrets(t, "the answers", tr.String())
	if !strings.Contains(tr.String(), "nines_webhook_requests_total") {
		t.Error("no metrics in the transcript")
	}
}

// settled waits (up to 10s) for nines' first availability refresh, so
// that a short test does not stop nines in the middle of that query: on
// ClickHouse 18.16 a query cancelled midway can keep running, and block
// the test database's DROP.
func settled(base string, client *http.Client, header http.Header) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", base+"/metrics", nil)
		for k, v := range header {
			req.Header[k] = v
		}
		if resp, err := client.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "\nnines_collector_up 1") {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func basic(user, pass string) http.Header {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/json")
	return req.Header
}

// TestStartupErrorsHideSecrets: a DSN that cannot be parsed, and one whose
// password ClickHouse refuses, stop nines with an error that does not
// quote the password.
func TestStartupErrorsHideSecrets(t *testing.T) {
	addr := chtest.Addr(t)
	tests := []struct {
		name, dsn string
		waits     bool // ClickHouse unavailable: nines waits for it
	}{
		{"bad port", "clickhouse://nines:" + dsnPass + "@127.0.0.1:port/x", false},
		{"bad escape", "clickhouse://nines:" + dsnPass + "%zz@" + addr + "/x", false},
		{"refused password", chtest.Scheme(t) + "://default:" + dsnPass + "@" + addr + "/x?dial_timeout=2s", false},
		{"unreachable", "clickhouse://nines:" + dsnPass + "@127.0.0.1:1/x?dial_timeout=1s", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var stderr syncWriter
			stderr.buf = &bytes.Buffer{}
			timeout := 30 * time.Second
			if tc.waits {
				timeout = 3 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			err := run(ctx, []string{"serve", "--storage.path=" + t.TempDir(), "--web.listen-address=127.0.0.1:0", "--clickhouse.dsn=" + tc.dsn,
				"--clickhouse.dial-timeout=1s", "--log.level=debug",
				"--webhook.bearer-token-file=" + writeFile(t, dir, "w", webhookToken)}, io.Discard, &stderr, nil)
			if tc.waits {
				// It waited until stopped, logging why.
				if err != nil || !strings.Contains(stderr.String(), "waiting for it") {
					t.Errorf("nines stopped with %v; log:\n%s", err, stderr.String())
				}
				noSecrets(t, "the log", stderr.String())
				return
			}
			if err == nil {
				t.Fatal("nines started")
			}
			t.Logf("error: %v", err)
			noSecrets(t, "the error", err.Error())
			noSecrets(t, "the log", stderr.String())
		})
	}
}

// TestMutatingEndpointsNeedCredentials walks the router, so that endpoints
// added later are covered too: every method but GET and HEAD must answer
// 401 without credentials and with the wrong ones.
func TestMutatingEndpointsNeedCredentials(t *testing.T) {
	n := startNines(t, chtest.Database(t))
	defer settled(n.base, http.DefaultClient, nil)
	h := routes(routeDeps{log: slog.New(slog.DiscardHandler), gatherer: prometheus.NewRegistry(), apiToken: "x"})
	r, ok := h.(*mux.Router)
	if !ok {
		t.Fatalf("routes returns %T, want a *mux.Router to walk", h)
	}
	var checked int
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tmpl, err := route.GetPathTemplate()
		if err != nil {
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil {
			// Any method: the handler decides. /metrics (promhttp) only
			// ever reads.
			if tmpl == "/metrics" {
				return nil
			}
			methods = []string{http.MethodPost}
		}
		path := tmpl
		for _, v := range []string{"{id}", "{service}", "{name}"} {
			path = strings.ReplaceAll(path, v, "inc-00000000000000000000")
		}
		for _, m := range methods {
			if m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions {
				continue
			}
			for _, auth := range []http.Header{hdr("Content-Type", "application/json"), hdr("Authorization", "Bearer wrong")} {
				code, b := n.doRaw(m, path, auth)
				if code != http.StatusUnauthorized && code != http.StatusForbidden {
					t.Errorf("%s %s with %v: %d %s, want 401", m, tmpl, auth, code, b)
				}
			}
			checked++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 7 {
		t.Errorf("checked %d mutating endpoints, want at least the webhook and the six incident actions", checked)
	}
}

func (n *nines) doRaw(method, path string, h http.Header) (int, []byte) {
	n.t.Helper()
	req, _ := http.NewRequest(method, n.base+path, strings.NewReader(`{"actor":"mallory","text":"x","service":"x","title":"x"}`))
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestRequestLimits(t *testing.T) {
	n := startNines(t, chtest.Database(t), "--webhook.max-body-bytes=4096")
	defer settled(n.base, http.DefaultClient, nil)
	tr := &transcript{}
	big := bytes.Repeat([]byte("a"), 100<<10)
	tests := []struct {
		name, method, path string
		body               []byte
		header             http.Header
		want               int
	}{
		{"header over 64 KiB", "GET", "/-/healthy", nil, hdr("X-Big", string(big)), http.StatusRequestHeaderFieldsTooLarge},
		{"webhook body over the limit", "POST", "/api/v1/alerts", append([]byte(`{"version":"4","x":"`), big...), hdr("Authorization", "Bearer "+webhookToken), http.StatusRequestEntityTooLarge},
		{"API body over 1 MiB", "POST", "/api/v1/incidents", append([]byte(`{"title":"`), bytes.Repeat([]byte("a"), 2<<20)...), hdr("Authorization", "Bearer "+apiToken), http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		if code, b := tr.request(t, http.DefaultClient, tc.method, n.base+tc.path, tc.body, tc.header); code != tc.want {
			t.Errorf("%s: %d %.200s, want %d", tc.name, code, b, tc.want)
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nines test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writeFile(t, dir, "cert.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	keyFile = writeFile(t, dir, "key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestWebConfigTLSAndBasicAuth serves the whole server over TLS with basic
// auth from a Prometheus web configuration file. Alertmanager then sends
// the same basic-auth credentials to the webhook.
func TestWebConfigTLSAndBasicAuth(t *testing.T) {
	dsn := chtest.Database(t)
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte(webPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := writeFile(t, dir, "web.yml", fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
basic_auth_users:
  alertmanager: %s
`, certFile, keyFile, hash))
	addr := freePort(t)
	var stderr bytes.Buffer
	w := &syncWriter{buf: &stderr}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--storage.path=" + t.TempDir(), "--web.listen-address=" + addr, "--clickhouse.dsn=" + dsn,
			"--web.config.file=" + webConfig, "--log.level=debug",
			"--webhook.basic-auth-file=" + writeFile(t, dir, "basic", "alertmanager:"+webPass),
			"--api.token-file=" + writeFile(t, dir, "api", apiToken)}, io.Discard, w, nil)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("nines: %v", err)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		noSecrets(t, "the log", stderr.String())
	})
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	base := "https://" + addr
	tr := &transcript{}
	eventually(t, 30*time.Second, "nines to serve TLS", func() bool {
		req, _ := http.NewRequest("GET", base+"/-/ready", nil)
		req.SetBasicAuth("alertmanager", webPass)
		resp, err := tlsClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if resp, err := http.Get("http://" + addr + "/-/ready"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP served: %d %s", resp.StatusCode, b)
		}
	}
	tests := []struct {
		name, method, path string
		body               []byte
		header             http.Header
		want               int
	}{
		{"no credentials", "GET", "/-/ready", nil, nil, 401},
		{"wrong password", "GET", "/metrics", nil, basic("alertmanager", webPass+"x"), 401},
		{"metrics", "GET", "/metrics", nil, basic("alertmanager", webPass), 200},
		{"webhook with the web credentials", "POST", "/api/v1/alerts", fixture(t, "01-search-latency-firing.json"), basic("alertmanager", webPass), 200},
		{"webhook, bearer only", "POST", "/api/v1/alerts", fixture(t, "01-search-latency-firing.json"), hdr("Authorization", "Bearer "+apiToken), 401},
	}
	for _, tc := range tests {
		if code, b := tr.request(t, tlsClient, tc.method, base+tc.path, tc.body, tc.header); code != tc.want {
			t.Errorf("%s: %d %.200s, want %d", tc.name, code, b, tc.want)
		}
	}
	noSecrets(t, "the answers", tr.String())
	settled(base, tlsClient, basic("alertmanager", webPass))
}
