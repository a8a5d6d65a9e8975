package tests

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/errmon/errmon"
	"github.com/errmon/errmon/mail"
	"github.com/gin-gonic/gin"
)

// Every sink, every secret: hostile requests plant secrets in every place a
// secret can hide (path parameters, path segments, encoded query values,
// form field names, headers, bodies, messages, URLs, card numbers, JWTs),
// and none may reach any sink: any errmon table, the panic log (debug mode
// included), errmon's own log, the dashboard's list and detail pages, the
// JSON API, the alerts and the mails that carry them.

// skSecret is one planted secret: Value must appear in no sink; the
// request carrying it is made by send.
type skSecret struct {
	name  string
	value string // what must not appear anywhere
	send  func() *http.Request
}

// Markers: each is unique, so a hit names its leak.
const (
	skPathParam  = "pp-SK1-hunter"
	skPathSeg    = "seg-SK2-hunter"
	skEncURLPW   = "encpw-SK3"
	skEncKeyPW   = "enckey-SK4"
	skSemicolon  = "semi-SK5"
	skAtPassword = "SK6-after-at" // the password is "a@" + this
	skDSN        = "dsnpw-SK7"
	skFieldName  = "hunter2-SK8"
	skToken      = "tok-SK9-q"
	skAPIKey     = "apikey-SK10"
	skAccess     = "access-SK11"
	skPasswd     = "passwd-SK12"
	skFormToken  = "ftok-SK13"
	skJSONAPIKey = "japi-SK14"
	skJWTHeader  = "xjwt-SK15"
	skAccessKey  = "xak-SK16"
	skBearer     = "bearer-SK17-zz"
	// A Luhn-valid test card number, written three ways.
	skCard       = "4111111111111111"
	skCardSpaced = "4111 1111 1111 1111"
	skCardDashed = "4111-1111-1111-1111"
	// A JWT: header.payload.signature; its payload and signature must go.
	skJWTPayload = "eyJzdWIiOiJTSzE4In0"
	skJWTSig     = "c2lnLVNLMTgtc2lnbmF0dXJl"
	skJWT        = "eyJhbGciOiJIUzI1NiJ9." + skJWTPayload + "." + skJWTSig
)

// skSecrets lists the planted secrets with the request that carries each.
func skSecrets() []skSecret {
	get := func(target string) func() *http.Request {
		return func() *http.Request { return httptest.NewRequest(http.MethodGet, target, nil) }
	}
	post := func(target, ctype, body string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(body))
			r.Header.Set("Content-Type", ctype)
			return r
		}
	}
	header := func(k, v string) func() *http.Request {
		return func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/q/h-"+strings.ToLower(k), nil)
			r.Header.Set(k, v)
			return r
		}
	}
	message := func(msg string) func() *http.Request {
		return get("/msg?m=" + url.QueryEscape(msg))
	}
	cError := func(msg string) func() *http.Request {
		return get("/cerr?m=" + url.QueryEscape(msg))
	}
	return []skSecret{
		{"secret-named path parameter", skPathParam, get("/users/" + skPathParam + "/x")},
		{"key=value path segment", skPathSeg, get("/p/password=" + skPathSeg)},
		{"percent-encoded URL password in a query value", skEncURLPW,
			get("/q/next?next=" + url.QueryEscape("https://user:"+skEncURLPW+"@host/"))},
		{"percent-encoded key=value in a query value", skEncKeyPW,
			get("/q/cb?cb=" + url.QueryEscape("password="+skEncKeyPW))},
		{"semicolon-separated query parameter", skSemicolon, get("/q/semi?x=1;password=" + skSemicolon)},
		{"URL password holding @", skAtPassword, message("dial amqp://guest:a@" + skAtPassword + "@rabbit:5672/: refused")},
		{"MySQL DSN password", skDSN, cError("open root:" + skDSN + "@tcp(db:3306)/shop: refused")},
		{"JSON as a form field name", skFieldName,
			post("/login", "application/x-www-form-urlencoded", `{"user":"ann","password":"`+skFieldName+`"}`)},
		{"?token=", skToken, get("/q/token?token=" + skToken)},
		{"?api_key=", skAPIKey, get("/q/apikey?api_key=" + skAPIKey)},
		{"?access_token=", skAccess, get("/q/access?access_token=" + skAccess)},
		{"?passwd=", skPasswd, get("/q/passwd?passwd=" + skPasswd)},
		{"form token", skFormToken, post("/form", "application/x-www-form-urlencoded", "user=ann&token="+skFormToken)},
		{"JSON api_key", skJSONAPIKey, post("/json", "application/json", `{"user":"ann","cfg":{"api_key":"`+skJSONAPIKey+`"}}`)},
		{"X-JWT header", skJWTHeader, header("X-JWT", skJWTHeader)},
		{"X-Access-Key header", skAccessKey, header("X-Access-Key", skAccessKey)},
		{"Bearer credential in a message", skBearer, message("upstream said 401 to Authorization: Bearer " + skBearer)},
		{"card number in a message", skCard, message("charge failed for card " + skCard)},
		{"spaced card number in a body", skCardSpaced, post("/text/card", "text/plain", "card: "+skCardSpaced+" exp 12/29")},
		{"dashed card number in a header", skCardDashed, header("X-Note", "paid with "+skCardDashed)},
		{"JWT payload in a body", skJWTPayload, post("/text/jwt", "text/plain", "session "+skJWT+" expired")},
		{"JWT signature in a custom header", skJWTSig, header("X-Debug", skJWT)},
	}
}

