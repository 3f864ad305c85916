package sdp

import (
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func pcmu(pt uint8) Format { return Format{PT: pt, Name: "PCMU", ClockRate: 8000, Channels: 1} }
func pcma(pt uint8) Format { return Format{PT: pt, Name: "PCMA", ClockRate: 8000, Channels: 1} }
func te(pt uint8, fmtp string) Format {
	return Format{PT: pt, Name: "telephone-event", ClockRate: 8000, Channels: 1, Fmtp: fmtp}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		media string // kind:port/proto of every m-line
		hold  bool
		audio *Audio
	}{
		{
			name:  "deskphone",
			media: "audio:11780/RTP/AVP",
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("192.168.1.50:11780"), RTCP: ap("192.168.1.50:11781"),
				Formats: []Format{
					pcmu(0), pcma(8),
					{PT: 18, Name: "G729", ClockRate: 8000, Channels: 1, Fmtp: "annexb=no"},
					te(101, "0-15"),
				},
				TelephoneEvent: 101, Ptime: 20,
			},
		},
		{
			name:  "baresip",
			media: "audio:10022/RTP/AVP",
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("10.0.0.23:10022"), RTCP: ap("10.0.0.23:10023"), RTCPMux: true,
				Formats: []Format{
					{PT: 96, Name: "opus", ClockRate: 48000, Channels: 2, Fmtp: "stereo=1;sprop-stereo=1"},
					{PT: 97, Name: "G7221", ClockRate: 16000, Channels: 1, Fmtp: "bitrate=32000"},
					{PT: 9, Name: "G722", ClockRate: 8000, Channels: 1},
					{PT: 10, Name: "L16", ClockRate: 44100, Channels: 2},
					pcmu(0), pcma(8), te(101, "0-15"),
				},
				TelephoneEvent: 101,
			},
		},
		{
			name:  "sipp-uac",
			media: "audio:6000/RTP/AVP",
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("127.0.0.1:6000"), RTCP: ap("127.0.0.1:6001"),
				Formats: []Format{pcmu(0)},
			},
		},
		{
			name:  "chromium",
			media: "audio:9/UDP/TLS/RTP/SAVPF",
			hold:  true, // c=0.0.0.0 until ICE says otherwise
			audio: &Audio{
				Proto: "UDP/TLS/RTP/SAVPF", Addr: ap("0.0.0.0:9"), RTCP: ap("0.0.0.0:9"), RTCPMux: true,
				Formats: []Format{
					{PT: 111, Name: "opus", ClockRate: 48000, Channels: 2, Fmtp: "minptime=10;useinbandfec=1"},
					{PT: 63, Name: "red", ClockRate: 48000, Channels: 2, Fmtp: "111/111"},
					{PT: 9, Name: "G722", ClockRate: 8000, Channels: 1},
					pcmu(0), pcma(8),
					{PT: 13, Name: "CN", ClockRate: 8000, Channels: 1},
					{PT: 110, Name: "telephone-event", ClockRate: 48000, Channels: 1},
					te(126, ""),
				},
				TelephoneEvent: 126,
			},
		},
		{
			name:  "hold-rfc2543",
			media: "audio:49170/RTP/AVP",
			hold:  true,
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("0.0.0.0:49170"), RTCP: ap("0.0.0.0:49171"),
				Formats: []Format{pcmu(0), te(101, "0-15")}, TelephoneEvent: 101,
			},
		},
		{
			name:  "hold-sendonly",
			media: "audio:11780/RTP/AVP",
			hold:  true,
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("192.168.1.50:11780"), RTCP: ap("192.168.1.50:11781"),
				Formats: []Format{pcmu(0), pcma(8), te(101, "0-15")}, TelephoneEvent: 101,
				Ptime: 20, Direction: SendOnly,
			},
		},
		{
			name:  "audio-video",
			media: "audio:49170/RTP/AVP video:51372/RTP/AVP",
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("192.0.2.44:49170"), RTCP: ap("192.0.2.44:49171"),
				Formats: []Format{pcmu(0), pcma(8), te(101, "0-16")}, TelephoneEvent: 101,
			},
		},
		{
			name:  "video-first",
			media: "video:51372/RTP/AVP audio:49170/RTP/AVP audio:49180/RTP/AVP",
			audio: &Audio{
				Index: 1, Proto: "RTP/AVP", Addr: ap("192.0.2.45:49170"), RTCP: ap("192.0.2.45:49171"),
				Formats: []Format{pcma(8), pcmu(0)},
			},
		},
		{
			name:  "ipv6",
			media: "audio:30000/RTP/AVP",
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("[2001:db8::10]:30000"), RTCP: ap("[2001:db8::10]:30001"),
				Formats: []Format{pcma(8), pcmu(0), te(101, "0-16")}, TelephoneEvent: 101, Ptime: 30,
			},
		},
		{
			name:  "rtcp-with-address",
			media: "audio:53020/RTP/AVP",
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("198.51.100.7:53020"), RTCP: ap("126.16.64.4:53021"),
				Formats: []Format{pcmu(0)},
			},
		},
		{
			name:  "rtcp-port-only",
			media: "audio:53020/RTP/AVP",
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("198.51.100.7:53020"), RTCP: ap("198.51.100.7:53999"),
				Formats: []Format{pcmu(0)},
			},
		},
		{
			name:  "session-and-media-level",
			media: "audio:40000/RTP/AVP",
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("198.51.100.2:40000"), RTCP: ap("198.51.100.2:40001"),
				Formats: []Format{pcma(8)},
			},
		},
		{
			name:  "session-level-direction",
			media: "audio:40000/RTP/AVP",
			hold:  true,
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("198.51.100.1:40000"), RTCP: ap("198.51.100.1:40001"),
				Formats: []Format{pcma(8)}, Direction: Inactive,
			},
		},
		{
			name:  "dynamic-without-rtpmap",
			media: "audio:7078/RTP/AVP",
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("203.0.113.9:7078"), RTCP: ap("203.0.113.9:7079"),
				Formats: []Format{pcmu(0), te(97, "")}, TelephoneEvent: 97,
			},
		},
		{
			name:  "telephone-event-48k",
			media: "audio:7078/RTP/AVP",
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("203.0.113.9:7078"), RTCP: ap("203.0.113.9:7079"),
				Formats: []Format{
					pcmu(0),
					{PT: 110, Name: "telephone-event", ClockRate: 48000, Channels: 1, Fmtp: "0-15"},
				},
			},
		},
		{
			name:  "comfort-noise",
			media: "audio:8002/RTP/AVP",
			audio: &Audio{
				Proto: "RTP/AVP", Addr: ap("203.0.113.31:8002"), RTCP: ap("203.0.113.31:8003"),
				Formats: []Format{
					pcma(8), {PT: 13, Name: "CN", ClockRate: 8000, Channels: 1}, te(101, "0-16"),
				},
				TelephoneEvent: 101,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(bodyNamed(tt.name))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := mediaSummary(s.Media); got != tt.media {
				t.Errorf("media = %q, want %q", got, tt.media)
			}
			if !reflect.DeepEqual(s.Audio, tt.audio) {
				t.Errorf("audio =\n%+v\nwant\n%+v", s.Audio, tt.audio)
			}
			if got := s.IsHold(); got != tt.hold {
				t.Errorf("IsHold = %v, want %v", got, tt.hold)
			}
		})
	}
}

