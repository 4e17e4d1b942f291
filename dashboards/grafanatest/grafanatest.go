// Package grafanatest fakes the part of Grafana's HTTP API that nines
// pushes dashboards through, for tests: /api/health, /api/folders,
// /api/folders/{uid}, /api/dashboards/db, /api/dashboards/uid/{uid} and
// /api/search. It answers with Grafana's response shapes and status codes
// (Grafana 11–12): bearer tokens checked (401), read-only tokens refused
// (403), missing folders and dashboards (404), version and title conflicts
// (412), invalid or provisioned dashboards (400), and it can be told to
// fail chosen requests.
package grafanatest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Server is a fake Grafana. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server
	token string

	mu         sync.Mutex
	folders    map[string]*folder
	dashboards map[string]*dashboard
	nextID     int
	readOnly   bool
	failures   map[string]failure // by "METHOD uid"
	requests   []string           // "METHOD /path"
}

type folder struct {
	ID         int
	UID, Title string
	Version    int
}

type dashboard struct {
	ID          int
	FolderUID   string
	Model       map[string]any
	Version     int
	Provisioned bool
	Messages    []string
}

type failure struct {
	status int
	body   string
}

// New starts a fake Grafana that accepts the bearer token token. It stops
// when the test ends.
func New(t testing.TB, token string) *Server {
	t.Helper()
	s := &Server{
		token:      token,
		folders:    map[string]*folder{},
		dashboards: map[string]*dashboard{},
		failures:   map[string]failure{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/health", s.health)
	mux.HandleFunc("GET /api/folders", s.auth(s.listFolders))
	mux.HandleFunc("POST /api/folders", s.auth(s.createFolder))
	mux.HandleFunc("GET /api/folders/{uid}", s.auth(s.getFolder))
	mux.HandleFunc("GET /api/dashboards/uid/{uid}", s.auth(s.getDashboard))
	mux.HandleFunc("POST /api/dashboards/db", s.auth(s.saveDashboard))
	mux.HandleFunc("GET /api/search", s.auth(s.search))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "Not found"})
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// SetReadOnly makes the token a Viewer's: writes get 403.
func (s *Server) SetReadOnly(ro bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readOnly = ro
}

// Fail makes requests of method (GET or POST) for dashboard uid answer
// status with body, as Grafana would in some situation.
func (s *Server) Fail(method, uid string, status int, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures[method+" "+uid] = failure{status, body}
}

// AddFolder creates a folder.
func (s *Server) AddFolder(uid, title string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	s.folders[uid] = &folder{ID: s.nextID, UID: uid, Title: title, Version: 1}
}

// AddDashboard stores a dashboard as if someone had made it in Grafana,
// or provisioned it from a file.
func (s *Server) AddDashboard(folderUID string, model map[string]any, provisioned bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	model["id"] = s.nextID
	model["version"] = 1
	s.dashboards[model["uid"].(string)] = &dashboard{ID: s.nextID, FolderUID: folderUID, Model: model, Version: 1, Provisioned: provisioned}
}

// Edit changes a stored dashboard as a person editing it in Grafana would.
func (s *Server) Edit(uid string, change func(model map[string]any)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.dashboards[uid]
	change(d.Model)
	d.Version++
	d.Model["version"] = d.Version
}

// Dashboard returns a stored dashboard's model, version, folder and the
// messages it was saved with.
func (s *Server) Dashboard(uid string) (model map[string]any, version int, folderUID string, messages []string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dashboards[uid]
	if !ok {
		return nil, 0, "", nil, false
	}
	return d.Model, d.Version, d.FolderUID, slices.Clone(d.Messages), true
}

// Folder reports whether a folder exists, and its title.
func (s *Server) Folder(uid string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.folders[uid]
	if !ok {
		return "", false
	}
	return f.Title, true
}

// Requests returns the requests served so far, as "METHOD /path".
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Count returns how many requests of method to paths starting with
// prefix were served.
func (s *Server) Count(method, prefix string) int {
	n := 0
	for _, r := range s.Requests() {
		if strings.HasPrefix(r, method+" "+prefix) {
			n++
		}
	}
	return n
}

func (s *Server) record(r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// errorBody is Grafana's error answer since version 10.
func errorBody(status int, message, messageID string) map[string]any {
	return map[string]any{"extra": nil, "message": message, "messageId": messageID, "statusCode": status, "traceID": ""}
}

// auth checks the bearer token as Grafana does.
func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		h := r.Header.Get("Authorization")
		switch {
		case h == "":
			writeJSON(w, http.StatusUnauthorized, errorBody(http.StatusUnauthorized, "Unauthorized", "auth.unauthorized"))
			return
		case h != "Bearer "+s.token:
			writeJSON(w, http.StatusUnauthorized, errorBody(http.StatusUnauthorized, "Invalid API key", "api-keys.invalid"))
			return
		}
		s.mu.Lock()
		ro := s.readOnly
		s.mu.Unlock()
		if ro && r.Method != http.MethodGet {
			writeJSON(w, http.StatusForbidden, map[string]any{
				"accessErrorId": "ACE0123456789",
				"message":       "You'll need additional permissions to perform this action. Permissions needed: any of dashboards:write",
				"title":         "Access denied",
			})
			return
		}
		next(w, r)
	}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	s.record(r)
	writeJSON(w, http.StatusOK, map[string]any{"commit": "0123456789", "database": "ok", "version": "12.0.2"})
}

