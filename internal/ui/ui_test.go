package ui

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/protocol"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/store"
	"github.com/mxgateway/mxgateway/internal/testutil"
)

func TestMain(m *testing.M) { testutil.VerifyNoLeaks(m) }

// clock is the dashboard's clock in tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a dashboard on a real key store and key manager, and a session
// manager that has no sessions (these tests open none).
type env struct {
	mgr   *auth.Manager
	dash  *Server
	srv   *httptest.Server
	clock *clock
	admin string // an admin key
}

var errNoWorkers = errors.New("the handler tests start no workers")

func newEnv(t *testing.T, tweak ...func(*Options)) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(context.Background(), filepath.Join(dir, store.DBFileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	pep, err := auth.LoadPeppers(auth.PepperConfig{DataDir: dir, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := auth.NewManager(auth.ManagerConfig{Store: st, Peppers: pep})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := session.New(session.Options{Launch: func(context.Context, string) (session.Worker, error) { return nil, errNoWorkers }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sessions.Close() })
	c := &clock{t: time.Now()}
	opts := Options{Mode: auth.ModeAPIKey, Keys: mgr, Admin: auth.NewAdminServer(mgr), Sessions: sessions,
		Events: NewEventTap(0), Version: "test", Now: c.now, LiveInterval: 20 * time.Millisecond}
	for _, f := range tweak {
		f(&opts)
	}
	dash, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(dash.Handler())
	t.Cleanup(func() {
		dash.Close()
		srv.Close()
	})
	e := &env{mgr: mgr, dash: dash, srv: srv, clock: c}
	e.admin = e.key(t, "admin", nil, auth.ScopeAdmin)
	return e
}

// key creates an API key and returns it.
func (e *env) key(t *testing.T, name string, allowRead []string, scopes ...auth.Scope) string {
	t.Helper()
	raw, _, err := e.mgr.CreateKey(context.Background(), auth.KeySpec{Name: name, Scopes: scopes,
		Constraints: auth.Constraints{AllowRead: allowRead}}, auth.Actor{KeyID: auth.CLIActor})
	if err != nil {
		t.Fatal(err)
	}
	return raw.Reveal()
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects (the tests look at them).
type browser struct {
	t    *testing.T
	e    *env
	c    *http.Client
	csrf string // the login's CSRF token, from the page's meta tag
}

func (e *env) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values, hdr ...string) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return b.do(req)
}

var (
	hiddenCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	metaCSRF   = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)
)

// login fills the login form with key and returns the final response.
func (b *browser) login(key string) *http.Response {
	b.t.Helper()
	_, page := b.get("/ui/login")
	m := hiddenCSRF.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("login form without a CSRF token:\n%s", page)
	}
	resp, _ := b.post("/ui/login", url.Values{FieldCSRF: {m[1]}, FieldAPIKey: {key}})
	if resp.StatusCode == http.StatusSeeOther {
		_, page := b.get("/ui/")
		if m := metaCSRF.FindStringSubmatch(page); m != nil {
			b.csrf = m[1]
		}
	}
	return resp
}

func (b *browser) mustLogin(key string) {
	b.t.Helper()
	if resp := b.login(key); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != Prefix {
		b.t.Fatalf("login: %s to %q, want 303 to %s", resp.Status, resp.Header.Get("Location"), Prefix)
	}
	if b.csrf == "" {
		b.t.Fatal("no CSRF token on the overview")
	}
}

// pages are the GET routes behind the login.
var pages = []string{"/ui/", "/ui/sessions", "/ui/sessions/abc", "/ui/sessions/abc/close", "/ui/workers", "/ui/workers/1/kill",
	"/ui/events", "/ui/galaxy", "/ui/browse", "/ui/browse/children?parent=Plant", "/ui/browse/object?tag=Sim",
	"/ui/keys", "/ui/keys/k/revoke", "/ui/audit", "/ui/alarms"}

var streams = []string{"/ui/live/overview", "/ui/live/sessions", "/ui/live/events", "/ui/live/watch"}

var actions = []string{"/ui/logout", "/ui/sessions/abc/close", "/ui/workers/1/kill", "/ui/browse/watch", "/ui/browse/unwatch",
	"/ui/keys", "/ui/keys/k/rotate", "/ui/keys/k/revoke", "/ui/alarms/ack"}

