package dtmf

import (
	"errors"
	"testing"
)

func TestGenerate(t *testing.T) {
	cases := []struct {
		name               string
		digit              rune
		duration, interval uint16
		wantDurations      []uint16 // of every packet; the last EndRepeats are ends
	}{
		{"100 ms at 20 ms", '5', 800, 160, []uint16{160, 320, 480, 640, 800, 800, 800}},
		{"not a multiple of the interval", '#', 850, 160, []uint16{160, 320, 480, 640, 800, 850, 850, 850}},
		{"exactly one interval", 'A', 160, 160, []uint16{160, 160, 160}},
		{"shorter than the interval", '0', 100, 160, []uint16{100, 100, 100}},
		{"longest event", '!', 0xFFFF, 0x8000, []uint16{0x8000, 0xFFFF, 0xFFFF, 0xFFFF}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			packets, err := Generate(c.digit, c.duration, c.interval, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(packets) != len(c.wantDurations) {
				t.Fatalf("%d packets, want %d", len(packets), len(c.wantDurations))
			}
			code, _ := Code(c.digit)
			var d Detector
			var reports []Report
			for i, p := range packets {
				ev, err := Unmarshal(p.Payload)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Payload) != EventSize {
					t.Errorf("packet %d: %d bytes", i, len(p.Payload))
				}
				wantEnd := i >= len(packets)-EndRepeats
				want := Event{Code: code, End: wantEnd, Volume: 10, Duration: c.wantDurations[i]}
				if ev != want {
					t.Errorf("packet %d = %+v, want %+v", i, ev, want)
				}
				if p.Marker != (i == 0) {
					t.Errorf("packet %d: marker %v", i, p.Marker)
				}
				if r, ok, _ := d.Packet(7777, p.Marker, p.Payload); ok {
					reports = append(reports, r)
				}
			}
			// The receiver sees one start and one end with the full duration.
			if len(reports) == 0 || !reports[0].Start || reports[0].Digit != c.digit {
				t.Fatalf("reports %+v", reports)
			}
			last := reports[len(reports)-1]
			if !last.End || last.Duration != uint32(c.duration) || len(reports) > 2 {
				t.Fatalf("reports %+v", reports)
			}
		})
	}
}

func TestGeneratePayloadsAreIndependent(t *testing.T) {
	packets, err := Generate('1', 800, 160, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Appending to one payload must not overwrite the next.
	_ = append(packets[0].Payload, 0xEE)
	if packets[1].Payload[0] != 1 {
		t.Fatalf("payloads alias: % x", packets[1].Payload)
	}
}

func TestGenerateErrors(t *testing.T) {
	cases := []struct {
		name               string
		digit              rune
		duration, interval uint16
		err                error
	}{
		{"unknown digit", 'x', 800, 160, ErrNotDigit},
		{"zero duration", '1', 0, 160, ErrBadTiming},
		{"zero interval", '1', 800, 0, ErrBadTiming},
	}
	for _, c := range cases {
		if _, err := Generate(c.digit, c.duration, c.interval, 10); !errors.Is(err, c.err) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.err)
		}
	}
}
