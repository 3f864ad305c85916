package rtpleg

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"pbxd/media"
)

// Params are what SDP negotiation decided for a leg.
type Params struct {
	// Remote is the party's RTP address from its SDP; RemoteRTCP its RTCP
	// address (port+1 unless a=rtcp said otherwise; equal to Remote with
	// rtcp-mux).
	Remote, RemoteRTCP netip.AddrPort
	Codec              media.Codec
	// EventPT is the telephone-event payload type, 0 for none.
	EventPT uint8
	// Send is false while the party must not be sent audio (it said
	// recvonly is off: sendonly/inactive on our side). Recv is false while
	// the party is not expected to send (no media timeout then).
	Send, Recv bool
}

// Leg is a plain RTP/RTCP endpoint on the box for one SIP party. It
// implements media.Leg.
type Leg struct {
	e     *Engine
	id    string
	port  int
	rtp   *net.UDPConn
	rtcp  *net.UDPConn
	local netip.AddrPort

	mu sync.Mutex
	p  Params
	// src is where the party's RTP is coming from (symmetric RTP: we send
	// there, not to the SDP address); latched once a packet arrived.
	src, srcRTCP netip.AddrPort
	latched      bool
	cand         netip.AddrPort
	candSeq      uint16
	candCount    int
	seq          *media.Sequencer
	sent         uint64
	sentBytes    uint64
	sentTS       uint32
	lastSR       uint32 // middle 32 bits of the NTP time of the last SR received
	lastSRAt     time.Time
	remoteLoss   float64
	remoteJitter float64

	// sendMu serialises Send's use of sbuf and the socket write; l.mu is
	// not held while writing, so a slow write never stalls Stats or the
	// engine's housekeeping.
	sendMu sync.Mutex
	sbuf   [1500]byte

	recv     atomic.Pointer[receiverBox]
	lastRecv atomic.Int64 // unix nanos of the last RTP packet from the party
	started  atomic.Bool
	timedOut atomic.Bool
	closed   atomic.Bool
	onTO     func()
	wg       sync.WaitGroup

	// Receive-side figures, under mu.
	rs       recvStats
	received uint64
	recvB    uint64
	events   uint64
}

type receiverBox struct{ r media.Receiver }

var _ media.Leg = (*Leg)(nil)

// ID names the leg.
func (l *Leg) ID() string { return l.id }

// LocalAddr is the RTP address to put in our SDP (the advertised IP).
func (l *Leg) LocalAddr() netip.AddrPort { return l.local }

// Codec is the negotiated audio codec.
func (l *Leg) Codec() media.Codec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.p.Codec
}

// EventPayloadType is the negotiated telephone-event payload type.
func (l *Leg) EventPayloadType() uint8 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.p.EventPT
}

// SetReceiver routes the party's frames to r.
func (l *Leg) SetReceiver(r media.Receiver) {
	if r == nil {
		l.recv.Store(nil)
		return
	}
	l.recv.Store(&receiverBox{r})
}

// OnTimeout sets what happens when the party sends no RTP for the
// engine's media timeout; fn runs once, on its own goroutine.
func (l *Leg) OnTimeout(fn func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onTO = fn
}

// Configure applies (re-)negotiated parameters. A new remote address
// restarts learning of the party's source address.
func (l *Leg) Configure(p Params) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p.RemoteRTCP == (netip.AddrPort{}) && p.Remote.IsValid() {
		p.RemoteRTCP = netip.AddrPortFrom(p.Remote.Addr(), p.Remote.Port()+1)
	}
	if p.Remote != l.p.Remote || !l.latched {
		l.src, l.srcRTCP, l.latched = p.Remote, p.RemoteRTCP, false
	}
	if p.Recv && !l.p.Recv {
		// Expecting media again (call resumed): the timeout counts from now.
		l.lastRecv.Store(time.Now().UnixNano())
	}
	l.p = p
}

// Start begins receiving; call it once the leg is configured.
func (l *Leg) Start() {
	if l.closed.Load() || !l.started.CompareAndSwap(false, true) {
		return
	}
	l.lastRecv.Store(time.Now().UnixNano())
	l.wg.Add(2)
	go l.readRTP()
	go l.readRTCP()
}

// Send writes f to the party in the leg's own outgoing stream.
func (l *Leg) Send(f *media.Frame) error {
	if l.closed.Load() {
		return media.ErrClosed
	}
	if len(f.Payload) > len(l.sbuf)-12 {
		return media.ErrCodec
	}
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	l.mu.Lock()
	dst := l.src
	if !dst.IsValid() {
		l.mu.Unlock()
		return media.ErrNoRemote
	}
	if !l.p.Send {
		l.mu.Unlock()
		return nil
	}
	var pt uint8
	switch {
	case f.Kind == media.KindAudio && f.Codec.Name != l.p.Codec.Name:
		l.mu.Unlock()
		return media.ErrCodec
	case f.Kind == media.KindAudio:
		pt = l.p.Codec.PayloadType
	case f.Kind == media.KindEvent && l.p.EventPT != 0:
		pt = l.p.EventPT
	default: // no telephone-event negotiated, or not a media frame
		l.mu.Unlock()
		return nil
	}
	seq, ts, marker := l.seq.Next(f, time.Now())
	ssrc := l.seq.SSRC()
	l.mu.Unlock()

	putHeader(l.sbuf[:12], marker, pt, seq, ts, ssrc)
	n := 12 + copy(l.sbuf[12:], f.Payload)
	if _, err := l.rtp.WriteToUDPAddrPort(l.sbuf[:n], dst); err != nil {
		return err
	}
	l.mu.Lock()
	l.sent++
	l.sentBytes += uint64(n - 12)
	l.sentTS = ts
	l.mu.Unlock()
	return nil
}

