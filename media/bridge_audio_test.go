package media_test

// What the bridge does to audio: clipping of loud parties, legs with
// other packet times, and DTMF while mixing.

import (
	"fmt"
	"sync/atomic"
	"testing"

	"pbxd/media"
	"pbxd/media/tone"
)

func TestLoudPartiesClipWithoutWrapping(t *testing.T) {
	t.Parallel()
	a := newFakeLeg("a", media.PCMU, fAgent)
	b := newFakeLeg("b", media.PCMA, fCustomer)
	c := newFakeLeg("c", media.PCMU, 0) // listens; sends silence
	a.amp, b.amp = 28000, 28000         // together up to 56,000: must clip
	br := newBridge(t)
	for _, l := range []*fakeLeg{a, b, c} {
		br.Add(l)
		l.talk(t)
	}
	got := listen(c)[c]
	expectHears(t, "loud", c, got, fAgent, fCustomer)
	peak := 0
	for i, s := range got {
		peak = max(peak, abs(int(s)))
		// A wrapped sum jumps from one rail to the other between two
		// samples; two tones under 1 kHz move at most ~26,000 a sample.
		if i > 0 {
			p := int(got[i-1])
			if (p > 8000 && s < -8000) || (p < -8000 && s > 8000) {
				t.Fatalf("sample %d: %d after %d: the sum wrapped round", i, s, p)
			}
		}
	}
	if peak < 30000 {
		t.Fatalf("peak %d: loud parties were not mixed at full level", peak)
	}
	// Clipping squares the wave off; it never adds energy beyond a
	// full-scale square wave, nor loses most of it.
	if rms := tone.RMS(got); rms < 15000 || rms > 32767 {
		t.Fatalf("RMS %.0f", rms)
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestOtherPacketTimes(t *testing.T) {
	t.Parallel()
	for _, ptime := range []int{80, 240} { // 10 ms and 30 ms packets
		t.Run(fmt.Sprintf("%dms", ptime/8), func(t *testing.T) {
			t.Parallel()
			a := newFakeLeg("a", media.PCMU, fAgent)
			a.ptime = ptime
			b := newFakeLeg("b", media.PCMU, 0)
			c := newFakeLeg("c", media.PCMA, 0)
			br := media.NewBridge(media.BridgeConfig{})
			defer br.Close()
			for _, l := range []*fakeLeg{a, b, c} {
				br.Add(l)
				l.talk(t)
			}
			got := listen(b, c)
			expectHears(t, "ptime", b, got[b], fAgent)
			expectHears(t, "ptime", c, got[c], fAgent)
			// Buffering samples keeps the audio whole: at most a frame or
			// two of silence while the ring finds its depth.
			for _, l := range []*fakeLeg{b, c} {
				audio := got[l]
				gaps := 0
				for ; len(audio) >= media.FrameSamples; audio = audio[media.FrameSamples:] {
					if tone.IsSilent(audio[:media.FrameSamples]) {
						gaps++
					}
				}
				if gaps > 2 {
					t.Errorf("%s: %d silent frames in %v of a continuous tone", l.id, gaps, listenWindow)
				}
			}
		})
	}
}

func TestDTMFWhileMixing(t *testing.T) {
	t.Parallel()
	var events atomic.Int32
	br := media.NewBridge(media.BridgeConfig{OnEvent: func(from media.Leg, f *media.Frame) {
		if from.ID() == "a" && f.Kind == media.KindEvent {
			events.Add(1)
		}
	}})
	defer br.Close()
	a := newFakeLeg("a", media.PCMU, 0)
	b := newFakeLeg("b", media.PCMU, 0)
	c := newFakeLeg("c", media.PCMU, 0)
	for _, l := range []*fakeLeg{a, b, c} {
		br.Add(l)
	}
	a.sendEvent()
	// Forwarding (two parties) passes events on; mixing keeps them.
	br.Remove(c)
	a.sendEvent()
	if events.Load() != 2 {
		t.Fatalf("OnEvent saw %d events", events.Load())
	}
	b.mu.Lock()
	n := b.events
	b.mu.Unlock()
	c.mu.Lock()
	nc := c.events
	c.mu.Unlock()
	if n != 1 || nc != 0 {
		t.Fatalf("events passed on: b %d, c %d (want only the forwarded one)", n, nc)
	}
}
