package webrtcleg

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"pbxd/media"
	"pbxd/media/dtmf"
	"pbxd/media/g711"
	"pbxd/media/rtpleg"
	"pbxd/media/tone"
)

// phone is a plain RTP peer on a UDP socket: a SIP phone's media.
type phone struct {
	t    testing.TB
	conn *net.UDPConn
	ssrc uint32

	mu   sync.Mutex
	pkts []*rtp.Packet
	wg   sync.WaitGroup
}

func newPhone(t testing.TB) *phone {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{t: t, conn: c, ssrc: rand.Uint32()}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if n >= 2 && buf[1] >= 192 && buf[1] <= 223 {
				continue // RTCP
			}
			pkt := &rtp.Packet{}
			if pkt.Unmarshal(append([]byte(nil), buf[:n]...)) == nil {
				p.mu.Lock()
				p.pkts = append(p.pkts, pkt)
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { c.Close(); p.wg.Wait() })
	return p
}

func (p *phone) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *phone) received(pt uint8) []*rtp.Packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*rtp.Packet
	for _, q := range p.pkts {
		if q.PayloadType == pt {
			out = append(out, q)
		}
	}
	return out
}

func (p *phone) clear() {
	p.mu.Lock()
	p.pkts = nil
	p.mu.Unlock()
}

// talk sends a PCMU tone to to every 20 ms until stop is closed.
func (p *phone) talk(to netip.AddrPort, freq float64, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		osc := tone.NewOscillator(8000, tone.AmplitudeDBFS(-12), freq)
		pcm := make([]int16, media.FrameSamples)
		tick := time.NewTicker(media.FrameDuration)
		defer tick.Stop()
		seq, ts := uint16(rand.Uint32()), rand.Uint32()
		for i := 0; ; i++ {
			osc.Next(pcm)
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: seq, Timestamp: ts, SSRC: p.ssrc, Marker: i == 0},
				Payload: g711.EncodeUlawTo(nil, pcm)}
			b, _ := pkt.Marshal()
			_, _ = p.conn.WriteToUDPAddrPort(b, to)
			seq++
			ts += media.FrameSamples
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return &wg
}

// digit sends an RFC 4733 event on pt, on a stream of its own (a new
// SSRC, as some gateways do): another source switch for the browser leg.
func (p *phone) digit(to netip.AddrPort, d rune, pt uint8) {
	pkts, _ := dtmf.Generate(d, 800, 160, 10)
	for i, ev := range pkts {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: uint16(500 + i), Timestamp: 7777, SSRC: p.ssrc ^ 1, Marker: ev.Marker},
			Payload: ev.Payload}
		b, _ := pkt.Marshal()
		_, _ = p.conn.WriteToUDPAddrPort(b, to)
		time.Sleep(media.FrameDuration)
	}
}

