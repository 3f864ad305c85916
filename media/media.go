package media

import (
	"errors"
	"time"
)

// Codec is an audio payload format a leg speaks with its party.
type Codec struct {
	// Name is the RTP encoding name as in SDP rtpmap ("PCMU", "PCMA").
	Name string
	// PayloadType is the RTP payload type number used on the wire.
	PayloadType uint8
	// ClockRate is the RTP clock in Hz.
	ClockRate uint32
}

// The G.711 codecs pbxd bridges. Both are 8 kHz, one byte per sample, so
// converting one into the other never changes a packet's size or timing.
var (
	PCMU = Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000}
	PCMA = Codec{Name: "PCMA", PayloadType: 8, ClockRate: 8000}
)

// IsZero reports whether c is unset.
func (c Codec) IsZero() bool { return c.Name == "" }

// CodecByPayloadType returns the static G.711 codec for pt.
func CodecByPayloadType(pt uint8) (Codec, bool) {
	switch pt {
	case PCMU.PayloadType:
		return PCMU, true
	case PCMA.PayloadType:
		return PCMA, true
	}
	return Codec{}, false
}

// Kind says what a frame carries.
type Kind uint8

const (
	// KindAudio is a G.711 audio payload in Frame.Codec.
	KindAudio Kind = iota
	// KindEvent is an RFC 4733 telephone-event payload (DTMF).
	KindEvent
)

// FrameSamples is the packet time pbxd sends and mixes: 20 ms at 8 kHz.
const FrameSamples = 160

// FrameDuration is one packet time.
const FrameDuration = 20 * time.Millisecond

// Frame is one RTP packet's media as it crosses the box, independent of
// the transport it came on (plain RTP, SRTP from a browser, a mixer).
type Frame struct {
	Kind Kind
	// Codec is the payload's format when Kind is KindAudio.
	Codec Codec
	// Source identifies the stream the frame belongs to (the sender's SSRC,
	// or an id of a mixer). A new Source makes the receiving leg start a new
	// run of sequence numbers and timestamps in its outgoing stream.
	Source    uint32
	Seq       uint16
	Timestamp uint32
	Marker    bool
	Payload   []byte
}

// Receiver consumes the frames a leg receives from its party. Receive runs
// on the leg's receive goroutine and must neither block nor keep f or its
// payload after returning.
type Receiver interface {
	Receive(from Leg, f *Frame)
}

// Leg is one party's media on the box: a SIP phone's RTP endpoint, a
// carrier's, or a browser's WebRTC connection.
type Leg interface {
	// ID names the leg in logs and statistics.
	ID() string
	// Codec is the audio codec negotiated with the party.
	Codec() Codec
	// EventPayloadType is the negotiated telephone-event payload type, 0
	// when the party does not take RFC 4733 events.
	EventPayloadType() uint8
	// SetReceiver routes the frames the party sends to r; nil drops them.
	SetReceiver(r Receiver)
	// Send writes a frame towards the party. The leg rewrites SSRC,
	// sequence number and timestamp into its own continuous stream. Audio
	// must already be in the leg's codec. Send is safe for concurrent use.
	Send(f *Frame) error
	// Stats reports what the leg has sent and received so far.
	Stats() Stats
	// Close releases the leg's sockets; it is idempotent.
	Close() error
}

// Stats are one leg's RTP counters, kept with the call's record.
type Stats struct {
	PacketsReceived uint64 `json:"packetsReceived"`
	PacketsSent     uint64 `json:"packetsSent"`
	BytesReceived   uint64 `json:"bytesReceived"`
	BytesSent       uint64 `json:"bytesSent"`
	// PacketsLost is the RFC 3550 cumulative loss of the received stream.
	PacketsLost int64 `json:"packetsLost"`
	// JitterMs is the RFC 3550 interarrival jitter of the received stream.
	JitterMs float64 `json:"jitterMs"`
	// RemoteFractionLost and RemoteJitterMs are what the party reported
	// about our stream in its last RTCP receiver report.
	RemoteFractionLost float64 `json:"remoteFractionLost"`
	RemoteJitterMs     float64 `json:"remoteJitterMs"`
	// EventsReceived counts RFC 4733 packets.
	EventsReceived uint64 `json:"eventsReceived,omitempty"`
	// Codec is the negotiated audio codec.
	Codec string `json:"codec,omitempty"`
}

// Errors a leg returns.
var (
	ErrClosed   = errors.New("media: leg closed")
	ErrNoRemote = errors.New("media: remote address unknown")
	ErrCodec    = errors.New("media: payload not in the leg's codec")
)
