package uitest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/internal/tlsutil"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

var formCSRF = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// login logs an HTTP client (with a cookie jar) in at base with key.
func login(t *testing.T, hc *http.Client, base, key string) {
	t.Helper()
	resp, err := hc.Get(base + "login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := formCSRF.FindSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token on the login form (%s)", resp.Status)
	}
	resp, err = hc.PostForm(base+"login", url.Values{"csrf": {string(m[1])}, "api_key": {key}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/ui/" {
		t.Fatalf("login: %s at %s, want the overview", resp.Status, resp.Request.URL.Path)
	}
}

func newClient(t *testing.T, tr http.RoundTripper) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: tr}
}

// tailRow is a row of the live event tail as the stream sends it.
type tailRow struct {
	Item  string `json:"item"`
	Value string `json:"value"`
}

// tail reads the live event tail of a logged-in client and returns the
// first row about item (the stream's "hello" arrives before any).
func tail(ctx context.Context, hc *http.Client, base string, ready chan<- struct{}, item string) (tailRow, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"live/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return tailRow{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			event = e
			if e == "hello" {
				ready <- struct{}{}
			}
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || event != "events" {
			continue
		}
		var rows []tailRow
		if err := json.Unmarshal([]byte(data), &rows); err != nil {
			return tailRow{}, err
		}
		for _, r := range rows {
			if r.Item == item {
				return r, nil
			}
		}
	}
	return tailRow{}, errors.Join(errors.New("the tail ended"), sc.Err())
}

// TestTailShowsValuesOnlyToReaders: the live event tail shows a data
// change's value to a key that may read the reference (admin) and hides
// it from a key without invoke:read and from one whose read constraints
// leave the reference out.
func TestTailShowsValuesOnlyToReaders(t *testing.T) {
	g := harness.Start(t)
	base := "http://" + g.HTTPAddr + "/ui/"
	keys := map[string]string{
		"admin":      g.AdminKey,
		"viewer":     g.CreateKey(t, "viewer", []string{"dashboard:read"}, nil, nil),
		"tank2-only": g.CreateKey(t, "tank2-reader", []string{"dashboard:read", "invoke:read"}, []string{"Tank2.*"}, nil),
		"tic-reader": g.CreateKey(t, "tic-reader", []string{"dashboard:read", "invoke:read"}, []string{"TIC101.*"}, nil),
	}
	// The advise's first data change carries the current value.
	reads := map[string]bool{"admin": true, "viewer": false, "tank2-only": false, "tic-reader": true}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ready := make(chan struct{}, len(keys))
	type result struct {
		who string
		row tailRow
		err error
	}
	results := make(chan result, len(keys))
	for who, key := range keys {
		hc := newClient(t, nil)
		login(t, hc, base, key)
		go func() {
			row, err := tail(ctx, hc, base, ready, "TIC101.SP")
			results <- result{who, row, err}
		}()
	}
	for range keys {
		select {
		case <-ready:
		case <-ctx.Done():
			t.Fatal("the tails did not start")
		}
	}

	c, err := client.Dial(ctx, g.GRPCAddr, client.WithAPIKey(g.AdminKey), client.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := c.OpenSession(ctx, "tail-writer")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mx := s.MX()
	hlmx, err := mx.Register(ctx, "tail")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mx.AddItem(ctx, hlmx, "TIC101.SP")
	if err != nil {
		t.Fatal(err)
	}
	if err := mx.Advise(ctx, hlmx, h); err != nil {
		t.Fatal(err)
	}
	for range keys {
		r := <-results
		if r.err != nil {
			t.Fatalf("%s: %v", r.who, r.err)
		}
		if hidden := r.row.Value == "(hidden)" || r.row.Value == ""; hidden == reads[r.who] {
			t.Errorf("%s sees TIC101.SP as %q (may read it: %v)", r.who, r.row.Value, reads[r.who])
		}
	}
}

// TestDashboardOwnListenerTLS: with dashboard_listen and dashboard_tls the
// dashboard is served over TLS there (the cookies marked Secure), and no
// longer under /ui/ of http_listen, whose /metrics stays.
func TestDashboardOwnListenerTLS(t *testing.T) {
	g := harness.Start(t, "--dashboard-listen=127.0.0.1:0", "--dashboard-tls=self-signed")
	var base string
	testutil.Eventually(t, time.Minute, func() error {
		for _, line := range strings.Split(g.Stdout.String(), "\n") {
			if u, ok := strings.CutPrefix(line, "mxgateway: dashboard on "); ok {
				base = strings.TrimSpace(u)
				return nil
			}
		}
		return errors.New("the gateway did not print the dashboard's address")
	})
	if !strings.HasPrefix(base, "https://127.0.0.1:") || !strings.HasSuffix(base, "/ui/") {
		t.Fatalf("dashboard at %q", base)
	}
	tc, err := tlsutil.ClientConfig(filepath.Join(g.DataDir, tlsutil.CertFileName), "")
	if err != nil {
		t.Fatal(err)
	}
	hc := newClient(t, &http.Transport{TLSClientConfig: tc})
	resp, err := hc.Get(base + "login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	secure := false
	for _, c := range resp.Cookies() {
		secure = c.Secure && c.HttpOnly
	}
	if resp.StatusCode != http.StatusOK || !secure {
		t.Fatalf("login form over TLS: %s, cookies %v", resp.Status, resp.Cookies())
	}
	login(t, hc, base, g.AdminKey)

	if code, _ := g.Get(t, "/ui/login"); code != http.StatusNotFound {
		t.Fatalf("http_listen /ui/login: %d, want 404 when the dashboard has its own listener", code)
	}
	if code, _ := g.Get(t, "/metrics"); code != http.StatusOK {
		t.Fatalf("http_listen /metrics: %d", code)
	}
}
