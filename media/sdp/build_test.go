package sdp

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	origin := Origin{Username: "pbxd", SessionID: 4711, Version: 3}
	tests := []struct {
		name  string
		local Local
		want  []string
	}{
		{
			name: "offer",
			local: Local{
				Origin: origin, Addr: ap("192.0.2.10:40000"),
				Formats: []Format{PCMU.Format(), PCMA.Format()}, TelephoneEvent: 101,
			},
			want: []string{
				"v=0",
				"o=pbxd 4711 3 IN IP4 192.0.2.10",
				"s=pbxd",
				"c=IN IP4 192.0.2.10",
				"t=0 0",
				"m=audio 40000 RTP/AVP 0 8 101",
				"a=rtpmap:0 PCMU/8000",
				"a=rtpmap:8 PCMA/8000",
				"a=rtpmap:101 telephone-event/8000",
				"a=fmtp:101 0-16",
				"a=ptime:20",
				"a=sendrecv",
			},
		},
		{
			name: "answer declining video, IPv6, RTCP, no telephone-event",
			local: Local{
				Origin: origin, Addr: ap("[2001:db8::1]:40002"), Formats: []Format{pcma(8)},
				Direction: RecvOnly, RTCP: true,
				Rejected: []Media{{Kind: "video", Proto: "RTP/AVP", Formats: []string{"96", "97"}}},
			},
			want: []string{
				"v=0",
				"o=pbxd 4711 3 IN IP6 2001:db8::1",
				"s=pbxd",
				"c=IN IP6 2001:db8::1",
				"t=0 0",
				"m=audio 40002 RTP/AVP 8",
				"a=rtpmap:8 PCMA/8000",
				"a=ptime:20",
				"a=rtcp:40003",
				"a=recvonly",
				"m=video 0 RTP/AVP 96",
			},
		},
		{
			name: "audio in the middle, defaults for odd input",
			local: Local{
				Origin: Origin{SessionID: 1, Version: 1}, Addr: ap("[::ffff:192.0.2.7]:5000"),
				Formats: []Format{
					{PT: 96, Name: "PCMU", ClockRate: 8000, Channels: 1, Fmtp: "x=1"},
					{PT: 96, Name: "PCMA", ClockRate: 8000}, // repeated payload type
					{PT: 200, Name: "PCMA", ClockRate: 8000},
					{PT: 9, Name: "G 722", ClockRate: 8000},
					{PT: 3, Name: "GSM/8000", ClockRate: 8000},
					{PT: 4, Name: "G723", ClockRate: 0},
					{PT: 10, Name: "L16", ClockRate: 44100, Channels: 2, Fmtp: "bad\r\na=evil"},
				},
				TelephoneEvent: 96, // clashes with a codec
				Direction:      Inactive,
				Rejected: []Media{
					{Kind: "video", Proto: "RTP/AVP", Formats: []string{"96"}},
					{Kind: "bad kind", Proto: "", Formats: nil},
				},
				AudioIndex: 1,
			},
			want: []string{
				"v=0",
				"o=pbxd 1 1 IN IP4 192.0.2.7",
				"s=pbxd",
				"c=IN IP4 192.0.2.7",
				"t=0 0",
				"m=video 0 RTP/AVP 96",
				"m=audio 5000 RTP/AVP 96 10",
				"a=rtpmap:96 PCMU/8000",
				"a=fmtp:96 x=1",
				"a=rtpmap:10 L16/44100/2",
				"a=ptime:20",
				"a=inactive",
				"m=application 0 RTP/AVP 0",
			},
		},
		{
			name: "zone dropped",
			local: Local{
				Origin: origin, Addr: netip.AddrPortFrom(netip.MustParseAddr("fe80::1%eth0"), 4000),
				Formats: []Format{pcmu(0)},
			},
			want: []string{
				"v=0",
				"o=pbxd 4711 3 IN IP6 fe80::1",
				"s=pbxd",
				"c=IN IP6 fe80::1",
				"t=0 0",
				"m=audio 4000 RTP/AVP 0",
				"a=rtpmap:0 PCMU/8000",
				"a=ptime:20",
				"a=sendrecv",
			},
		},
		{
			name:  "nothing to offer",
			local: Local{Origin: origin, AudioIndex: 7},
			want: []string{
				"v=0",
				"o=pbxd 4711 3 IN IP4 0.0.0.0",
				"s=pbxd",
				"c=IN IP4 0.0.0.0",
				"t=0 0",
				"m=audio 0 RTP/AVP 0",
				"a=ptime:20",
				"a=sendrecv",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Build(tt.local))
			want := strings.Join(tt.want, "\r\n") + "\r\n"
			if got != want {
				t.Errorf("Build =\n%s\nwant\n%s", got, want)
			}
			if _, err := Parse([]byte(got)); err != nil {
				t.Errorf("Parse(Build): %v", err)
			}
		})
	}
}

