package media

import (
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"pbxd/media/g711"
)

// These tests drive the mixer tick by tick (no clock goroutine) to check
// its output sample by sample and its allocations.

// recLeg keeps the last frame it was sent.
type recLeg struct {
	id    string
	codec Codec
	recv  atomic.Pointer[Receiver]
	last  [FrameSamples]byte
	lastN int
	frame Frame
	sent  int
}

func (l *recLeg) ID() string              { return l.id }
func (l *recLeg) Codec() Codec            { return l.codec }
func (l *recLeg) EventPayloadType() uint8 { return 101 }
func (l *recLeg) Stats() Stats            { return Stats{} }
func (l *recLeg) Close() error            { return nil }
func (l *recLeg) SetReceiver(r Receiver) {
	if r == nil {
		l.recv.Store(nil)
		return
	}
	l.recv.Store(&r)
}
func (l *recLeg) Send(f *Frame) error {
	if f.Kind == KindAudio && f.Codec.Name != l.codec.Name {
		return ErrCodec
	}
	l.frame = *f
	l.lastN = copy(l.last[:], f.Payload)
	l.frame.Payload = nil
	l.sent++
	return nil
}

// manualBridge returns a bridge whose clock never ticks by itself.
func manualBridge() *Bridge {
	c := NewMixClock()
	c.Close()
	return NewBridge(BridgeConfig{Clock: c})
}

func encode(c Codec, pcm []int16) []byte {
	if c.Name == PCMA.Name {
		return g711.EncodeAlawTo(nil, pcm)
	}
	return g711.EncodeUlawTo(nil, pcm)
}

func decode(c Codec, b []byte) []int16 {
	if c.Name == PCMA.Name {
		return g711.DecodeAlawTo(nil, b)
	}
	return g711.DecodeUlawTo(nil, b)
}

