// Command chdbserver answers ClickHouse's HTTP interface with chDB, current
// ClickHouse embedded in a library, so that nines' own store code, through
// the real clickhouse-go driver (DSN http://host:port/db), runs against
// current ClickHouse in tests. `make test` starts it (see
// deploy/dev/with-chdb); it is a test helper, not a server for users.
//
// It answers what clickhouse-go's HTTP transport sends: a statement in the
// body (or in the query parameter, with INSERT data in the body), the
// default database in database, results as Native blocks encoded for the
// client's protocol revision (client_protocol_version), and errors as
// non-200 answers with a "Code: N. DB::Exception: …" body and the
// X-ClickHouse-Exception-Code header. Statements run one at a time in one
// chDB session whose data lives in -dir; a request's query settings apply
// to its statement only. Server-side query parameters and compressed
// bodies are refused with a clear error: nines sends neither. Like the test
// server of ClickHouse 18.16, it admits the user default without a password
// and refuses every other credential.
//
// libchdb.so is loaded when the program starts, from CHDB_LIB_PATH
// (deploy/dev/ensure-chdb installs it); the program cannot start without
// it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
	chdb "github.com/chdb-io/chdb-go/chdb-purego"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chdbserver:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chdbserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:18330", "loopback address to answer ClickHouse's HTTP interface on")
	dir := fs.String("dir", "", "directory of the chDB session's data (required)")
	verbose := fs.Bool("v", false, "log every statement")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("-dir is required")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if err := os.MkdirAll(filepath.Join(*dir, "inserts"), 0o700); err != nil {
		return err
	}
	conn, err := chdb.NewConnectionFromConnString(filepath.Join(*dir, "data"))
	if err != nil {
		return fmt.Errorf("open chDB session in %s: %w", *dir, err)
	}
	// chDB installs ClickHouse's handlers of fatal signals: a write to a
	// client that went away must fail with EPIPE, not raise SIGPIPE there.
	signal.Ignore(syscall.SIGPIPE)
	e := &engine{conn: conn, tmp: filepath.Join(*dir, "inserts")}
	defer e.close()
	version, err := e.version()
	if err != nil {
		return fmt.Errorf("chDB does not answer: %w", err)
	}

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if a, ok := l.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		l.Close()
		return fmt.Errorf("-listen %s: only loopback addresses are allowed", *listen)
	}
	srv := &http.Server{Handler: &handler{e: e, log: log}, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "chdbserver: ClickHouse %s (chDB) on http://%s, data in %s\n", version, l.Addr(), *dir)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// engine runs statements in one chDB session, one at a time: the session
// keeps the current database between statements.
type engine struct {
	mu   sync.Mutex
	conn chdb.ChdbConn
	tmp  string
	seq  int
}

func (e *engine) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.conn.Close()
}

func (e *engine) version() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out, err := e.query("SELECT version()", "TSV")
	return strings.TrimSpace(string(out)), err
}

// query runs one statement; the caller holds mu.
func (e *engine) query(q, format string) ([]byte, error) {
	r, err := e.conn.Query(q, format)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, nil
	}
	defer r.Free()
	if err := r.Error(); err != nil {
		return nil, err
	}
	return append([]byte(nil), r.Buf()...), nil
}