// readRTP is the receive goroutine: it learns the party's address and
// hands frames to the receiver.
func (l *Leg) readRTP() {
	defer l.wg.Done()
	buf := make([]byte, 1500)
	var f media.Frame
	for {
		n, from, err := l.rtp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.closed.Load() {
				return
			}
			continue
		}
		pkt := buf[:n]
		if isRTCP(pkt) {
			l.handleRTCP(pkt, from)
			continue
		}
		h, payload, ok := media.ParseRTP(pkt)
		if !ok {
			continue
		}
		now := time.Now()
		// One critical section per packet: latching, counters, payload type.
		l.mu.Lock()
		if !l.accept(from, h.Seq, now) {
			l.mu.Unlock()
			continue
		}
		l.rs.update(h.SSRC, h.Seq, h.Timestamp, now, 8000)
		l.received++
		l.recvB += uint64(len(payload))
		evPT := l.p.EventPT
		isEvent := evPT != 0 && h.PayloadType == evPT
		if isEvent {
			l.events++
		}
		l.mu.Unlock()
		l.lastRecv.Store(now.UnixNano())

		if isEvent {
			f.Kind, f.Codec = media.KindEvent, media.Codec{}
		} else {
			c, ok := media.CodecByPayloadType(h.PayloadType)
			if !ok {
				continue // comfort noise, unknown formats
			}
			f.Kind, f.Codec = media.KindAudio, c
		}
		box := l.recv.Load()
		if box == nil {
			continue
		}
		f.Source, f.Seq, f.Timestamp, f.Marker, f.Payload = h.SSRC, h.Seq, h.Timestamp, h.Marker, payload
		box.r.Receive(l, &f)
	}
}

// Latching: packets from the learnt source are taken. Before the first
// packet the leg takes whatever arrives and latches onto it (the phone may
// be behind NAT, its SDP address useless). Afterwards another source takes
// over only when the current one has been silent for a second and the new
// one sent a few packets in sequence (a NAT rebinding), so a stray sender
// cannot hijack the stream.
const (
	relatchSilence = time.Second
	relatchPackets = 4
)

// accept runs with l.mu held.
func (l *Leg) accept(from netip.AddrPort, seq uint16, now time.Time) bool {
	if from == l.src && l.latched {
		return true
	}
	if !l.latched {
		l.src, l.latched = from, true
		if from.Addr() != l.srcRTCP.Addr() || !l.srcRTCP.IsValid() {
			l.srcRTCP = netip.AddrPortFrom(from.Addr(), from.Port()+1)
		}
		return true
	}
	if from != l.cand || seq != l.candSeq+1 {
		l.cand, l.candCount = from, 0
	}
	l.candSeq = seq
	l.candCount++
	silent := now.Sub(time.Unix(0, l.lastRecv.Load())) >= relatchSilence
	if l.candCount >= relatchPackets && silent {
		l.src, l.srcRTCP = from, netip.AddrPortFrom(from.Addr(), from.Port()+1)
		l.cand, l.candCount = netip.AddrPort{}, 0
		return true
	}
	return false
}

// Stats reports the leg's counters.
func (l *Leg) Stats() media.Stats {
	l.mu.Lock()
	st := media.Stats{
		PacketsReceived: l.received,
		BytesReceived:   l.recvB,
		PacketsLost:     l.rs.lost(),
		JitterMs:        l.rs.jitter / 8,
		EventsReceived:  l.events,
	}
	st.PacketsSent, st.BytesSent = l.sent, l.sentBytes
	st.RemoteFractionLost, st.RemoteJitterMs = l.remoteLoss, l.remoteJitter
	st.Codec = l.p.Codec.Name
	l.mu.Unlock()
	return st
}

// Close releases the sockets and waits for the receive goroutines.
func (l *Leg) Close() error {
	if !l.closed.CompareAndSwap(false, true) {
		return nil
	}
	l.recv.Store(nil)
	l.rtp.Close()
	l.rtcp.Close()
	l.wg.Wait()
	l.e.forget(l)
	return nil
}

// idle reports how long the party has been silent, if it should be
// sending at all.
func (l *Leg) idle(now time.Time) (time.Duration, bool) {
	if !l.started.Load() || l.closed.Load() {
		return 0, false
	}
	l.mu.Lock()
	recv := l.p.Recv
	l.mu.Unlock()
	if !recv {
		return 0, false
	}
	return now.Sub(time.Unix(0, l.lastRecv.Load())), true
}

func (l *Leg) fireTimeout() {
	if !l.timedOut.CompareAndSwap(false, true) {
		return
	}
	l.mu.Lock()
	fn := l.onTO
	l.mu.Unlock()
	if fn != nil {
		go fn()
	}
}
