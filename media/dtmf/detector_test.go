package dtmf

import (
	"errors"
	"testing"
)

// pkt is one packet of a test stream.
type pkt struct {
	ts     uint32
	marker bool
	ev     Event
}

func upd(ts uint32, code uint8, dur uint16) pkt {
	return pkt{ts: ts, ev: Event{Code: code, Volume: 10, Duration: dur}}
}

func start(ts uint32, code uint8, dur uint16) pkt {
	p := upd(ts, code, dur)
	p.marker = true
	return p
}

func end(ts uint32, code uint8, dur uint16) pkt {
	p := upd(ts, code, dur)
	p.ev.End = true
	return p
}

// press is a complete, loss-free event as a sender emits it.
func press(ts uint32, code uint8) []pkt {
	return []pkt{
		start(ts, code, 160), upd(ts, code, 320), upd(ts, code, 480), upd(ts, code, 640),
		end(ts, code, 800), end(ts, code, 800), end(ts, code, 800),
	}
}

func cat(streams ...[]pkt) []pkt {
	var all []pkt
	for _, s := range streams {
		all = append(all, s...)
	}
	return all
}

// rep abbreviates an expected report: digit, timestamp, start/end, duration.
func rep(digit rune, ts uint32, start, end bool, dur uint32) Report {
	code, _ := Code(digit)
	return Report{Code: code, Digit: digit, Timestamp: ts, Start: start, End: end, Duration: dur}
}

func TestDetector(t *testing.T) {
	wrap := uint32(0xFFFFFF00) // wrap+1600 is past zero
	cases := []struct {
		name   string
		stream []pkt
		want   []Report
	}{
		{"one press", press(1000, 5), []Report{
			rep('5', 1000, true, false, 160), rep('5', 1000, false, true, 800),
		}},
		{"two presses of the same digit", cat(press(1000, 1), press(3000, 1)), []Report{
			rep('1', 1000, true, false, 160), rep('1', 1000, false, true, 800),
			rep('1', 3000, true, false, 160), rep('1', 3000, false, true, 800),
		}},
		{"start packet lost", cat(press(1000, 9)[2:]), []Report{
			rep('9', 1000, true, false, 480), rep('9', 1000, false, true, 800),
		}},
		{"only end packets arrive", cat(press(1000, 10)[5:]), []Report{
			rep('*', 1000, true, true, 800),
		}},
		{"end packets lost, next digit starts", cat(press(1000, 2)[:4], press(2000, 3)), []Report{
			rep('2', 1000, true, false, 160),
			rep('3', 2000, true, false, 160), rep('3', 2000, false, true, 800),
		}},
		{"late update after the end", cat(press(1000, 4)[:5], []pkt{upd(1000, 4, 640)}, press(1000, 4)[5:]), []Report{
			rep('4', 1000, true, false, 160), rep('4', 1000, false, true, 800),
		}},
		{"reordered updates keep the longest duration", []pkt{
			start(1000, 6, 160), upd(1000, 6, 480), upd(1000, 6, 320), end(1000, 6, 800),
		}, []Report{
			rep('6', 1000, true, false, 160), rep('6', 1000, false, true, 800),
		}},
		{"late end of the previous event", cat(press(1000, 7)[:5], press(2000, 8)[:2], press(1000, 7)[5:], press(2000, 8)[2:]), []Report{
			rep('7', 1000, true, false, 160), rep('7', 1000, false, true, 800),
			rep('8', 2000, true, false, 160), rep('8', 2000, false, true, 800),
		}},
		{"timestamp wrap-around", cat(press(wrap, 11)[:5], press(wrap+1600, 12)[:1], press(wrap, 11)[5:], press(wrap+1600, 12)[1:]), []Report{
			rep('#', wrap, true, false, 160), rep('#', wrap, false, true, 800),
			rep('A', wrap+1600, true, false, 160), rep('A', wrap+1600, false, true, 800),
		}},
		{"timestamp jumps far back: a new event", cat(press(1_000_000, 1), press(1000, 2)), []Report{
			rep('1', 1_000_000, true, false, 160), rep('1', 1_000_000, false, true, 800),
			rep('2', 1000, true, false, 160), rep('2', 1000, false, true, 800),
		}},
		{"same timestamp, other code", []pkt{start(1000, 1, 160), start(1000, 2, 160), end(1000, 2, 320)}, []Report{
			rep('1', 1000, true, false, 160),
			rep('2', 1000, true, false, 160), rep('2', 1000, false, true, 320),
		}},
		{"long event in two segments", []pkt{
			start(500, 0, 160), upd(500, 0, 0xFF00), upd(500, 0, 0xFFFF), upd(500, 0, 0xFFFF),
			upd(500+0xFFFF, 0, 160), upd(500, 0, 0xFFFF), end(500+0xFFFF, 0, 800), end(500+0xFFFF, 0, 800),
		}, []Report{
			rep('0', 500, true, false, 160), rep('0', 500, false, true, 0xFFFF+800),
		}},
		{"flash and non-keypad events", []pkt{end(100, 16, 800), end(900, 32, 400)}, []Report{
			rep('!', 100, true, true, 800), {Code: 32, Timestamp: 900, Start: true, End: true, Duration: 400},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var d Detector
			var got []Report
			for _, p := range c.stream {
				r, ok, err := d.Packet(p.ts, p.marker, p.ev.Marshal(nil))
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					got = append(got, r)
				}
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d reports %+v, want %+v", len(got), got, c.want)
			}
			for i := range got {
				if got[i] != c.want[i] {
					t.Errorf("report %d = %+v, want %+v", i, got[i], c.want[i])
				}
			}
		})
	}
}

