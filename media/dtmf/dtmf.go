// Package dtmf carries DTMF digits as RFC 4733 telephone events: the
// 4-byte event payload, the mapping between event codes and keypad digits,
// a receive-side Detector that reports each key press exactly once despite
// the RFC's retransmissions, and Generate, which builds the packets for
// sending one digit.
//
// The package knows nothing about RTP headers: callers pass the RTP
// timestamp and marker bit alongside the payload.
package dtmf

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Errors returned by this package; test with errors.Is.
var (
	// ErrShort means a telephone-event payload had fewer than 4 bytes.
	ErrShort = errors.New("dtmf: telephone-event payload shorter than 4 bytes")
	// ErrNotDigit means a rune is not one of 0-9, *, #, A-D or flash (!).
	ErrNotDigit = errors.New("dtmf: not a DTMF digit")
	// ErrBadTiming means a zero duration or packet interval was asked for.
	ErrBadTiming = errors.New("dtmf: duration and interval must be positive")
)

// EventSize is the size of one telephone-event block on the wire.
const EventSize = 4

// MaxVolume is the largest volume: the field holds the power level as
// -dBm0, so 0 is loudest and 63 quietest.
const MaxVolume = 63

// Event is one RFC 4733 telephone-event block:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     event     |E|R| volume    |          duration             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Event struct {
	// Code is the event code: 0-15 for the keypad (see Digit), 16 for
	// flash, other values for other telephone events.
	Code uint8
	// End is set on the final packets of the event.
	End bool
	// Volume is the power level in -dBm0, 0..MaxVolume.
	Volume uint8
	// Duration is the length of the event so far, in RTP timestamp units
	// from the event's RTP timestamp.
	Duration uint16
}

// Unmarshal decodes the first event block of a telephone-event payload.
// Payloads longer than 4 bytes are accepted and only the first block is
// read: senders that pack redundant blocks put the current event first. The
// reserved R bit is ignored. A payload shorter than 4 bytes returns an
// error wrapping ErrShort.
func Unmarshal(payload []byte) (Event, error) {
	if len(payload) < EventSize {
		return Event{}, fmt.Errorf("%w: got %d", ErrShort, len(payload))
	}
	return Event{
		Code:     payload[0],
		End:      payload[1]&0x80 != 0,
		Volume:   payload[1] & 0x3F,
		Duration: binary.BigEndian.Uint16(payload[2:4]),
	}, nil
}

// Marshal appends the 4-byte wire form of e to dst and returns the extended
// slice. The R bit is sent as zero, and a Volume above MaxVolume is sent as
// MaxVolume.
func (e Event) Marshal(dst []byte) []byte {
	b := min(e.Volume, MaxVolume)
	if e.End {
		b |= 0x80
	}
	dst = append(dst, e.Code, b)
	return binary.BigEndian.AppendUint16(dst, e.Duration)
}

// FlashCode is the event code of a hook flash; Digit reports it as '!'.
const FlashCode = 16

// keypad lists the characters of event codes 0..16 (RFC 4733 section 3.2).
const keypad = "0123456789*#ABCD!"

// Digit returns the keypad character of an event code: '0'-'9', '*', '#',
// 'A'-'D' for codes 0-15, and '!' for flash (16). ok is false for any other
// code.
func Digit(code uint8) (r rune, ok bool) {
	if int(code) >= len(keypad) {
		return 0, false
	}
	return rune(keypad[code]), true
}

// Code returns the event code of a keypad character, the inverse of Digit.
// Lower-case 'a'-'d' are accepted as 'A'-'D'. ok is false for any other
// rune.
func Code(r rune) (code uint8, ok bool) {
	if r >= 'a' && r <= 'd' {
		r -= 'a' - 'A'
	}
	for i := range len(keypad) {
		if rune(keypad[i]) == r {
			return uint8(i), true
		}
	}
	return 0, false
}
