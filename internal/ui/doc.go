// Package ui is the operator dashboard: server-rendered pages under /ui/
// (html/template, embedded with the small script and style sheet they
// need), live parts over server-sent events, and the login that guards
// them.
//
// A login trades an API key for a session cookie (HttpOnly,
// SameSite=Strict, expiring) that names an entry in a bounded server-side
// table. Every request re-verifies the key behind it, so a revoked or
// rotated key ends its logins at once. Pages need scope dashboard:read,
// actions scope admin, and every state-changing request a CSRF token; tag
// values are shown only to keys whose scopes and read constraints let
// them read the reference. Nothing is reachable without a login but the
// login page and the static assets. docs/dashboard.md describes it.
package ui
