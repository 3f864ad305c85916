package b2bua

import (
	"errors"

	"pbxd/media/sdp"
)

// A party may send an INVITE without SDP (a "delayed offer", common with
// carriers and some desk phones). pbxd then puts its own offer in the 2xx
// and the party answers in the ACK (RFC 3261 13.2.1).

var errNoAnswer = errors.New("b2bua: the ACK carries no SDP answer")

// ackAnswer says whether a leg waits for an SDP answer in an ACK.
type ackAnswer uint8

const (
	noAckAnswer ackAnswer = iota
	// The call's first answer: without it the party has no media.
	ackAnswerRequired
	// The answer to pbxd's current description, re-offered on a
	// re-INVITE without SDP: without it the media stays as it was.
	ackAnswerRefresh
)

// delayedOffer is pbxd's offer in the 200 to a caller who offered
// nothing: the callee's codec first, so the caller can take it and
// nothing is transcoded, then the other codecs pbxd speaks.
func (c *Call) delayedOffer(a *leg, prefer sdp.Codec) []byte {
	a.local = sdp.Local{Origin: a.local.Origin, Addr: a.rtp.LocalAddr(), Formats: offerFormats(prefer), TelephoneEvent: teOffered, Direction: sdp.SendRecv}
	c.mu.Lock()
	a.ackAnswer = ackAnswerRequired
	c.mu.Unlock()
	return sdp.Build(a.local)
}

// answerCodec is the codec an SDP answer chose: the first format pbxd
// knows.
func answerCodec(remote *sdp.Session) (sdp.Codec, error) {
	if remote.Audio == nil || remote.Audio.Addr.Port() == 0 {
		return 0, errors.New("b2bua: audio declined")
	}
	for _, f := range remote.Audio.Formats {
		if cd := f.Codec(); cd != 0 {
			return cd, nil
		}
	}
	return 0, sdp.ErrNoCommonCodec
}

// takeAckAnswer applies the SDP answer in an ACK when pbxd's 2xx carried
// the offer. An ACK cannot be refused, so a missing or unusable first
// answer ends the call with a BYE (RFC 3261 13.3.1.4); after a refresh
// the media stays as it was.
func (c *Call) takeAckAnswer(l *leg, body []byte) {
	c.mu.Lock()
	wait := l.ackAnswer
	l.ackAnswer = noAckAnswer
	ended := c.ended
	c.mu.Unlock()
	if wait == noAckAnswer || ended {
		return
	}
	remote, err := parseAnswer(body)
	var codec sdp.Codec
	if err == nil {
		codec, err = answerCodec(remote)
	}
	if err != nil && wait == ackAnswerRefresh {
		c.log.Info("no usable SDP answer in the ACK of a refresh; media unchanged", "leg", l.role, "err", err)
		return
	}
	if err != nil {
		c.log.Info("no usable SDP answer in the ACK", "leg", l.role, "err", err)
		c.hangup(endFailed, "system", nil)
		return
	}
	theirs, mine := remote.Audio.Direction, l.local.Direction
	ours := sdp.DirectionFrom(theirs.Receives() && mine.Sends(), theirs.Sends() && mine.Receives())
	l.applyMedia(remote, codec, remote.Audio.TelephoneEvent, ours, true)
	c.log.Info("answer taken from the ACK", "leg", l.role, "codec", codec.String())
}

func parseAnswer(body []byte) (*sdp.Session, error) {
	if len(body) == 0 {
		return nil, errNoAnswer
	}
	return sdp.Parse(body)
}
