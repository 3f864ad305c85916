// Package sdp reads the SDP bodies pbxd receives and writes the ones it sends.
//
// pbxd is a back-to-back user agent that anchors all media, so it never passes
// a peer's SDP through: it parses the caller's offer ([Parse]), picks one audio
// codec from it ([Negotiate], [NegotiatePrefer]), answers with its own RTP
// address ([Answer.Local], [Build]) and makes a fresh offer to the callee.
// Audio is G.711 (PCMU, PCMA) at 8 kHz with RFC 4733 telephone-events. Every
// other stream in an offer is declined with port 0, as RFC 3264 asks.
//
// Parsing and marshalling are done by github.com/pion/sdp/v3; this package
// adds the telephony meaning on top. Errors wrap one of the sentinels below
// so the SIP layer can choose a status code.
package sdp

import (
	"errors"
	"math/rand/v2"
	"strings"
)

// Sentinel errors. The SIP layer maps ErrMalformed to 400 and ErrNoAudio and
// ErrNoCommonCodec to 488.
var (
	// ErrMalformed reports a body that is not SDP pbxd can act on: pion
	// cannot parse it, it is too large, an audio stream lacks a usable
	// connection address, or a port is out of range.
	ErrMalformed = errors.New("sdp: malformed")
	// ErrNoAudio reports an offer without an enabled RTP/AVP audio stream.
	ErrNoAudio = errors.New("sdp: no usable audio stream")
	// ErrNoCommonCodec reports an audio stream none of whose formats pbxd
	// is allowed to use.
	ErrNoCommonCodec = errors.New("sdp: no common codec")
)

// Limits on what Parse accepts. Phone SDP is a few hundred bytes with one or
// two m-lines; anything far beyond that is refused before it costs memory.
const (
	// MaxBodySize is the largest SDP body Parse accepts, in bytes.
	MaxBodySize = 16 << 10
	// MaxMedia is the largest number of m-lines Parse accepts.
	MaxMedia = 16
)

// Ptime is the packetisation interval pbxd sends and announces, in ms.
const Ptime = 20

// TelephoneEvents is the fmtp pbxd announces for telephone-event: the DTMF
// digits 0-9, *, #, A-D and flash (RFC 4733 events 0 to 16).
const TelephoneEvents = "0-16"

// protoRTPAVP is the only transport pbxd answers: plain RTP, no SRTP or AVPF.
const protoRTPAVP = "RTP/AVP"

// Direction is the media direction attribute of a stream, seen from the side
// that wrote the SDP. The zero value is SendRecv, the SDP default.
type Direction uint8

// The four directions of RFC 3264 §5.1.
const (
	SendRecv Direction = iota
	SendOnly
	RecvOnly
	Inactive
)

// String returns the attribute name: "sendrecv", "sendonly", "recvonly" or
// "inactive".
func (d Direction) String() string {
	switch d {
	case SendOnly:
		return "sendonly"
	case RecvOnly:
		return "recvonly"
	case Inactive:
		return "inactive"
	default:
		return "sendrecv"
	}
}

// Reverse returns the direction an answer gives to an offered direction:
// sendonly becomes recvonly and the other way round; sendrecv and inactive
// stay.
func (d Direction) Reverse() Direction {
	switch d {
	case SendOnly:
		return RecvOnly
	case RecvOnly:
		return SendOnly
	default:
		return d
	}
}

// Sends reports whether the writer of the SDP wants to send media.
func (d Direction) Sends() bool { return d == SendRecv || d == SendOnly }

// Receives reports whether the writer of the SDP wants to receive media.
func (d Direction) Receives() bool { return d == SendRecv || d == RecvOnly }

// DirectionFrom builds a direction from the two capabilities.
func DirectionFrom(send, recv bool) Direction {
	switch {
	case send && recv:
		return SendRecv
	case send:
		return SendOnly
	case recv:
		return RecvOnly
	default:
		return Inactive
	}
}

// parseDirection recognises a direction attribute key.
func parseDirection(key string) (Direction, bool) {
	switch key {
	case "sendrecv":
		return SendRecv, true
	case "sendonly":
		return SendOnly, true
	case "recvonly":
		return RecvOnly, true
	case "inactive":
		return Inactive, true
	}
	return SendRecv, false
}