// exec runs q in database db (the server's default database when empty)
// with the given query settings, and returns its result as Native blocks
// of protocol revision 0. With data, q is an INSERT … FORMAT Native whose
// rows are data.
func (e *engine) exec(db string, settings map[string]string, q string, data []byte) ([]byte, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if db == "" {
		db = "default"
	}
	if _, err := e.query("USE "+quoteIdent(db), "TSV"); err != nil {
		return nil, err
	}
	// Settings of one request: set for this statement, then back to the
	// defaults, since every request shares the session.
	for k, v := range settings {
		if !settingRe.MatchString(k) {
			return nil, &serverError{code: 115, msg: "chdbserver: bad setting name " + strconv.Quote(k)}
		}
		defer e.query("SET "+k+" = DEFAULT", "TSV")
		if _, err := e.query("SET "+k+" = '"+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v)+"'", "TSV"); err != nil {
			return nil, err
		}
	}
	if data == nil {
		out, err := e.query(q, "Native")
		if err != nil || len(out) > 0 || !selectRe.MatchString(q) {
			return out, err
		}
		// chDB writes nothing for a result without rows; a server writes
		// the header: the columns' names and types.
		desc, err := e.query("DESCRIBE TABLE ("+strings.TrimRight(strings.TrimSpace(q), ";")+")", "Native")
		if err != nil {
			return nil, err
		}
		return nil, &emptyResult{desc: desc}
	}
	m := insertNative.FindStringSubmatch(q)
	if m == nil {
		return nil, &serverError{code: 62, msg: "chdbserver: data sent with a statement other than INSERT … FORMAT Native: " + q}
	}
	e.seq++
	path := filepath.Join(e.tmp, strconv.Itoa(e.seq)+".native")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(path)
	return e.query(m[1]+" FROM INFILE '"+path+"' FORMAT Native", "Native")
}

var selectRe = regexp.MustCompile(`(?is)^\s*(SELECT|WITH)\b`)

var settingRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

var insertNative = regexp.MustCompile(`(?is)^\s*(INSERT\s+INTO\s+.*?)\s+FORMAT\s+Native\s*$`)

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// emptyResult is the answer to a SELECT without rows: desc is the Native
// result (revision 0) of DESCRIBE of the SELECT.
type emptyResult struct{ desc []byte }

func (*emptyResult) Error() string { return "empty result" }

// serverError is an error in ClickHouse's form.
type serverError struct {
	code int
	msg  string
}

func (e *serverError) Error() string { return e.msg }

// URL parameters of ClickHouse's HTTP interface that are not settings.
var known = map[string]bool{
	"query": true, "database": true, "default_format": true, "client_protocol_version": true,
	"query_id": true, "session_id": true, "quota_key": true, "user": true, "password": true,
}

type handler struct {
	e   *engine
	log *slog.Logger
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ping" {
		io.WriteString(w, "Ok.\n")
		return
	}
	params := r.URL.Query()
	if err := authenticate(r, params); err != nil {
		h.fail(w, err)
		return
	}
	var (
		body      []byte
		externals []external
		err       error
	)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		body, externals, err = readExternal(r, params)
	} else {
		body, err = io.ReadAll(r.Body)
	}
	if err != nil {
		h.fail(w, &serverError{code: 1000, msg: "read request body: " + err.Error()})
		return
	}
	set, err := settings(r, params)
	if err != nil {
		h.fail(w, err)
		return
	}
	q, data := params.Get("query"), []byte(nil)
	switch {
	case q == "":
		q = string(body)
	case len(body) > 0:
		data = body
	}
	if len(externals) > 0 {
		var cleanup func()
		if q, cleanup, err = h.e.withExternal(q, externals); err != nil {
			h.fail(w, err)
			return
		}
		defer cleanup()
	}
	if f := params.Get("default_format"); f != "" && f != "Native" {
		h.fail(w, &serverError{code: 73, msg: "chdbserver: only default_format=Native is answered, not " + f})
		return
	}
	rev, _ := strconv.ParseUint(params.Get("client_protocol_version"), 10, 64)
	start := time.Now()
	h.log.Debug("start", "sql", q)
	out, err := h.e.exec(params.Get("database"), set, q, data)
	h.log.Debug("statement", "database", params.Get("database"), "sql", q, "rows_bytes", len(data), "took", time.Since(start), "err", err)
	var empty *emptyResult
	switch {
	case errors.As(err, &empty):
		out, err = header(empty.desc, rev)
	case err == nil:
		out, err = reencode(out, rev)
	}
	if err != nil {
		h.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-ClickHouse-Format", "Native")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.Write(out)
}

