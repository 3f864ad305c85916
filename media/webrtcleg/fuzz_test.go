package webrtcleg

import "testing"

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