func TestMixSampleBySample(t *testing.T) {
	br := manualBridge()
	defer br.Close()
	codecs := []Codec{PCMU, PCMA, PCMU, PCMA, PCMU}
	var legs []*recLeg
	for i, c := range codecs {
		legs = append(legs, &recLeg{id: fmt.Sprint(i), codec: c})
	}
	// 0, 1, 2 full; 3 coaches 0; 4 listens.
	for _, l := range legs[:3] {
		br.Add(l)
	}
	if err := br.AddWithRole(legs[3], Role{Kind: RoleCoach, Target: legs[0]}); err != nil {
		t.Fatal(err)
	}
	if err := br.AddWithRole(legs[4], Role{Kind: RoleListen}); err != nil {
		t.Fatal(err)
	}
	// hears[l][s]: does l hear s?
	hears := [5][5]bool{
		{false, true, true, true, false},
		{true, false, true, false, false},
		{true, true, false, false, false},
		{true, true, true, false, false},
		{true, true, true, false, false},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Unix(1000, 0)
	for tick := 0; tick < 20; tick++ {
		// Loud random audio (ticks 10+ at full scale) so that sums clip.
		scale := int32(8000)
		if tick >= 10 {
			scale = 32767
		}
		var sent [5][]int16
		for i, l := range legs {
			pcm := make([]int16, FrameSamples)
			for k := range pcm {
				pcm[k] = int16(rng.Int32N(2*scale+1) - scale)
			}
			p := encode(l.codec, pcm)
			sent[i] = decode(l.codec, p) // what the mixer can know
			br.Receive(l, &Frame{Kind: KindAudio, Codec: l.codec, Payload: p})
		}
		now = now.Add(FrameDuration)
		br.mix(now)
		for li, l := range legs {
			want := make([]int16, FrameSamples)
			for k := range want {
				var s int32
				for si := range legs {
					if hears[li][si] {
						s += int32(sent[si][k])
					}
				}
				want[k] = int16(min(max(s, -32768), 32767))
			}
			wantB := encode(l.codec, want)
			if l.sent != tick+1 || l.lastN != FrameSamples || l.frame.Codec != l.codec || l.frame.Source != br.id {
				t.Fatalf("tick %d leg %d: sent %d, %d bytes, frame %+v", tick, li, l.sent, l.lastN, l.frame)
			}
			for k := range wantB {
				if l.last[k] != wantB[k] {
					t.Fatalf("tick %d leg %d sample %d: %#x, want %#x", tick, li, k, l.last[k], wantB[k])
				}
			}
		}
	}
}

func TestMixedStreamAdvancesWithTime(t *testing.T) {
	br := manualBridge()
	defer br.Close()
	legs := []*recLeg{{id: "a", codec: PCMU}, {id: "b", codec: PCMU}, {id: "c", codec: PCMA}}
	for _, l := range legs {
		br.Add(l)
	}
	now := time.Unix(1000, 0)
	br.mix(now)
	first := legs[0].frame
	if !first.Marker {
		t.Fatal("first mixed frame not marked")
	}
	br.mix(now.Add(FrameDuration))
	f := legs[0].frame
	if f.Marker || f.Seq != first.Seq+1 || f.Timestamp != first.Timestamp+FrameSamples {
		t.Fatalf("second frame %+v after %+v", f, first)
	}
	// A late tick (the box was busy for 3 packet times): the timestamp
	// keeps up with real time, the sequence stays consecutive.
	br.mix(now.Add(4 * FrameDuration))
	g := legs[0].frame
	if g.Seq != f.Seq+1 || g.Timestamp != f.Timestamp+3*FrameSamples || g.Marker {
		t.Fatalf("late frame %+v after %+v", g, f)
	}
	// Forwarding for a while, then mixing again: a marked new spell.
	br.Remove(legs[2])
	br.Add(legs[2])
	br.mix(now.Add(time.Second))
	h := legs[0].frame
	if !h.Marker || h.Seq != g.Seq+1 || h.Timestamp != g.Timestamp+46*FrameSamples {
		t.Fatalf("new spell %+v after %+v", h, g)
	}
}

func TestInputRingPacketTimes(t *testing.T) {
	for _, ptime := range []int{80, 160, 240, 480} {
		t.Run(fmt.Sprint(ptime), func(t *testing.T) {
			var q inputRing
			// A ramp of µ-law codes decodes to known values; feed it in
			// ptime pieces and read frames as the mixer would, ticks
			// interleaved with arrivals at the same average rate.
			var in, out []int16
			next := 0
			code := func() byte { next++; return byte(next) }
			var frame [FrameSamples]int16
			arrived := 0
			for tick := 1; tick <= 200; tick++ {
				for arrived+ptime <= tick*FrameSamples+ptime {
					p := make([]byte, ptime)
					for i := range p {
						p[i] = code()
					}
					in = append(in, g711.DecodeUlawTo(nil, p)...)
					q.write(PCMU, p)
					arrived += ptime
				}
				if q.read(&frame) {
					out = append(out, frame[:]...)
				}
			}
			// Nothing lost, reordered or invented: out is a prefix of in
			// (bar the trimmed frames, which a steady stream never has).
			if len(out) < len(in)-ringSamples {
				t.Fatalf("read %d of %d samples", len(out), len(in))
			}
			for i := range out {
				if out[i] != in[i] {
					t.Fatalf("sample %d: %d, want %d", i, out[i], in[i])
				}
			}
		})
	}
}

func TestInputRingOverflowAndTrim(t *testing.T) {
	var q inputRing
	p := make([]byte, 7*FrameSamples)
	for i := range p {
		p[i] = byte(i / FrameSamples) // frame k is all code k
	}
	q.write(PCMU, p) // 7 frames into a 5-frame ring: the oldest 2 go
	var f [FrameSamples]int16
	if !q.read(&f) || f[0] != g711.DecodeUlaw(2) {
		t.Fatalf("oldest kept frame decodes to %d, want %d", f[0], g711.DecodeUlaw(2))
	}
	// A reserve that stays 3 frames or more for a second is cut by one.
	q.reset()
	frame := make([]byte, FrameSamples)
	for i := 0; i < 3; i++ {
		q.write(PCMU, frame)
	}
	for tick := 0; tick < trimWindow; tick++ {
		q.write(PCMU, frame)
		if !q.read(&f) {
			t.Fatal("underrun")
		}
	}
	if q.n != 2*FrameSamples {
		t.Fatalf("reserve %d samples after a second at 4 frames, want 2 frames", q.n)
	}
}

func TestMixDoesNotAllocate(t *testing.T) {
	br := manualBridge()
	defer br.Close()
	var legs []*recLeg
	for i := 0; i < 10; i++ {
		c := PCMU
		if i%2 == 1 {
			c = PCMA
		}
		l := &recLeg{id: fmt.Sprint(i), codec: c}
		legs = append(legs, l)
		br.Add(l)
	}
	_ = br.SetRole(legs[9], Role{Kind: RoleCoach, Target: legs[0]})
	_ = br.SetRole(legs[8], Role{Kind: RoleListen})
	br.SetMuted(legs[7], true)
	frames := make([]Frame, len(legs))
	for i, l := range legs {
		frames[i] = Frame{Kind: KindAudio, Codec: l.codec, Payload: make([]byte, FrameSamples)}
	}
	now := time.Unix(1000, 0)
	allocs := testing.AllocsPerRun(200, func() {
		for i, l := range legs {
			br.Receive(l, &frames[i])
		}
		now = now.Add(FrameDuration)
		br.mix(now)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per tick", allocs)
	}
}

func TestForwardDoesNotAllocate(t *testing.T) {
	br := manualBridge()
	defer br.Close()
	a, b := &recLeg{id: "a", codec: PCMU}, &recLeg{id: "b", codec: PCMA}
	br.Add(a)
	br.Add(b)
	payload, other := make([]byte, FrameSamples), make([]byte, FrameSamples)
	// The legs own their frames, one each, reused packet after packet.
	ev := &Frame{Kind: KindEvent, Payload: []byte{1, 0x80, 0, 160}}
	fa := &Frame{Kind: KindAudio, Codec: PCMU, Payload: payload}
	fb := &Frame{Kind: KindAudio, Codec: PCMA, Payload: other}
	allocs := testing.AllocsPerRun(200, func() {
		for i := range payload {
			payload[i], other[i] = g711.UlawSilence, g711.AlawSilence
		}
		br.Receive(a, ev)
		br.Receive(b, fb)
		br.Receive(a, fa) // transcoded
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet", allocs)
	}
	if b.last[0] != g711.AlawSilence || b.frame.Codec != PCMA {
		t.Fatalf("forwarded %#x as %s", b.last[0], b.frame.Codec.Name)
	}
}
