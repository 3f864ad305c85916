package b2bua

import (
	"context"
	"time"

	"github.com/emiago/sipgo/sip"

	"pbxd/media/sdp"
)

// reinvite relays a re-INVITE (hold, unhold, a new address) from one leg
// to the other. pbxd answers each side with its own SDP: the offer it
// sends the peer mirrors the direction the sender asked for, and the
// answer to the sender keeps the codec already in use on that leg.
func (c *Call) reinvite(from *leg, req *sip.Request, tx sip.ServerTransaction) {
	respond := func(code int, reason string, body []byte) {
		res := sip.NewResponseFromRequest(req, code, reason, body)
		if body != nil {
			res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		}
		res.AppendHeader(&sip.ContactHeader{Address: c.e.contact(req.Transport()).Address})
		_ = tx.Respond(res)
	}
	c.mu.Lock()
	peer := c.a
	if from == c.a {
		peer = c.b
	}
	originated := c.a == nil
	if !c.answered || c.ended || (peer == nil && !originated) {
		c.mu.Unlock()
		respond(491, "Request Pending", nil)
		return
	}
	if c.reinviting {
		c.mu.Unlock()
		respond(491, "Request Pending", nil)
		return
	}
	c.reinviting = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.reinviting = false
		c.mu.Unlock()
	}()

	if len(req.Body()) == 0 {
		// A refresh without an offer: our current description stands.
		if from.web != nil {
			respond(488, "Not Acceptable Here", nil) // a browser always offers
			return
		}
		// It is an offer: the party answers in its ACK.
		c.mu.Lock()
		from.ackAnswer = ackAnswerRefresh
		c.mu.Unlock()
		respond(200, "OK", sdp.Build(from.local))
		return
	}
	offer, err := sdp.Parse(req.Body())
	if err != nil {
		respond(400, "Malformed SDP", nil)
		return
	}
	// answerFrom answers the sender's offer with its own leg: pion for a
	// browser, pbxd's SDP for a phone.
	var answerFrom func() ([]byte, bool)
	if from.web != nil {
		answerFrom = func() ([]byte, bool) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			body, err := from.web.Answer(ctx, req.Body())
			if err != nil {
				c.log.Info("browser's re-offer refused", "err", err)
				return nil, false
			}
			return body, true
		}
	} else {
		ans, err := sdp.NegotiatePrefer(offer, sdp.DefaultCodecs(), from.codec)
		if err != nil {
			respond(488, "Not Acceptable Here", nil)
			return
		}
		answerFrom = func() ([]byte, bool) {
			from.local = ans.Local(from.local.Origin.Next(), from.rtp.LocalAddr())
			from.applyMedia(offer, ans.Codec, ans.TelephoneEvent, ans.Direction, true)
			return sdp.Build(from.local), true
		}
	}

	if originated || peer.web != nil {
		// No plain second dialog to relay to (pbxd placed this call, or
		// the other party is a browser, whose media pbxd drives itself):
		// pbxd answers for itself.
		body, ok := answerFrom()
		if !ok {
			respond(488, "Not Acceptable Here", nil)
			return
		}
		respond(200, "OK", body)
		return
	}

	// Offer the peer the same direction, on its existing codec.
	dir := offer.Audio.Direction
	if offer.Audio.Addr.Addr().IsUnspecified() && dir.Sends() {
		dir = sdp.SendOnly
	} else if offer.Audio.Addr.Addr().IsUnspecified() {
		dir = sdp.Inactive
	}
	next := peer.local
	next.Origin = next.Origin.Next()
	next.Direction = dir
	next.Formats = []sdp.Format{peer.codec.Format()}
	next.TelephoneEvent = 0
	if peer.te != 0 {
		next.TelephoneEvent = peer.te
	}
	next.Rejected = nil

	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	out := sip.NewRequest(sip.INVITE, peer.remoteTarget())
	out.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	out.AppendHeader(sip.NewHeader("Allow", allowedMethods))
	out.SetBody(sdp.Build(next))
	res, err := peer.session().Do(ctx, out)
	if err != nil {
		c.log.Info("re-INVITE to the peer failed", "leg", peer.role, "err", err)
		respond(500, "Server Internal Error", nil)
		return
	}
	if !res.IsSuccess() {
		respond(res.StatusCode, res.Reason, nil)
		return
	}
	ack := sip.NewRequest(sip.ACK, peer.remoteTarget())
	if err := peer.session().WriteRequest(ack); err != nil {
		c.log.Info("ACK of re-INVITE failed", "leg", peer.role, "err", err)
	}
	peer.local = next
	if remote, err := sdp.Parse(res.Body()); err == nil && remote.Audio != nil {
		peer.applyMedia(remote, peer.codec, peer.te, remote.Audio.Direction.Reverse(), true)
	}

	body, ok := answerFrom()
	if !ok {
		respond(488, "Not Acceptable Here", nil)
		return
	}
	c.log.Info("re-INVITE relayed", "from", from.role, "direction", dir.String())
	respond(200, "OK", body)
}
