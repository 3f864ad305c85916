package media

import "encoding/binary"

// RTPHeader is what a leg needs of a received RTP packet's fixed header.
type RTPHeader struct {
	Marker      bool
	PayloadType uint8
	Seq         uint16
	Timestamp   uint32
	SSRC        uint32
}

// ParseRTP validates an RTP packet (RFC 3550 §5.1) and locates its payload,
// past CSRCs and a header extension, padding removed. It never reads
// outside b, and the payload it returns is a slice of b. Every leg that
// reads RTP off the network (plain RTP and WebRTC) parses it here.
func ParseRTP(b []byte) (h RTPHeader, payload []byte, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return h, nil, false
	}
	start := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < start+4 {
			return h, nil, false
		}
		start += 4 + 4*int(binary.BigEndian.Uint16(b[start+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 {
		pad := int(b[end-1])
		if pad == 0 || pad > end-start {
			return h, nil, false
		}
		end -= pad
	}
	if start > end {
		return h, nil, false
	}
	h = RTPHeader{
		Marker:      b[1]&0x80 != 0,
		PayloadType: b[1] & 0x7f,
		Seq:         binary.BigEndian.Uint16(b[2:]),
		Timestamp:   binary.BigEndian.Uint32(b[4:]),
		SSRC:        binary.BigEndian.Uint32(b[8:]),
	}
	return h, b[start:end], true
}