func TestDetectorMalformedPacket(t *testing.T) {
	var d Detector
	if _, ok, err := d.Packet(1000, true, []byte{1, 0, 0, 160}); !ok || err != nil {
		t.Fatalf("start: ok %v, err %v", ok, err)
	}
	if _, ok, err := d.Packet(2000, true, []byte{2, 0}); ok || !errors.Is(err, ErrShort) {
		t.Fatalf("short payload: ok %v, err %v", ok, err)
	}
	// The short packet did not disturb the current event.
	r, ok, err := d.Packet(1000, false, []byte{1, 0x80, 3, 32})
	if err != nil || !ok || !r.End || r.Digit != '1' || r.Duration != 800 {
		t.Fatalf("end after short packet: %+v %v %v", r, ok, err)
	}
}

func TestDetectorReset(t *testing.T) {
	var d Detector
	p := Event{Code: 3, End: true, Duration: 800}.Marshal(nil)
	if _, ok, _ := d.Packet(1000, false, p); !ok {
		t.Fatal("first end not reported")
	}
	if _, ok, _ := d.Packet(1000, false, p); ok {
		t.Fatal("repeated end reported")
	}
	d.Reset()
	if _, ok, _ := d.Packet(1000, false, p); !ok {
		t.Fatal("after Reset the event is new")
	}
}

func TestDetectorDoesNotAllocate(t *testing.T) {
	var d Detector
	stream := cat(press(1000, 1), press(2000, 2))
	payloads := make([][]byte, len(stream))
	for i, p := range stream {
		payloads[i] = p.ev.Marshal(nil)
	}
	i := 0
	n := testing.AllocsPerRun(1000, func() {
		p := stream[i%len(stream)]
		d.Packet(p.ts+uint32(i/len(stream))*4000, p.marker, payloads[i%len(stream)])
		i++
	})
	if n != 0 {
		t.Errorf("%v allocations per packet", n)
	}
}

func BenchmarkDetectorPacket(b *testing.B) {
	stream := press(1000, 1)
	payloads := make([][]byte, len(stream))
	for i, p := range stream {
		payloads[i] = p.ev.Marshal(nil)
	}
	var d Detector
	i := 0
	for b.Loop() {
		k := i % len(stream)
		d.Packet(stream[k].ts+uint32(i/len(stream))*4000, stream[k].marker, payloads[k])
		i++
	}
}
