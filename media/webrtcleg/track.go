package webrtcleg

import (
	"strings"
	"sync"

	"github.com/pion/webrtc/v4"

	"pbxd/media"
)

// negotiated is what the SDP exchange settled for a leg, published once
// pion binds the leg's track and read without locks on the packet paths.
type negotiated struct {
	// codec is what the leg sends; pcmu/pcma the payload types the
	// browser may send either codec with (0 when not negotiated).
	codec      media.Codec
	pcmu, pcma uint8
	hasPCMU    bool
	hasPCMA    bool
	eventPT    uint8
}

// audioCodec maps a received payload type to its codec.
func (n *negotiated) audioCodec(pt uint8) (media.Codec, bool) {
	switch {
	case n.hasPCMU && pt == n.pcmu:
		return media.Codec{Name: media.PCMU.Name, PayloadType: pt, ClockRate: 8000}, true
	case n.hasPCMA && pt == n.pcma:
		return media.Codec{Name: media.PCMA.Name, PayloadType: pt, ClockRate: 8000}, true
	}
	return media.Codec{}, false
}

// negotiate picks the send codec from what pion negotiated: the first
// G.711 codec in the list (the browser's order when it offered, and the
// only one when we answered), plus the telephone-event/8000 payload type.
func negotiate(codecs []webrtc.RTPCodecParameters) (*negotiated, webrtc.RTPCodecParameters, bool) {
	n := &negotiated{}
	var chosen webrtc.RTPCodecParameters
	for _, c := range codecs {
		pt := uint8(c.PayloadType)
		switch {
		case strings.EqualFold(c.MimeType, webrtc.MimeTypePCMU) && !n.hasPCMU:
			n.pcmu, n.hasPCMU = pt, true
		case strings.EqualFold(c.MimeType, webrtc.MimeTypePCMA) && !n.hasPCMA:
			n.pcma, n.hasPCMA = pt, true
		case strings.EqualFold(c.MimeType, mimeTelephoneEvent) && c.ClockRate == 8000 && n.eventPT == 0:
			n.eventPT = pt
			continue
		default:
			continue
		}
		if n.codec.IsZero() {
			name := media.PCMU.Name
			if strings.EqualFold(c.MimeType, webrtc.MimeTypePCMA) {
				name = media.PCMA.Name
			}
			n.codec = media.Codec{Name: name, PayloadType: pt, ClockRate: 8000}
			chosen = c
		}
	}
	return n, chosen, !n.codec.IsZero()
}

// track is the leg's outgoing audio as a pion TrackLocal. pion's
// TrackLocalStaticRTP would do for audio, but it stamps every packet with
// the one payload type it was bound to, so RFC 4733 events would leave
// labelled PCMU. This track writes whole headers of its own to the stream
// pion binds it to: audio with the negotiated G.711 type, events with the
// negotiated telephone-event type, one SSRC, the leg's sequence numbers.
type track struct {
	id, stream string
	onBind     func(*negotiated)

	mu     sync.RWMutex
	writer webrtc.TrackLocalWriter
	ssrc   uint32
	bindID string
}

var _ webrtc.TrackLocal = (*track)(nil)

// Bind implements webrtc.TrackLocal; pion calls it once negotiation is
// complete, before any media flows.
func (t *track) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	n, chosen, ok := negotiate(ctx.CodecParameters())
	if !ok {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	t.mu.Lock()
	t.writer, t.ssrc, t.bindID = ctx.WriteStream(), uint32(ctx.SSRC()), ctx.ID()
	t.mu.Unlock()
	if t.onBind != nil {
		t.onBind(n)
	}
	return chosen, nil
}

// Unbind implements webrtc.TrackLocal.
func (t *track) Unbind(ctx webrtc.TrackLocalContext) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bindID != ctx.ID() {
		return webrtc.ErrUnbindFailed
	}
	t.writer, t.bindID = nil, ""
	return nil
}

// bound returns the writer and SSRC, nil before Bind.
func (t *track) bound() (webrtc.TrackLocalWriter, uint32) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.writer, t.ssrc
}

func (t *track) ID() string                { return t.id }
func (t *track) RID() string               { return "" }
func (t *track) StreamID() string          { return t.stream }
func (t *track) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeAudio }
