package sdp

import (
	"errors"
	"reflect"
	"testing"
)

func TestNegotiate(t *testing.T) {
	video := Media{Kind: "video", Proto: "RTP/AVP", Formats: []string{"96"}}
	tests := []struct {
		name   string
		body   string
		prefs  []Codec
		prefer Codec
		want   Answer
		err    error
	}{
		{
			name: "deskphone", body: "deskphone",
			want: Answer{Codec: PCMU, Format: pcmu(0), TelephoneEvent: 101},
		},
		{
			name: "offerer's order wins over ours", body: "deskphone-g729-first",
			prefs: []Codec{PCMU, PCMA},
			want:  Answer{Codec: PCMA, Format: pcma(8), TelephoneEvent: 101},
		},
		{
			name: "prefs filter", body: "deskphone", prefs: []Codec{PCMA},
			want: Answer{Codec: PCMA, Format: pcma(8), TelephoneEvent: 101},
		},
		{
			name: "prefer the other leg's codec", body: "deskphone", prefer: PCMA,
			want: Answer{Codec: PCMA, Format: pcma(8), TelephoneEvent: 101},
		},
		{
			name: "preferred codec not offered", body: "sipp-uac", prefer: PCMA,
			want: Answer{Codec: PCMU, Format: pcmu(0)},
		},
		{
			name: "preferred codec not allowed", body: "deskphone", prefs: []Codec{PCMU}, prefer: PCMA,
			want: Answer{Codec: PCMU, Format: pcmu(0), TelephoneEvent: 101},
		},
		{
			name: "baresip", body: "baresip",
			want: Answer{Codec: PCMU, Format: pcmu(0), TelephoneEvent: 101},
		},
		{
			name: "sipp", body: "sipp-uac",
			want: Answer{Codec: PCMU, Format: pcmu(0)},
		},
		{
			name: "sendonly hold is answered recvonly", body: "hold-sendonly",
			want: Answer{Codec: PCMU, Format: pcmu(0), TelephoneEvent: 101, Direction: RecvOnly},
		},
		{
			name: "0.0.0.0 hold is answered recvonly", body: "hold-rfc2543",
			want: Answer{Codec: PCMU, Format: pcmu(0), TelephoneEvent: 101, Direction: RecvOnly},
		},
		{
			name: "media-level sendrecv overrides session recvonly", body: "session-and-media-level",
			want: Answer{Codec: PCMA, Format: pcma(8), Direction: SendRecv},
		},
		{
			name: "inactive stays inactive", body: "session-level-direction",
			want: Answer{Codec: PCMA, Format: pcma(8), Direction: Inactive},
		},
		{
			name: "video declined", body: "audio-video",
			want: Answer{Codec: PCMU, Format: pcmu(0), TelephoneEvent: 101, Rejected: []Media{video}},
		},
		{
			name: "declined lines keep their place", body: "video-first",
			want: Answer{Codec: PCMA, Format: pcma(8), AudioIndex: 1, Rejected: []Media{
				video, {Kind: "audio", Proto: "RTP/AVP", Formats: []string{"0"}},
			}},
		},
		{
			name: "IPv6", body: "ipv6",
			want: Answer{Codec: PCMA, Format: pcma(8), TelephoneEvent: 101},
		},
		{
			name: "telephone-event at 48 kHz is not ours", body: "telephone-event-48k",
			want: Answer{Codec: PCMU, Format: pcmu(0)},
		},
		{
			name: "dynamic type without rtpmap ignored", body: "dynamic-without-rtpmap",
			want: Answer{Codec: PCMU, Format: pcmu(0), TelephoneEvent: 97},
		},
		{
			name: "comfort noise accepted, not answered", body: "comfort-noise",
			want: Answer{Codec: PCMA, Format: pcma(8), TelephoneEvent: 101},
		},
		{name: "no common codec", body: "no-common-codec", err: ErrNoCommonCodec},
		{name: "nothing allowed", body: "deskphone", prefs: []Codec{}, err: ErrNoCommonCodec},
		{name: "WebRTC is handled elsewhere", body: "chromium", err: ErrNoAudio},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			offer, err := Parse(bodyNamed(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			prefs := tt.prefs
			if prefs == nil {
				prefs = DefaultCodecs()
			}
			got, err := NegotiatePrefer(offer, prefs, tt.prefer)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.err != nil {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("answer =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

// TestNegotiateDirections maps every offered direction, with a real address
// and with the RFC 2543 hold address 0.0.0.0, to its answer.
func TestNegotiateDirections(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
	tests := []struct {
		conn, attr string
		want       Direction
	}{
		{"192.0.2.1", "", SendRecv},
		{"192.0.2.1", "a=sendrecv\r\n", SendRecv},
		{"192.0.2.1", "a=sendonly\r\n", RecvOnly},
		{"192.0.2.1", "a=recvonly\r\n", SendOnly},
		{"192.0.2.1", "a=inactive\r\n", Inactive},
		{"0.0.0.0", "", RecvOnly},
		{"0.0.0.0", "a=sendonly\r\n", RecvOnly},
		{"0.0.0.0", "a=recvonly\r\n", Inactive},
		{"0.0.0.0", "a=inactive\r\n", Inactive},
	}
	for _, tt := range tests {
		offer, err := Parse([]byte(head + "c=IN IP4 " + tt.conn + "\r\n" + tt.attr))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Negotiate(offer, DefaultCodecs())
		if err != nil {
			t.Fatal(err)
		}
		if got.Direction != tt.want {
			t.Errorf("c=%s %q: answer %v, want %v", tt.conn, tt.attr, got.Direction, tt.want)
		}
	}
}

func TestNegotiateNoAudio(t *testing.T) {
	tests := map[string]string{
		"video only":     "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n",
		"audio disabled": "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n",
		"SRTP only":      "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/SAVP 0\r\n",
		"no m-lines":     "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n",
	}
	for name, body := range tests {
		offer, err := Parse([]byte(body))
		if err != nil {
			t.Fatalf("%s: Parse: %v", name, err)
		}
		if _, err := Negotiate(offer, DefaultCodecs()); !errors.Is(err, ErrNoAudio) {
			t.Errorf("%s: err = %v, want ErrNoAudio", name, err)
		}
	}
	if _, err := Negotiate(nil, DefaultCodecs()); !errors.Is(err, ErrNoAudio) {
		t.Errorf("nil offer: err = %v, want ErrNoAudio", err)
	}
}

// TestNegotiateDynamicG711: an offerer may put G.711 on a dynamic payload
// type; the answer must use the same one and name the codec canonically.
func TestNegotiateDynamicG711(t *testing.T) {
	offer, err := Parse(crlf(
		"v=0", "o=- 1 1 IN IP4 192.0.2.1", "s=-", "c=IN IP4 192.0.2.1", "t=0 0",
		"m=audio 4000 RTP/AVP 96 97", "a=rtpmap:96 pcma/8000", "a=rtpmap:97 PCMU/8000",
	))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Negotiate(offer, DefaultCodecs())
	if err != nil {
		t.Fatal(err)
	}
	if want := pcma(96); got.Codec != PCMA || got.Format != want {
		t.Errorf("got %v %+v, want PCMA %+v", got.Codec, got.Format, want)
	}
}
