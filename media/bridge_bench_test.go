//go:build unix

package media_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"pbxd/media"
	"pbxd/media/g711"
	"pbxd/media/rtpleg"
	"pbxd/media/tone"
)

// conferenceSeconds is how long the real-time conference benchmarks run.
const conferenceSeconds = 3

// cpuTime is the process's user+system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tonePayloads is one second of a tone in c, as 50 packets.
func tonePayloads(c media.Codec, freq float64) [][]byte {
	pcm := tone.Sine(freq, tone.AmplitudeDBFS(-20), 8000, 8000)
	var out [][]byte
	for ; len(pcm) >= media.FrameSamples; pcm = pcm[media.FrameSamples:] {
		if c.Name == media.PCMA.Name {
			out = append(out, g711.EncodeAlawTo(nil, pcm[:media.FrameSamples]))
		} else {
			out = append(out, g711.EncodeUlawTo(nil, pcm[:media.FrameSamples]))
		}
	}
	return out
}

// BenchmarkConference50 runs a 50-party conference in real time for a few
// seconds, every party talking, and reports the CPU the process used as a
// share of one core (%core; budget: under 25). The legs are in memory, so
// this is the bridge's cost: receiving, ring, mixing, encoding. One
// goroutine plays every party's packets, as 50 legs' receive goroutines
// would.
func BenchmarkConference50(b *testing.B) {
	const n = 50
	br := media.NewBridge(media.BridgeConfig{})
	legs := make([]*fakeLeg, n)
	payloads := make([][][]byte, n)
	for i := range legs {
		c := media.PCMU
		if i%3 == 2 {
			c = media.PCMA
		}
		legs[i] = newFakeLeg(fmt.Sprint(i), c, 0)
		legs[i].discard = true
		payloads[i] = tonePayloads(c, 300+float64(40*i))
		br.Add(legs[i])
	}
	frames := make([]media.Frame, n)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(media.FrameDuration)
		defer tick.Stop()
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i, l := range legs {
				f := &frames[i]
				*f = media.Frame{Kind: media.KindAudio, Codec: l.codec, Source: uint32(i), Seq: uint16(k), Timestamp: uint32(k * media.FrameSamples), Payload: payloads[i][k%len(payloads[i])]}
				br.Receive(l, f)
			}
		}
	}()
	runConference(b, func() {
		close(stop)
		<-done
		br.Close()
	})
	for _, l := range legs {
		l.mu.Lock()
		got := l.packets
		l.mu.Unlock()
		if want := conferenceSeconds * 50 * 9 / 10; got < want {
			b.Fatalf("%s was sent %d packets in %d s", l.id, got, conferenceSeconds)
		}
	}
}

// BenchmarkConference50RTP is the same conference over 50 real RTP legs on
// loopback UDP. Its %core includes the 50 simulated phones' sends (one
// goroutine) as well as the box's receive goroutines, mixing and sends.
func BenchmarkConference50RTP(b *testing.B) {
	const n = 50
	e, err := rtpleg.New(rtpleg.Config{Ports: rtpleg.PortRange{Lo: 40000, Hi: 50000}, BindIP: netip.MustParseAddr("127.0.0.1")})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	br := media.NewBridge(media.BridgeConfig{})
	phones := make([]*net.UDPConn, n)
	dst := make([]netip.AddrPort, n)
	payloads := make([][][]byte, n)
	for i := range phones {
		c := media.PCMU
		if i%3 == 2 {
			c = media.PCMA
		}
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		l, err := e.Open(fmt.Sprint(i))
		if err != nil {
			b.Fatal(err)
		}
		l.Configure(rtpleg.Params{Remote: conn.LocalAddr().(*net.UDPAddr).AddrPort(), Codec: c, Send: true, Recv: true})
		l.Start()
		br.Add(l)
		phones[i], dst[i], payloads[i] = conn, l.LocalAddr(), tonePayloads(c, 300+float64(40*i))
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(media.FrameDuration)
		defer tick.Stop()
		pkt := make([]byte, 12+media.FrameSamples)
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for i, conn := range phones {
				pt := media.PCMU.PayloadType
				if i%3 == 2 {
					pt = media.PCMA.PayloadType
				}
				pkt[0], pkt[1] = 0x80, pt
				binary.BigEndian.PutUint16(pkt[2:], uint16(k))
				binary.BigEndian.PutUint32(pkt[4:], uint32(k*media.FrameSamples))
				binary.BigEndian.PutUint32(pkt[8:], uint32(i+1))
				copy(pkt[12:], payloads[i][k%len(payloads[i])])
				_, _ = conn.WriteToUDPAddrPort(pkt, dst[i])
			}
		}
	}()
	runConference(b, func() {
		close(stop)
		<-done
		br.Close()
	})
}

// runConference lets a running conference go for conferenceSeconds and
// reports the process's CPU time over that span as a share of one core.
func runConference(b *testing.B, stop func()) {
	time.Sleep(200 * time.Millisecond) // rings filled, mixing steady
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime(b)
	time.Sleep(conferenceSeconds * time.Second)
	cpu, wall := cpuTime(b)-cpu0, time.Since(start)
	b.StopTimer()
	stop()
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkBridges50x3 runs 50 three-party conferences in real time, on
// one shared MixClock or on a clock each, and reports the process's CPU
// as a share of one core.
func BenchmarkBridges50x3(b *testing.B) {
	for _, shared := range []bool{true, false} {
		name := "own-clocks"
		if shared {
			name = "shared-clock"
		}
		b.Run(name, func(b *testing.B) {
			var clock *media.MixClock
			if shared {
				clock = media.NewMixClock()
				defer clock.Close()
			}
			const bridges, size = 50, 3
			var brs []*media.Bridge
			var legs []*fakeLeg
			var owner []*media.Bridge
			for k := 0; k < bridges; k++ {
				br := media.NewBridge(media.BridgeConfig{Clock: clock})
				brs = append(brs, br)
				for i := 0; i < size; i++ {
					l := newFakeLeg(fmt.Sprint(k, "-", i), media.PCMU, 0)
					l.discard = true
					br.Add(l)
					legs = append(legs, l)
					owner = append(owner, br)
				}
			}
			payload := tonePayloads(media.PCMU, 400)
			frames := make([]media.Frame, len(legs))
			stop, done := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(done)
				tick := time.NewTicker(media.FrameDuration)
				defer tick.Stop()
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					for i, l := range legs {
						frames[i] = media.Frame{Kind: media.KindAudio, Codec: media.PCMU, Source: uint32(i), Seq: uint16(k), Timestamp: uint32(k * media.FrameSamples), Payload: payload[k%len(payload)]}
						owner[i].Receive(l, &frames[i])
					}
				}
			}()
			runConference(b, func() {
				close(stop)
				<-done
				for _, br := range brs {
					br.Close()
				}
			})
		})
	}
}