// TestNothingWithoutLogin: without a login every page redirects to the
// login form, every stream and action is 401, and only the login form and
// the static files answer.
func TestNothingWithoutLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	for _, p := range pages {
		resp, body := b.get(p)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
			t.Errorf("GET %s: %s to %q, want 303 to /ui/login", p, resp.Status, resp.Header.Get("Location"))
		}
		if strings.Contains(body, "<table") {
			t.Errorf("GET %s without a login rendered a page", p)
		}
	}
	for _, p := range streams {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+p, nil)
		req.Header.Set("Accept", "text/event-stream")
		if resp, _ := b.do(req); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("stream %s: %s, want 401", p, resp.Status)
		}
	}
	for _, p := range actions {
		if resp, _ := b.post(p, url.Values{FieldCSRF: {"x"}}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST %s: %s, want 401", p, resp.Status)
		}
	}
	// A forged cookie is no login either.
	u, _ := url.Parse(e.srv.URL + "/ui/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: SessionCookie, Value: randomToken(), Path: Prefix}})
	if resp, _ := b.get("/ui/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("forged cookie: %s, want 303", resp.Status)
	}
	for _, p := range []string{"/ui/login", "/ui/static/app.js", "/ui/static/style.css"} {
		if resp, _ := b.get(p); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s, want 200 without a login", p, resp.Status)
		}
	}
	for _, p := range []string{"/ui/static/", "/ui/static/nothing.js", "/ui/static/../templates/base.html"} {
		if resp, _ := b.get(p); resp.StatusCode == http.StatusOK {
			t.Errorf("GET %s: %s, want no content", p, resp.Status)
		}
	}
}

// TestLoginCookie: a good key gets a session cookie that is HttpOnly,
// SameSite=Strict, scoped to /ui/ and expiring; the pages then answer.
func TestLoginCookie(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SessionMax = 2 * time.Hour })
	b := e.browser(t)
	resp := b.login(e.admin)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %s", resp.Status)
	}
	var c *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == SessionCookie {
			c = k
		}
	}
	if c == nil {
		t.Fatal("no session cookie")
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != Prefix || c.MaxAge != int((2*time.Hour)/time.Second) {
		t.Fatalf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/ui/, Max-Age=7200", c)
	}
	if len(c.Value) < 40 {
		t.Fatalf("cookie value %q is too short to be a random token", c.Value)
	}
	if strings.Contains(c.Value, e.admin) {
		t.Fatal("the cookie carries the API key")
	}
	for _, p := range pages {
		if strings.Contains(p, "abc") || strings.Contains(p, "/1/") || strings.Contains(p, "browse/") {
			continue // unknown ids, and no Galaxy in these tests
		}
		if resp, _ := b.get(p); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s logged in: %s", p, resp.Status)
		}
	}
	if e.dash.Logins() != 1 {
		t.Fatalf("%d logins held, want 1", e.dash.Logins())
	}
}

// TestSecurityHeaders: every response carries the strict policy, and no
// page has inline script, event-handler attributes or inline style (the
// policy would block them).
func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	check := func(p string, resp *http.Response, body string) {
		t.Helper()
		if got := resp.Header.Get("Content-Security-Policy"); got != ContentSecurityPolicy {
			t.Errorf("%s: CSP %q", p, got)
		}
		for _, h := range []string{"X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("%s: no %s", p, h)
			}
		}
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			return
		}
		doc, err := html.Parse(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var walk func(n *html.Node)
		walk = func(n *html.Node) {
			if n.Type == html.ElementNode {
				hasSrc := false
				for _, a := range n.Attr {
					switch {
					case strings.HasPrefix(a.Key, "on"):
						t.Errorf("%s: <%s %s> is an inline event handler", p, n.Data, a.Key)
					case a.Key == "style":
						t.Errorf("%s: <%s> has an inline style", p, n.Data)
					case a.Key == "src":
						hasSrc = true
					}
				}
				if n.Data == "script" && (!hasSrc || n.FirstChild != nil) {
					t.Errorf("%s: inline <script>", p)
				}
				if n.Data == "style" {
					t.Errorf("%s: inline <style>", p)
				}
			}
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				walk(c)
			}
		}
		walk(doc)
	}
	resp, body := b.get("/ui/login")
	check("/ui/login", resp, body)
	b.mustLogin(e.admin)
	for _, p := range []string{"/ui/", "/ui/sessions", "/ui/workers", "/ui/events", "/ui/galaxy", "/ui/browse", "/ui/keys", "/ui/audit", "/ui/static/app.js"} {
		resp, body := b.get(p)
		check(p, resp, body)
	}
}

