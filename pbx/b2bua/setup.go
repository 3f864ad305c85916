package b2bua

import (
	"context"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"pbxd/media"
	"pbxd/media/sdp"
	"pbxd/store"
)

// teOffered is the telephone-event payload type pbxd offers.
const teOffered = 101

// run places the callee side of the call and waits (on the caller's
// INVITE handler goroutine) until it is answered, fails, times out or the
// caller cancels.
func (c *Call) run(dest destination) {
	brtp, err := c.e.cfg.Media.Open(c.id + "/" + c.calleeRole)
	if err != nil {
		c.e.log.Error("b2bua: no RTP port for a call", "err", err)
		c.failSetup(503, "Service Unavailable", endFailed)
		return
	}
	brtp.Start()
	b := &leg{call: c, role: c.calleeRole, rtp: brtp}
	// Our offer to the callee: the caller's codecs in the caller's order,
	// so the callee can pick the same one and no transcoding is needed.
	var formats []sdp.Format
	if c.a != nil {
		for _, f := range c.a.remote.Audio.Formats {
			if cd := f.Codec(); cd != 0 && !hasCodec(formats, cd) {
				formats = append(formats, cd.Format())
			}
		}
	}
	for _, cd := range sdp.DefaultCodecs() {
		if !hasCodec(formats, cd) {
			formats = append(formats, cd.Format())
		}
	}
	b.local = sdp.Local{Origin: sdp.NewOrigin(), Addr: brtp.LocalAddr(), Formats: formats, TelephoneEvent: teOffered, Direction: sdp.SendRecv}
	offer := sdp.Build(b.local)

	c.mu.Lock()
	c.pendingB = b
	c.bridge = media.NewBridge(media.BridgeConfig{OnEvent: c.onEvent, Clock: c.e.cfg.MixClock})
	c.mu.Unlock()

	forks := c.makeForks(dest, offer)
	if len(forks) == 0 {
		c.failSetup(480, "Temporarily Unavailable", endUnavailable)
		return
	}
	c.mu.Lock()
	c.forks = forks
	c.record()
	c.mu.Unlock()
	for _, f := range forks {
		f.start()
	}
	c.ring(forks)
}

func hasCodec(fs []sdp.Format, c sdp.Codec) bool {
	for _, f := range fs {
		if f.Codec() == c {
			return true
		}
	}
	return false
}

// makeForks builds one INVITE per contact, or one to the trunk.
func (c *Call) makeForks(dest destination, offer []byte) []*fork {
	e := c.e
	var out []*fork
	if dest.trunk != nil {
		t := dest.trunk
		from := sip.FromHeader{DisplayName: t.FromName, Address: sip.Uri{Scheme: "sip", User: t.FromUser, Host: t.FromHost}}
		to := sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: t.Target.User, Host: t.Target.Host, Port: t.Target.Port}}
		f := c.newFork("trunk "+t.TrunkID, t.Target, t.Transport, t.Destination, from, to, offer)
		f.user, f.pass = t.Username, t.Password
		return append(out, f)
	}
	fromUser, fromName := c.w.From, c.w.FromName
	if fromUser == "" && c.a != nil {
		in := c.a.uas.InviteRequest
		fromUser, fromName = in.From().Address.User, in.From().DisplayName
	}
	if fromUser == "" {
		fromUser = "pbxd"
	}
	from := sip.FromHeader{DisplayName: fromName, Address: sip.Uri{Scheme: "sip", User: fromUser, Host: e.cfg.Host}}
	to := sip.ToHeader{DisplayName: c.w.ToName, Address: sip.Uri{Scheme: "sip", User: dest.number, Host: e.cfg.Host}}
	for _, bnd := range dest.contacts {
		var target sip.Uri
		if err := sip.ParseUri(bnd.Contact, &target); err != nil {
			c.log.Warn("unusable registered contact", "device", bnd.DeviceUsername, "err", err)
			continue
		}
		to := to
		if to.Address.User == "" {
			to.Address.User = bnd.DeviceUsername // a user without an extension
		}
		f := c.newFork("device "+bnd.DeviceUsername, target, bnd.Transport, bnd.Source, from, to, offer)
		if c.autoAnswer {
			// Ask the phone to pick up by itself (an agent's own connection).
			f.req.AppendHeader(sip.NewHeader("Call-Info", "<sip:"+e.cfg.Host+">;answer-after=0"))
			f.req.AppendHeader(sip.NewHeader("Alert-Info", "<http://127.0.0.1>;info=alert-autoanswer"))
		}
		out = append(out, f)
	}
	return out
}

