package dtmf

import (
	"bytes"
	"errors"
	"testing"
)

func TestUnmarshal(t *testing.T) {
	cases := []struct {
		name    string
		payload []byte
		want    Event
		err     error
	}{
		{"digit 1 start", []byte{0x01, 0x0A, 0x00, 0xA0}, Event{Code: 1, Volume: 10, Duration: 160}, nil},
		{"end bit", []byte{0x0B, 0x8A, 0x03, 0x20}, Event{Code: 11, End: true, Volume: 10, Duration: 800}, nil},
		{"reserved bit ignored", []byte{0x05, 0xC0 | 0x3F, 0xFF, 0xFF}, Event{Code: 5, End: true, Volume: 63, Duration: 0xFFFF}, nil},
		{"flash", []byte{0x10, 0x00, 0x00, 0x00}, Event{Code: 16}, nil},
		{"trailing redundant block ignored", []byte{0x02, 0x05, 0x01, 0x40, 0x01, 0x85, 0x03, 0x20}, Event{Code: 2, Volume: 5, Duration: 320}, nil},
		{"five bytes", []byte{0x03, 0x00, 0x00, 0x10, 0xEE}, Event{Code: 3, Duration: 16}, nil},
		{"empty", nil, Event{}, ErrShort},
		{"three bytes", []byte{0x01, 0x0A, 0x00}, Event{}, ErrShort},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Unmarshal(c.payload)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if got != c.want {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestMarshal(t *testing.T) {
	cases := []struct {
		name string
		ev   Event
		want []byte
	}{
		{"start", Event{Code: 1, Volume: 10, Duration: 160}, []byte{0x01, 0x0A, 0x00, 0xA0}},
		{"end", Event{Code: 11, End: true, Volume: 10, Duration: 800}, []byte{0x0B, 0x8A, 0x03, 0x20}},
		{"volume clamped", Event{Code: 0, Volume: 200, Duration: 1}, []byte{0x00, 0x3F, 0x00, 0x01}},
		{"max", Event{Code: 255, End: true, Volume: 63, Duration: 0xFFFF}, []byte{0xFF, 0xBF, 0xFF, 0xFF}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.ev.Marshal([]byte{0xEE})
			if !bytes.Equal(got, append([]byte{0xEE}, c.want...)) {
				t.Fatalf("Marshal = % x, want ee % x", got, c.want)
			}
			back, err := Unmarshal(got[1:])
			if err != nil {
				t.Fatal(err)
			}
			want := c.ev
			want.Volume = min(want.Volume, MaxVolume)
			if back != want {
				t.Fatalf("round trip %+v, want %+v", back, want)
			}
		})
	}
}

func TestMarshalDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, EventSize)
	ev := Event{Code: 4, Duration: 480}
	if n := testing.AllocsPerRun(100, func() { buf = ev.Marshal(buf[:0]) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

func TestDigitAndCode(t *testing.T) {
	want := map[uint8]rune{
		0: '0', 1: '1', 2: '2', 3: '3', 4: '4', 5: '5', 6: '6', 7: '7', 8: '8', 9: '9',
		10: '*', 11: '#', 12: 'A', 13: 'B', 14: 'C', 15: 'D', 16: '!',
	}
	for code := range 256 {
		r, ok := Digit(uint8(code))
		w, known := want[uint8(code)]
		if ok != known || r != w {
			t.Errorf("Digit(%d) = %q, %v; want %q, %v", code, r, ok, w, known)
		}
		if known {
			if c, ok := Code(w); !ok || c != uint8(code) {
				t.Errorf("Code(%q) = %d, %v; want %d", w, c, ok, code)
			}
		}
	}
	for _, c := range []struct {
		r    rune
		code uint8
		ok   bool
	}{{'a', 12, true}, {'d', 15, true}, {'e', 0, false}, {'E', 0, false}, {' ', 0, false}, {'١', 0, false}, {-1, 0, false}} {
		if code, ok := Code(c.r); code != c.code || ok != c.ok {
			t.Errorf("Code(%q) = %d, %v; want %d, %v", c.r, code, ok, c.code, c.ok)
		}
	}
}
