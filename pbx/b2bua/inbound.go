package b2bua

import (
	"context"
	"errors"
	"mime"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"pbxd/media/sdp"
	"pbxd/media/webrtcleg"
	"pbxd/pbx/sipauth"
	"pbxd/store"
)

// inbound takes a new call: it checks the request, authenticates the
// caller (a device by digest, or a carrier by its trunk), reads the SDP
// offer, routes the number and runs the call until it is answered or
// fails. It returns when the caller's INVITE transaction is over.
func (e *Engine) inbound(req *sip.Request, tx sip.ServerTransaction) {
	respond := func(code int, reason string, hdrs ...sip.Header) {
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		for _, h := range hdrs {
			res.AppendHeader(h)
		}
		_ = tx.Respond(res)
	}
	if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil || req.Contact() == nil {
		respond(400, "Missing Mandatory Header")
		return
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		respond(483, "Too Many Hops")
		return
	}
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		respond(503, "Service Unavailable")
		return
	}

	// Who is calling.
	var from caller
	if e.cfg.Trunks != nil {
		if in, ok := e.cfg.Trunks.Inbound(req); ok {
			from.trunk = &in
		}
	}
	if from.trunk == nil {
		res := e.cfg.Auth.Check(req, true)
		if res.Outcome != sipauth.OK {
			_ = tx.Respond(e.cfg.Auth.Respond(req, res, true))
			return
		}
		from.device, from.user = res.Device, res.User
	}

	// What they offer: an SDP offer, or nothing (a delayed offer: pbxd
	// offers in its 200 and the answer comes in the ACK).
	body := req.Body()
	var offer *sdp.Session
	browser := false
	if len(body) > 0 {
		if ct := req.ContentType(); ct == nil || !isSDP(ct.Value()) {
			respond(415, "Unsupported Media Type", sip.NewHeader("Accept", "application/sdp"))
			return
		}
		var err error
		if offer, err = sdp.Parse(body); err != nil {
			respond(400, "Malformed SDP")
			return
		}
		browser = isWebRTC(offer)
		if browser && e.cfg.WebRTC == nil {
			respond(488, "Not Acceptable Here", sip.NewHeader("Warning", `305 pbxd "WebRTC media is not enabled"`))
			return
		}
		if _, err := sdp.Negotiate(offer, sdp.DefaultCodecs()); err != nil && !browser {
			respond(488, "Not Acceptable Here", sip.NewHeader("Warning", `305 pbxd "no common codec: pbxd speaks PCMU and PCMA"`))
			return
		}
	}

	// Where it goes.
	number := req.Recipient.User
	if from.trunk != nil {
		number = from.trunk.Extension
	}
	dest, refused := e.route(number, from)
	c := e.newCall(req, from, dest)
	if refused != nil {
		c.refuse(refused)
		respond(refused.code, refused.reason)
		return
	}
	dtx, err := e.dialogUA(req.Transport()).ReadInvite(req, tx)
	if err != nil {
		c.refuse(refuseFailed)
		respond(500, "Server Internal Error")
		return
	}
	a := &leg{call: c, role: "caller", uas: dtx, local: sdp.Local{Origin: sdp.NewOrigin()}, remote: offer}
	if tag, _ := dtx.InviteRequest.To().Params.Get("tag"); tag != "" {
		a.key = dialogKey(req.CallID().Value(), tag)
	}
	if browser {
		// A browser: pion answers its offer now (the answer goes out with
		// the 183 or 200), and the callee is offered the codec it chose.
		if code, reason := e.answerBrowser(c, a, body); code != 0 {
			c.refuse(&refusal{code, reason, endFailed})
			_ = dtx.Respond(code, reason, nil)
			return
		}
	} else if a.rtp, err = e.cfg.Media.Open(c.id + "/caller"); err != nil {
		e.log.Error("b2bua: no RTP port for a call", "err", err)
		c.refuse(&refusal{503, "Service Unavailable", endFailed})
		_ = dtx.Respond(503, "Service Unavailable", nil)
		return
	} else {
		a.rtp.Start()
	}
	c.mu.Lock()
	c.a = a
	c.cancelled = dtx.Context().Done()
	c.mu.Unlock()
	e.addDialog(a)
	if !e.addCall(c) {
		c.hangup(endShutdown, "system", nil)
		_ = dtx.Respond(503, "Service Unavailable", nil)
		return
	}
	c.run(dest)
}