// TestLoginRefused: a wrong key, a key without dashboard:read and a form
// without its CSRF cookie are refused, and no login is made.
func TestLoginRefused(t *testing.T) {
	e := newEnv(t)
	noDash := e.key(t, "client", nil, auth.ScopeSessionOpen, auth.ScopeInvokeRead)
	for _, c := range []struct {
		key  string
		want int
	}{
		{"mxgw_not_a_key", http.StatusUnauthorized},
		{e.admin[:len(e.admin)-2] + "xx", http.StatusUnauthorized},
		{noDash, http.StatusForbidden},
	} {
		if resp := e.browser(t).login(c.key); resp.StatusCode != c.want {
			t.Errorf("login: %s, want %d", resp.Status, c.want)
		}
	}
	// A form posted without the login form's cookie (another site's form).
	b := e.browser(t)
	resp, _ := b.post("/ui/login", url.Values{FieldCSRF: {randomToken()}, FieldAPIKey: {e.admin}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("login without the form's cookie: %s, want 403", resp.Status)
	}
	if e.dash.Logins() != 0 {
		t.Fatalf("%d logins after refusals", e.dash.Logins())
	}
	// The refusals are in the audit log.
	evs, err := e.mgr.ListAudit(context.Background(), store.AuditFilter{Action: ActionLogin})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) < 3 {
		t.Fatalf("%d login audit rows, want 3 denials", len(evs))
	}
	for _, ev := range evs {
		if ev.Outcome != store.OutcomeDenied {
			t.Fatalf("audit row %+v, want denied", ev)
		}
	}
}

// TestCSRF: a state-changing request without the login's token, with a
// forged one, or from another origin is refused and changes nothing.
func TestCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.mustLogin(e.admin)
	keys := func() int {
		resp, err := e.dash.opts.Admin.ListApiKeys(context.Background(), &mxgatewayv1.ListApiKeysRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetKeys())
	}
	before := keys()
	form := url.Values{"name": {"made"}, "scopes": {"dashboard:read"}}
	for _, c := range []struct {
		name string
		tok  string
		hdr  []string
	}{
		{"no token", "", nil},
		{"forged token", randomToken(), nil},
		{"another login's token", func() string { o := e.browser(t); o.mustLogin(e.admin); return o.csrf }(), nil},
		{"cross-origin", b.csrf, []string{"Origin", "https://evil.example"}},
		{"cross-site fetch", b.csrf, []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		if c.tok != "" {
			f.Set(FieldCSRF, c.tok)
		}
		if resp, _ := b.post("/ui/keys", f, c.hdr...); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %s, want 403", c.name, resp.Status)
		}
	}
	if n := keys(); n != before {
		t.Fatalf("%d keys after refused creates, want %d", n, before)
	}
	// The header form of the token works as well as the field.
	form.Set(FieldCSRF, b.csrf)
	resp, body := b.post("/ui/keys", form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, auth.KeyPrefix) {
		t.Fatalf("create with the token: %s\n%s", resp.Status, body)
	}
	if n := keys(); n != before+1 {
		t.Fatalf("%d keys, want %d", n, before+1)
	}
	// Logout needs the token too.
	if resp, _ := b.post("/ui/logout", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("logout without the token: %s", resp.Status)
	}
}

