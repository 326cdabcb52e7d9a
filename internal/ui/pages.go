package ui

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/auth"
	"github.com/mxgateway/mxgateway/internal/session"
	"github.com/mxgateway/mxgateway/internal/store"
)

// layout is what the base template needs around every page.
type layout struct {
	Title  string
	Nav    string
	User   string
	KeyID  string
	Admin  bool
	CSRF   string
	NoAuth bool
	Body   any
}

type errorData struct {
	Title   string
	Message string
}

var funcs = template.FuncMap{
	"since": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return fmtAge(time.Since(t))
	},
	"until": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return fmtAge(time.Until(t))
	},
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"pbtime": func(t *timestamppb.Timestamp) string {
		if t == nil {
			return "—"
		}
		return t.AsTime().UTC().Format("2006-01-02 15:04:05Z")
	},
	"join":  strings.Join,
	"value": formatValue,
	"state": stateName,
	"enum": func(s fmt.Stringer) string {
		return enumName(s.String())
	},
}

// fmtAge prints a duration coarsely (operators read it, not scripts).
func fmtAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// enumName turns SESSION_STATE_READY into READY: the part after the
// enum's own prefix.
func enumName(s string) string {
	for _, p := range []string{"ALARM_STATE_", "SESSION_STATE_", "DATA_HEALTH_", "EVENT_FAMILY_", "MODEL_SOURCE_", "FRESHNESS_", "MX_DATA_TYPE_", "SECURITY_CLASSIFICATION_"} {
		if v, ok := strings.CutPrefix(s, p); ok {
			return v
		}
	}
	return s
}

func stateName(st mxgatewayv1.SessionState) string { return enumName(st.String()) }

func scopeList(ss []auth.Scope) string {
	if len(ss) == 0 {
		return "none"
	}
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// render executes a page into a buffer first, so a template error is a
// clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *request, code int, name string, body any) {
	t := s.pages[name]
	if t == nil {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	l := layout{Title: pageTitles[name], Nav: name, Body: body, NoAuth: s.opts.Mode == auth.ModeNone}
	if e, ok := body.(errorData); ok {
		l.Title = e.Title
	}
	if r != nil {
		l.User, l.KeyID, l.Admin, l.CSRF = r.login.keyName, r.p.KeyID, r.p.IsAdmin(), r.login.csrf
		if l.User == "" {
			l.User = r.p.Name
		}
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "base", l); err != nil {
		s.log.Error("dashboard template failed", "page", name, "err", err)
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// fragment executes one named template alone (for the browse tree).
func (s *Server) fragment(w http.ResponseWriter, page, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages[page].ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("dashboard fragment failed", "fragment", name, "err", err)
		http.Error(w, "template error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

var pageTitles = map[string]string{
	"login": "Log in", "overview": "Overview", "sessions": "Sessions", "session": "Session",
	"workers": "Workers", "events": "Events", "galaxy": "Galaxy", "browse": "Browse",
	"keys": "API keys", "secret": "API key", "alarms": "Alarms", "audit": "Audit log", "confirm": "Confirm", "error": "Error",
}

// failed shows a service error as a page, with its gRPC code.
func (s *Server) failed(w http.ResponseWriter, r *request, what string, err error) {
	code := http.StatusInternalServerError
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = fmt.Sprintf("%s: %s", st.Code(), st.Message())
		code = httpStatus(st.Code().String())
	}
	s.render(w, r, code, "error", errorData{Title: what + " failed", Message: msg})
}

func httpStatus(code string) int {
	switch code {
	case "NotFound":
		return http.StatusNotFound
	case "InvalidArgument", "FailedPrecondition", "OutOfRange":
		return http.StatusBadRequest
	case "PermissionDenied":
		return http.StatusForbidden
	case "Unavailable", "ResourceExhausted":
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// ---- Overview ----

func (s *Server) overview(w http.ResponseWriter, r *request) {
	s.render(w, r, http.StatusOK, "overview", s.snapshot(nil))
}

// ---- Sessions ----

// sessionRow is one line of the sessions table (also sent live as JSON).
type sessionRow struct {
	ID          string `json:"id"`
	Client      string `json:"client"`
	Owner       string `json:"owner"`
	State       string `json:"state"`
	PID         int    `json:"pid"`
	Backend     string `json:"backend"`
	Subscribers int    `json:"subscribers"`
	Queued      int    `json:"queued"`
	Commands    uint64 `json:"commands"`
	Health      string `json:"health"`
	Opened      string `json:"opened"`
	Fault       string `json:"fault"`
}

func (s *Server) sessionRows() []sessionRow {
	infos := s.opts.Sessions.List()
	slices.SortFunc(infos, func(a, b session.Info) int { return a.OpenedAt.Compare(b.OpenedAt) })
	rows := make([]sessionRow, 0, len(infos))
	for _, in := range infos {
		q := 0
		if ss, err := s.opts.Sessions.Get(in.ID); err == nil {
			q = ss.QueuedEvents()
		}
		rows = append(rows, sessionRow{ID: in.ID, Client: in.ClientName, Owner: in.OwnerKeyID, State: stateName(in.State),
			PID: in.WorkerPID, Backend: backendName(in.Backend), Subscribers: in.Subscribers, Queued: q,
			Commands: in.CommandsCompleted, Health: enumName(in.DataHealth.String()),
			Opened: in.OpenedAt.UTC().Format("15:04:05Z"), Fault: in.FaultReason})
	}
	return rows
}

func backendName(b *mxgatewayv1.BackendInfo) string {
	if b == nil {
		return ""
	}
	return b.GetKind()
}

func (s *Server) sessionsPage(w http.ResponseWriter, r *request) {
	s.render(w, r, http.StatusOK, "sessions", s.sessionRows())
}

type itemRow struct {
	Server, Item int32
	Ref          string
	Advised      bool
	Buffered     bool
}

type sessionDetail struct {
	Info        session.Info
	Backend     string
	Queued      int
	Items       []itemRow
	ItemCount   int
	Advised     int
	Subscribers []session.SubscriberInfo
	MaxItems    int
}

// maxItemsShown bounds the item table of the session page.
const maxItemsShown = 500

func (s *Server) sessionPage(w http.ResponseWriter, r *request) {
	ss, err := s.opts.Sessions.Get(r.PathValue("id"))
	if err != nil {
		s.render(w, r, http.StatusNotFound, "error", errorData{Title: "No such session", Message: "No open session has that id; it may have closed."})
		return
	}
	d := sessionDetail{Info: ss.Info(), Backend: backendName(ss.Backend()), Queued: ss.QueuedEvents(),
		Subscribers: ss.Subscribers(), MaxItems: maxItemsShown}
	for _, e := range ss.Items().Snapshot() {
		d.ItemCount++
		if e.Advised {
			d.Advised++
		}
		if len(d.Items) < maxItemsShown {
			d.Items = append(d.Items, itemRow{Server: e.Key.Server, Item: e.Key.Item, Ref: e.Ref, Advised: e.Advised, Buffered: e.Buffered})
		}
	}
	s.render(w, r, http.StatusOK, "session", d)
}

type confirmData struct {
	Question string
	Detail   string
	Action   string
	Button   string
	Back     string
}

func (s *Server) sessionCloseConfirm(w http.ResponseWriter, r *request) {
	id := r.PathValue("id")
	s.render(w, r, http.StatusOK, "confirm", confirmData{Question: "Close session " + id + "?",
		Detail: "Its worker shuts down and its client gets NOT_FOUND on its next call.",
		Action: Prefix + "sessions/" + id + "/close", Button: "Close the session", Back: Prefix + "sessions/" + id})
}

func (s *Server) sessionClose(w http.ResponseWriter, r *request) {
	id := r.PathValue("id")
	res, err := s.opts.Sessions.CloseSession(r.Context(), id)
	if err != nil {
		s.audit(r.Request, r.p.KeyID, ActionSessionKill, id, store.OutcomeFailed, err.Error())
		s.render(w, r, http.StatusNotFound, "error", errorData{Title: "Close failed", Message: err.Error()})
		return
	}
	s.audit(r.Request, r.p.KeyID, ActionSessionKill, id, store.OutcomeOK, stateName(res.State))
	http.Redirect(w, r.Request, Prefix+"sessions", http.StatusSeeOther)
}

// ---- Workers ----

type workerRow struct {
	WorkerInfo
	Session string
	Client  string
}

type workersData struct {
	Rows   []workerRow
	Spares int
	None   bool
}

func (s *Server) workersPage(w http.ResponseWriter, r *request) {
	d := workersData{None: s.opts.Workers == nil}
	if s.opts.Workers != nil {
		bySID := map[int]session.Info{}
		for _, in := range s.opts.Sessions.List() {
			bySID[in.WorkerPID] = in
		}
		for _, wi := range s.opts.Workers.Workers() {
			in := bySID[wi.PID]
			d.Rows = append(d.Rows, workerRow{WorkerInfo: wi, Session: in.ID, Client: in.ClientName})
		}
		slices.SortFunc(d.Rows, func(a, b workerRow) int { return a.PID - b.PID })
		d.Spares = s.opts.Workers.Spares()
	}
	s.render(w, r, http.StatusOK, "workers", d)
}

func (s *Server) workerKillConfirm(w http.ResponseWriter, r *request) {
	pid := r.PathValue("pid")
	s.render(w, r, http.StatusOK, "confirm", confirmData{Question: "Kill worker " + pid + "?",
		Detail: "The process ends at once; its session faults and its client sees the fault.",
		Action: Prefix + "workers/" + pid + "/kill", Button: "Kill the worker", Back: Prefix + "workers"})
}

func (s *Server) workerKill(w http.ResponseWriter, r *request) {
	pid, err := strconv.Atoi(r.PathValue("pid"))
	if err != nil || s.opts.Workers == nil || !s.opts.Workers.Kill(pid) {
		s.audit(r.Request, r.p.KeyID, ActionWorkerKill, r.PathValue("pid"), store.OutcomeFailed, "no such worker")
		s.render(w, r, http.StatusNotFound, "error", errorData{Title: "Kill failed", Message: "No session worker has that process id."})
		return
	}
	s.audit(r.Request, r.p.KeyID, ActionWorkerKill, strconv.Itoa(pid), store.OutcomeOK, "")
	http.Redirect(w, r.Request, Prefix+"workers", http.StatusSeeOther)
}

// ---- Events ----

type eventsData struct {
	Sessions []sessionRow
	Families []string
	Session  string
	Family   string
	Live     string
}

// eventFamilies are the families the filter offers.
func eventFamilies() []string {
	var out []string
	for i := int32(1); ; i++ {
		name, ok := mxgatewayv1.EventFamily_name[i]
		if !ok {
			return out
		}
		out = append(out, enumName(name))
	}
}

func (s *Server) eventsPage(w http.ResponseWriter, r *request) {
	d := eventsData{Sessions: s.sessionRows(), Families: eventFamilies(),
		Session: r.URL.Query().Get("session"), Family: r.URL.Query().Get("family")}
	q := make([]string, 0, 2)
	if d.Session != "" {
		q = append(q, "session="+urlEscape(d.Session))
	}
	if d.Family != "" {
		q = append(q, "family="+urlEscape(d.Family))
	}
	d.Live = Prefix + "live/events"
	if len(q) > 0 {
		d.Live += "?" + strings.Join(q, "&")
	}
	s.render(w, r, http.StatusOK, "events", d)
}

// ---- Galaxy and browse ----

type galaxyData struct {
	Info *mxgatewayv1.GalaxyInfo
	Err  string
}

func (s *Server) galaxyInfo(r *request) galaxyData {
	if s.opts.Galaxy == nil {
		return galaxyData{Err: "This gateway has no Galaxy model."}
	}
	resp, err := s.opts.Galaxy.GetGalaxy(ctxFor(r), &mxgatewayv1.GetGalaxyRequest{})
	if err != nil {
		return galaxyData{Err: errText(err)}
	}
	return galaxyData{Info: resp.GetGalaxy()}
}

func errText(err error) string {
	if st, ok := status.FromError(err); ok {
		return fmt.Sprintf("%s: %s", st.Code(), st.Message())
	}
	return err.Error()
}

func (s *Server) galaxyPage(w http.ResponseWriter, r *request) {
	s.render(w, r, http.StatusOK, "galaxy", s.galaxyInfo(r))
}

type browseData struct {
	Galaxy   galaxyData
	Roots    []*mxgatewayv1.GalaxyObject
	Err      string
	CanWatch bool
	Watched  []watchRow
}

// maxTagName bounds a tag name in a browse request.
const maxTagName = 256

func byTag(tag string) *mxgatewayv1.ObjectSelector {
	return &mxgatewayv1.ObjectSelector{By: &mxgatewayv1.ObjectSelector_TagName{TagName: tag}}
}

// childrenPage bounds one expand of the tree.
const childrenPage = 500

func (s *Server) children(r *request, parent string) ([]*mxgatewayv1.GalaxyObject, error) {
	req := &mxgatewayv1.BrowseChildrenRequest{PageSize: childrenPage}
	if parent != "" {
		req.Parent = byTag(parent)
	}
	resp, err := s.opts.Galaxy.BrowseChildren(ctxFor(r), req)
	if err != nil {
		return nil, err
	}
	return resp.GetChildren(), nil
}

func (s *Server) browsePage(w http.ResponseWriter, r *request) {
	d := browseData{Galaxy: s.galaxyInfo(r), CanWatch: mayReadValues(r.p)}
	if d.Galaxy.Err == "" {
		roots, err := s.children(r, "")
		if err != nil {
			d.Err = errText(err)
		}
		d.Roots = roots
	}
	if wt := r.login.watch; wt != nil {
		d.Watched = wt.rows()
	}
	s.render(w, r, http.StatusOK, "browse", d)
}

func (s *Server) browseChildren(w http.ResponseWriter, r *request) {
	if s.opts.Galaxy == nil {
		http.Error(w, "no Galaxy model", http.StatusNotFound)
		return
	}
	parent := r.URL.Query().Get("parent")
	if parent == "" || len(parent) > maxTagName {
		http.Error(w, "parent must be a tag name", http.StatusBadRequest)
		return
	}
	kids, err := s.children(r, parent)
	if err != nil {
		st, _ := status.FromError(err)
		http.Error(w, errText(err), httpStatus(st.Code().String()))
		return
	}
	s.fragment(w, "browse", "nodes", kids)
}

type objectData struct {
	Object   *mxgatewayv1.GalaxyObject
	CanWatch bool
	CSRF     string
}

func (s *Server) browseObject(w http.ResponseWriter, r *request) {
	if s.opts.Galaxy == nil {
		http.Error(w, "no Galaxy model", http.StatusNotFound)
		return
	}
	tag := r.URL.Query().Get("tag")
	if tag == "" || len(tag) > maxTagName {
		http.Error(w, "tag must be a tag name", http.StatusBadRequest)
		return
	}
	resp, err := s.opts.Galaxy.GetObject(ctxFor(r), &mxgatewayv1.GetObjectRequest{Object: byTag(tag)})
	if err != nil {
		st, _ := status.FromError(err)
		http.Error(w, errText(err), httpStatus(st.Code().String()))
		return
	}
	s.fragment(w, "browse", "object", objectData{Object: resp.GetObject(), CanWatch: mayReadValues(r.p), CSRF: r.login.csrf})
}

// ---- API keys ----

type keysData struct {
	Keys   []*mxgatewayv1.ApiKeyInfo
	Scopes []string
	Err    string
}

func allScopeNames() []string {
	out := make([]string, len(auth.AllScopes))
	for i, s := range auth.AllScopes {
		out[i] = string(s)
	}
	return out
}

func (s *Server) keysPage(w http.ResponseWriter, r *request) {
	s.showKeys(w, r, http.StatusOK, "")
}

func (s *Server) showKeys(w http.ResponseWriter, r *request, code int, msg string) {
	d := keysData{Scopes: allScopeNames(), Err: msg}
	resp, err := s.opts.Admin.ListApiKeys(ctxFor(r), &mxgatewayv1.ListApiKeysRequest{})
	if err != nil {
		s.failed(w, r, "Listing API keys", err)
		return
	}
	d.Keys = resp.GetKeys()
	s.render(w, r, code, "keys", d)
}

type secretData struct {
	Key    *mxgatewayv1.ApiKeyInfo
	Secret string
	What   string
}

// splitPatterns reads a constraint field: one pattern per line or comma.
func splitPatterns(v string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == ',' || r == '\r' }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) keyCreate(w http.ResponseWriter, r *request) {
	req := &mxgatewayv1.CreateApiKeyRequest{
		Name:       strings.TrimSpace(r.PostFormValue("name")),
		Scopes:     r.PostForm["scopes"],
		AllowRead:  splitPatterns(r.PostFormValue("allow_read")),
		AllowWrite: splitPatterns(r.PostFormValue("allow_write")),
	}
	resp, err := s.opts.Admin.CreateApiKey(ctxFor(r), req)
	if err != nil {
		s.showKeys(w, r, http.StatusBadRequest, "Not created: "+errText(err))
		return
	}
	s.render(w, r, http.StatusOK, "secret", secretData{Key: resp.GetKey(), Secret: resp.GetRawKey(), What: "created"})
}

func (s *Server) keyConfirm(w http.ResponseWriter, r *request) {
	id, op := r.PathValue("id"), r.PathValue("op")
	var d confirmData
	switch op {
	case "rotate":
		d = confirmData{Question: "Rotate API key " + id + "?", Button: "Rotate the key",
			Detail: "A new key with the same name, scopes and constraints replaces it; the old one is revoked at once and its clients and dashboard logins end."}
	case "revoke":
		d = confirmData{Question: "Revoke API key " + id + "?", Button: "Revoke the key",
			Detail: "Its calls are refused from now on; its open streams and dashboard logins end."}
	default:
		s.render(w, r, http.StatusNotFound, "error", errorData{Title: "Not found", Message: "No such key action."})
		return
	}
	d.Action, d.Back = Prefix+"keys/"+id+"/"+op, Prefix+"keys"
	s.render(w, r, http.StatusOK, "confirm", d)
}

func (s *Server) keyRotate(w http.ResponseWriter, r *request) {
	id := r.PathValue("id")
	resp, err := s.opts.Admin.RotateApiKey(ctxFor(r), &mxgatewayv1.RotateApiKeyRequest{Id: id})
	if err != nil {
		s.showKeys(w, r, http.StatusBadRequest, "Not rotated: "+errText(err))
		return
	}
	s.keyEnded(id)
	s.render(w, r, http.StatusOK, "secret", secretData{Key: resp.GetKey(), Secret: resp.GetRawKey(), What: "rotated"})
}

func (s *Server) keyRevoke(w http.ResponseWriter, r *request) {
	id := r.PathValue("id")
	if _, err := s.opts.Admin.RevokeApiKey(ctxFor(r), &mxgatewayv1.RevokeApiKeyRequest{Id: id}); err != nil {
		s.showKeys(w, r, http.StatusBadRequest, "Not revoked: "+errText(err))
		return
	}
	s.keyEnded(id)
	if id == r.p.KeyID {
		clearCookie(w, r.Request, SessionCookie)
		http.Redirect(w, r.Request, Prefix+"login", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r.Request, Prefix+"keys", http.StatusSeeOther)
}

// keyEnded ends the logins of a key revoked or rotated here at once (a
// key revoked elsewhere ends its logins on their next request).
func (s *Server) keyEnded(id string) {
	for _, lg := range s.logins.removeKey(id) {
		s.ended(lg)
	}
}

// ---- Audit ----

type auditData struct {
	Events []*mxgatewayv1.AuditEvent
	Actor  string
	Action string
}

// auditPage bounds the audit page.
const auditPage = 200

func (s *Server) auditPage(w http.ResponseWriter, r *request) {
	q := r.URL.Query()
	d := auditData{Actor: q.Get("actor"), Action: q.Get("action")}
	resp, err := s.opts.Admin.ListAuditEvents(ctxFor(r), &mxgatewayv1.ListAuditEventsRequest{
		Limit: auditPage, ActorKeyId: d.Actor, Action: d.Action})
	if err != nil {
		s.failed(w, r, "Reading the audit log", err)
		return
	}
	d.Events = resp.GetEvents()
	s.render(w, r, http.StatusOK, "audit", d)
}
