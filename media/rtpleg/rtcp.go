package rtpleg

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pion/rtcp"
)

func (l *Leg) readRTCP() {
	defer l.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, from, err := l.rtcp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.closed.Load() {
				return
			}
			continue
		}
		l.handleRTCP(buf[:n], from)
	}
}

// handleRTCP takes what the party reports about our stream (loss and
// jitter from a reception report block for our SSRC) and the timing of its
// sender reports, for the LSR/DLSR fields of ours.
func (l *Leg) handleRTCP(b []byte, from netip.AddrPort) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		return
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.latched && from.Addr() != l.src.Addr() {
		return // not our party
	}
	l.srcRTCP = from
	ours := l.seq.SSRC()
	for _, p := range pkts {
		var reports []rtcp.ReceptionReport
		switch p := p.(type) {
		case *rtcp.SenderReport:
			l.lastSR = uint32(p.NTPTime >> 16)
			l.lastSRAt = now
			reports = p.Reports
		case *rtcp.ReceiverReport:
			reports = p.Reports
		}
		for _, rr := range reports {
			if rr.SSRC == ours {
				l.remoteLoss = float64(rr.FractionLost) / 256
				l.remoteJitter = float64(rr.Jitter) / 8
			}
		}
	}
}

// ntpTime converts t to the 64-bit NTP format of sender reports.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// sendReport sends a sender report (when we have sent media since the
// last one) or a receiver report, each with a reception block for the
// party's stream once it has sent.
func (l *Leg) sendReport(now time.Time) {
	l.mu.Lock()
	dst := l.srcRTCP
	if !dst.IsValid() || !l.started.Load() {
		l.mu.Unlock()
		return
	}
	ssrc := l.seq.SSRC()
	var blocks []rtcp.ReceptionReport
	if l.rs.started {
		lost := l.rs.lost()
		if lost < 0 {
			lost = 0
		}
		if lost > 0x7fffff {
			lost = 0x7fffff
		}
		rr := rtcp.ReceptionReport{
			SSRC:               l.rs.ssrc,
			FractionLost:       l.rs.fractionLost(),
			TotalLost:          uint32(lost),
			LastSequenceNumber: l.rs.extendedMax(),
			Jitter:             uint32(l.rs.jitter),
		}
		if !l.lastSRAt.IsZero() {
			rr.LastSenderReport = l.lastSR
			rr.Delay = uint32(now.Sub(l.lastSRAt).Seconds() * 65536)
		}
		blocks = append(blocks, rr)
	}
	var pkt rtcp.Packet
	if l.sent > 0 {
		pkt = &rtcp.SenderReport{SSRC: ssrc, NTPTime: ntpTime(now), RTPTime: l.sentTS,
			PacketCount: uint32(l.sent), OctetCount: uint32(l.sentBytes), Reports: blocks}
	} else {
		pkt = &rtcp.ReceiverReport{SSRC: ssrc, Reports: blocks}
	}
	conn := l.rtcp
	if l.p.RemoteRTCP == l.p.Remote && l.p.Remote.IsValid() {
		conn = l.rtp // rtcp-mux
		dst = l.src
	}
	l.mu.Unlock()
	b, err := pkt.Marshal()
	if err != nil {
		return
	}
	_, _ = conn.WriteToUDPAddrPort(b, dst)
}