// ring waits for the forks: it relays ringing, takes the first answer,
// and otherwise relays the best failure.
func (c *Call) ring(forks []*fork) {
	defer c.endSetup()
	timer := time.NewTimer(c.e.cfg.RingTimeout)
	defer timer.Stop()
	pending := len(forks)
	var best *sip.Response
	relayed := false
	for pending > 0 {
		select {
		case ev := <-c.events:
			if !ev.final {
				c.provisional(ev.f, ev.res, &relayed)
				continue
			}
			if ev.err == nil {
				c.cancelForks(ev.f)
				// From here late events of other forks are theirs to
				// handle: the answer waits for the caller's ACK.
				c.endSetup()
				c.answer(ev.f)
				return
			}
			pending--
			if r := finalResponse(ev.err); r != nil {
				best = better(best, r)
			} else {
				c.log.Debug("fork failed", "to", ev.f.desc, "err", ev.err)
			}
		case <-c.cancelled:
			// The caller cancelled: the transaction layer already answered
			// 487 to the INVITE and 200 to the CANCEL (or the originator
			// gave up).
			c.cancelForks(nil)
			c.setEnd(endCancelled, 487)
			c.hangup(endCancelled, "caller", c.a)
			return
		case <-timer.C:
			c.cancelForks(nil)
			c.failSetup(480, "Temporarily Unavailable", endNoAnswer)
			return
		case <-c.endCh:
			c.cancelForks(nil)
			c.respondCaller(503, "Service Unavailable")
			return
		}
	}
	code, reason := 480, "Temporarily Unavailable"
	if best != nil {
		code, reason = best.StatusCode, best.Reason
		if code == 401 || code == 407 {
			code, reason = 503, "Service Unavailable" // the trunk refused our credentials
		}
	}
	c.failSetup(code, reason, endFor(code))
}

// endSetup tells the forks nobody reads their events any more.
func (c *Call) endSetup() { c.setupOnce.Do(func() { close(c.setupDone) }) }

// cancelForks cancels every fork but keep.
func (c *Call) cancelForks(keep *fork) {
	c.mu.Lock()
	forks := c.forks
	c.mu.Unlock()
	for _, f := range forks {
		if f != keep {
			f.cancel()
		}
	}
}

func (c *Call) setEnd(reason string, status int) {
	c.mu.Lock()
	if c.w.EndReason == "" {
		c.w.EndReason, c.w.EndStatus = reason, status
	}
	c.mu.Unlock()
}

// failSetup answers the caller with a failure and ends the call.
func (c *Call) failSetup(code int, reason, end string) {
	c.setEnd(end, code)
	c.hangup(end, "system", nil)
	c.respondCaller(code, reason)
}

// respondCaller sends a final failure to the caller, when there is one
// (calls pbxd originates have none).
func (c *Call) respondCaller(code int, reason string) {
	if c.a != nil {
		_ = c.a.uas.Respond(code, reason, nil)
	}
}

// provisional relays the first 180 (or 183) to the caller, and on a 183
// with SDP joins early media so the caller hears the callee's ringback
// or announcements.
func (c *Call) provisional(f *fork, res *sip.Response, relayed *bool) {
	if c.a == nil {
		if !*relayed && c.onProgress != nil {
			c.onProgress(res.StatusCode)
		}
		*relayed = true
		return
	}
	if res.StatusCode == 183 && len(res.Body()) > 0 && !c.earlyMedia {
		if body, err := c.joinMedia(res, false); err == nil {
			c.earlyMedia = true
			*relayed = true
			_ = c.a.uas.Respond(183, "Session Progress", body, sip.NewHeader("Content-Type", "application/sdp"))
			return
		}
	}
	if *relayed {
		return
	}
	*relayed = true
	_ = c.a.uas.Respond(180, "Ringing", nil)
}

