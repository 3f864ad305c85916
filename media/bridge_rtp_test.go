package media_test

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"pbxd/media"
	"pbxd/media/g711"
	"pbxd/media/rtpleg"
	"pbxd/media/tone"
)

// rtpPhone is a party on loopback UDP: it sends its tone as RTP every
// 20 ms and records every RTP packet the box sends it.
type rtpPhone struct {
	conn  *net.UDPConn
	codec media.Codec
	freq  float64

	mu  sync.Mutex
	got []rtpPacket
}

type rtpPacket struct {
	at     time.Time
	pt     uint8
	marker bool
	seq    uint16
	ts     uint32
	ssrc   uint32
	pcm    []int16
}

func newRTPPhone(t *testing.T, c media.Codec, freq float64) *rtpPhone {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &rtpPhone{conn: conn, codec: c, freq: freq}
	done := make(chan struct{})
	go p.read(done)
	t.Cleanup(func() { conn.Close(); <-done })
	return p
}

func (p *rtpPhone) addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *rtpPhone) read(done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 1500)
	for {
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		b := buf[:n]
		if n < 12 || b[0]>>6 != 2 || (b[1] >= 192 && b[1] <= 223) {
			continue // not RTP (RTCP reports)
		}
		pk := rtpPacket{at: time.Now(), pt: b[1] & 0x7f, marker: b[1]&0x80 != 0,
			seq: binary.BigEndian.Uint16(b[2:]), ts: binary.BigEndian.Uint32(b[4:]), ssrc: binary.BigEndian.Uint32(b[8:])}
		switch pk.pt {
		case media.PCMU.PayloadType:
			pk.pcm = g711.DecodeUlawTo(nil, b[12:])
		case media.PCMA.PayloadType:
			pk.pcm = g711.DecodeAlawTo(nil, b[12:])
		}
		p.mu.Lock()
		p.got = append(p.got, pk)
		p.mu.Unlock()
	}
}

// talk sends the phone's tone to the leg until the test ends.
func (p *rtpPhone) talk(t *testing.T, to netip.AddrPort, ssrc uint32) {
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		osc := tone.NewOscillator(8000, tone.AmplitudeDBFS(-20), p.freq)
		pcm := make([]int16, media.FrameSamples)
		pkt := make([]byte, 12, 12+media.FrameSamples)
		tick := time.NewTicker(media.FrameDuration)
		defer tick.Stop()
		for seq := uint16(1000); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			osc.Next(pcm)
			pkt = pkt[:12]
			pkt[0], pkt[1] = 0x80, p.codec.PayloadType
			binary.BigEndian.PutUint16(pkt[2:], seq)
			binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*media.FrameSamples)
			binary.BigEndian.PutUint32(pkt[8:], ssrc)
			if p.codec.Name == media.PCMA.Name {
				pkt = g711.EncodeAlawTo(pkt, pcm)
			} else {
				pkt = g711.EncodeUlawTo(pkt, pcm)
			}
			if _, err := p.conn.WriteToUDPAddrPort(pkt, to); err != nil {
				return
			}
		}
	}()
}

func (p *rtpPhone) packets() []rtpPacket {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]rtpPacket(nil), p.got...)
}

// audioBetween joins the audio of the packets that arrived in [from, to).
func audioBetween(ps []rtpPacket, from, to time.Time) []int16 {
	var out []int16
	for _, p := range ps {
		if !p.at.Before(from) && p.at.Before(to) {
			out = append(out, p.pcm...)
		}
	}
	return out
}

