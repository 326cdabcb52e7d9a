package ui

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/logging"
	"github.com/mxgateway/mxgateway/internal/store"
)

// Login attempts are limited per client address by a token bucket: a burst
// of loginBurst, then one every 1/loginRate seconds. The table of
// addresses is bounded; past it every new address shares one bucket.
const (
	loginRate       = 1.0
	loginBurst      = 10
	loginMaxSources = 1024
)

// loginFormTTL is how long the login form's CSRF cookie lives.
const loginFormTTL = 10 * time.Minute

type bucket struct {
	tokens float64
	last   time.Time
}

type loginLimiter struct {
	now    func() time.Time
	mu     sync.Mutex
	src    map[string]*bucket
	shared bucket
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, src: make(map[string]*bucket)}
}

// allow takes one attempt of host.
func (l *loginLimiter) allow(host string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.src[host]
	if b == nil {
		if len(l.src) >= loginMaxSources {
			for h, o := range l.src {
				if now.Sub(o.last).Seconds()*loginRate >= loginBurst {
					delete(l.src, h)
				}
			}
		}
		if len(l.src) >= loginMaxSources {
			b = &l.shared
		} else {
			b = &bucket{tokens: loginBurst, last: now}
			l.src[host] = b
		}
	}
	b.tokens = min(loginBurst, b.tokens+now.Sub(b.last).Seconds()*loginRate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

type loginData struct {
	CSRF    string
	Error   string
	NoAuth  bool
	Expired bool
}

// loginForm shows the form with a fresh double-submit CSRF token. A
// browser that is still logged in goes to the overview.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if lg, _ := s.logins.get(c.Value); lg != nil {
			http.Redirect(w, r, Prefix, http.StatusSeeOther)
			return
		}
	}
	s.showLogin(w, r, http.StatusOK, "")
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	tok := randomToken()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: Prefix + "login",
		MaxAge: int(loginFormTTL / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	s.render(w, nil, code, "login", loginData{CSRF: tok, Error: msg, NoAuth: s.opts.Mode == auth.ModeNone})
}

// loginSubmit trades an API key for a login: the key must verify and hold
// dashboard:read (or admin).
func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	c, err := r.Cookie(loginCookie)
	if !sameOrigin(r) || err != nil || !tokenEqual(c.Value, r.PostFormValue(FieldCSRF)) {
		s.showLogin(w, r, http.StatusForbidden, "The form expired or came from another site. Please try again.")
		return
	}
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if !s.limit.allow(host) {
		s.showLogin(w, r, http.StatusTooManyRequests, "Too many attempts. Wait a few seconds and try again.")
		return
	}

	var cred auth.Credential
	p := anonymous
	if s.opts.Mode == auth.ModeAPIKey {
		cred, err = auth.ParseKey(r.PostFormValue(FieldAPIKey))
		if err == nil {
			p, err = s.opts.Keys.AuthenticateCredential(r.Context(), cred)
		}
		if err != nil {
			keyID := ""
			if !errors.Is(err, auth.ErrMalformedKey) {
				keyID = cred.ID
			}
			s.audit(r, keyID, ActionLogin, "", store.OutcomeDenied, "invalid API key")
			s.showLogin(w, r, http.StatusUnauthorized, "That API key is not valid.")
			return
		}
		if !p.Has(auth.ScopeDashboard) {
			s.audit(r, p.KeyID, ActionLogin, "", store.OutcomeDenied, "missing scope "+string(auth.ScopeDashboard))
			s.showLogin(w, r, http.StatusForbidden, "That API key may not use the dashboard: it needs scope dashboard:read or admin.")
			return
		}
	}
	// A browser that logs in again gives up its previous login.
	if old, err := r.Cookie(SessionCookie); err == nil {
		if lg, _ := s.logins.get(old.Value); lg != nil {
			s.ended(s.logins.remove(lg))
		}
	}
	tok, _, ended, err := s.logins.add(p.KeyID, p.Name, cred)
	for _, lg := range ended {
		s.ended(lg)
	}
	if err != nil {
		s.showLogin(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	s.audit(r, p.KeyID, ActionLogin, "", store.OutcomeOK, "")
	s.log.Info("dashboard login", logging.KeyKeyID, p.KeyID)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: "", Path: Prefix + "login", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: tok, Path: Prefix,
		MaxAge: int(s.opts.SessionMax / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *request) {
	s.ended(s.logins.remove(r.login))
	s.audit(r.Request, r.p.KeyID, ActionLogout, "", store.OutcomeOK, "")
	clearCookie(w, r.Request, SessionCookie)
	http.Redirect(w, r.Request, Prefix+"login", http.StatusSeeOther)
}
