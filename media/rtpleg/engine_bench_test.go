package rtpleg

import (
	"net/netip"
	"testing"
)

// BenchmarkOpenClose is the media cost of setting up and tearing down one
// call leg: an RTP/RTCP port pair bound and released.
func BenchmarkOpenClose(b *testing.B) {
	e, err := New(Config{Ports: PortRange{Lo: 40000, Hi: 49999}, BindIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.ReportAllocs()
	for b.Loop() {
		l, err := e.Open("bench")
		if err != nil {
			b.Fatal(err)
		}
		l.Start()
		l.Close()
	}
}
