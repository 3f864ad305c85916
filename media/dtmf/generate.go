package dtmf

import "fmt"

// EndRepeats is how many times Generate sends the end packet, as RFC 4733
// section 2.5.1.4 recommends, so that one lost packet does not leave the
// digit hanging at the receiver.
const EndRepeats = 3

// Packet is one telephone-event RTP payload to send, with the marker bit
// to set in its RTP header.
type Packet struct {
	// Payload is the 4-byte telephone-event block.
	Payload []byte
	// Marker is the RTP marker bit: set on the first packet of the event
	// only.
	Marker bool
}

// Generate returns the packets that send digit as one event lasting
// duration RTP timestamp units, one packet every interval units, at the
// given volume (0 loudest .. 63 quietest; see MaxVolume). At 8000 Hz, a
// 100 ms digit sent every 20 ms is Generate(d, 800, 160, 10).
//
// The first packet has the marker bit. Packet i (from 1) reports a
// duration of i*interval, until the last one, which reports duration and
// has the End bit; it is sent EndRepeats times. For 800/160 that is
// durations 160 (marker), 320, 480, 640, then 800 three times with End.
//
// All packets carry the same RTP timestamp, that of the event's start; the
// caller gives each its own sequence number and sends one per interval (the
// end repeats may go out back to back). Digit accepts what Code accepts; an
// unknown digit returns an error wrapping ErrNotDigit, a zero duration or
// interval one wrapping ErrBadTiming. The payloads share one allocation.
func Generate(digit rune, duration, interval uint16, volume uint8) ([]Packet, error) {
	code, ok := Code(digit)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotDigit, digit)
	}
	if duration == 0 || interval == 0 {
		return nil, fmt.Errorf("%w: duration %d, interval %d", ErrBadTiming, duration, interval)
	}
	updates := (int(duration) - 1) / int(interval) // packets before the end
	n := updates + EndRepeats
	buf := make([]byte, 0, n*EventSize)
	packets := make([]Packet, 0, n)
	for i := range n {
		ev := Event{Code: code, Volume: volume, Duration: duration, End: i >= updates}
		if i < updates {
			ev.Duration = uint16((i + 1) * int(interval))
		}
		start := len(buf)
		buf = ev.Marshal(buf)
		packets = append(packets, Packet{Payload: buf[start:len(buf):len(buf)], Marker: i == 0})
	}
	return packets, nil
}
