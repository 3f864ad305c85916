package media

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
)

// FuzzParseRTP checks ParseRTP against pion's parser on whatever the
// network may deliver: it never panics, its payload lies within the
// packet, and what it accepts pion reads the same way.
func FuzzParseRTP(f *testing.F) {
	for _, p := range []rtp.Packet{
		{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, Timestamp: 160, SSRC: 7}, Payload: bytes.Repeat([]byte{0xff}, 160)},
		{Header: rtp.Header{Version: 2, PayloadType: 126, Marker: true, CSRC: []uint32{1, 2}}, Payload: []byte{5, 10, 0, 160}},
		{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 4}, Payload: []byte{9, 9}, PaddingSize: 4},
	} {
		b, err := p.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// One-byte header extension (RFC 8285: id 1, one byte, padded).
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0xbe, 0xde, 0, 1, 0x10, 0x30, 0, 0, 1, 2, 3})
	// One CSRC, an extension and two bytes of padding, marker set.
	f.Add([]byte{0xb1, 0x80, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0, 1, 1, 2, 3, 4, 9, 9, 2})
	f.Add([]byte{0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff})
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, payload, ok := ParseRTP(b)
		if !ok {
			return
		}
		if len(payload) > len(b) {
			t.Fatal("payload longer than packet")
		}
		var p rtp.Packet
		if err := p.Unmarshal(append([]byte(nil), b...)); err != nil {
			return // pion is stricter about some paddings and extensions
		}
		if h.PayloadType != p.PayloadType || h.Seq != p.SequenceNumber || h.Timestamp != p.Timestamp || h.SSRC != p.SSRC || h.Marker != p.Marker {
			t.Fatalf("header %+v, pion %+v", h, p.Header)
		}
		if !bytes.Equal(payload, p.Payload) {
			t.Fatalf("payload %x, pion %x", payload, p.Payload)
		}
	})
}