// external is a table sent beside a query (ClickHouse's "external data"):
// the driver sends a multipart form whose field query is the statement
// and whose files are the tables, each described by the URL parameters
// NAME_structure and NAME_format.
type external struct {
	name, structure string
	data            []byte
}

// readExternal reads a multipart request: the statement, and the external
// tables, whose parameters it removes from params (they are not settings).
func readExternal(r *http.Request, params url.Values) ([]byte, []external, error) {
	if err := r.ParseMultipartForm(64 << 20); err != nil {
		return nil, nil, err
	}
	var out []external
	for name, vals := range r.MultipartForm.Value {
		if name == "query" || params.Get(name+"_format") == "" {
			continue
		}
		if !identRe.MatchString(name) || len(vals) != 1 {
			return nil, nil, fmt.Errorf("external table %q: want one file named like an identifier", name)
		}
		out = append(out, external{name: name, structure: params.Get(name + "_structure"), data: []byte(vals[0])})
		params.Del(name + "_format")
		params.Del(name + "_structure")
	}
	for name, files := range r.MultipartForm.File {
		if !identRe.MatchString(name) || len(files) != 1 {
			return nil, nil, fmt.Errorf("external table %q: want one file named like an identifier", name)
		}
		if f := params.Get(name + "_format"); f != "Native" {
			return nil, nil, fmt.Errorf("external table %s: format %q, only Native is answered", name, f)
		}
		f, err := files[0].Open()
		if err != nil {
			return nil, nil, err
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, nil, err
		}
		out = append(out, external{name: name, structure: params.Get(name + "_structure"), data: data})
		params.Del(name + "_format")
		params.Del(name + "_structure")
	}
	return []byte(r.FormValue("query")), out, nil
}

var identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// withExternal writes the external tables to files and returns q reading
// them where it names them (FROM name, JOIN name) through the file table
// function, which is what a server does with external data in effect; the
// cleanup removes the files.
func (e *engine) withExternal(q string, ext []external) (string, func(), error) {
	var paths []string
	cleanup := func() {
		for _, p := range paths {
			os.Remove(p)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range ext {
		e.seq++
		p := filepath.Join(e.tmp, strconv.Itoa(e.seq)+"."+t.name+".native")
		if err := os.WriteFile(p, t.data, 0o600); err != nil {
			cleanup()
			return "", nil, err
		}
		paths = append(paths, p)
		lit := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }
		re := regexp.MustCompile(`(?i)\b(FROM|JOIN)\s+` + t.name + `\b`)
		q = re.ReplaceAllString(q, "$1 file("+lit(p)+", 'Native', "+lit(t.structure)+")")
	}
	return q, cleanup, nil
}

// authenticate admits the user default without a password, as the test
// server of ClickHouse 18.16 does (deploy/clickhouse/dev/clickhousectl), and
// no one else.
func authenticate(r *http.Request, params url.Values) error {
	user, pass, ok := r.BasicAuth()
	if !ok {
		user, pass = r.Header.Get("X-ClickHouse-User"), r.Header.Get("X-ClickHouse-Key")
	}
	if user == "" {
		user, pass = params.Get("user"), params.Get("password")
	}
	if (user == "" || user == "default") && pass == "" {
		return nil
	}
	return &serverError{code: 516, msg: "chdbserver: " + user + ": Authentication failed: password is incorrect, or there is no user with such name"}
}

// settings returns the request's query settings, refusing what this
// server does not answer as a real server would.
func settings(r *http.Request, params url.Values) (map[string]string, error) {
	if enc := r.Header.Get("Content-Encoding"); enc != "" {
		return nil, &serverError{code: 1000, msg: "chdbserver: compressed request bodies (" + enc + ") are not supported"}
	}
	set := map[string]string{}
	for k := range params {
		switch {
		case known[k]:
		case strings.HasPrefix(k, "param_"):
			return nil, &serverError{code: 1000, msg: "chdbserver: server-side query parameters (" + k + ") are not supported"}
		case k == "compress" || k == "decompress":
			if params.Get(k) != "0" {
				return nil, &serverError{code: 1000, msg: "chdbserver: compressed blocks (" + k + ") are not supported"}
			}
		default:
			set[k] = params.Get(k)
		}
	}
	return set, nil
}

var codeRe = regexp.MustCompile(`^Code: (\d+)\.`)

func (h *handler) fail(w http.ResponseWriter, err error) {
	msg := err.Error()
	code := 1000
	var se *serverError
	if errors.As(err, &se) {
		code = se.code
		msg = fmt.Sprintf("Code: %d. DB::Exception: %s", code, se.msg)
	} else if m := codeRe.FindStringSubmatch(msg); m != nil {
		code, _ = strconv.Atoi(m[1])
		// chDB repeats the code and the message's start; a server says it once.
		msg = strings.Replace(msg, m[0]+" DB::Exception: "+m[0], m[0], 1)
	} else {
		msg = fmt.Sprintf("Code: %d. DB::Exception: %s", code, msg)
	}
	h.log.Debug("error", "err", msg)
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	w.Header().Set("X-ClickHouse-Exception-Code", strconv.Itoa(code))
	w.WriteHeader(http.StatusInternalServerError)
	io.WriteString(w, msg+"\n")
}

// reencode turns chDB's Native blocks (protocol revision 0) into the
// blocks a server writes for a client of protocol revision rev: with block
// info and, from revision 54454 on, a custom-serialization flag per column.
func reencode(in []byte, rev uint64) ([]byte, error) {
	if rev == 0 || len(in) == 0 {
		return in, nil
	}
	sc := &column.ServerContext{Revision: rev, Timezone: time.UTC}
	r := chproto.NewReader(strings.NewReader(string(in)))
	out := new(chproto.Buffer)
	for {
		b := proto.Block{ServerContext: sc}
		if err := b.Decode(r, 0); err != nil {
			if errors.Is(err, io.EOF) {
				return out.Buf, nil
			}
			return nil, fmt.Errorf("chdbserver: decode chDB's Native result: %w", err)
		}
		if err := b.Encode(out, rev); err != nil {
			return nil, fmt.Errorf("chdbserver: encode Native result: %w", err)
		}
	}
}

// header is the block of a result without rows, for a client of protocol
// revision rev: the names and types of the columns in desc, the Native
// result of DESCRIBE.
func header(desc []byte, rev uint64) ([]byte, error) {
	d := proto.Block{ServerContext: &column.ServerContext{Timezone: time.UTC}}
	if err := d.Decode(chproto.NewReader(strings.NewReader(string(desc))), 0); err != nil {
		return nil, fmt.Errorf("chdbserver: decode DESCRIBE result: %w", err)
	}
	if len(d.Columns) < 2 {
		return nil, fmt.Errorf("chdbserver: DESCRIBE result has %d columns", len(d.Columns))
	}
	names, types := d.Columns[0], d.Columns[1]
	b := proto.Block{ServerContext: d.ServerContext}
	for i := range names.Rows() {
		name, _ := names.Row(i, false).(string)
		typ, _ := types.Row(i, false).(string)
		if err := b.AddColumn(name, column.Type(typ)); err != nil {
			return nil, fmt.Errorf("chdbserver: result column %s %s: %w", name, typ, err)
		}
	}
	out := new(chproto.Buffer)
	if err := b.EncodeHeader(out, rev); err != nil {
		return nil, err
	}
	for i := range names.Rows() {
		out.PutString(names.Row(i, false).(string))
		out.PutString(types.Row(i, false).(string))
		if rev >= proto.DBMS_MIN_REVISION_WITH_CUSTOM_SERIALIZATION {
			out.PutBool(false)
		}
	}
	return out.Buf, nil
}
