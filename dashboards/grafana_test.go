package dashboards

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ninesops/nines/dashboards/grafanatest"
)

const testToken = "glsa_test_token"

func testFiles(t *testing.T) []File {
	t.Helper()
	files, err := Files(generateFor(t, testCatalog, Options{}))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func newTestClient(t *testing.T, url, token string) *Client {
	t.Helper()
	c, err := NewClient(ClientOptions{URL: url, Token: token, HTTPClient: &http.Client{Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func actions(rs []Result) map[Action]int {
	m := map[Action]int{}
	for _, r := range rs {
		m[r.Action]++
	}
	return m
}

// TestPush: the first push creates the folder and every dashboard, the
// second changes nothing, a dashboard edited in Grafana is put back.
func TestPush(t *testing.T) {
	t.Parallel()
	g := grafanatest.New(t, testToken)
	c := newTestClient(t, g.URL, testToken)
	files := testFiles(t)
	ctx := context.Background()
	opts := PushOptions{FolderUID: "nines", FolderTitle: "nines", Message: "catalog change 42"}

	rs, err := c.Push(ctx, files, opts)
	if err != nil {
		t.Fatalf("first push: %v", err)
	}
	if got := actions(rs); got[Created] != len(files) || len(rs) != len(files) {
		t.Fatalf("first push: %v, want %d created", got, len(files))
	}
	if title, ok := g.Folder("nines"); !ok || title != "nines" {
		t.Errorf("folder nines not created (title %q)", title)
	}
	for i, f := range files {
		model, version, folder, msgs, ok := g.Dashboard(f.UID)
		if !ok {
			t.Fatalf("dashboard %s not stored", f.UID)
		}
		if folder != "nines" || version != 1 || model["title"] != f.Title || len(msgs) != 1 || msgs[0] != "catalog change 42" {
			t.Errorf("dashboard %s stored in %q, version %d, title %v, messages %q", f.UID, folder, version, model["title"], msgs)
		}
		if rs[i].UID != f.UID || rs[i].Version != 1 || !strings.HasPrefix(rs[i].URL, "/d/"+f.UID) {
			t.Errorf("result %d: %+v", i, rs[i])
		}
	}

	posts := g.Count("POST", "/api/dashboards/db")
	rs, err = c.Push(ctx, files, opts)
	if err != nil {
		t.Fatalf("second push: %v", err)
	}
	if got := actions(rs); got[Unchanged] != len(files) {
		t.Errorf("second push: %v, want all %d unchanged", got, len(files))
	}
	if n := g.Count("POST", "/api/dashboards/db") - posts; n != 0 {
		t.Errorf("second push posted %d dashboards, want none", n)
	}
	if n := g.Count("POST", "/api/folders"); n != 1 {
		t.Errorf("folder created %d times, want once", n)
	}

	g.Edit(files[1].UID, func(m map[string]any) { m["title"] = "edited by hand" })
	rs, err = c.Push(ctx, files, opts)
	if err != nil {
		t.Fatalf("third push: %v", err)
	}
	if got := actions(rs); got[Updated] != 1 || got[Unchanged] != len(files)-1 {
		t.Errorf("third push: %v, want 1 updated", got)
	}
	if rs[1].Action != Updated || rs[1].Version != 3 {
		t.Errorf("edited dashboard: %+v, want updated to version 3", rs[1])
	}
	if model, _, _, _, _ := g.Dashboard(files[1].UID); model["title"] != files[1].Title {
		t.Errorf("edited dashboard not restored: title %v", model["title"])
	}
}

// TestPushMovesDashboards: a dashboard in another folder is moved.
func TestPushMovesDashboards(t *testing.T) {
	t.Parallel()
	g := grafanatest.New(t, testToken)
	g.AddFolder("old", "old")
	files := testFiles(t)[:1]
	c := newTestClient(t, g.URL, testToken)
	if _, err := c.Push(context.Background(), files, PushOptions{FolderUID: "old", FolderTitle: "old"}); err != nil {
		t.Fatal(err)
	}
	rs, err := c.Push(context.Background(), files, PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, folder, _, _ := g.Dashboard(files[0].UID); rs[0].Action != Updated || folder != DefaultFolderUID {
		t.Errorf("got %+v in folder %q, want updated into %s", rs[0], folder, DefaultFolderUID)
	}
}

// TestPushErrors: Grafana's refusals are reported clearly, per dashboard
// where they concern one, and never panic.
func TestPushErrors(t *testing.T) {
	t.Parallel()
	files := testFiles(t)
	tests := []struct {
		name  string
		setup func(g *grafanatest.Server) (url, token string)
		// wantErr is in Push's error; failed lists the dashboards (by
		// index) that must fail, nil when the whole push fails.
		wantErr []string
		failed  []int
	}{
		{
			name:    "wrong token",
			setup:   func(g *grafanatest.Server) (string, string) { return g.URL, "not-the-token" },
			wantErr: []string{"GET /api/folders/nines: 401 Unauthorized", "Invalid API key", "rejected the token"},
		},
		{
			name: "read-only token",
			setup: func(g *grafanatest.Server) (string, string) {
				g.SetReadOnly(true)
				return g.URL, testToken
			},
			wantErr: []string{"create folder nines", "403 Forbidden", "Permissions needed", "Editor role"},
		},
		{
			name:    "not Grafana's root URL",
			setup:   func(g *grafanatest.Server) (string, string) { return g.URL + "/grafana", testToken },
			wantErr: []string{"GET /grafana/api/health: 404 Not Found", "check the Grafana URL"},
		},
		{
			name: "folder title taken by another uid",
			setup: func(g *grafanatest.Server) (string, string) {
				g.AddFolder("someone-elses", "nines")
				return g.URL, testToken
			},
			wantErr: []string{"409 Conflict", "same name", "push to that folder's uid"},
		},
		{
			name: "version mismatch on one dashboard",
			setup: func(g *grafanatest.Server) (string, string) {
				g.Fail("POST", files[2].UID, http.StatusPreconditionFailed, `{"message":"The dashboard has been changed by someone else","status":"version-mismatch"}`)
				return g.URL, testToken
			},
			wantErr: []string{"1 of", "dashboard " + files[2].UID, "412 Precondition Failed (version-mismatch)", "push again"},
			failed:  []int{2},
		},
		{
			name: "title taken in the folder",
			setup: func(g *grafanatest.Server) (string, string) {
				g.AddFolder("nines", "nines")
				g.AddDashboard("nines", map[string]any{"uid": "handmade", "title": files[0].Title}, false)
				return g.URL, testToken
			},
			wantErr: []string{"dashboard " + files[0].UID, "name-exists", "uid handmade", "rename or delete it"},
			failed:  []int{0},
		},
		{
			name: "provisioned dashboard",
			setup: func(g *grafanatest.Server) (string, string) {
				g.AddFolder("nines", "nines")
				g.AddDashboard("nines", map[string]any{"uid": files[1].UID, "title": "from a file"}, true)
				return g.URL, testToken
			},
			wantErr: []string{"dashboard " + files[1].UID, "400 Bad Request", "Cannot save provisioned dashboard", "provisions this dashboard from a file"},
			failed:  []int{1},
		},
		{
			name: "dashboard lookup fails with a proxy's HTML",
			setup: func(g *grafanatest.Server) (string, string) {
				g.Fail("GET", files[3].UID, http.StatusBadGateway, "<html><body>502 Bad Gateway</body></html>")
				return g.URL, testToken
			},
			wantErr: []string{"502 Bad Gateway", "<html>", "Grafana failed"},
			failed:  []int{3},
		},
		{
			name: "error body without a message",
			setup: func(g *grafanatest.Server) (string, string) {
				g.Fail("POST", files[0].UID, http.StatusInternalServerError, `{}`)
				return g.URL, testToken
			},
			wantErr: []string{"POST /api/dashboards/db: 500 Internal Server Error"},
			failed:  []int{0},
		},
		{
			name: "dashboard not found on save",
			setup: func(g *grafanatest.Server) (string, string) {
				g.Fail("POST", files[4].UID, http.StatusNotFound, `{"message":"Dashboard not found","status":"not-found"}`)
				return g.URL, testToken
			},
			wantErr: []string{"404 Not Found (not-found)"},
			failed:  []int{4},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := grafanatest.New(t, testToken)
			url, token := tc.setup(g)
			c := newTestClient(t, url, token)
			rs, err := c.Push(context.Background(), files, PushOptions{})
			if err == nil {
				t.Fatalf("push succeeded: %+v", rs)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not say %q:\n%v", want, err)
				}
			}
			if tc.failed == nil {
				if rs != nil {
					t.Errorf("results of a push that could not start: %+v", rs)
				}
				return
			}
			if len(rs) != len(files) {
				t.Fatalf("%d results, want one per dashboard (%d)", len(rs), len(files))
			}
			for i, r := range rs {
				wantFail := false
				for _, f := range tc.failed {
					wantFail = wantFail || f == i
				}
				if wantFail != (r.Action == Failed) || wantFail != (r.Err != nil) {
					t.Errorf("dashboard %d (%s): %s, %v; want failed=%v", i, r.UID, r.Action, r.Err, wantFail)
				}
				if !wantFail && r.Action != Created {
					t.Errorf("dashboard %d (%s): %s, want created", i, r.UID, r.Action)
				}
			}
			var ae *APIError
			var te *TitleTakenError
			if !errors.As(err, &ae) && !errors.As(err, &te) {
				t.Errorf("error %v wraps neither an *APIError nor a *TitleTakenError", err)
			}
		})
	}
}

// TestPushUnreachable: a Grafana that does not answer is an error, not a
// hang or a panic.
func TestPushUnreachable(t *testing.T) {
	t.Parallel()
	g := grafanatest.New(t, testToken)
	url := g.URL
	g.Close()
	c := newTestClient(t, url, testToken)
	_, err := c.Push(context.Background(), testFiles(t), PushOptions{})
	if err == nil || !strings.Contains(err.Error(), "grafana health") {
		t.Fatalf("err = %v, want a health error", err)
	}
}

func TestNewClientValidates(t *testing.T) {
	t.Parallel()
	for _, o := range []ClientOptions{
		{URL: "", Token: "t"},
		{URL: "grafana:3000", Token: "t"},
		{URL: "ftp://grafana", Token: "t"},
		{URL: "http://grafana:3000", Token: ""},
	} {
		if _, err := NewClient(o); err == nil {
			t.Errorf("NewClient(%+v) accepted", o)
		}
	}
}