// TestRoundTrip builds descriptions and parses them back.
func TestRoundTrip(t *testing.T) {
	tests := []Local{
		{
			Origin: NewOrigin(), Addr: ap("192.0.2.10:40000"),
			Formats: []Format{PCMU.Format(), PCMA.Format()}, TelephoneEvent: 101,
		},
		{
			Origin: NewOrigin(), Addr: ap("[2001:db8::10]:40000"),
			Formats: []Format{pcma(8)}, TelephoneEvent: 96, Direction: SendOnly, RTCP: true,
		},
		{
			Origin: NewOrigin(), Addr: ap("10.1.2.3:65534"),
			Formats: []Format{pcmu(0)}, Direction: RecvOnly, RTCP: true, AudioIndex: 1,
			Rejected: []Media{
				{Kind: "video", Proto: "RTP/AVP", Formats: []string{"96"}},
				{Kind: "application", Proto: "UDP/DTLS/SCTP", Formats: []string{"webrtc-datachannel"}},
			},
		},
		{
			Origin: NewOrigin(), Addr: ap("10.1.2.3:4000"), Formats: []Format{pcmu(0)}, Direction: Inactive,
		},
	}
	for i, l := range tests {
		s, err := Parse(Build(l))
		if err != nil {
			t.Fatalf("%d: Parse(Build): %v", i, err)
		}
		if s.Origin != l.Origin {
			t.Errorf("%d: origin = %+v, want %+v", i, s.Origin, l.Origin)
		}
		want := &Audio{
			Index:          l.AudioIndex,
			Proto:          "RTP/AVP",
			Addr:           l.Addr,
			RTCP:           netip.AddrPortFrom(l.Addr.Addr(), l.Addr.Port()+1),
			Formats:        append([]Format(nil), l.Formats...),
			TelephoneEvent: l.TelephoneEvent,
			Ptime:          Ptime,
			Direction:      l.Direction,
		}
		if l.TelephoneEvent != 0 {
			want.Formats = append(want.Formats, te(l.TelephoneEvent, TelephoneEvents))
		}
		if !reflect.DeepEqual(s.Audio, want) {
			t.Errorf("%d: audio =\n%+v\nwant\n%+v", i, s.Audio, want)
		}
		if len(s.Media) != len(l.Rejected)+1 {
			t.Fatalf("%d: %d m-lines, want %d", i, len(s.Media), len(l.Rejected)+1)
		}
		r := 0
		for j, m := range s.Media {
			if j == l.AudioIndex {
				continue
			}
			want := l.Rejected[r]
			r++
			if m.Kind != want.Kind || m.Port != 0 || m.Proto != want.Proto || !reflect.DeepEqual(m.Formats, want.Formats[:1]) {
				t.Errorf("%d: m-line %d = %+v, want %+v with port 0", i, j, m, want)
			}
		}
	}
}

// TestAnswerRoundTrip negotiates every test body that has a common codec,
// builds the answer and checks that it mirrors the offer.
func TestAnswerRoundTrip(t *testing.T) {
	for _, b := range bodies() {
		offer, err := Parse(b.sdp)
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		ans, err := Negotiate(offer, DefaultCodecs())
		if err != nil {
			continue
		}
		local := ans.Local(NewOrigin(), ap("192.0.2.99:30000"))
		got, err := Parse(Build(local))
		if err != nil {
			t.Fatalf("%s: Parse(answer): %v", b.name, err)
		}
		if len(got.Media) != len(offer.Media) {
			t.Fatalf("%s: answer has %d m-lines, offer %d", b.name, len(got.Media), len(offer.Media))
		}
		for i, m := range got.Media {
			if m.Kind != offer.Media[i].Kind {
				t.Errorf("%s: m-line %d is %s, offer has %s", b.name, i, m.Kind, offer.Media[i].Kind)
			}
			if (i == offer.Audio.Index) != (m.Port != 0) {
				t.Errorf("%s: m-line %d has port %d", b.name, i, m.Port)
			}
		}
		a := got.Audio
		if a.Index != offer.Audio.Index || a.Formats[0].PT != ans.Format.PT || a.TelephoneEvent != offer.Audio.TelephoneEvent {
			t.Errorf("%s: answer audio %+v does not match offer %+v", b.name, a, offer.Audio)
		}
		if a.Direction != ans.Direction {
			t.Errorf("%s: answer direction %v, want %v", b.name, a.Direction, ans.Direction)
		}
	}
}

func TestHold(t *testing.T) {
	l := Local{
		Origin: Origin{Username: "pbxd", SessionID: 9, Version: 1}, Addr: ap("192.0.2.10:40000"),
		Formats: []Format{PCMU.Format()}, TelephoneEvent: 101,
	}
	first, _ := Parse(Build(l))
	held := l.Hold()
	if held.Direction != SendOnly || held.Origin.Version != 2 || held.Origin.SessionID != 9 {
		t.Errorf("Hold = %+v", held)
	}
	if l.Direction != SendRecv || l.Origin.Version != 1 {
		t.Errorf("Hold changed its receiver: %+v", l)
	}
	hs, err := Parse(Build(held))
	if err != nil {
		t.Fatal(err)
	}
	if !hs.IsHold() {
		t.Error("held SDP is not hold")
	}
	if got, want := Diff(first, hs), DirectionChanged|HoldChanged; got != want {
		t.Errorf("Diff(first, held) = %v, want %v", got, want)
	}
	off := held.WithDirection(Inactive)
	if off.Direction != Inactive || off.Origin.Version != 3 {
		t.Errorf("WithDirection(Inactive) = %+v", off)
	}
	back := off.Unhold()
	if back.Direction != SendRecv || back.Origin.Version != 4 {
		t.Errorf("Unhold = %+v", back)
	}
	bs, _ := Parse(Build(back))
	if bs.IsHold() || Diff(first, bs) != 0 {
		t.Errorf("unheld SDP: hold %v, diff %v", bs.IsHold(), Diff(first, bs))
	}
}

func TestOrigin(t *testing.T) {
	o := NewOrigin()
	if o.Username != "pbxd" || o.Version != 1 || o.SessionID >= 1<<63 {
		t.Errorf("NewOrigin = %+v", o)
	}
	if n := o.Next(); n.Version != 2 || n.SessionID != o.SessionID || n.Username != o.Username {
		t.Errorf("Next = %+v from %+v", n, o)
	}
}