func mediaSummary(ms []Media) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%s:%d/%s", m.Kind, m.Port, m.Proto))
	}
	return strings.Join(parts, " ")
}

func TestParseSession(t *testing.T) {
	s, err := Parse(bodyNamed("session-and-media-level"))
	if err != nil {
		t.Fatal(err)
	}
	want := Origin{Username: "-", SessionID: 5, Version: 5}
	if s.Origin != want {
		t.Errorf("origin = %+v, want %+v", s.Origin, want)
	}
	if s.Conn != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("session conn = %v", s.Conn)
	}
	if s.Direction != RecvOnly {
		t.Errorf("session direction = %v, want recvonly", s.Direction)
	}

	s, err = Parse(bodyNamed("audio-video"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Media[1].Formats; !reflect.DeepEqual(got, []string{"96", "97"}) {
		t.Errorf("video formats = %q", got)
	}
}

// TestParseLenient covers bodies that are odd but usable.
func TestParseLenient(t *testing.T) {
	tests := []struct {
		name string
		body string
		want *Audio // nil: no audio stream
	}{
		{
			name: "LF line ends, no final line break",
			body: "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 4000 RTP/AVP 0\na=sendonly",
			want: &Audio{Proto: "RTP/AVP", Addr: ap("192.0.2.1:4000"), RTCP: ap("192.0.2.1:4001"),
				Formats: []Format{pcmu(0)}, Direction: SendOnly},
		},
		{
			name: "audio disabled needs no c=",
			body: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n",
		},
		{
			name: "video without c= is not our problem",
			body: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\nm=audio 4000 RTP/AVP 8\r\nc=IN IP4 192.0.2.2\r\n",
			want: &Audio{Index: 1, Proto: "RTP/AVP", Addr: ap("192.0.2.2:4000"), RTCP: ap("192.0.2.2:4001"),
				Formats: []Format{pcma(8)}},
		},
		{
			name: "RTP/AVP audio preferred over an earlier SRTP one",
			body: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\nm=audio 4002 RTP/AVP 0\r\n",
			want: &Audio{Index: 1, Proto: "RTP/AVP", Addr: ap("192.0.2.1:4002"), RTCP: ap("192.0.2.1:4003"),
				Formats: []Format{pcmu(0)}},
		},
		{
			name: "port 65535 has no implied RTCP port",
			body: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 65535 RTP/AVP 0\r\n",
			want: &Audio{Proto: "RTP/AVP", Addr: ap("192.0.2.1:65535"), Formats: []Format{pcmu(0)}},
		},
		{
			name: "rtpmap overrides the static table, case kept, junk formats skipped",
			body: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
				"m=audio 4000 RTP/AVP 0 0 x 200 96 98\r\na=rtpmap:0 pcma/8000\r\na=rtpmap:96 PCMU/8000\r\na=rtpmap:96 GSM/8000\r\na=rtpmap:98 broken\r\na=ptime:abc\r\n",
			want: &Audio{Proto: "RTP/AVP", Addr: ap("192.0.2.1:4000"), RTCP: ap("192.0.2.1:4001"),
				Formats: []Format{{PT: 0, Name: "pcma", ClockRate: 8000, Channels: 1}, pcmu(96)}},
		},
		{
			name: "multicast TTL ignored",
			body: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 233.252.0.1/127\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n",
			want: &Audio{Proto: "RTP/AVP", Addr: ap("233.252.0.1:4000"), RTCP: ap("233.252.0.1:4001"),
				Formats: []Format{pcmu(0)}},
		},
		{
			name: "first direction attribute wins",
			body: "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=recvonly\r\na=sendonly\r\n",
			want: &Audio{Proto: "RTP/AVP", Addr: ap("192.0.2.1:4000"), RTCP: ap("192.0.2.1:4001"),
				Formats: []Format{pcmu(0)}, Direction: RecvOnly},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !reflect.DeepEqual(s.Audio, tt.want) {
				t.Errorf("audio =\n%+v\nwant\n%+v", s.Audio, tt.want)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n"
	tooMany := head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\n" + strings.Repeat("m=video 0 RTP/AVP 96\r\n", MaxMedia) + "m=audio 4000 RTP/AVP 0\r\n"
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"not SDP", "INVITE sip:bob@example.com SIP/2.0\r\n"},
		{"blank", "\r\n\r\n"},
		{"only v=", "v=0\r\n"},
		{"ends after o=", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"},
		{"ends after s=", head},
		{"no t=", head + "c=IN IP4 192.0.2.1\r\nm=audio 4000 RTP/AVP 0\r\n"},
		{"version 1", "v=1\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n"},
		{"missing c=", head + "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"},
		{"c= without address", head + "c=IN IP4\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"},
		{"missing c= on second audio", head + "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\nm=audio 4002 RTP/AVP 0\r\n"},
		{"port above 65535", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 65536 RTP/AVP 0\r\n"},
		{"negative port", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio -1 RTP/AVP 0\r\n"},
		{"host name", head + "c=IN IP4 media.example.com\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"},
		{"IPv6 address as IP4", head + "c=IN IP4 2001:db8::1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"},
		{"IPv4 address as IP6", head + "c=IN IP6 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"},
		{"zone", head + "c=IN IP6 fe80::1%eth0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"},
		{"rtcp port above 65535", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:70000\r\n"},
		{"rtcp port 0", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:0\r\n"},
		{"rtcp half an address", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4\r\n"},
		{"rtcp bad address", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4 nowhere\r\n"},
		{"too many m-lines", tooMany},
		{"too large", head + "c=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n" + strings.Repeat("a=x-pad:0123456789abcdef\r\n", 700)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.body))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %+v, %v; want ErrMalformed", s, err)
			}
		})
	}
}

// TestParseLimits checks that the limits themselves are accepted.
func TestParseLimits(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
	body := head + strings.Repeat("m=video 0 RTP/AVP 96\r\n", MaxMedia-1) + "m=audio 4000 RTP/AVP 0\r\n"
	if _, err := Parse([]byte(body)); err != nil {
		t.Errorf("%d m-lines: %v", MaxMedia, err)
	}
	body = head + "m=audio 4000 RTP/AVP 0\r\n"
	pad := "a=x-pad:" + strings.Repeat("p", MaxBodySize-len(body)-len("a=x-pad:\r\n")) + "\r\n"
	if _, err := Parse([]byte(body + pad)); err != nil {
		t.Errorf("%d bytes: %v", len(body+pad), err)
	}
}
