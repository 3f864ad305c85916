package sdp

import "testing"

// phoneOffer returns a typical ten-line desk phone offer.
func phoneOffer() []byte {
	return crlf(
		"v=0",
		"o=- 20518 20518 IN IP4 192.168.1.50",
		"s=SDP data",
		"c=IN IP4 192.168.1.50",
		"t=0 0",
		"m=audio 11780 RTP/AVP 0 8 101",
		"a=rtpmap:0 PCMU/8000",
		"a=rtpmap:8 PCMA/8000",
		"a=rtpmap:101 telephone-event/8000",
		"a=fmtp:101 0-15",
	)
}

func BenchmarkParse(b *testing.B) {
	body := phoneOffer()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNegotiate(b *testing.B) {
	offer, err := Parse(phoneOffer())
	if err != nil {
		b.Fatal(err)
	}
	prefs := DefaultCodecs()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Negotiate(offer, prefs); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildOffer(b *testing.B) {
	l := Local{
		Origin: NewOrigin(), Addr: ap("192.0.2.10:40000"),
		Formats: []Format{PCMU.Format(), PCMA.Format()}, TelephoneEvent: 101,
	}
	b.ReportAllocs()
	for b.Loop() {
		Build(l)
	}
}

func BenchmarkBuildAnswer(b *testing.B) {
	offer, err := Parse(bodyNamed("audio-video"))
	if err != nil {
		b.Fatal(err)
	}
	ans, err := Negotiate(offer, DefaultCodecs())
	if err != nil {
		b.Fatal(err)
	}
	l := ans.Local(NewOrigin(), ap("192.0.2.10:40000"))
	b.ReportAllocs()
	for b.Loop() {
		Build(l)
	}
}
