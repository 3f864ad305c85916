package media

import (
	"fmt"
	"testing"
	"time"

	"pbxd/media/tone"
)

// benchmarkMix measures one mixer tick of an n-party conference: every
// party's packet arriving (decoded onto its ring) and every party's own
// mix clipped, encoded and handed to its leg. ns/op is per tick (one tick
// every 20 ms is real time); ns/party divides it by the parties.
func benchmarkMix(b *testing.B, n int) {
	br := manualBridge()
	defer br.Close()
	legs := make([]*recLeg, n)
	frames := make([]Frame, n)
	for i := range legs {
		c := PCMU
		if i%3 == 2 {
			c = PCMA
		}
		legs[i] = &recLeg{id: fmt.Sprint(i), codec: c}
		br.Add(legs[i])
		pcm := tone.Sine(300+float64(40*i), 3000, 8000, FrameSamples)
		frames[i] = Frame{Kind: KindAudio, Codec: c, Payload: encode(c, pcm)}
	}
	now := time.Unix(1000, 0)
	b.ReportAllocs()
	for b.Loop() {
		for i, l := range legs {
			br.Receive(l, &frames[i])
		}
		now = now.Add(FrameDuration)
		br.mix(now)
	}
	perTick := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perTick/float64(n), "ns/party")
	// The share of one core this conference needs in real time.
	b.ReportMetric(100*perTick/float64(FrameDuration.Nanoseconds()), "%core")
}

func BenchmarkMix3(b *testing.B)  { benchmarkMix(b, 3) }
func BenchmarkMix10(b *testing.B) { benchmarkMix(b, 10) }
func BenchmarkMix50(b *testing.B) { benchmarkMix(b, 50) }

// BenchmarkForward is the two-party path: one packet received, converted
// PCMU→PCMA in place and sent.
func BenchmarkForward(b *testing.B) {
	br := manualBridge()
	defer br.Close()
	a, c := &recLeg{id: "a", codec: PCMU}, &recLeg{id: "b", codec: PCMA}
	br.Add(a)
	br.Add(c)
	f := &Frame{Kind: KindAudio, Codec: PCMU, Payload: encode(PCMU, tone.Sine(400, 3000, 8000, FrameSamples))}
	b.ReportAllocs()
	for b.Loop() {
		f.Codec = PCMU // the conversion happened in place; start again
		br.Receive(a, f)
	}
}
