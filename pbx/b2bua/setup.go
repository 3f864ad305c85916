package b2bua

import (
	"context"
	"errors"
	"slices"
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
	// Our offer to the callee: the caller's codecs in the caller's order
	// (a browser caller's one negotiated codec first), so the callee can
	// pick the same one and no transcoding is needed.
	var first []sdp.Codec
	if c.a != nil && c.a.web != nil {
		first = append(first, c.a.codec)
	} else if c.a != nil && c.a.remote != nil {
		for _, f := range c.a.remote.Audio.Formats {
			first = append(first, f.Codec())
		}
	}
	formats := offerFormats(first...)
	c.mu.Lock()
	c.bridge = media.NewBridge(media.BridgeConfig{OnEvent: c.onEvent, Clock: c.e.cfg.MixClock})
	c.mu.Unlock()

	forks, code := c.makeForks(dest, formats)
	if len(forks) == 0 {
		if code == 0 {
			code = 480
		}
		reason, end := "Temporarily Unavailable", endUnavailable
		if code == 503 {
			reason, end = "Service Unavailable", endFailed
		}
		c.failSetup(code, reason, end)
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

// offerFormats lists the codecs pbxd offers: first in that order (zero
// and repeated ones skipped), then the rest of the codecs pbxd speaks.
func offerFormats(first ...sdp.Codec) []sdp.Format {
	var formats []sdp.Format
	for _, cd := range slices.Concat(first, sdp.DefaultCodecs()) {
		if cd != 0 && !hasCodec(formats, cd) {
			formats = append(formats, cd.Format())
		}
	}
	return formats
}

func hasCodec(fs []sdp.Format, c sdp.Codec) bool {
	for _, f := range fs {
		if f.Codec() == c {
			return true
		}
	}
	return false
}

// calleeLeg opens the media of a callee leg: one plain RTP leg is shared
// by every phone and trunk fork (only one of them wins), while each
// browser gets its own WebRTC connection. It returns the leg and the SDP
// offer for its INVITE.
func (c *Call) calleeLeg(browser bool, formats []sdp.Format) (*leg, []byte, error) {
	if !browser {
		if c.sharedB != nil {
			return c.sharedB, c.sharedOffer, nil
		}
		r, err := c.e.cfg.Media.Open(c.id + "/" + c.calleeRole)
		if err != nil {
			return nil, nil, err
		}
		r.Start()
		b := &leg{call: c, role: c.calleeRole, rtp: r}
		b.local = sdp.Local{Origin: sdp.NewOrigin(), Addr: r.LocalAddr(), Formats: formats, TelephoneEvent: teOffered, Direction: sdp.SendRecv}
		c.sharedB, c.sharedOffer = b, sdp.Build(b.local)
		c.addBLeg(b)
		return b, c.sharedOffer, nil
	}
	if c.e.cfg.WebRTC == nil {
		return nil, nil, errNoWebRTC
	}
	w, err := c.e.cfg.WebRTC.Open(c.id + "/" + c.calleeRole)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offer, err := w.Offer(ctx)
	if err != nil {
		w.Close()
		return nil, nil, err
	}
	b := &leg{call: c, role: c.calleeRole, web: w}
	c.addBLeg(b)
	return b, offer, nil
}

var errNoWebRTC = errors.New("b2bua: WebRTC media is not enabled")

func (c *Call) addBLeg(b *leg) {
	c.mu.Lock()
	c.bLegs = append(c.bLegs, b)
	c.mu.Unlock()
}

// isBrowser reports whether a binding is a browser's (SIP over WebSocket).
func isBrowser(b *store.Binding) bool { return b.Transport == "WS" || b.Transport == "WSS" }

// makeForks builds one INVITE per contact, or one to the trunk, each with
// its media leg. A non-zero code says why there are none.
func (c *Call) makeForks(dest destination, formats []sdp.Format) ([]*fork, int) {
	e := c.e
	var out []*fork
	if dest.trunk != nil {
		t := dest.trunk
		b, offer, err := c.calleeLeg(false, formats)
		if err != nil {
			e.log.Error("b2bua: no RTP port for a call", "err", err)
			return nil, 503
		}
		from := sip.FromHeader{DisplayName: t.FromName, Address: sip.Uri{Scheme: "sip", User: t.FromUser, Host: t.FromHost}}
		to := sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: t.Target.User, Host: t.Target.Host, Port: t.Target.Port}}
		f := c.newFork("trunk "+t.TrunkID, t.Target, t.Transport, t.Destination, from, to, offer)
		f.user, f.pass, f.leg = t.Username, t.Password, b
		return append(out, f), 0
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
	code := 0
	for _, bnd := range dest.contacts {
		var target sip.Uri
		if err := sip.ParseUri(bnd.Contact, &target); err != nil {
			c.log.Warn("unusable registered contact", "device", bnd.DeviceUsername, "err", err)
			continue
		}
		browser := isBrowser(bnd)
		if browser && !e.connected(bnd) {
			// A browser is reached only over the WebSocket it registered
			// on; its Contact host (.invalid) leads nowhere.
			c.log.Debug("browser's WebSocket is gone", "device", bnd.DeviceUsername)
			continue
		}
		b, offer, err := c.calleeLeg(browser, formats)
		if err != nil {
			e.log.Error("b2bua: no media leg for a fork", "device", bnd.DeviceUsername, "err", err)
			code = 503
			continue
		}
		to := to
		if to.Address.User == "" {
			to.Address.User = bnd.DeviceUsername // a user without an extension
		}
		f := c.newFork("device "+bnd.DeviceUsername, target, bnd.Transport, bnd.Source, from, to, offer)
		f.leg = b
		if c.autoAnswer {
			// Ask the phone to pick up by itself (an agent's own connection).
			f.req.AppendHeader(sip.NewHeader("Call-Info", "<sip:"+e.cfg.Host+">;answer-after=0"))
			f.req.AppendHeader(sip.NewHeader("Alert-Info", "<http://127.0.0.1>;info=alert-autoanswer"))
		}
		out = append(out, f)
	}
	return out, code
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
	// Early media needs the caller's offer: a caller who sent none (it
	// waits for pbxd's offer in the 200) just hears that it rings.
	if res.StatusCode == 183 && len(res.Body()) > 0 && !c.earlyMedia && (c.a.remote != nil || c.a.web != nil) {
		if body, err := c.joinMedia(f.leg, res, false); err == nil {
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

// joinMedia applies the callee's SDP answer in res to its leg b,
// negotiates the caller's answer preferring the callee's codec, bridges
// the two legs, and returns the SDP body for the caller. expect arms the
// media timeouts (the call is answered).
func (c *Call) joinMedia(b *leg, res *sip.Response, expect bool) ([]byte, error) {
	var codec sdp.Codec
	if b.web != nil {
		if !b.webAnswered {
			if err := b.web.SetAnswer(res.Body()); err != nil {
				return nil, err
			}
			b.webAnswered = true
		}
		codec, b.codec, b.te = sdpCodec(b.web.Codec()), sdpCodec(b.web.Codec()), b.web.EventPayloadType()
	} else {
		remote, err := sdp.Parse(res.Body())
		if err != nil {
			return nil, err
		}
		if codec, err = answerCodec(remote); err != nil {
			return nil, err
		}
		theirs := remote.Audio.Direction
		b.applyMedia(remote, codec, remote.Audio.TelephoneEvent, theirs.Reverse(), expect)
	}
	c.mu.Lock()
	a := c.a
	c.mu.Unlock()
	if a == nil {
		return nil, nil // originated: the owner bridges the leg
	}
	switch {
	case a.web == nil && a.remote == nil:
		// The caller offered nothing: pbxd offers in the 200 and applies
		// the caller's answer when its ACK comes.
		c.answerBody = c.delayedOffer(a, codec)
	case a.web == nil:
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
	}
	c.bridge.Add(a.media())
	c.bridge.Add(b.media())
	return c.answerBody, nil
}

// answer completes the call with the fork that answered: ACK, media,
// 200 to the caller (which waits for the caller's ACK).
func (c *Call) answer(f *fork) {
	dtx := f.session()
	ackCallee := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := dtx.Ack(ctx); err != nil {
			c.log.Warn("ACK to the callee failed", "err", err)
		}
	}
	c.mu.Lock()
	b := f.leg
	b.uac, b.key = dtx, f.key()
	c.mu.Unlock()
	body, err := c.joinMedia(b, dtx.InviteResponse, true)
	if err != nil {
		ackCallee()
		c.closeSpareLegs(b)
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
		c.closeSpareLegs(b)
		f.discard() // ACK and BYE
		return
	}
	c.b = b
	c.answered = true
	c.w.State, c.w.AnsweredAt = store.WorkitemAnswered, now
	c.mu.Unlock()
	c.e.addDialog(b)
	b.onTimeout(c.onMediaTimeout)
	// What is not on the caller's critical path: the record of the answer
	// (unless the call has ended meanwhile: its end record has it), the
	// ACK to the callee, and the release of the legs that lost.
	settle := func() {
		c.mu.Lock()
		if !c.ended {
			c.record()
		}
		c.mu.Unlock()
		ackCallee()
		c.closeSpareLegs(b)
	}
	if c.a == nil {
		settle()
		c.log.Info("call answered", "by", f.desc, "codec", b.codec.String())
		return
	}
	c.a.onTimeout(c.onMediaTimeout)
	// The 200 goes out on this goroutine first; the rest runs beside it
	// (a goroutine started here only runs once this one waits, and
	// Respond holds until the caller's ACK).
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		settle()
		c.log.Info("call answered", "by", f.desc, "codec", c.a.codec.String()+"/"+b.codec.String())
	}()
	err = c.a.uas.Respond(200, "OK", body, sip.NewHeader("Content-Type", "application/sdp"))
	<-settled
	if err != nil {
		c.log.Info("caller never confirmed the answer", "err", err)
		c.hangup(endFailed, "system", nil)
	}
}

// closeSpareLegs releases the media of the callee legs that lost the race
// to answer (keep is the winner's).
func (c *Call) closeSpareLegs(keep *leg) {
	c.mu.Lock()
	spare := make([]*leg, 0, len(c.bLegs))
	for _, l := range c.bLegs {
		if l != keep {
			spare = append(spare, l)
		}
	}
	c.bLegs = []*leg{keep}
	c.mu.Unlock()
	for _, l := range spare {
		l.closeMedia()
	}
}

// hangupBefore200 ends a call whose callee answered but whose caller has
// not had a final response yet.
func (c *Call) hangupBefore200(code int, reason string) {
	c.hangup(endFailed, "system", c.a)
	c.respondCaller(code, reason)
}
