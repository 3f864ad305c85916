package media

import (
	"math/rand/v2"
	"time"
)

// Sequencer turns frames from changing sources into one outgoing RTP stream
// with a fixed SSRC, consecutive sequence numbers and a timestamp that keeps
// advancing with real time. Within a run of one source, gaps and reordering
// are kept as the source made them; when the source changes (the call is
// transferred, a mixer takes over, the far end restarts its stream) the new
// run continues where the last one stopped, with the marker bit set, so
// phones and browsers never see the stream jump back. It is not safe for
// concurrent use; legs call it under their send lock.
type Sequencer struct {
	ssrc    uint32
	clock   uint32
	started bool
	source  uint32
	seqOff  uint16
	tsOff   uint32
	// lastSeq/lastTS are the newest values sent, lastAt when.
	lastSeq uint16
	lastTS  uint32
	lastAt  time.Time
}

// NewSequencer returns a sequencer for a stream at clockRate Hz with a
// random SSRC and random starting sequence number and timestamp (RFC 3550).
func NewSequencer(clockRate uint32) *Sequencer {
	if clockRate == 0 {
		clockRate = 8000
	}
	return &Sequencer{ssrc: rand.Uint32(), clock: clockRate, lastSeq: uint16(rand.Uint32()), lastTS: rand.Uint32()}
}

// SSRC is the stream's synchronisation source.
func (s *Sequencer) SSRC() uint32 { return s.ssrc }

// Next maps f's sequence number and timestamp into the outgoing stream.
// marker is true on the first packet of a new run (and whenever f has it).
func (s *Sequencer) Next(f *Frame, now time.Time) (seq uint16, ts uint32, marker bool) {
	if !s.started || f.Source != s.source {
		// Continue one packet after the last one, and advance the clock by
		// the time that passed (at least one frame) so the receiver's
		// jitter buffer sees a plausible stream.
		elapsed := uint32(FrameSamples)
		if s.started {
			if d := now.Sub(s.lastAt); d > FrameDuration {
				elapsed = uint32(d.Seconds() * float64(s.clock))
			}
		}
		s.seqOff = s.lastSeq + 1 - f.Seq
		s.tsOff = s.lastTS + elapsed - f.Timestamp
		s.source, s.started = f.Source, true
		marker = true
	}
	seq, ts = f.Seq+s.seqOff, f.Timestamp+s.tsOff
	// Only move forward: a late packet of the current run keeps its place
	// but does not pull the newest values back.
	if int16(seq-s.lastSeq) > 0 || marker {
		s.lastSeq = seq
	}
	if int32(ts-s.lastTS) > 0 || marker {
		s.lastTS = ts
	}
	s.lastAt = now
	return seq, ts, marker || f.Marker
}