func folderJSON(f *folder) map[string]any {
	return map[string]any{
		"id": f.ID, "uid": f.UID, "orgId": 1, "title": f.Title, "url": "/dashboards/f/" + f.UID + "/" + slug(f.Title),
		"hasAcl": false, "canSave": true, "canEdit": true, "canAdmin": true, "canDelete": true,
		"createdBy": "nines", "created": "2025-01-01T00:00:00Z", "updatedBy": "nines", "updated": "2025-01-01T00:00:00Z",
		"version": f.Version,
	}
}

func (s *Server) listFolders(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	for _, f := range s.folders {
		out = append(out, map[string]any{"id": f.ID, "uid": f.UID, "title": f.Title})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) getFolder(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.folders[r.PathValue("uid")]
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody(http.StatusNotFound, "folder not found", "folder.notFound"))
		return
	}
	writeJSON(w, http.StatusOK, folderJSON(f))
}

func (s *Server) createFolder(w http.ResponseWriter, r *http.Request) {
	var in struct {
		UID   string `json:"uid"`
		Title string `json:"title"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "bad request data"})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.Title == "" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "folder title cannot be empty"})
		return
	}
	if _, dup := s.folders[in.UID]; dup {
		writeJSON(w, http.StatusConflict, map[string]any{"message": "a folder with the same uid already exists"})
		return
	}
	for _, f := range s.folders {
		if f.Title == in.Title {
			writeJSON(w, http.StatusConflict, map[string]any{"message": "a folder with the same name already exists in the current location"})
			return
		}
	}
	s.nextID++
	f := &folder{ID: s.nextID, UID: in.UID, Title: in.Title, Version: 1}
	s.folders[in.UID] = f
	writeJSON(w, http.StatusOK, folderJSON(f))
}

func (s *Server) injected(w http.ResponseWriter, method, uid string) bool {
	s.mu.Lock()
	f, ok := s.failures[method+" "+uid]
	s.mu.Unlock()
	if ok {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		fmt.Fprint(w, f.body)
	}
	return ok
}

func (s *Server) getDashboard(w http.ResponseWriter, r *http.Request) {
	uid := r.PathValue("uid")
	if s.injected(w, http.MethodGet, uid) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dashboards[uid]
	if !ok {
		writeJSON(w, http.StatusNotFound, errorBody(http.StatusNotFound, "Dashboard not found", "dashboards.dashboardNotFound"))
		return
	}
	title, _ := d.Model["title"].(string)
	meta := map[string]any{
		"type": "db", "canSave": !d.Provisioned, "canEdit": true, "canAdmin": true, "canStar": true, "canDelete": true,
		"slug": slug(title), "url": "/d/" + uid + "/" + slug(title), "expires": "0001-01-01T00:00:00Z",
		"created": "2025-01-01T00:00:00Z", "updated": "2025-01-01T00:00:00Z", "updatedBy": "nines", "createdBy": "nines",
		"version": d.Version, "hasAcl": false, "isFolder": false, "folderId": 0, "folderUid": d.FolderUID,
		"folderTitle": "", "folderUrl": "", "provisioned": d.Provisioned, "provisionedExternalId": "",
	}
	if f, ok := s.folders[d.FolderUID]; ok {
		meta["folderId"], meta["folderTitle"], meta["folderUrl"] = f.ID, f.Title, "/dashboards/f/"+f.UID+"/"+slug(f.Title)
	}
	writeJSON(w, http.StatusOK, map[string]any{"dashboard": d.Model, "meta": meta})
}

// saveDashboard implements POST /api/dashboards/db with Grafana's checks:
// title required, uid valid, folder existing, provisioned dashboards
// refused, version (without overwrite) and title-in-folder conflicts.
func (s *Server) saveDashboard(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Dashboard map[string]any `json:"dashboard"`
		FolderUID string         `json:"folderUid"`
		FolderID  *int           `json:"folderId"`
		Overwrite bool           `json:"overwrite"`
		Message   string         `json:"message"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Dashboard == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "bad request data"})
		return
	}
	uid, _ := in.Dashboard["uid"].(string)
	if s.injected(w, http.MethodPost, uid) {
		return
	}
	title, _ := in.Dashboard["title"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case strings.TrimSpace(title) == "":
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Dashboard title cannot be empty", "status": "empty-name"})
		return
	case len(uid) > 40:
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "uid too long, max 40 characters", "status": "bad-uid"})
		return
	case uid == "" || strings.Trim(uid, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "":
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "uid contains illegal characters", "status": "bad-uid"})
		return
	case in.FolderID != nil && in.FolderUID == "":
		// nines always names folders by uid; the deprecated folderId
		// alone would land dashboards in the General folder.
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "folderId is deprecated: this fake wants folderUid"})
		return
	}
	if _, ok := s.folders[in.FolderUID]; in.FolderUID != "" && !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "folder not found", "status": "not-found"})
		return
	}
	existing := s.dashboards[uid]
	if existing != nil && existing.Provisioned {
		writeJSON(w, http.StatusBadRequest, map[string]any{"message": "Cannot save provisioned dashboard"})
		return
	}
	if existing != nil && !in.Overwrite {
		if v, _ := in.Dashboard["version"].(float64); int(v) != existing.Version {
			writeJSON(w, http.StatusPreconditionFailed, map[string]any{"message": "The dashboard has been changed by someone else", "status": "version-mismatch"})
			return
		}
	}
	for otherUID, d := range s.dashboards {
		if otherUID != uid && d.FolderUID == in.FolderUID && d.Model["title"] == title {
			// Grafana's answer without overwrite; with it, Grafana would
			// replace the other dashboard, which nines never asks for.
			writeJSON(w, http.StatusPreconditionFailed, map[string]any{"message": "A dashboard with the same name in the folder already exists", "status": "name-exists"})
			return
		}
	}
	if existing == nil {
		s.nextID++
		existing = &dashboard{ID: s.nextID}
		s.dashboards[uid] = existing
	}
	existing.Version++
	existing.FolderUID = in.FolderUID
	existing.Messages = append(existing.Messages, in.Message)
	in.Dashboard["id"] = existing.ID
	in.Dashboard["version"] = existing.Version
	existing.Model = in.Dashboard
	writeJSON(w, http.StatusOK, map[string]any{
		"folderUid": in.FolderUID, "id": existing.ID, "slug": slug(title), "status": "success",
		"uid": uid, "url": "/d/" + uid + "/" + slug(title), "version": existing.Version,
	})
}

func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	query := strings.ToLower(q.Get("query"))
	folders := q["folderUIDs"]
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	var uids []string
	for uid := range s.dashboards {
		uids = append(uids, uid)
	}
	slices.Sort(uids)
	for _, uid := range uids {
		d := s.dashboards[uid]
		title, _ := d.Model["title"].(string)
		if query != "" && !strings.Contains(strings.ToLower(title), query) {
			continue
		}
		if len(folders) > 0 && !slices.Contains(folders, d.FolderUID) {
			continue
		}
		out = append(out, map[string]any{
			"id": d.ID, "uid": uid, "orgId": 1, "title": title, "uri": "db/" + slug(title),
			"url": "/d/" + uid + "/" + slug(title), "slug": "", "type": "dash-db", "tags": d.Model["tags"],
			"isStarred": false, "folderUid": d.FolderUID, "sortMeta": 0,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// slug is Grafana's URL slug of a title, near enough.
func slug(title string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(title) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
