package uitest

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/client"
	"github.com/mxgateway/mxgateway/internal/testutil"
	"github.com/mxgateway/mxgateway/internal/ui"
	"github.com/mxgateway/mxgateway/test/e2e/harness"
)

// Timeouts, generous for two slow cores shared with other work: a step is
// one navigation or one wait for the page to show something.
const (
	stepTimeout    = 90 * time.Second
	browserTimeout = 8 * time.Minute
)

// EnvShots names a directory that receives a copy of every screenshot.
const EnvShots = "MXGATEWAY_UI_SHOTS"

// browserExec finds Debian's Chromium (or its headless shell). A missing
// browser skips the test, except on CI, which installs it (.ci/run).
func browserExec(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is missing on CI (install it in .ci/run)")
	}
	t.Skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
	return ""
}

// page is one browser tab on the dashboard.
type page struct {
	t    *testing.T
	ctx  context.Context
	base string // http://host:port/ui/
	dir  string // the test's artifact directory
}

func newPage(t *testing.T, base string) *page {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browserExec(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.WindowSize(1200, 760),
		chromedp.Flag("lang", "en-US"),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelAll := context.WithTimeout(ctx, browserTimeout)
	t.Cleanup(func() {
		cancelAll()
		cancelTab()
		cancelAlloc()
	})
	p := &page{t: t, ctx: ctx, base: base, dir: t.ArtifactDir()}
	// The first run starts the browser, which lives as long as the context
	// of that run: the test's, not one step's.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", browserExec(t), err)
	}
	return p
}

// do runs actions within one step's timeout.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		p.t.Fatalf("%s: %v", what, err)
	}
}

// open navigates to a dashboard path ("" is the overview).
func (p *page) open(path string) {
	p.t.Helper()
	p.do("open /ui/"+path, chromedp.Navigate(p.base+path))
}

// until polls a JavaScript predicate until it is true.
func (p *page) until(what, expr string) {
	p.t.Helper()
	p.do(what, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond),
			chromedp.WithPollingTimeout(stepTimeout))(ctx, t)
		return chromedp.Void{}, err
	})
}

// eval returns the value of a JavaScript expression.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// location is the page's path.
func (p *page) location() string { return eval[string](p, "window.location.pathname") }

// shot saves a screenshot of the viewport as name.png (best PNG
// compression: they are kept small for the docs).
func (p *page) shot(name string) {
	ctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if img, _, err := image.Decode(bytes.NewReader(raw)); err == nil {
		var b bytes.Buffer
		if (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&b, paletted(img)) == nil {
			raw = b.Bytes()
		}
	}
	dirs := []string{p.dir}
	if d := os.Getenv(EnvShots); d != "" {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		if err := os.WriteFile(filepath.Join(d, name+".png"), raw, 0o644); err != nil {
			p.t.Errorf("save screenshot: %v", err)
		}
	}
}

