package dtmf

// A sender repeats itself on purpose (RFC 4733 section 2.5.1): the start of
// an event goes out with the marker bit, then updates with a growing
// duration every packet interval, then the end packet three times, all with
// the RTP timestamp of the event's start. Packets get lost and reordered.
// The Detector keys events by RTP timestamp and reports each one when it is
// first seen and once more when it ends.

// staleWindow is how far behind the current event (in RTP timestamp units)
// a packet may be and still count as a late copy of an earlier event, to be
// dropped. It covers the longest event segment (0xFFFF) plus reordering;
// packets further back are taken as a new event, as after a timestamp jump.
const staleWindow = 1 << 17

// maxSegment is the duration at which a long event is continued in a new
// segment with a new timestamp and no marker bit (RFC 4733 section 2.5.1.3).
const maxSegment = 0xFFFF

// Report is what the Detector says about an event.
type Report struct {
	// Code is the event code, and Digit its keypad character, or 0 when
	// the code is not a keypad digit or flash.
	Code  uint8
	Digit rune
	// Timestamp is the RTP timestamp of the event's start.
	Timestamp uint32
	// Start is set on the one report of a new event: this is where a
	// caller collecting digits takes the digit.
	Start bool
	// End is set on the one report of the event's end. A report can have
	// both Start and End, when every packet before an end packet was lost.
	End bool
	// Duration is the event's length so far in RTP timestamp units; on the
	// End report, its final length. For an event longer than 0xFFFF units
	// it counts all segments.
	Duration uint32
}

// Detector turns the telephone-event packets of one RTP stream into
// Reports: one when an event starts, one when it ends. It tolerates lost
// start packets (an update or end packet starts the event), repeated end
// packets, late copies of an earlier event, and timestamp wrap-around.
//
// If every end packet of an event is lost, that event gets no End report;
// the next event's Start supersedes it.
//
// The zero value is ready to use. A Detector is not safe for concurrent
// use; it does not allocate.
type Detector struct {
	active bool   // an event has been seen
	ended  bool   // and its end too
	code   uint8  // its code
	first  uint32 // RTP timestamp of its first segment
	ts     uint32 // RTP timestamp of its current segment
	dur    uint16 // longest duration seen in the current segment
}

// Packet feeds the Detector one telephone-event packet: its RTP timestamp,
// marker bit and payload. It returns a report and ok=true when the packet
// starts a new event or ends the current one, and ok=false for the
// repetitions in between. A payload Unmarshal rejects returns its error
// and leaves the Detector unchanged.
func (d *Detector) Packet(ts uint32, marker bool, payload []byte) (r Report, ok bool, err error) {
	ev, err := Unmarshal(payload)
	if err != nil {
		return Report{}, false, err
	}
	r, ok = d.Event(ts, marker, ev)
	return r, ok, nil
}

// Event is Packet for a payload the caller has already decoded.
func (d *Detector) Event(ts uint32, marker bool, ev Event) (r Report, ok bool) {
	switch {
	case d.active && ts == d.ts && ev.Code == d.code:
		// Another packet of the current segment.
		if d.ended {
			return Report{}, false // a repeated end, or a late update
		}
		d.dur = max(d.dur, ev.Duration)
		if !ev.End {
			return Report{}, false
		}
		d.ended = true
		return d.report(false, true), true

	case d.active && d.older(ts):
		return Report{}, false // a late copy from an earlier event

	case d.active && !d.ended && !marker && ev.Code == d.code && d.dur == maxSegment:
		// The next segment of a long event: same event, no new report
		// unless it is already the end.
		d.ts, d.dur, d.ended = ts, ev.Duration, ev.End
		if ev.End {
			return d.report(false, true), true
		}
		return Report{}, false
	}
	*d = Detector{active: true, ended: ev.End, code: ev.Code, first: ts, ts: ts, dur: ev.Duration}
	return d.report(true, ev.End), true
}

// Reset forgets the current event, for example when the stream's SSRC
// changes and timestamps start over.
func (d *Detector) Reset() { *d = Detector{} }

// older reports whether ts lies shortly before the current segment, in RTP
// serial-number arithmetic so that wrap-around is handled.
func (d *Detector) older(ts uint32) bool {
	behind := d.ts - ts
	return behind != 0 && behind < staleWindow
}

func (d *Detector) report(start, end bool) Report {
	digit, _ := Digit(d.code)
	return Report{
		Code:      d.code,
		Digit:     digit,
		Timestamp: d.first,
		Start:     start,
		End:       end,
		Duration:  d.ts - d.first + uint32(d.dur),
	}
}