// Origin is the o= line: who made the session and which revision of its
// description this is. One Origin belongs to one side of one call leg; every
// changed re-offer or re-answer on that leg uses [Origin.Next].
type Origin struct {
	// Username is the o= user name; Build writes "pbxd" when it is empty.
	Username string
	// SessionID stays the same for the whole call leg.
	SessionID uint64
	// Version increases with every change of the description.
	Version uint64
}

// NewOrigin returns an Origin for a new call leg with user name "pbxd", a
// random 63-bit session id (some stacks read it as a signed number) and
// version 1.
func NewOrigin() Origin {
	return Origin{Username: "pbxd", SessionID: uint64(rand.Int64()), Version: 1}
}

// Next returns the origin of the next revision: same session, version + 1.
func (o Origin) Next() Origin {
	o.Version++
	return o
}

// Codec is an audio codec pbxd can send and receive without help.
type Codec uint8

// The codecs pbxd speaks. The zero Codec means "none" or "not one of ours".
const (
	// PCMU is G.711 µ-law, static payload type 0.
	PCMU Codec = iota + 1
	// PCMA is G.711 A-law, static payload type 8.
	PCMA
)

// DefaultCodecs returns pbxd's codecs in its own order of preference, as a
// new slice the caller may change.
func DefaultCodecs() []Codec { return []Codec{PCMU, PCMA} }

// String returns the RTP encoding name, "PCMU" or "PCMA", or "" for the zero
// Codec.
func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return ""
}

// Format returns the codec under its static payload type, as pbxd offers it.
// The zero Codec gives the zero Format.
func (c Codec) Format() Format {
	switch c {
	case PCMU:
		return Format{PT: 0, Name: "PCMU", ClockRate: 8000, Channels: 1}
	case PCMA:
		return Format{PT: 8, Name: "PCMA", ClockRate: 8000, Channels: 1}
	}
	return Format{}
}

// Format is one RTP payload format of an m-line, with its rtpmap and fmtp
// resolved.
type Format struct {
	// PT is the RTP payload type, 0 to 127.
	PT uint8
	// Name is the encoding name as the SDP wrote it, e.g. "PCMU" or "opus".
	Name string
	// ClockRate is the RTP clock rate in Hz.
	ClockRate uint32
	// Channels is the number of audio channels, 1 unless rtpmap says more.
	Channels uint8
	// Fmtp holds the format parameters of a=fmtp, "" if there are none.
	Fmtp string
}

// Codec returns which of pbxd's codecs the format is, or 0 if none. Encoding
// names compare without regard to case (RFC 4855).
func (f Format) Codec() Codec {
	if f.ClockRate != 8000 || f.Channels != 1 {
		return 0
	}
	switch {
	case strings.EqualFold(f.Name, "PCMU"):
		return PCMU
	case strings.EqualFold(f.Name, "PCMA"):
		return PCMA
	}
	return 0
}

// IsTelephoneEvent reports whether the format is RFC 4733 telephone-event at
// 8000 Hz, the only rate that goes with G.711.
func (f Format) IsTelephoneEvent() bool {
	return f.ClockRate == 8000 && strings.EqualFold(f.Name, "telephone-event")
}

// staticFormat returns the RFC 3551 §6 audio format of a static payload type,
// for m-lines that list it without an rtpmap.
func staticFormat(pt uint8) (Format, bool) {
	var name string
	rate := uint32(8000)
	channels := uint8(1)
	switch pt {
	case 0:
		name = "PCMU"
	case 3:
		name = "GSM"
	case 4:
		name = "G723"
	case 5:
		name = "DVI4"
	case 6:
		name, rate = "DVI4", 16000
	case 7:
		name = "LPC"
	case 8:
		name = "PCMA"
	case 9:
		name = "G722"
	case 10:
		name, rate, channels = "L16", 44100, 2
	case 11:
		name, rate = "L16", 44100
	case 12:
		name = "QCELP"
	case 13:
		name = "CN"
	case 14:
		name, rate = "MPA", 90000
	case 15:
		name = "G728"
	case 16:
		name, rate = "DVI4", 11025
	case 17:
		name, rate = "DVI4", 22050
	case 18:
		name = "G729"
	default:
		return Format{}, false
	}
	return Format{PT: pt, Name: name, ClockRate: rate, Channels: channels}, true
}
