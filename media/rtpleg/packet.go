package rtpleg

import "encoding/binary"

// header is what the bridge needs of a received RTP packet.
type header struct {
	marker bool
	pt     uint8
	seq    uint16
	ts     uint32
	ssrc   uint32
}

// parseRTP validates an RTP packet (RFC 3550 §5.1) and locates its payload.
// It skips CSRCs and a header extension and strips padding. It never
// reads outside b.
func parseRTP(b []byte) (h header, payload []byte, ok bool) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return h, nil, false
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < off+4 {
			return h, nil, false
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 {
		pad := int(b[end-1])
		if pad == 0 || pad > end-off {
			return h, nil, false
		}
		end -= pad
	}
	if off > end {
		return h, nil, false
	}
	h.marker = b[1]&0x80 != 0
	h.pt = b[1] & 0x7f
	h.seq = binary.BigEndian.Uint16(b[2:])
	h.ts = binary.BigEndian.Uint32(b[4:])
	h.ssrc = binary.BigEndian.Uint32(b[8:])
	return h, b[off:end], true
}

// isRTCP tells RTCP from RTP on a multiplexed port (RFC 5761 §4): RTCP
// packet types 192–223 land in the RTP marker+payload-type octet there.
func isRTCP(b []byte) bool {
	return len(b) >= 2 && b[1] >= 192 && b[1] <= 223
}

// putHeader writes a 12-byte RTP header with no CSRC or extension.
func putHeader(b []byte, marker bool, pt uint8, seq uint16, ts, ssrc uint32) {
	b[0] = 0x80
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
}
