package webrtcleg

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
)

// FuzzParseRTP checks parseRTP against pion's parser on whatever the
// network may deliver: it never panics, and what it accepts pion reads the
// same way.
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
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, payload, ok := parseRTP(b)
		if !ok {
			return
		}
		var p rtp.Packet
		if err := p.Unmarshal(append([]byte(nil), b...)); err != nil {
			return // pion is stricter about some paddings and extensions
		}
		if h.pt != p.PayloadType || h.seq != p.SequenceNumber || h.ts != p.Timestamp || h.ssrc != p.SSRC || h.marker != p.Marker {
			t.Fatalf("header %+v, pion %+v", h, p.Header)
		}
		if !bytes.Equal(payload, p.Payload) {
			t.Fatalf("payload %x, pion %x", payload, p.Payload)
		}
	})
}

// FuzzParseRemote feeds SDP bodies, as a browser's INVITE may carry, to
// parseRemote: it must not panic, and a G.711 codec it finds is one.
func FuzzParseRemote(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0 8 126\r\nc=IN IP4 0.0.0.0\r\n" +
		"a=rtpmap:111 opus/48000/2\r\na=rtpmap:126 telephone-event/8000\r\na=fmtp:126 0-15\r\na=sendrecv\r\n"))
	f.Add([]byte("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=inactive\r\nm=audio 0 RTP/AVP 8\r\nm=audio 9 RTP/AVP 8\r\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		ra, ok, err := parseRemote(body)
		if err != nil || !ok {
			return
		}
		if m := ra.g711.MimeType; m != "audio/PCMU" && m != "audio/PCMA" {
			t.Fatalf("G.711 codec %+v", ra.g711)
		}
	})
}