// isWebRTC tells a browser's offer (ICE, DTLS-SRTP: UDP/TLS/RTP/SAVPF)
// from a phone's plain RTP/AVP one.
func isWebRTC(s *sdp.Session) bool {
	return s.Audio != nil && strings.Contains(s.Audio.Proto, "SAVP")
}

// answerBrowser opens a WebRTC leg for a browser caller and has pion
// answer its offer; a non-zero code is the failure to send.
func (e *Engine) answerBrowser(c *Call, a *leg, offer []byte) (int, string) {
	web, err := e.cfg.WebRTC.Open(c.id + "/caller")
	if err != nil {
		e.log.Error("b2bua: no WebRTC leg for a call", "err", err)
		return 503, "Service Unavailable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	answer, err := web.Answer(ctx, offer)
	if err != nil {
		web.Close()
		if errors.Is(err, webrtcleg.ErrNoCodec) || errors.Is(err, webrtcleg.ErrNoAudio) {
			return 488, "Not Acceptable Here"
		}
		e.log.Warn("b2bua: answering a browser's offer", "err", err)
		return 500, "Server Internal Error"
	}
	a.web, a.webAnswered = web, true
	a.codec, a.te = sdpCodec(web.Codec()), web.EventPayloadType()
	c.answerBody = answer
	return 0, ""
}

func isSDP(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/sdp"
}

// newCall starts the record of a call.
func (e *Engine) newCall(req *sip.Request, from caller, dest destination) *Call {
	c := e.newCallShell()
	fromHdr := req.From()
	w := &c.w
	w.ID, w.State, w.CreatedAt, w.CallID = c.id, store.WorkitemRinging, e.cfg.Now(), req.CallID().Value()
	w.From, w.FromName, w.To = fromHdr.Address.User, fromHdr.DisplayName, dest.number
	switch {
	case from.trunk != nil:
		w.Type, w.TrunkID = store.WorkitemInboundCall, from.trunk.TrunkID
		if from.trunk.DID != "" {
			w.To = from.trunk.DID
		}
	case dest.trunk != nil:
		w.Type, w.TrunkID = store.WorkitemOutboundCall, dest.trunk.TrunkID
	default:
		w.Type = store.WorkitemInternalCall
	}
	if from.user != nil {
		w.Users = append(w.Users, from.user.ID)
		w.From, w.FromName = callerNumber(from), displayName(from.user)
		if dest.trunk != nil {
			w.OwnedBy = from.user.ID
		}
	}
	if dest.user != nil {
		if !contains(w.Users, dest.user.ID) {
			w.Users = append(w.Users, dest.user.ID)
		}
		w.ToName = displayName(dest.user)
		if w.OwnedBy == "" {
			w.OwnedBy = dest.user.ID
		}
	}
	c.log = e.log.With("call_id", w.CallID, "workitem", c.id)
	return c
}

// newCallShell is a call with its id and channels, before either side.
func (e *Engine) newCallShell() *Call {
	return &Call{e: e, id: store.NewID(), endCh: make(chan struct{}), events: make(chan forkEvent, 16),
		setupDone: make(chan struct{}), calleeRole: "callee"}
}

// callerNumber is what a device's user presents: the extension, or the
// device name when the user has none.
func callerNumber(from caller) string {
	if from.user != nil && from.user.Extension != "" {
		return from.user.Extension
	}
	if from.device != nil {
		return from.device.Username
	}
	return ""
}

func displayName(u *store.User) string {
	return strings.TrimSpace(u.FirstName + " " + u.LastName)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// refuse records a call that never rang.
func (c *Call) refuse(r *refusal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	c.ended = true
	close(c.endCh)
	c.w.State, c.w.EndedAt, c.w.EndReason, c.w.EndStatus = store.WorkitemEnded, c.e.cfg.Now(), r.end, r.code
	c.record()
	c.log.Info("call refused", "status", r.code, "reason", r.end, "to", c.w.To)
}

// addCall registers a call unless the engine is closing.
func (e *Engine) addCall(c *Call) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.calls[c.id] = c
	return true
}
