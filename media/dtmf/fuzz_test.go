package dtmf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// The seed corpora live in testdata/fuzz/FuzzUnmarshal and
// testdata/fuzz/FuzzDetector; `make fuzz` runs each target for a while.

func FuzzUnmarshal(f *testing.F) {
	f.Add([]byte{0x01, 0x0A, 0x00, 0xA0})
	f.Fuzz(func(t *testing.T, payload []byte) {
		ev, err := Unmarshal(payload)
		if len(payload) < EventSize {
			if !errors.Is(err, ErrShort) {
				t.Fatalf("%d bytes: err = %v", len(payload), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Volume > MaxVolume {
			t.Fatalf("volume %d", ev.Volume)
		}
		// Marshal gives back the first block, with the R bit cleared.
		want := []byte{payload[0], payload[1] &^ 0x40, payload[2], payload[3]}
		if got := ev.Marshal(nil); !bytes.Equal(got, want) {
			t.Fatalf("Marshal(Unmarshal(% x)) = % x", payload[:4], got)
		}
	})
}

// FuzzDetector feeds a Detector a stream of arbitrary packets. Each record
// of the input is a 4-byte big-endian RTP timestamp, a flags byte (bit 0
// the marker) and a length byte (mod 9) followed by that many payload
// bytes. Whatever arrives, every End report belongs to the event most
// recently started, and no event ends twice.
func FuzzDetector(f *testing.F) {
	f.Add(record(nil, 1000, true, Event{Code: 1, Duration: 160}.Marshal(nil)))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d Detector
		var current Report
		started, ended := false, false
		for len(data) >= 6 {
			ts := binary.BigEndian.Uint32(data)
			marker := data[4]&1 != 0
			n := min(int(data[5]%9), len(data)-6)
			payload := data[6 : 6+n]
			data = data[6+n:]

			r, ok, err := d.Packet(ts, marker, payload)
			if err != nil {
				if ok || n >= EventSize {
					t.Fatalf("ok %v, err %v for %d bytes", ok, err, n)
				}
				continue
			}
			if !ok {
				continue
			}
			if digit, _ := Digit(r.Code); digit != r.Digit {
				t.Fatalf("report %+v: digit does not match code", r)
			}
			if !r.Start && !r.End {
				t.Fatalf("report %+v is neither start nor end", r)
			}
			if r.Start {
				current, started, ended = r, true, false
			}
			if r.End {
				if !started || ended {
					t.Fatalf("end %+v without an open event", r)
				}
				if r.Timestamp != current.Timestamp || r.Code != current.Code {
					t.Fatalf("end %+v does not match start %+v", r, current)
				}
				ended = true
			}
		}
	})
}

// record appends one FuzzDetector input record to b.
func record(b []byte, ts uint32, marker bool, payload []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, ts)
	var flags byte
	if marker {
		flags = 1
	}
	b = append(b, flags, byte(len(payload)))
	return append(b, payload...)
}