// paletted maps img onto its 256 most frequent colours: a page of flat
// colours and anti-aliased text looks the same and takes a third of the
// bytes.
func paletted(img image.Image) image.Image {
	counts := map[color.RGBA]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			counts[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	colours := make([]color.RGBA, 0, len(counts))
	for c := range counts {
		colours = append(colours, c)
	}
	slices.SortFunc(colours, func(a, b color.RGBA) int { return counts[b] - counts[a] })
	pal := make(color.Palette, 0, 256)
	for _, c := range colours[:min(len(colours), 256)] {
		pal = append(pal, c)
	}
	p := image.NewPaletted(b, pal)
	draw.Draw(p, b, img, b.Min, draw.Src)
	return p
}

// js quotes s as a JavaScript string literal.
func js(s string) string { return strconv.Quote(s) }

// sdk is a client of the gateway through the Go SDK.
func sdk(t *testing.T, g *harness.Gateway) *client.Client {
	t.Helper()
	c, err := client.Dial(harness.Context(t, stepTimeout), g.GRPCAddr, client.WithAPIKey(g.AdminKey), client.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestDashboardInBrowser logs in with the first-run key and goes through
// every page: a session opened through the SDK appears live and is closed
// from the dashboard; an event tail fills live; a value written through
// the SDK changes in the browse panel's watch; a key is created (its
// secret shown once) and revoked; a forged CSRF token and a visit without
// login are refused; logout ends the login.
func TestDashboardInBrowser(t *testing.T) {
	g := harness.Start(t)
	base := "http://" + g.HTTPAddr + "/ui/"
	p := newPage(t, base)
	c := sdk(t, g)
	ctx := harness.Context(t, browserTimeout)

	// Without a login every page is the login form.
	p.open("sessions")
	if loc := p.location(); loc != "/ui/login" {
		t.Fatalf("without login /ui/sessions went to %s, want /ui/login", loc)
	}
	p.do("a wrong key", chromedp.SendKeys(chromedp.ID("api_key"), "mxgw_wrong"), chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("login-error")))
	p.shot("login")

	// Log in: the live overview.
	p.do("log in", chromedp.SendKeys(chromedp.ID("api_key"), g.AdminKey), chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("overview")))
	p.until("the overview goes live", `document.getElementById("live-status").textContent === "Live: connected"`)
	p.until("the overview says ready", `document.getElementById("ready").textContent === "ready"`)
	p.until("the overview shows the embedded NATS", `document.getElementById("nats-mode") !== null && document.getElementById("nats-mode").textContent === "embedded"`)
	p.until("the rates are measured", `document.querySelector('[data-k="commands_rate"]').textContent !== "—"`)
	p.shot("overview")

	// A session opened through the SDK appears on the sessions page live.
	p.open("sessions")
	p.until("the sessions page goes live", `document.getElementById("live-status").textContent === "Live: connected"`)
	s, err := c.OpenSession(ctx, "sdk-hmi")
	if err != nil {
		t.Fatal(err)
	}
	row := `document.querySelector('#sessions tr[data-id=` + js(s.ID()) + `]')`
	p.until("the SDK session appears", row+` !== null`)
	if got := eval[string](p, row+`.cells[1].textContent`); got != "sdk-hmi" {
		t.Fatalf("the session's client is %q", got)
	}
	p.shot("sessions")

	// Its page, then close it (behind a confirm step).
	p.do("open the session", chromedp.Click(chromedp.CSS(`#sessions tr[data-id=`+js(s.ID())+`] a`)),
		chromedp.WaitVisible(chromedp.ID("session-id")))
	if got := eval[string](p, `document.getElementById("session-id").textContent`); got != s.ID() {
		t.Fatalf("session page of %q", got)
	}
	p.shot("session")
	p.do("close it", chromedp.Click(chromedp.ID("close-session")), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("sessions")))
	p.until("the closed session leaves the list", row+` === null`)
	list, err := c.ListSessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range list {
		if in.GetSessionId() == s.ID() {
			t.Fatalf("session %s still open after the dashboard closed it", s.ID())
		}
	}

	// A second SDK session: its worker on the workers page, its events in
	// the live tail, its write in the watch panel.
	s2, err := c.OpenSession(ctx, "sdk-writer")
	if err != nil {
		t.Fatal(err)
	}
	mx := s2.MX()
	hlmx, err := mx.Register(ctx, "browser-test")
	if err != nil {
		t.Fatal(err)
	}
	sp, err := mx.AddItem(ctx, hlmx, "TIC101.SP")
	if err != nil {
		t.Fatal(err)
	}
	p.open("workers")
	p.until("the SDK session's worker is listed", `document.querySelector('#workers tr[data-session=`+js(s2.ID())+`]') !== null`)
	p.shot("workers")

	// Kill a third session's worker (behind a confirm step): the session
	// faults, as when any worker dies.
	victim, err := c.OpenSession(ctx, "sdk-victim")
	if err != nil {
		t.Fatal(err)
	}
	p.open("workers")
	p.do("kill its worker", chromedp.Click(chromedp.CSS(`#workers tr[data-session=`+js(victim.ID())+`] a.kill`)),
		chromedp.WaitVisible(chromedp.ID("confirm")), chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("workers")))
	testutil.Eventually(t, stepTimeout, func() error {
		list, err := c.ListSessions(ctx)
		if err != nil {
			return err
		}
		for _, in := range list {
			if in.GetSessionId() == victim.ID() && in.GetState() == mxgatewayv1.SessionState_SESSION_STATE_READY {
				return fmt.Errorf("session %s is still READY after its worker was killed", victim.ID())
			}
		}
		return nil
	})
	_ = victim.Close()

	p.open("events?session=" + s2.ID())
	p.until("the tail goes live", `document.getElementById("live-status").textContent === "Live: connected"`)
	if err := mx.Advise(ctx, hlmx, sp); err != nil {
		t.Fatal(err)
	}
	if err := mx.Write(ctx, hlmx, sp, client.MustValue(41.5), 0); err != nil {
		t.Fatal(err)
	}
	p.until("the write's data change arrives in the tail",
		`[...document.querySelectorAll("#events tbody tr")].some(r => r.cells[4].textContent === "TIC101.SP" && r.cells[5].textContent === "41.5")`)
	p.shot("events")

	p.open("galaxy")
	p.until("the Galaxy page", `document.getElementById("galaxy-info") !== null`)
	p.shot("galaxy")

	// Browse: expand the tree down to TIC101 (each level fetched lazily),
	// show its attributes, watch TIC101.SP, and see an SDK write change it.
	chain := ancestors(t, c, "TIC101")
	p.open("browse")
	for _, tag := range chain {
		p.do("expand "+tag, chromedp.Click(chromedp.CSS(`button.toggle[data-tag=`+js(tag)+`]`)))
		p.until("the children of "+tag+" arrive", `document.querySelector('li[data-tag=`+js(tag)+`] > ul') !== null`)
	}
	p.do("show TIC101", chromedp.Click(chromedp.CSS(`a.obj[data-tag="TIC101"]`)), chromedp.WaitVisible(chromedp.ID("attributes")))
	p.do("watch TIC101.SP", chromedp.Click(chromedp.CSS(`button.watch-add[data-ref="TIC101.SP"]`)))
	watched := `document.querySelector('#watch tr[data-ref="TIC101.SP"]')`
	p.until("the watch shows the current value", watched+` !== null && `+watched+`.cells[1].textContent === "41.5"`)
	if err := mx.Write(ctx, hlmx, sp, client.MustValue(63.25), 0); err != nil {
		t.Fatal(err)
	}
	p.until("the watch shows the new value", watched+`.cells[1].textContent === "63.25" && `+watched+`.cells[2].textContent.startsWith("GOOD")`)
	p.shot("browse")

	// API keys: create one (the secret shown once), then revoke it.
	p.open("keys")
	p.shot("keys")
	p.do("create a key", chromedp.SendKeys(chromedp.ID("key-name"), "browser-made"),
		chromedp.Click(chromedp.CSS(`#create-key input[name="scopes"][value="dashboard:read"]`)),
		chromedp.Click(chromedp.ID("create-key-submit")), chromedp.WaitVisible(chromedp.ID("new-secret")))
	secret := eval[string](p, `document.getElementById("new-secret").textContent`)
	id := eval[string](p, `document.getElementById("new-key-id").textContent`)
	if !strings.HasPrefix(secret, "mxgw_"+id+"_") {
		t.Fatalf("new secret %q for key %q", secret, id)
	}
	p.shot("key-created")
	p.open("keys")
	if strings.Contains(eval[string](p, "document.body.innerText"), secret) {
		t.Fatal("the keys page shows the secret again")
	}
	p.do("revoke it", chromedp.Click(chromedp.CSS(`#keys tr[data-id=`+js(id)+`] a.revoke`)), chromedp.WaitVisible(chromedp.ID("confirm")),
		chromedp.Click(chromedp.ID("confirm")), chromedp.WaitVisible(chromedp.ID("keys")))
	p.until("the key shows revoked", `document.querySelector('#keys tr[data-id=`+js(id)+`] td.revoked').textContent.trim() !== ""`)
	keys, err := c.Admin().ListAPIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	revoked := false
	for _, k := range keys {
		if k.GetId() == id {
			revoked = k.GetRevokedAt() != nil
		}
	}
	if !revoked {
		t.Fatalf("key %s is not revoked in the Admin service", id)
	}

	p.open("audit")
	p.until("the audit log has the revoke", `document.getElementById("audit").textContent.includes("apikey.revoke")`)
	for _, action := range []string{"dashboard.login", "dashboard.session.close", "dashboard.worker.kill", "apikey.create"} {
		if !strings.Contains(eval[string](p, `document.getElementById("audit").textContent`), action) {
			t.Errorf("the audit log has no %s", action)
		}
	}
	p.shot("audit")

	// A forged CSRF token is refused and creates nothing.
	p.open("keys")
	p.do("forge the token", chromedp.SendKeys(chromedp.ID("key-name"), "forged"),
		chromedp.Click(chromedp.CSS(`#create-key input[name="scopes"][value="admin"]`)))
	eval[string](p, `document.querySelector('#create-key input[name="csrf"]').value = "forged"`)
	sctx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	resp, err := chromedp.RunResponse(sctx, chromedp.Click(chromedp.ID("create-key-submit")))
	cancel()
	if err != nil {
		t.Fatalf("submit the forged form: %v", err)
	}
	if resp.Status != 403 {
		t.Fatalf("the forged form got %d, want 403", resp.Status)
	}
	p.until("the refusal says why", `document.body.innerText.includes("invalid or missing CSRF token")`)
	p.shot("csrf-refused")
	keys, err = c.Admin().ListAPIKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.GetName() == "forged" {
			t.Fatal("a request with a forged CSRF token created a key")
		}
	}

	// Logout ends the login.
	p.open("")
	p.do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-form")))
	p.open("")
	if loc := p.location(); loc != "/ui/login" {
		t.Fatalf("after logout /ui/ went to %s", loc)
	}
	// The login's watch session ended with it.
	testutil.Eventually(t, stepTimeout, func() error {
		list, err := c.ListSessions(ctx)
		if err != nil {
			return err
		}
		for _, in := range list {
			if in.GetClientName() == ui.WatchClientName {
				return fmt.Errorf("watch session %s still open after logout", in.GetSessionId())
			}
		}
		return nil
	})
	_ = s2.Close()
}