// skRouter fails on every route it has: panics, c.Error and Record. Each
// secret is sent to a route of its own, so that each is its own error and
// its sample is the one kept.
func skRouter(m *errmon.Monitor) *gin.Engine {
	r := gin.New()
	r.Use(m.Middleware())
	fail := func(c *gin.Context) { panic("request failed: " + c.Request.URL.Path) }
	r.GET("/users/:password/x", fail)
	r.GET("/p/*rest", fail)
	r.GET("/q/:what", func(c *gin.Context) { panic("query failed: " + c.Param("what")) })
	r.GET("/cerr", func(c *gin.Context) {
		_ = c.Error(fmt.Errorf("%s", c.Query("m")))
		c.Status(http.StatusInternalServerError)
	})
	r.GET("/msg", func(c *gin.Context) {
		m.Record(c, fmt.Errorf("%s", c.Query("m")))
		c.Status(http.StatusInternalServerError)
	})
	r.POST("/login", func(c *gin.Context) {
		_ = c.Request.ParseForm()
		panic("login failed")
	})
	r.POST("/form", func(c *gin.Context) {
		_ = c.Request.ParseForm()
		panic("form failed")
	})
	r.POST("/json", func(c *gin.Context) {
		var v map[string]any
		_ = c.ShouldBindJSON(&v)
		panic("json failed: " + c.Query("n"))
	})
	r.POST("/text/:what", func(c *gin.Context) {
		_, _ = io.ReadAll(c.Request.Body)
		panic("text failed: " + c.Param("what"))
	})
	m.RegisterRoutes(r)
	return r
}

// skEnv is a monitor whose every sink is captured: the panic log (gin in
// debug mode, so that it dumps the request), errmon's own log, the alerts
// (as the Notifier gets them, and as mail.Notifier sends them to a real
// SMTP server), and the router that fails and serves the dashboard.
type skEnv struct {
	tdb               testDB
	m                 *errmon.Monitor
	r                 *gin.Engine
	panicLog, ownLog  syncBuffer
	notes             *ntRecorder
	smtp              *ntSMTP
	maxViewAllocBytes uint64 // the most bytes one dashboard view allocated
}

// skNotifier hands each alert to the recorder and mails it.
type skNotifier struct {
	rec  *ntRecorder
	mail *mail.Notifier
}

func (n skNotifier) Notify(ctx context.Context, note *errmon.Notification) error {
	_ = n.rec.Notify(ctx, note)
	return n.mail.Notify(ctx, note)
}

func (skNotifier) SendsEmail() bool { return true }

// skMailText returns a received mail as a reader sees it: its headers
// (encoded words decoded) and each part of its body, transfer encodings
// undone, after the raw message itself.
func skMailText(t *testing.T, raw string) string {
	t.Helper()
	msg, err := netmail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("read mail: %v\n%s", err, raw)
	}
	var b strings.Builder
	b.WriteString(raw + "\n")
	dec := new(mime.WordDecoder)
	for k, vs := range msg.Header {
		for _, v := range vs {
			if d, err := dec.DecodeHeader(v); err == nil {
				v = d
			}
			b.WriteString(k + ": " + v + "\n")
		}
	}
	mediaType, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mediaType, "multipart/") {
		t.Fatalf("mail is not multipart (%q, %v):\n%s", mediaType, err, raw)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	parts := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("mail part: %v", err)
		}
		var body io.Reader = p // quoted-printable is undone by NextPart
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "base64") {
			body = base64.NewDecoder(base64.StdEncoding, p)
		}
		text, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("mail part: %v", err)
		}
		b.Write(text)
		b.WriteString("\n")
		parts++
	}
	if parts < 2 {
		t.Fatalf("mail has %d parts, want text and HTML:\n%s", parts, raw)
	}
	return b.String()
}

