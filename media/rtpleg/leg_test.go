package rtpleg

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"pbxd/media"
)

func newEngine(t *testing.T, timeout time.Duration) *Engine {
	t.Helper()
	e, err := New(Config{Ports: PortRange{Lo: 30000 + int(time.Now().UnixNano()%1000)*20, Hi: 50000}, BindIP: netip.MustParseAddr("127.0.0.1"), MediaTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

// phone is a test RTP peer.
type phone struct {
	t    *testing.T
	conn *net.UDPConn
}

func newPhone(t *testing.T) *phone {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &phone{t: t, conn: c}
}

func (p *phone) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *phone) send(to netip.AddrPort, pt uint8, seq uint16, ts, ssrc uint32, payload []byte) {
	b := make([]byte, 12+len(payload))
	putHeader(b, false, pt, seq, ts, ssrc)
	copy(b[12:], payload)
	if _, err := p.conn.WriteToUDPAddrPort(b, to); err != nil {
		p.t.Fatal(err)
	}
}

func (p *phone) recv(timeout time.Duration) (media.RTPHeader, []byte, bool) {
	buf := make([]byte, 1500)
	for {
		p.conn.SetReadDeadline(time.Now().Add(timeout))
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return media.RTPHeader{}, nil, false
		}
		if isRTCP(buf[:n]) {
			continue
		}
		h, pl, ok := media.ParseRTP(buf[:n])
		if ok {
			return h, append([]byte(nil), pl...), true
		}
	}
}

func openLeg(t *testing.T, e *Engine, remote netip.AddrPort, c media.Codec) *Leg {
	l, err := e.Open("leg")
	if err != nil {
		t.Fatal(err)
	}
	l.Configure(Params{Remote: remote, Codec: c, EventPT: 101, Send: true, Recv: true})
	l.Start()
	return l
}

func TestBridgeForwardsAndTranscodes(t *testing.T) {
	e := newEngine(t, 0)
	pa, pb := newPhone(t), newPhone(t)
	var events atomic.Int32
	br := media.NewBridge(media.BridgeConfig{OnEvent: func(media.Leg, *media.Frame) { events.Add(1) }})
	la := openLeg(t, e, pa.addr(), media.PCMU)
	lb := openLeg(t, e, pb.addr(), media.PCMA)
	br.Add(la)
	br.Add(lb)
	defer br.Close()

	silenceU := bytes.Repeat([]byte{0xFF}, 160) // µ-law silence → A-law 0xD5
	for i := 0; i < 5; i++ {
		pa.send(la.LocalAddr(), 0, uint16(100+i), uint32(1000+160*i), 0xA, silenceU)
		h, pl, ok := pb.recv(time.Second)
		if !ok {
			t.Fatalf("packet %d not forwarded", i)
		}
		if h.PayloadType != 8 || len(pl) != 160 || pl[0] != 0xD5 {
			t.Fatalf("forwarded pt %d payload %x…", h.PayloadType, pl[:4])
		}
	}
	// Events keep their own payload type and reach OnEvent.
	pb.send(lb.LocalAddr(), 101, 7, 50, 0xB, []byte{5, 0x8a, 0, 160})
	h, pl, ok := pa.recv(time.Second)
	if !ok || h.PayloadType != 101 || pl[0] != 5 {
		t.Fatalf("event not forwarded: %+v %x", h, pl)
	}
	if events.Load() != 1 {
		t.Fatalf("OnEvent saw %d", events.Load())
	}
	// Muting A stops its audio reaching B, not B's reaching A.
	br.SetMuted(la, true)
	pa.send(la.LocalAddr(), 0, 200, 9000, 0xA, silenceU)
	if _, _, ok := pb.recv(200 * time.Millisecond); ok {
		t.Fatal("muted leg still heard")
	}
	pb.send(lb.LocalAddr(), 8, 8, 210, 0xB, bytes.Repeat([]byte{0xD5}, 160))
	if h, pl, ok := pa.recv(time.Second); !ok || h.PayloadType != 0 || (pl[0] != 0xFF && pl[0] != 0xFE) {
		t.Fatalf("muted leg no longer hears: %v %+v %x", ok, h, pl)
	}
	st := la.Stats()
	if st.PacketsReceived != 6 || st.PacketsSent != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLatchingAndHijackResistance(t *testing.T) {
	e := newEngine(t, 0)
	real, sdpOnly, stray, other := newPhone(t), newPhone(t), newPhone(t), newPhone(t)
	br := media.NewBridge(media.BridgeConfig{})
	// The SDP says sdpOnly, but the phone (behind NAT) sends from real.
	la := openLeg(t, e, sdpOnly.addr(), media.PCMU)
	lb := openLeg(t, e, other.addr(), media.PCMU)
	br.Add(la)
	br.Add(lb)
	defer br.Close()
	pl := bytes.Repeat([]byte{0x10}, 160)
	real.send(la.LocalAddr(), 0, 1, 160, 1, pl)
	if _, _, ok := other.recv(time.Second); !ok {
		t.Fatal("first packet not forwarded")
	}
	other.send(lb.LocalAddr(), 0, 1, 160, 2, pl)
	if _, _, ok := real.recv(time.Second); !ok {
		t.Fatal("reply did not go to the latched source")
	}
	// A stray sender is ignored while the phone is talking.
	for i := 0; i < 10; i++ {
		stray.send(la.LocalAddr(), 0, uint16(50+i), 0, 3, pl)
	}
	if _, _, ok := other.recv(200 * time.Millisecond); ok {
		t.Fatal("stray packets forwarded")
	}
}

func TestMediaTimeout(t *testing.T) {
	e := newEngine(t, 500*time.Millisecond)
	p := newPhone(t)
	l := openLeg(t, e, p.addr(), media.PCMU)
	fired := make(chan struct{})
	l.OnTimeout(func() { close(fired) })
	select {
	case <-fired:
	case <-time.After(3 * time.Second):
		t.Fatal("no media timeout")
	}
	// On hold (nothing expected) there is no timeout.
	l2 := openLeg(t, e, p.addr(), media.PCMU)
	l2.Configure(Params{Remote: p.addr(), Codec: media.PCMU, Send: true, Recv: false})
	l2.OnTimeout(func() { t.Error("timeout while on hold") })
	time.Sleep(time.Second)
}

func TestRTCPReports(t *testing.T) {
	e, err := New(Config{Ports: PortRange{Lo: 52000, Hi: 53000}, BindIP: netip.MustParseAddr("127.0.0.1"), RTCPInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p := newPhone(t)
	rtcpPeer := newPhone(t)
	l, _ := e.Open("x")
	l.Configure(Params{Remote: p.addr(), RemoteRTCP: rtcpPeer.addr(), Codec: media.PCMU, Send: true, Recv: true})
	l.Start()
	buf := make([]byte, 1500)
	rtcpPeer.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, _, err := rtcpPeer.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal("no RTCP report")
	}
	if buf[1] != 201 || binary.BigEndian.Uint32(buf[4:]) != l.seq.SSRC() || n < 8 {
		t.Fatalf("report %x", buf[:n])
	}
}

// freePortBlock is an even port at which n consecutive UDP ports on
// loopback are free, between 7000 and 9999: below the kernel's ephemeral
// range and the ranges other tests give pbxd, so that no other socket
// takes one of them while a test that needs that exact range runs.
func freePortBlock(t *testing.T, n int) int {
	t.Helper()
	for lo := 7000 + int(time.Now().UnixNano()%100)*20; lo+n <= 10000; lo += n + n%2 {
		var held []*net.UDPConn
		for p := lo; p < lo+n; p++ {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
			if err != nil {
				break
			}
			held = append(held, c)
		}
		for _, c := range held {
			c.Close()
		}
		if len(held) == n {
			return lo
		}
	}
	t.Fatalf("no %d free UDP ports in a row below 10000", n)
	return 0
}

func TestPortPoolExhaustion(t *testing.T) {
	lo := freePortBlock(t, 6)
	e, err := New(Config{Ports: PortRange{Lo: lo, Hi: lo + 5}, BindIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var legs []*Leg
	for {
		l, err := e.Open("x")
		if err != nil {
			break
		}
		if l.LocalAddr().Port()%2 != 0 {
			t.Fatalf("odd RTP port %d", l.LocalAddr().Port())
		}
		legs = append(legs, l)
	}
	if len(legs) == 0 || len(legs) > 3 {
		t.Fatalf("%d legs from 3 pairs", len(legs))
	}
	legs[0].Close()
	if _, err := e.Open("y"); err != nil {
		t.Fatalf("released pair not reusable: %v", err)
	}
}

// A pair bound ahead of its call may have caught packets; the leg that
// takes it must not latch onto them.
func TestSparePairDropsQueuedPackets(t *testing.T) {
	lo := freePortBlock(t, 4)
	e, err := New(Config{Ports: PortRange{Lo: lo, Hi: lo + 3}, BindIP: netip.MustParseAddr("127.0.0.1"), Spares: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s := <-e.spares
	e.spares <- s
	stray, phone := newPhone(t), newPhone(t)
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(s.port))
	pl := bytes.Repeat([]byte{0x10}, 160)
	for i := 0; i < 3; i++ {
		stray.send(to, 0, uint16(i), 0, 9, pl)
	}
	time.Sleep(20 * time.Millisecond) // let them queue
	l := openLeg(t, e, phone.addr(), media.PCMU)
	defer l.Close()
	if l.LocalAddr() != to {
		t.Fatalf("leg took %v, not the spare %v", l.LocalAddr(), to)
	}
	phone.send(to, 0, 1, 160, 1, pl)
	deadline := time.Now().Add(time.Second)
	for l.Stats().PacketsReceived == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := l.Send(&media.Frame{Kind: media.KindAudio, Codec: media.PCMU, Payload: pl}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := phone.recv(time.Second); !ok {
		t.Fatal("leg latched onto a packet queued before its call")
	}
	if st := l.Stats(); st.PacketsReceived != 1 {
		t.Fatalf("leg counted %d packets, want only the phone's", st.PacketsReceived)
	}
}
