package b2bua

import (
	"context"
	"mime"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"pbxd/media/dtmf"
)

// HandleInfo takes SIP INFO DTMF (application/dtmf-relay or
// application/dtmf, as JsSIP sends by default and many phones can): the
// digit is reported like an RFC 4733 one and handed on to the other party
// — as an RFC 4733 event to a browser, as an INFO to a phone.
func (e *Engine) HandleInfo(req *sip.Request, tx sip.ServerTransaction) {
	l := e.findLeg(req)
	if l == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	digit, dur, ok := parseInfoDTMF(req)
	if !ok {
		res := sip.NewResponseFromRequest(req, 415, "Unsupported Media Type", nil)
		res.AppendHeader(sip.NewHeader("Accept", "application/dtmf-relay, application/dtmf"))
		_ = tx.Respond(res)
		return
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	c := l.call
	c.log.Info("DTMF", "leg", l.role, "digit", string(digit), "via", "INFO")
	if fn := e.cfg.OnDTMF; fn != nil {
		fn(c.id, c.id+"/"+l.role, digit)
	}
	c.mu.Lock()
	peer := c.a
	if l == c.a {
		peer = c.b
	}
	c.mu.Unlock()
	if peer == nil {
		return
	}
	e.goTracked(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if peer.web != nil {
			_ = peer.web.SendDTMF(ctx, digit, dur)
			return
		}
		out := sip.NewRequest(sip.INFO, peer.remoteTarget())
		out.AppendHeader(sip.NewHeader("Content-Type", "application/dtmf-relay"))
		out.SetBody([]byte("Signal=" + string(digit) + "\r\nDuration=" + strconv.Itoa(int(dur/time.Millisecond)) + "\r\n"))
		if _, err := peer.session().Do(ctx, out); err != nil {
			c.log.Debug("INFO to the peer failed", "err", err)
		}
	})
}

// parseInfoDTMF reads the digit and duration of an INFO body.
func parseInfoDTMF(req *sip.Request) (rune, time.Duration, bool) {
	ct := req.ContentType()
	if ct == nil {
		return 0, 0, false
	}
	mt, _, err := mime.ParseMediaType(ct.Value())
	if err != nil {
		return 0, 0, false
	}
	body := strings.TrimSpace(string(req.Body()))
	dur := 100 * time.Millisecond
	var sig string
	switch mt {
	case "application/dtmf":
		sig = body
	case "application/dtmf-relay":
		for _, line := range strings.Split(body, "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
			if !ok {
				continue
			}
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "signal":
				sig = strings.TrimSpace(v)
			case "duration":
				if ms, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && ms > 0 && ms < 10000 {
					dur = time.Duration(ms) * time.Millisecond
				}
			}
		}
	default:
		return 0, 0, false
	}
	if len(sig) != 1 {
		return 0, 0, false
	}
	r := rune(sig[0])
	if _, ok := dtmf.Code(r); !ok {
		return 0, 0, false
	}
	return r, dur, true
}