// ancestors returns the tag names from the root down to tag's parent.
func ancestors(t *testing.T, c *client.Client, tag string) []string {
	t.Helper()
	ctx := harness.Context(t, stepTimeout)
	o, err := c.Galaxy().Object(ctx, &mxgatewayv1.ObjectSelector{By: &mxgatewayv1.ObjectSelector_TagName{TagName: tag}}, false)
	if err != nil {
		t.Fatal(err)
	}
	var chain []string
	for id := o.GetParentObjectId(); id > 0; {
		po, err := c.Galaxy().Object(ctx, &mxgatewayv1.ObjectSelector{By: &mxgatewayv1.ObjectSelector_ObjectId{ObjectId: id}}, false)
		if err != nil {
			t.Fatal(err)
		}
		chain = append([]string{po.GetTagName()}, chain...)
		id = po.GetParentObjectId()
		if len(chain) > 32 {
			t.Fatal(fmt.Sprintf("%s: the parent chain does not end", tag))
		}
	}
	return chain
}

// TestDashboardAlarmsInBrowser: with the alarm monitor on, an alarm raised
// by an SDK write (Valve1.Position past its HiHi limit) shows on the
// Alarms page, and acknowledging it there with a comment acknowledges it
// in the Alarms service.
func TestDashboardAlarmsInBrowser(t *testing.T) {
	g := harness.Start(t, "--alarms=on")
	p := newPage(t, "http://"+g.HTTPAddr+"/ui/")
	c := sdk(t, g)
	ctx := harness.Context(t, browserTimeout)

	p.open("login")
	p.do("log in", chromedp.SendKeys(chromedp.ID("api_key"), g.AdminKey), chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("overview")))

	s, err := c.OpenSession(ctx, "sdk-alarm-writer")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mx := s.MX()
	hlmx, err := mx.Register(ctx, "alarms")
	if err != nil {
		t.Fatal(err)
	}
	h, err := mx.AddItem(ctx, hlmx, "Valve1.Position")
	if err != nil {
		t.Fatal(err)
	}
	if err := mx.Advise(ctx, hlmx, h); err != nil {
		t.Fatal(err)
	}
	if err := mx.Write(ctx, hlmx, h, client.MustValue(97.0), 0); err != nil {
		t.Fatal(err)
	}
	const ref = "Valve1.Position.HiHi"
	row := `document.querySelector('#alarms tr[data-ref=` + js(ref) + `]')`
	testutil.Eventually(t, stepTimeout, func() error {
		p.open("alarms")
		if !eval[bool](p, row+` !== null && `+row+`.querySelector("form.ack") !== null`) {
			return fmt.Errorf("%s is not listed unacknowledged on the Alarms page", ref)
		}
		return nil
	})
	p.shot("alarms")
	p.do("write a comment", chromedp.SendKeys(chromedp.CSS(`#alarms tr[data-ref=`+js(ref)+`] input[name="comment"]`), "valve checked"))
	actx, cancel := context.WithTimeout(p.ctx, stepTimeout)
	resp, err := chromedp.RunResponse(actx, chromedp.Click(chromedp.CSS(`#alarms tr[data-ref=`+js(ref)+`] form.ack button`)))
	cancel()
	if err != nil {
		t.Fatalf("acknowledge: %v", err)
	}
	if resp.Status != 200 {
		t.Fatalf("acknowledge: the page after it is %d", resp.Status)
	}
	if msg := eval[string](p, `(document.getElementById("alarms-error") || {textContent: ""}).textContent`); msg != "" {
		t.Fatalf("acknowledge: %s", msg)
	}
	testutil.Eventually(t, stepTimeout, func() error {
		list, err := c.Alarms().List(ctx, nil)
		if err != nil {
			return err
		}
		for _, a := range list.Alarms {
			if a.GetReference() == ref && a.GetAcked() && a.GetAckComment() == "valve checked" {
				return nil
			}
		}
		return fmt.Errorf("%s is not acknowledged with the comment in the Alarms service", ref)
	})
	p.open("alarms")
	p.until("the page shows it acknowledged", row+` !== null && `+row+`.textContent.includes("valve checked")`)
	p.shot("alarms-acked")
}
