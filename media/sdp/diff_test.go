package sdp

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	const base = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
	initial := base + "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
	tests := []struct {
		name string
		next string
		want Change
	}{
		{"same", initial, 0},
		{"only the version", strings.Replace(initial, "1 1 IN", "1 2 IN", 1), 0},
		{"new port", strings.Replace(initial, "4000", "4002", 1), AddrChanged},
		{"new address", strings.Replace(initial, "c=IN IP4 192.0.2.1", "c=IN IP4 192.0.2.2", 1), AddrChanged},
		{"rtcp moved", initial + "a=rtcp:5000\r\n", AddrChanged},
		{"rtcp-mux", initial + "a=rtcp-mux\r\n", AddrChanged},
		{"codec order", strings.Replace(initial, "0 8 101", "8 0 101", 1), CodecsChanged},
		{"codec dropped", strings.Replace(initial, "0 8 101", "0 101", 1), CodecsChanged},
		{"telephone-event moved", strings.ReplaceAll(initial, "101", "96"), CodecsChanged},
		{"sendonly", initial + "a=sendonly\r\n", DirectionChanged | HoldChanged},
		{"recvonly", initial + "a=recvonly\r\n", DirectionChanged},
		{"explicit sendrecv", initial + "a=sendrecv\r\n", 0},
		{"old-style hold", strings.Replace(initial, "c=IN IP4 192.0.2.1", "c=IN IP4 0.0.0.0", 1), AddrChanged | HoldChanged},
		{"audio removed", strings.Replace(initial, "4000", "0", 1), AddrChanged | CodecsChanged | DirectionChanged | HoldChanged},
	}
	prev, err := Parse([]byte(initial))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, err := Parse([]byte(tt.next))
			if err != nil {
				t.Fatal(err)
			}
			if got := Diff(prev, next); got != tt.want {
				t.Errorf("Diff = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestDiffNil(t *testing.T) {
	s, err := Parse(bodyNamed("sipp-uac"))
	if err != nil {
		t.Fatal(err)
	}
	all := AddrChanged | CodecsChanged | DirectionChanged | HoldChanged
	if got := Diff(nil, nil); got != 0 {
		t.Errorf("Diff(nil, nil) = %v", got)
	}
	if got := Diff(nil, s); got != all {
		t.Errorf("Diff(nil, s) = %v", got)
	}
	if got := Diff(s, &Session{}); got != all {
		t.Errorf("Diff(s, no audio) = %v", got)
	}
}

func TestChangeString(t *testing.T) {
	tests := map[Change]string{
		0:                           "none",
		AddrChanged:                 "addr",
		CodecsChanged | HoldChanged: "codecs|hold",
		AddrChanged | CodecsChanged | DirectionChanged | HoldChanged: "addr|codecs|direction|hold",
	}
	for c, want := range tests {
		if got := c.String(); got != want {
			t.Errorf("%08b.String() = %q, want %q", uint8(c), got, want)
		}
	}
	if !(AddrChanged | HoldChanged).Has(HoldChanged) || AddrChanged.Has(AddrChanged|HoldChanged) {
		t.Error("Has is wrong")
	}
}

func TestDirection(t *testing.T) {
	for _, d := range []Direction{SendRecv, SendOnly, RecvOnly, Inactive} {
		p, ok := parseDirection(d.String())
		if !ok || p != d {
			t.Errorf("parseDirection(%q) = %v, %v", d.String(), p, ok)
		}
		if d.Reverse().Reverse() != d {
			t.Errorf("%v reversed twice is %v", d, d.Reverse().Reverse())
		}
		if DirectionFrom(d.Sends(), d.Receives()) != d {
			t.Errorf("DirectionFrom(%v) is not itself", d)
		}
	}
	if SendOnly.Reverse() != RecvOnly || SendRecv.Reverse() != SendRecv || Inactive.Reverse() != Inactive {
		t.Error("Reverse is wrong")
	}
}

func TestCodec(t *testing.T) {
	for _, c := range DefaultCodecs() {
		f := c.Format()
		if f.Codec() != c || f.Name != c.String() {
			t.Errorf("%v: Format %+v maps back to %v", c, f, f.Codec())
		}
		if sf, ok := staticFormat(f.PT); !ok || sf != f {
			t.Errorf("%v: static table has %+v", c, sf)
		}
	}
	if (Codec(0).Format() != Format{}) || Codec(0).String() != "" {
		t.Error("zero Codec is not empty")
	}
	for _, f := range []Format{
		{Name: "PCMU", ClockRate: 16000, Channels: 1},
		{Name: "PCMU", ClockRate: 8000, Channels: 2},
		{Name: "G729", ClockRate: 8000, Channels: 1},
	} {
		if f.Codec() != 0 {
			t.Errorf("%+v is %v", f, f.Codec())
		}
	}
}
