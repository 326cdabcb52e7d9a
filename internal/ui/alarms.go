package ui

import (
	"net/http"
	"strconv"
	"strings"

	mxgatewayv1 "github.com/mxgateway/mxgateway/api/mxgateway/v1"
	"github.com/mxgateway/mxgateway/internal/auth"
)

// maxAlarmsShown bounds the alarms page.
const maxAlarmsShown = 500

// maxAckComment is the longest acknowledgement comment (AckMsg limit).
const maxAckComment = 256

type alarmsData struct {
	Alarms  []*mxgatewayv1.Alarm
	Area    string
	Text    string
	MinPri  string
	Err     string
	CanAck  bool
	None    bool
	NoScope bool
}

func (s *Server) alarmsPage(w http.ResponseWriter, r *request) {
	s.showAlarms(w, r, http.StatusOK, "")
}

func (s *Server) showAlarms(w http.ResponseWriter, r *request, code int, msg string) {
	q := r.URL.Query()
	d := alarmsData{Area: q.Get("area"), Text: q.Get("text"), MinPri: q.Get("min_priority"), Err: msg,
		CanAck: r.p.Has(auth.ScopeAlarmsAck), None: s.opts.Alarms == nil, NoScope: !r.p.Has(auth.ScopeAlarmsRead)}
	if s.opts.Alarms != nil && !d.NoScope {
		f := &mxgatewayv1.AlarmFilter{Text: d.Text}
		if d.Area != "" {
			f.AreaPrefixes = []string{d.Area}
		}
		if n, err := strconv.ParseUint(d.MinPri, 10, 32); err == nil {
			f.MaxPriority = uint32(n) // 1 is the most urgent: "at least as urgent as n"
		}
		resp, err := s.opts.Alarms.ListActiveAlarms(ctxFor(r), &mxgatewayv1.ListActiveAlarmsRequest{Filter: f, PageSize: maxAlarmsShown})
		if err != nil {
			d.Err = errText(err)
		} else {
			d.Alarms = resp.GetAlarms()
		}
	}
	s.render(w, r, code, "alarms", d)
}

func (s *Server) alarmAck(w http.ResponseWriter, r *request) {
	if s.opts.Alarms == nil {
		s.render(w, r, http.StatusNotFound, "error", errorData{Title: "No alarms", Message: "This gateway has no alarm monitor."})
		return
	}
	ref := strings.TrimSpace(r.PostFormValue("reference"))
	inst, _ := strconv.ParseUint(r.PostFormValue("instance"), 10, 64)
	comment := r.PostFormValue("comment")
	if len(comment) > maxAckComment {
		s.showAlarms(w, r, http.StatusBadRequest, "The comment is longer than 256 characters.")
		return
	}
	_, err := s.opts.Alarms.AcknowledgeAlarm(ctxFor(r), &mxgatewayv1.AcknowledgeAlarmRequest{Reference: ref, Instance: inst, Comment: comment})
	if err != nil {
		s.showAlarms(w, r, http.StatusBadRequest, "Not acknowledged: "+errText(err))
		return
	}
	http.Redirect(w, r.Request, Prefix+"alarms", http.StatusSeeOther)
}