// TestScopes: dashboard:read sees the pages but not the key and audit
// pages, and may not act; admin may.
func TestScopes(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.mustLogin(e.key(t, "viewer", nil, auth.ScopeDashboard))
	for _, p := range []string{"/ui/", "/ui/sessions", "/ui/workers", "/ui/events", "/ui/galaxy", "/ui/alarms"} {
		if resp, _ := b.get(p); resp.StatusCode != http.StatusOK {
			t.Errorf("viewer GET %s: %s", p, resp.Status)
		}
	}
	if resp, _ := b.post("/ui/alarms/ack", url.Values{FieldCSRF: {b.csrf}, "reference": {"Tank1.HighLevel"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("viewer acknowledges an alarm: %s, want 403 (alarms:ack)", resp.Status)
	}
	for _, p := range []string{"/ui/keys", "/ui/audit", "/ui/sessions/abc/close", "/ui/workers/1/kill", "/ui/keys/k/revoke"} {
		if resp, _ := b.get(p); resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer GET %s: %s, want 403", p, resp.Status)
		}
	}
	for _, p := range []string{"/ui/keys", "/ui/sessions/abc/close", "/ui/workers/1/kill", "/ui/keys/k/revoke", "/ui/keys/k/rotate"} {
		if resp, _ := b.post(p, url.Values{FieldCSRF: {b.csrf}, "name": {"x"}, "scopes": {"admin"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("viewer POST %s: %s, want 403", p, resp.Status)
		}
	}
	// Tag values need invoke:read, and then the read constraints apply:
	// both refusals come before any session is opened.
	resp, body := b.post("/ui/browse/watch", url.Values{"ref": {"Tank1.Level"}}, HeaderCSRF, b.csrf, "X-Requested-With", "fetch")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "invoke:read") {
		t.Errorf("viewer watch: %s %s, want 403 naming invoke:read", resp.Status, body)
	}
	r := e.browser(t)
	r.mustLogin(e.key(t, "tank2-reader", []string{"Tank2.*"}, auth.ScopeDashboard, auth.ScopeInvokeRead))
	resp, body = r.post("/ui/browse/watch", url.Values{"ref": {"Tank1.Level"}}, HeaderCSRF, r.csrf, "X-Requested-With", "fetch")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not allowed for reading") {
		t.Errorf("constrained watch: %s %s, want 403 (reference not allowed)", resp.Status, body)
	}
	if n := e.dash.opts.Sessions.Len(); n != 0 {
		t.Fatalf("%d sessions opened by refused watches", n)
	}
}

// TestRevokedKeyEndsLogin: revoking a key (here in the manager, as the
// Admin service or another dashboard would) ends its logins on their next
// request and ends their live streams.
func TestRevokedKeyEndsLogin(t *testing.T) {
	e := newEnv(t)
	key := e.key(t, "viewer", nil, auth.ScopeDashboard)
	b := e.browser(t)
	b.mustLogin(key)

	// A live stream, read line by line.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/ui/live/overview", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("live stream: %s %s", resp.Status, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		if !lines.Scan() {
			return ""
		}
		return lines.Text()
	}
	if l := next(); l != "event: overview" {
		t.Fatalf("first line %q", l)
	}

	cred, err := auth.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.mgr.RevokeKey(context.Background(), cred.ID, auth.Actor{KeyID: auth.CLIActor}); err != nil {
		t.Fatal(err)
	}
	ended := false
	for lines.Scan() {
		if lines.Text() == "event: logout" {
			ended = true
			break
		}
	}
	if ctx.Err() == nil {
		ended = true // the server ended the stream
	}
	if !ended {
		t.Fatal("the live stream did not end after the revoke")
	}
	if resp, _ := b.get("/ui/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/login" {
		t.Fatalf("after revoke: %s to %q, want 303 to the login", resp.Status, resp.Header.Get("Location"))
	}
	if n := e.dash.Logins(); n != 0 {
		t.Fatalf("%d logins after the revoke", n)
	}
}

// TestLoginExpiry: a login unused for the idle time, or older than the
// longest lifetime, ends.
func TestLoginExpiry(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SessionIdle, o.SessionMax = 10*time.Minute, time.Hour })
	b := e.browser(t)
	b.mustLogin(e.admin)
	e.clock.add(9 * time.Minute)
	if resp, _ := b.get("/ui/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("used within the idle time: %s", resp.Status)
	}
	e.clock.add(10 * time.Minute)
	if resp, _ := b.get("/ui/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("idle too long: %s, want 303", resp.Status)
	}
	b.mustLogin(e.admin)
	for range 7 {
		e.clock.add(9 * time.Minute)
		b.get("/ui/")
	}
	if resp, _ := b.get("/ui/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("older than the longest lifetime: %s, want 303", resp.Status)
	}
}

// TestLoginsBounded: past MaxLogins a login is refused (503) until one
// ends; logout ends one and its cookie no longer works.
func TestLoginsBounded(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxLogins = 2 })
	a, b := e.browser(t), e.browser(t)
	a.mustLogin(e.admin)
	b.mustLogin(e.admin)
	if resp := e.browser(t).login(e.admin); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("third login: %s, want 503", resp.Status)
	}
	resp, _ := a.post("/ui/logout", url.Values{FieldCSRF: {a.csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %s", resp.Status)
	}
	if resp, _ := a.get("/ui/"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after logout: %s, want 303", resp.Status)
	}
	e.browser(t).mustLogin(e.admin)
}

// TestLoginLimited: repeated attempts from one address are slowed down.
func TestLoginLimited(t *testing.T) {
	e := newEnv(t)
	limited := false
	for range loginBurst + 2 {
		if resp := e.browser(t).login("mxgw_wrong"); resp.StatusCode == http.StatusTooManyRequests {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatalf("%d bad logins in a row were never refused with 429", loginBurst+2)
	}
}

// TestAuthNone: with auth=none any input logs in as the anonymous admin;
// the cookie, CSRF and policy rules still apply.
func TestAuthNone(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Mode = auth.ModeNone })
	b := e.browser(t)
	b.mustLogin("")
	resp, body := b.get("/ui/keys")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, auth.AnonymousKeyID) {
		t.Fatalf("keys page with auth=none: %s", resp.Status)
	}
	if resp, _ := b.post("/ui/keys", url.Values{"name": {"x"}, "scopes": {"admin"}}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a create without the CSRF token with auth=none: %s, want 403", resp.Status)
	}
}

