package webrtcleg

import (
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"pbxd/media"
)

// onTrack runs, on a goroutine pion starts for it, when the browser's
// first RTP packet of a stream has arrived. That goroutine becomes the
// stream's receive goroutine; another drains its RTCP.
func (l *Leg) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	if t.Kind() != webrtc.RTPCodecTypeAudio || !l.goStart(2) {
		return
	}
	go l.drainReceiverRTCP(r)
	l.readRTP(t)
}

// readRTP is the receive goroutine. It reads raw packets rather than
// ReadRTP's freshly allocated ones, and it survives per-packet errors:
// pion returns the packet with an error when its payload type was not
// negotiated (it also relabels the track's codec whenever the type
// changes, audio to telephone-event and back, so the type is taken from
// each packet). A read that returns no packet ends the loop: the
// connection is closing.
func (l *Leg) readRTP(t *webrtc.TrackRemote) {
	defer l.wg.Done()
	buf := make([]byte, 1500)
	var f media.Frame
	for {
		n, _, err := t.Read(buf)
		if err != nil || n == 0 {
			if n == 0 {
				if !l.closed.Load() {
					l.log.Debug("webrtc receive ended", "err", err)
				}
				return
			}
			continue
		}
		h, payload, ok := media.ParseRTP(buf[:n])
		if !ok {
			continue
		}
		neg := l.neg.Load()
		now := time.Now()
		kind, codec, known := media.KindAudio, media.Codec{}, false
		if neg != nil {
			if neg.eventPT != 0 && h.PayloadType == neg.eventPT {
				kind, known = media.KindEvent, true
			} else {
				codec, known = neg.audioCodec(h.PayloadType)
			}
		}
		l.rxMu.Lock()
		l.rs.update(h.SSRC, h.Seq, h.Timestamp, now, 8000)
		l.received++
		l.recvB += uint64(len(payload))
		if kind == media.KindEvent {
			l.events++
		}
		l.rxMu.Unlock()
		l.lastRecv.Store(now.UnixNano())
		if !known {
			continue
		}
		box := l.recv.Load()
		if box == nil {
			continue
		}
		f = media.Frame{Kind: kind, Codec: codec, Source: h.SSRC, Seq: h.Seq, Timestamp: h.Timestamp, Marker: h.Marker, Payload: payload}
		box.r.Receive(l, &f)
	}
}

// readSenderRTCP reads what the browser reports about our stream: the
// loss and jitter of its receiver reports go into Stats.
func (l *Leg) readSenderRTCP(s *webrtc.RTPSender) {
	defer l.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := s.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		_, ours := l.trk.bound()
		for _, p := range pkts {
			var reports []rtcp.ReceptionReport
			switch p := p.(type) {
			case *rtcp.ReceiverReport:
				reports = p.Reports
			case *rtcp.SenderReport:
				reports = p.Reports
			}
			for _, rr := range reports {
				if rr.SSRC == ours {
					l.mu.Lock()
					l.remoteLoss = float64(rr.FractionLost) / 256
					l.remoteJit = float64(rr.Jitter) / 8
					l.mu.Unlock()
				}
			}
		}
	}
}

// drainReceiverRTCP reads the browser's sender reports so that pion's
// receiver-report interceptor sees them (for the LSR/DLSR of our reports).
func (l *Leg) drainReceiverRTCP(r *webrtc.RTPReceiver) {
	defer l.wg.Done()
	buf := make([]byte, 1500)
	for {
		if _, _, err := r.Read(buf); err != nil {
			return
		}
	}
}

// recvStats are the RFC 3550 (Appendix A.3, A.8) figures of the received
// stream: extended highest sequence number, cumulative loss, interarrival
// jitter. A new SSRC (the browser restarted its stream) starts over.
type recvStats struct {
	started  bool
	ssrc     uint32
	baseSeq  uint32
	maxSeq   uint16
	cycles   uint32
	received uint64
	transit  int64
	jitter   float64 // timestamp units
	base     time.Time
}

func (s *recvStats) reset(ssrc uint32, seq uint16, ts uint32, now time.Time) {
	*s = recvStats{started: true, ssrc: ssrc, baseSeq: uint32(seq), maxSeq: seq, received: 1, base: now}
	s.transit = -int64(ts)
}

// update accounts one packet arrived at now, on a clock of rate Hz.
func (s *recvStats) update(ssrc uint32, seq uint16, ts uint32, now time.Time, rate uint32) {
	if !s.started || ssrc != s.ssrc {
		s.reset(ssrc, seq, ts, now)
		return
	}
	switch d := seq - s.maxSeq; {
	case d == 0: // duplicate
	case d < 3000: // in order, possibly with a gap
		if seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		s.maxSeq = seq
	case d <= 65535-100: // a jump: the sender restarted its numbering
		s.reset(ssrc, seq, ts, now)
		return
	default: // late or reordered
	}
	s.received++
	arrival := int64(now.Sub(s.base)) * int64(rate) / int64(time.Second)
	transit := arrival - int64(ts)
	d := int64(int32(transit - s.transit))
	if d < 0 {
		d = -d
	}
	s.jitter += (float64(d) - s.jitter) / 16
	s.transit = transit
}

// lost is the cumulative number of packets lost (negative with
// duplicates, as RFC 3550 allows).
func (s *recvStats) lost() int64 {
	if !s.started {
		return 0
	}
	expected := int64(s.cycles) + int64(s.maxSeq) - int64(s.baseSeq) + 1
	return expected - int64(s.received)
}