// TestRTPForwardMixForward runs a call between two real RTP legs over
// loopback UDP, brings a third party in (the bridge starts mixing) and out
// again (it forwards again), and checks on each phone's socket that the
// stream it receives stays one continuous RTP stream: one SSRC, sequence
// numbers up by one, timestamps always forward, no long gap.
func TestRTPForwardMixForward(t *testing.T) {
	t.Parallel()
	e, err := rtpleg.New(rtpleg.Config{Ports: rtpleg.PortRange{Lo: 56000, Hi: 60000}, BindIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	pa := newRTPPhone(t, media.PCMU, fAgent)
	pb := newRTPPhone(t, media.PCMA, fCustomer)
	pc := newRTPPhone(t, media.PCMU, fThird)
	open := func(p *rtpPhone) *rtpleg.Leg {
		l, err := e.Open("leg")
		if err != nil {
			t.Fatal(err)
		}
		l.Configure(rtpleg.Params{Remote: p.addr(), Codec: p.codec, EventPT: 101, Send: true, Recv: true})
		l.Start()
		return l
	}
	la, lb, lc := open(pa), open(pb), open(pc)
	pa.talk(t, la.LocalAddr(), 0xA)
	pb.talk(t, lb.LocalAddr(), 0xB)
	pc.talk(t, lc.LocalAddr(), 0xC)

	br := newBridge(t)
	br.Add(la)
	br.Add(lb)
	t0 := time.Now()
	time.Sleep(600 * time.Millisecond)
	br.Add(lc)
	t1 := time.Now()
	if !br.Mixing() {
		t.Fatal("not mixing with three")
	}
	time.Sleep(800 * time.Millisecond)
	br.Remove(lc)
	t2 := time.Now()
	if br.Mixing() {
		t.Fatal("still mixing with two")
	}
	time.Sleep(900 * time.Millisecond)
	t3 := time.Now()
	br.Close()
	time.Sleep(50 * time.Millisecond)

	margin := 100 * time.Millisecond
	for _, c := range []struct {
		name  string
		p     *rtpPhone
		pt    uint8
		other float64
	}{
		{"a", pa, media.PCMU.PayloadType, fCustomer},
		{"b", pb, media.PCMA.PayloadType, fAgent},
	} {
		ps := c.p.packets()
		if len(ps) < 80 {
			t.Fatalf("%s: only %d packets", c.name, len(ps))
		}
		var maxGap time.Duration
		markers := 0
		for i, p := range ps {
			if p.pt != c.pt || len(p.pcm) != media.FrameSamples {
				t.Fatalf("%s: packet %d: pt %d, %d samples", c.name, i, p.pt, len(p.pcm))
			}
			if p.marker {
				markers++
			}
			if i == 0 {
				continue
			}
			q := ps[i-1]
			if p.ssrc != q.ssrc {
				t.Fatalf("%s: SSRC changed at packet %d", c.name, i)
			}
			if p.seq != q.seq+1 {
				t.Fatalf("%s: packet %d: seq %d after %d", c.name, i, p.seq, q.seq)
			}
			if int32(p.ts-q.ts) <= 0 {
				t.Fatalf("%s: packet %d: timestamp %d after %d", c.name, i, p.ts, q.ts)
			}
			maxGap = max(maxGap, p.at.Sub(q.at))
		}
		t.Logf("%s: %d packets, %d markers, longest gap %v", c.name, len(ps), markers, maxGap)
		if markers < 3 {
			t.Errorf("%s: %d marker bits, want one per run (forward, mix, forward)", c.name, markers)
		}
		// The switches cost at most two packet times: mixing starts at
		// once, forwarding with the sender's next packet (timer slack
		// added, more under the race detector's scheduling). On a loaded
		// machine (the whole suite runs in parallel on two cores) the
		// scheduler alone can stall a goroutine that long, so by default
		// only a stream that stops is an error; PBXD_STRICT_TIMING=1 asks
		// for the packet-time bound.
		limit := 500 * time.Millisecond
		if os.Getenv("PBXD_STRICT_TIMING") == "1" {
			limit = 2*media.FrameDuration + 15*time.Millisecond + raceSlack
		}
		if maxGap > limit {
			t.Errorf("%s: a gap of %v in the stream", c.name, maxGap)
		}
		fl := newFakeLeg(c.name, media.PCMU, 0) // only for its name in messages
		expectHears(t, "forwarding", fl, audioBetween(ps, t0.Add(margin), t1), c.other)
		expectHears(t, "mixing", fl, audioBetween(ps, t1.Add(margin), t2), c.other, fThird)
		expectHears(t, "forwarding again", fl, audioBetween(ps, t2.Add(margin), t3), c.other)
	}
	if st := lc.Stats(); st.PacketsSent == 0 {
		t.Error("c was sent nothing while in the conference")
	}
}