// TestEventTap: a reader gets every event after its cursor in order; one
// that fell more than the tap's size behind skips to the oldest kept and
// is told how many it missed; Publish wakes a waiting reader.
func TestEventTap(t *testing.T) {
	tap := NewEventTap(4)
	tap.Publish(protocol.EventOf(&mxgatewayv1.Event{Sequence: 99}, 0)) // nobody tails: not kept
	cur := tap.attach()
	defer tap.detach()
	if cur != 0 {
		t.Fatalf("an event published with no tail open was kept (cursor %d)", cur)
	}
	_, _, _, wait := tap.since(cur)
	for i := range 6 {
		tap.Publish(protocol.EventOf(&mxgatewayv1.Event{Sequence: uint64(i + 1)}, 0))
	}
	select {
	case <-wait:
	default:
		t.Fatal("Publish did not wake the reader")
	}
	evs, next, missed, _ := tap.since(cur)
	if missed != 2 || next != 6 || len(evs) != 4 || evs[0].Sequence != 3 || evs[3].Sequence != 6 {
		t.Fatalf("since(0): %d events from %d, next %d, missed %d; want 3..6, next 6, missed 2", len(evs), evs[0].Sequence, next, missed)
	}
	if evs, _, missed, _ := tap.since(next); len(evs) != 0 || missed != 0 {
		t.Fatalf("since(end): %d events, missed %d", len(evs), missed)
	}
}

// TestStreamsPerLogin: one login holds at most MaxStreamsPerLogin live
// streams; the next is refused with 429 until one ends.
func TestStreamsPerLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	b.mustLogin(e.admin)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func(sctx context.Context) *http.Response {
		req, _ := http.NewRequestWithContext(sctx, http.MethodGet, e.srv.URL+"/ui/live/sessions", nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := b.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var first context.CancelFunc
	for i := range MaxStreamsPerLogin {
		sctx, c := context.WithCancel(ctx)
		if i == 0 {
			first = c
		} else {
			defer c()
		}
		if resp := open(sctx); resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %s", i+1, resp.Status)
		} else {
			defer resp.Body.Close()
		}
	}
	resp := open(ctx)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("stream %d: %s, want 429", MaxStreamsPerLogin+1, resp.Status)
	}
	first()
	testutil.Eventually(t, 30*time.Second, func() error {
		resp := open(ctx)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return errors.New(resp.Status)
		}
		return nil
	})
}

// BenchmarkEventTapPublish is the cost the tap adds to every worker event
// (the session hook), with nobody tailing and with one tail open.
func BenchmarkEventTapPublish(b *testing.B) {
	ev := protocol.EventOf(&mxgatewayv1.Event{Family: mxgatewayv1.EventFamily_EVENT_FAMILY_ON_DATA_CHANGE}, 64)
	b.Run("idle", func(b *testing.B) {
		tap := NewEventTap(0)
		for b.Loop() {
			tap.Publish(ev)
		}
	})
	b.Run("tailed", func(b *testing.B) {
		tap := NewEventTap(0)
		tap.attach()
		for b.Loop() {
			tap.Publish(ev)
		}
	})
}

// TestOverviewNATS: the overview has a NATS card filled from Options.NATS
// when the gateway runs NATS, and none without it.
func TestOverviewNATS(t *testing.T) {
	without := newEnv(t)
	b := without.browser(t)
	b.mustLogin(without.key(t, "viewer", nil, auth.ScopeDashboard))
	if _, body := b.get("/ui/"); strings.Contains(body, `id="nats"`) {
		t.Error("a NATS card on a gateway without NATS")
	}
	with := newEnv(t, func(o *Options) {
		o.NATS = func() NATSSummary {
			return NATSSummary{Mode: "embedded", Addr: "127.0.0.1:4222", Clients: 3, SlowConsumers: 1, Shared: 7}
		}
	})
	b = with.browser(t)
	b.mustLogin(with.key(t, "viewer", nil, auth.ScopeDashboard))
	_, body := b.get("/ui/")
	for _, want := range []string{`id="nats"`, `id="nats-mode">embedded<`, `data-k="nats_addr">127.0.0.1:4222<`,
		`data-k="nats_clients">3<`, `data-k="nats_shared">7<`, `data-k="nats_slow_consumers">1<`} {
		if !strings.Contains(body, want) {
			t.Errorf("overview lacks %s", want)
		}
	}
}
