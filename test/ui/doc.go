// Package uitest drives the operator dashboard (internal/ui, docs/dashboard.md)
// in a real browser: Debian's Chromium, installed by .ci/run, through
// chromedp, against a real gateway started by the test/e2e harness and
// clients using the Go SDK. Screenshots of every page are saved as test
// artifacts (go test -artifacts keeps them under the output directory),
// and into MXGATEWAY_UI_SHOTS when it names a directory (make
// dashboard-shots refreshes docs/dashboard/ that way).
package uitest
