package rtpleg

import "time"

// recvStats keeps the RFC 3550 Appendix A.1/A.3/A.8 reception figures of
// one source: extended highest sequence, cumulative loss and interarrival
// jitter. Only the leg's receive goroutine updates it.
type recvStats struct {
	started  bool
	ssrc     uint32
	baseSeq  uint32
	maxSeq   uint16
	cycles   uint32
	received uint64
	// expectedPrior/receivedPrior are the counts at the last report.
	expectedPrior uint32
	receivedPrior uint64
	transit       int64
	jitter        float64 // in timestamp units
	base          time.Time
}

const maxDropout = 3000

// update accounts one packet of source ssrc with sequence seq and RTP
// timestamp ts, arrived at now, on a clock of rate Hz.
func (s *recvStats) update(ssrc uint32, seq uint16, ts uint32, now time.Time, rate uint32) {
	if !s.started || ssrc != s.ssrc {
		*s = recvStats{started: true, ssrc: ssrc, baseSeq: uint32(seq), maxSeq: seq, base: now}
		s.received = 1
		s.transit = s.arrival(now, rate) - int64(ts)
		return
	}
	delta := seq - s.maxSeq
	switch {
	case delta == 0:
		// duplicate
	case delta < maxDropout:
		if seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		s.maxSeq = seq
	case delta <= 65535-100:
		// A large jump: the sender restarted; start over on this packet.
		*s = recvStats{started: true, ssrc: ssrc, baseSeq: uint32(seq), maxSeq: seq, base: now}
		s.received = 1
		s.transit = s.arrival(now, rate) - int64(ts)
		return
	default:
		// late or reordered packet: counted, does not move maxSeq
	}
	s.received++
	// Jitter: the change in transit time (arrival in timestamp units minus
	// the RTP timestamp) between consecutive packets, smoothed by 1/16.
	transit := s.arrival(now, rate) - int64(ts)
	d := int64(int32(transit - s.transit))
	if d < 0 {
		d = -d
	}
	s.jitter += (float64(d) - s.jitter) / 16
	s.transit = transit
}

// arrival is now in timestamp units since the stream's first packet.
func (s *recvStats) arrival(now time.Time, rate uint32) int64 {
	return int64(now.Sub(s.base)) * int64(rate) / int64(time.Second)
}

// extendedMax is the extended highest sequence number received.
func (s *recvStats) extendedMax() uint32 { return s.cycles + uint32(s.maxSeq) }

// lost is the cumulative number of packets lost (may be negative with
// duplicates, as RFC 3550 allows).
func (s *recvStats) lost() int64 {
	if !s.started {
		return 0
	}
	expected := int64(s.extendedMax()) - int64(s.baseSeq) + 1
	return expected - int64(s.received)
}

// fractionLost is the loss since the previous call, as RFC 3550's 8-bit
// fraction, and it moves the interval on.
func (s *recvStats) fractionLost() uint8 {
	expected := s.extendedMax() - s.baseSeq + 1
	expInterval := expected - s.expectedPrior
	recvInterval := s.received - s.receivedPrior
	s.expectedPrior, s.receivedPrior = expected, s.received
	lostInterval := int64(expInterval) - int64(recvInterval)
	if expInterval == 0 || lostInterval <= 0 {
		return 0
	}
	return uint8((lostInterval << 8) / int64(expInterval))
}