func skStart(t *testing.T, tdb testDB) *skEnv {
	t.Helper()
	withGinMode(t, gin.DebugMode)
	prevOut := gin.DefaultWriter // debug mode prints every route there
	gin.DefaultWriter = io.Discard
	t.Cleanup(func() { gin.DefaultWriter = prevOut })
	env := &skEnv{tdb: tdb, notes: &ntRecorder{}, smtp: ntStartSMTP(t, nil)}
	cfg := errmon.DefaultConfig()
	cfg.DB = tdb.DB
	cfg.Output = &env.panicLog
	cfg.Logger = slog.New(slog.NewTextHandler(&env.ownLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.FlushInterval = time.Hour
	cfg.SendNotification = true
	cfg.DigestThreshold = -1 // one alert per new error: each is a sink of its own
	cfg.Notifier = skNotifier{rec: env.notes, mail: mail.New(mail.Config{Host: env.smtp.Host, Port: env.smtp.Port})}
	cfg.RecipientEmail = []string{"team@example.com"}
	cfg.EmailSender = "errmon@example.com"
	cfg.BaseURL = "https://shop.example.com"
	cfg.ViewPermission = func(*gin.Context) bool { return true }
	cfg.ListSize = 1000
	m, err := errmon.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	env.m, env.r = m, skRouter(m)
	return env
}

// send serves each request and expects the 500 of a failure.
func (env *skEnv) send(t *testing.T, reqs map[string]*http.Request) {
	t.Helper()
	for name, req := range reqs {
		w := httptest.NewRecorder()
		env.r.ServeHTTP(w, req)
		if w.Code != http.StatusInternalServerError {
			t.Fatalf("%s: status %d, want 500", name, w.Code)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := env.m.Flush(ctx); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// view serves one dashboard page from loopback and notes what it allocated.
func (env *skEnv) view(t *testing.T, target string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Host = "localhost"
	w := httptest.NewRecorder()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	env.r.ServeHTTP(w, req)
	runtime.ReadMemStats(&after)
	env.maxViewAllocBytes = max(env.maxViewAllocBytes, after.TotalAlloc-before.TotalAlloc)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d", target, w.Code)
	}
	return w.Body.String()
}

// sinks returns the text of every sink, by name: each errmon table (all
// rows, as the database returns them), both logs, the list page, each
// error's detail page, the API list and details, each alert and each mail.
func (env *skEnv) sinks(t *testing.T, minErrors int) map[string]string {
	t.Helper()
	sinks := map[string]string{
		"panic log": env.panicLog.String(),
		"own log":   env.ownLog.String(),
	}
	tables, err := env.tdb.DB.Migrator().GetTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		if !strings.HasPrefix(table, "app_error") {
			continue
		}
		var rows []map[string]any
		if err := env.tdb.DB.Table(table).Find(&rows).Error; err != nil {
			t.Fatalf("read %s: %v", table, err)
		}
		for i, row := range rows {
			b, _ := json.Marshal(row)
			sinks[fmt.Sprintf("table %s row %d", table, i)] = string(b)
		}
	}
	var recs []errmon.ErrorRecord
	if err := env.tdb.DB.Find(&recs).Error; err != nil {
		t.Fatal(err)
	}
	if len(recs) < minErrors {
		t.Fatalf("%d errors stored, want %d", len(recs), minErrors)
	}
	prefix := env.m.Config().URLPrefix
	sinks["list page"] = env.view(t, prefix+"/")
	sinks["API list"] = env.view(t, prefix+"/api/errors")
	for _, rec := range recs {
		sinks["detail page of "+rec.Path] = env.view(t, prefix+"/"+rec.Hash)
		sinks["API detail of "+rec.Path] = env.view(t, prefix+"/api/errors/"+rec.Hash)
	}
	env.notes.mu.Lock()
	defer env.notes.mu.Unlock()
	if len(env.notes.notes) < minErrors {
		t.Fatalf("%d alerts, want one per new error (%d)", len(env.notes.notes), minErrors)
	}
	for i, n := range env.notes.notes {
		sinks[fmt.Sprintf("alert %d (%s)", i, n.Error.Path)] = n.Subject + "\n" + n.Text + "\n" + n.HTML
	}
	mails := env.smtp.received()
	if len(mails) != len(env.notes.notes) {
		t.Fatalf("%d mails for %d alerts", len(mails), len(env.notes.notes))
	}
	for i, m := range mails {
		sinks[fmt.Sprintf("mail %d", i)] = skMailText(t, m.Raw)
	}
	return sinks
}

func TestNoSecretReachesAnySink(t *testing.T) {
	eachDB(t, func(t *testing.T, tdb testDB) {
		env := skStart(t, tdb)
		secrets := skSecrets()
		reqs := map[string]*http.Request{}
		for _, s := range secrets {
			reqs[s.name] = s.send()
		}
		env.send(t, reqs)
		sinks := env.sinks(t, len(secrets))
		for _, s := range secrets {
			for sink, text := range sinks {
				if i := strings.Index(text, s.value); i >= 0 {
					from, to := max(i-80, 0), min(i+len(s.value)+40, len(text))
					t.Errorf("%s: %q reached the %s: …%s…", s.name, s.value, sink, text[from:to])
				}
			}
		}
	})
}

// skDeep returns a JSON document of n bytes or so made of one shape
// repeated: open nests open, close closes it.
func skDeep(open, close string, depth int) string {
	return strings.Repeat(open, depth) + strings.Repeat(close, depth)
}

// TestHostileShapesBoundedInEverySink: requests shaped to blow up storage,
// rendering or masking (deep JSON of every kind, 100 headers of 8 KiB,
// repeated secret keys) cost every sink a bounded size, and one dashboard
// view a bounded allocation.
func TestHostileShapesBoundedInEverySink(t *testing.T) {
	const (
		maxSink      = 512 << 10 // bytes in any one sink
		maxViewAlloc = 64 << 20  // bytes allocated by one dashboard view
	)
	eachDB(t, func(t *testing.T, tdb testDB) {
		env := skStart(t, tdb)
		jsonPost := func(path, body string) *http.Request {
			r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			return r
		}
		many := httptest.NewRequest(http.MethodGet, "/q/headers", nil)
		for i := 0; i < 100; i++ {
			many.Header.Set(fmt.Sprintf("X-Filler-%d", i), strings.Repeat("password=", 8<<10/9))
		}
		reqs := map[string]*http.Request{
			"9,000-deep arrays":         jsonPost("/json?n=arrays", skDeep("[", "]", 9000)),
			"9,000-deep objects":        jsonPost("/json?n=objects", skDeep(`{"a":`, "}", 9000)[:9000*5]+"1"+strings.Repeat("}", 9000)),
			"45 KB of mixed nesting":    jsonPost("/json?n=mixed", skDeep(`[{"k":[`, "]}]", 45<<10/10)),
			"wide object of 4,000 keys": jsonPost("/json?n=wide", "{"+strings.Repeat(`"k":[[[1]]],`, 4000)+`"z":1}`),
			"deep JSON cut short":       jsonPost("/json?n=cut", strings.Repeat(`[{"password":`, 4000)),
			"100 headers of 8 KiB":      many,
			"32 KiB of password=":       httptest.NewRequest(http.MethodGet, "/msg?m="+url.QueryEscape(strings.Repeat("password=", 32<<10/9)), nil),
			"32 KiB of password=[":      httptest.NewRequest(http.MethodGet, "/msg?m="+url.QueryEscape(strings.Repeat("password=[", 32<<10/10)), nil),
			"deep text body of brackets": func() *http.Request {
				r := httptest.NewRequest(http.MethodPost, "/text/deep", strings.NewReader(skDeep("{", "}", 20000)))
				r.Header.Set("Content-Type", "text/plain")
				return r
			}(),
		}
		env.send(t, reqs)
		for sink, text := range env.sinks(t, 6) {
			if len(text) > maxSink {
				t.Errorf("%s: %d bytes, want at most %d", sink, len(text), maxSink)
			}
		}
		if env.maxViewAllocBytes > maxViewAlloc {
			t.Errorf("one dashboard view allocated %d bytes, want at most %d", env.maxViewAllocBytes, maxViewAlloc)
		}
	})
}