// joinMedia applies the callee's SDP answer in res to the callee leg,
// negotiates the caller's answer preferring the callee's codec, bridges
// the two RTP legs, and returns the SDP body for the caller. expect arms
// the media timeouts (the call is answered).
func (c *Call) joinMedia(res *sip.Response, expect bool) ([]byte, error) {
	remote, err := sdp.Parse(res.Body())
	if err != nil {
		return nil, err
	}
	if remote.Audio == nil || remote.Audio.Addr.Port() == 0 {
		return nil, fmt.Errorf("b2bua: callee declined audio")
	}
	codec := sdp.Codec(0)
	for _, f := range remote.Audio.Formats {
		if cd := f.Codec(); cd != 0 {
			codec = cd
			break
		}
	}
	if codec == 0 {
		return nil, sdp.ErrNoCommonCodec
	}
	c.mu.Lock()
	b, a := c.pendingB, c.a
	c.mu.Unlock()
	theirs := remote.Audio.Direction
	b.applyMedia(remote, codec, remote.Audio.TelephoneEvent, theirs.Reverse(), expect)
	if a == nil {
		return nil, nil // originated: the owner bridges the leg
	}

	if !c.earlyMedia {
		ans, err := sdp.NegotiatePrefer(a.remote, sdp.DefaultCodecs(), codec)
		if err != nil {
			return nil, err
		}
		a.local = ans.Local(a.local.Origin, a.rtp.LocalAddr())
		a.codec, a.te = ans.Codec, ans.TelephoneEvent
		c.answerBody = sdp.Build(a.local)
	}
	a.applyMedia(a.remote, a.codec, a.te, a.local.Direction, expect)
	c.bridge.Add(a.rtp)
	c.bridge.Add(b.rtp)
	return c.answerBody, nil
}

// answer completes the call with the fork that answered: ACK, media,
// 200 to the caller (which waits for the caller's ACK).
func (c *Call) answer(f *fork) {
	dtx := f.session()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := dtx.Ack(ctx); err != nil {
		c.log.Warn("ACK to the callee failed", "err", err)
	}
	c.mu.Lock()
	b := c.pendingB
	b.uac, b.key = dtx, f.key()
	c.mu.Unlock()
	body, err := c.joinMedia(dtx.InviteResponse, true)
	if err != nil {
		c.log.Warn("callee answer unusable", "err", err)
		c.mu.Lock()
		c.b = b
		c.answered = true
		c.w.AnsweredAt = c.e.cfg.Now()
		c.mu.Unlock()
		c.e.addDialog(b)
		c.setEnd(endFailed, 488)
		c.hangupBefore200(488, "Not Acceptable Here")
		return
	}
	now := c.e.cfg.Now()
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		f.discard()
		return
	}
	c.b = b
	c.answered = true
	c.w.State, c.w.AnsweredAt = store.WorkitemAnswered, now
	c.record()
	c.mu.Unlock()
	c.e.addDialog(b)
	b.rtp.OnTimeout(c.onMediaTimeout)
	if c.a == nil {
		c.log.Info("call answered", "by", f.desc, "codec", b.codec.String())
		return
	}
	c.a.rtp.OnTimeout(c.onMediaTimeout)
	c.log.Info("call answered", "by", f.desc, "codec", c.a.codec.String()+"/"+b.codec.String())
	if err := c.a.uas.Respond(200, "OK", body, sip.NewHeader("Content-Type", "application/sdp")); err != nil {
		c.log.Info("caller never confirmed the answer", "err", err)
		c.hangup(endFailed, "system", nil)
	}
}

// hangupBefore200 ends a call whose callee answered but whose caller has
// not had a final response yet.
func (c *Call) hangupBefore200(code int, reason string) {
	c.hangup(endFailed, "system", c.a)
	c.respondCaller(code, reason)
}
