package sdp

import (
	"fmt"
	"net/netip"
)

// Answer is the outcome of negotiating an offer: what pbxd's answer carries.
type Answer struct {
	// Codec is the chosen codec.
	Codec Codec
	// Format is the chosen codec under the offerer's payload type, which
	// the answer must reuse (RFC 3264 §6.1).
	Format Format
	// TelephoneEvent is the offerer's telephone-event/8000 payload type, 0
	// when the offer has none; the answer then has none either.
	TelephoneEvent uint8
	// Direction is the answer's direction: the offered one reversed. An
	// offer whose address is 0.0.0.0 cannot receive, so its sendrecv counts
	// as sendonly and its recvonly as inactive.
	Direction Direction
	// AudioIndex is the position of the audio m-line among the offer's
	// m-lines, and so among the answer's.
	AudioIndex int
	// Rejected are the offer's other m-lines, in order, which the answer
	// declines with port 0.
	Rejected []Media
}

// Negotiate answers an offer. It takes the offer's audio stream and picks the
// first of its formats, in the offerer's order, whose codec is in prefs; that
// keeps the offerer's preference and avoids transcoding. prefs only filters:
// its order does not matter. It fails with ErrNoAudio when the offer has no
// enabled RTP/AVP audio stream and with ErrNoCommonCodec when no offered
// format is in prefs.
func Negotiate(offer *Session, prefs []Codec) (Answer, error) {
	return NegotiatePrefer(offer, prefs, 0)
}

// NegotiatePrefer is Negotiate, except that prefer wins when the offer lists
// it and prefs allows it, wherever it stands in the offer. The B2BUA uses it
// to give the second leg of a call the codec of the first, so media is
// relayed without transcoding. A zero prefer is Negotiate.
func NegotiatePrefer(offer *Session, prefs []Codec, prefer Codec) (Answer, error) {
	if offer == nil || offer.Audio == nil {
		return Answer{}, ErrNoAudio
	}
	a := offer.Audio
	if a.Proto != protoRTPAVP {
		return Answer{}, fmt.Errorf("%w: audio uses %s, pbxd speaks %s only", ErrNoAudio, a.Proto, protoRTPAVP)
	}
	allowed := func(c Codec) bool {
		for _, p := range prefs {
			if c != 0 && p == c {
				return true
			}
		}
		return false
	}

	chosen := -1
	for i, f := range a.Formats {
		c := f.Codec()
		if !allowed(c) {
			continue
		}
		if chosen < 0 {
			chosen = i
		}
		if prefer == 0 || c == prefer {
			chosen = i
			break
		}
	}
	if chosen < 0 {
		return Answer{}, fmt.Errorf("%w: offered %s", ErrNoCommonCodec, formatNames(a.Formats))
	}

	f := a.Formats[chosen]
	c := f.Codec()
	canon := c.Format()
	canon.PT = f.PT

	offered := a.Direction
	if a.Addr.Addr().IsUnspecified() {
		offered = DirectionFrom(offered.Sends(), false)
	}

	ans := Answer{
		Codec:          c,
		Format:         canon,
		TelephoneEvent: a.TelephoneEvent,
		Direction:      offered.Reverse(),
		AudioIndex:     a.Index,
	}
	if n := len(offer.Media) - 1; n > 0 {
		ans.Rejected = make([]Media, 0, n)
	}
	for i, m := range offer.Media {
		if i == a.Index {
			continue
		}
		r := Media{Kind: m.Kind, Proto: m.Proto}
		if len(m.Formats) > 0 {
			r.Formats = m.Formats[:1:1]
		}
		ans.Rejected = append(ans.Rejected, r)
	}
	return ans, nil
}

// Local returns the description of pbxd's answer, ready for Build: the chosen
// format, the telephone-event type, the answer direction and the declined
// m-lines, with origin o and RTP address addr.
func (a *Answer) Local(o Origin, addr netip.AddrPort) Local {
	l := Local{
		Origin:         o,
		Addr:           addr,
		TelephoneEvent: a.TelephoneEvent,
		Direction:      a.Direction,
		Rejected:       a.Rejected,
		AudioIndex:     a.AudioIndex,
	}
	if a.Codec != 0 {
		l.Formats = []Format{a.Format}
	}
	return l
}

// formatNames lists formats for an error message, e.g. "[18 G729/8000]",
// the first eight at most.
func formatNames(fs []Format) string {
	b := []byte{'['}
	for i, f := range fs {
		if i > 0 {
			b = append(b, ' ')
		}
		if i == 8 {
			b = fmt.Appendf(b, "and %d more", len(fs)-i)
			break
		}
		b = fmt.Appendf(b, "%d %s/%d", f.PT, f.Name, f.ClockRate)
	}
	return string(append(b, ']'))
}