func newRTPEngine(t testing.TB) *rtpleg.Engine {
	t.Helper()
	lo := 40000 + rand.IntN(400)*20
	e, err := rtpleg.New(rtpleg.Config{Ports: rtpleg.PortRange{Lo: lo, Hi: lo + 2000}, BindIP: loopback, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func openRTPLeg(t testing.TB, e *rtpleg.Engine, p *phone) *rtpleg.Leg {
	t.Helper()
	l, err := e.Open("phone")
	if err != nil {
		t.Fatal(err)
	}
	l.Configure(rtpleg.Params{Remote: p.addr(), Codec: media.PCMU, EventPT: 101, Send: true, Recv: true})
	l.Start()
	t.Cleanup(func() { l.Close() })
	return l
}

// since returns the browser's packets of pt received after the first n.
func since(b *browser, n int, pt uint8) []*rtp.Packet {
	var out []*rtp.Packet
	for _, p := range b.received()[n:] {
		if p.PayloadType == pt {
			out = append(out, p)
		}
	}
	return out
}

func payloadsOf(pkts []*rtp.Packet) (out [][]byte) {
	for _, p := range pkts {
		out = append(out, p.Payload)
	}
	return out
}

// TestBridgedWithRTPLeg joins a WebRTC leg and plain RTP legs in one
// media.Bridge: tones and digits cross both ways, and the browser's stream
// stays one run of consecutive sequence numbers and rising timestamps while
// the bridge switches sources (phone A, phone B, a three-way mix, B again).
func TestBridgedWithRTPLeg(t *testing.T) {
	checkGoroutines(t)
	we := newEngine(t, Config{})
	re := newRTPEngine(t)
	wl, err := we.Open("browser")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wl.Close() })
	b := newBrowser(t, nil)
	connect(t, wl, b)

	pa, pb := newPhone(t), newPhone(t)
	la, lb := openRTPLeg(t, re, pa), openRTPLeg(t, re, pb)
	var events []media.Frame
	var evMu sync.Mutex
	br := media.NewBridge(media.BridgeConfig{OnEvent: func(from media.Leg, f *media.Frame) {
		evMu.Lock()
		events = append(events, *f)
		evMu.Unlock()
	}})
	t.Cleanup(br.Close)
	br.Add(la)
	br.Add(wl)

	stopA, stopB := make(chan struct{}), make(chan struct{})
	talkA := pa.talk(la.LocalAddr(), 400, stopA)
	defer func() { close(stopA); talkA.Wait() }()

	// Phone A → browser.
	mark := len(b.received())
	time.Sleep(time.Second)
	assertTone(t, "browser hears phone A", decode("PCMU", payloadsOf(since(b, mark, 0)[5:])...), 400)

	// Browser → phone A.
	b.sendTone(1000, 0, 50)
	got := pa.received(0)
	if len(got) < 45 {
		t.Fatalf("phone A got %d packets", len(got))
	}
	assertTone(t, "phone A hears browser", decode("PCMU", payloadsOf(got[5:])...), 1000)

	// DTMF both ways, each side on its own payload type.
	pa.digit(la.LocalAddr(), '9', 101)
	time.Sleep(100 * time.Millisecond)
	te := since(b, mark, 126)
	if len(te) < 4 {
		t.Fatalf("browser got %d telephone-event packets", len(te))
	}
	if ev, _ := dtmf.Unmarshal(te[0].Payload); ev.Code != 9 {
		t.Errorf("browser got event %+v", ev)
	}
	pa.clear()
	b.sendDigit('3', 126)
	time.Sleep(100 * time.Millisecond)
	if pe := pa.received(101); len(pe) < 4 {
		t.Errorf("phone A got %d event packets", len(pe))
	} else if ev, _ := dtmf.Unmarshal(pe[0].Payload); ev.Code != 3 {
		t.Errorf("phone A got event %+v", ev)
	}
	evMu.Lock()
	if len(events) < 8 {
		t.Errorf("OnEvent saw %d events", len(events))
	}
	evMu.Unlock()

	// Source switch: B replaces A.
	talkB := pb.talk(lb.LocalAddr(), 700, stopB)
	defer func() { close(stopB); talkB.Wait() }()
	br.Remove(la)
	br.Add(lb)
	mark = len(b.received())
	time.Sleep(time.Second)
	assertTone(t, "browser hears phone B", decode("PCMU", payloadsOf(since(b, mark, 0)[5:])...), 700)

	// Three parties: the bridge mixes; the browser hears A and B.
	br.Add(la)
	if !br.Mixing() {
		t.Fatal("bridge does not mix three parties")
	}
	mark = len(b.received())
	time.Sleep(time.Second)
	r := tone.Detect(decode("PCMU", payloadsOf(since(b, mark, 0)[5:])...), 8000, []float64{400, 700, 1000})
	if r[400] < tone.PresentRatio || r[700] < tone.PresentRatio || r[1000] > tone.AbsentRatio {
		t.Errorf("browser's mix: %v", r)
	}
	// Back to forwarding B.
	br.Remove(la)
	mark = len(b.received())
	time.Sleep(500 * time.Millisecond)
	assertTone(t, "browser hears phone B again", decode("PCMU", payloadsOf(since(b, mark, 0)[5:])...), 700)

	// One stream all along: every packet the browser got (audio and
	// events) follows the one before it, timestamps never go back.
	all := b.received()
	runs := 0
	for i := 1; i < len(all); i++ {
		p, q := all[i-1], all[i]
		if q.SSRC != all[0].SSRC {
			t.Fatalf("SSRC changed at packet %d", i)
		}
		if q.SequenceNumber != p.SequenceNumber+1 {
			t.Errorf("packet %d: seq %d after %d", i, q.SequenceNumber, p.SequenceNumber)
		}
		if int32(q.Timestamp-p.Timestamp) < 0 {
			t.Errorf("packet %d: timestamp %d after %d", i, q.Timestamp, p.Timestamp)
		}
		if q.Marker && q.PayloadType == 0 {
			runs++
		}
	}
	if runs < 4 {
		t.Errorf("%d marked runs, want at least 4 (A, after the digit, B, mix, B)", runs)
	}
	t.Logf("browser got %d packets in %d runs; leg stats %+v", len(all), runs, wl.Stats())
}
