package media

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"pbxd/media/g711"
)

// This file is the mixing half of Bridge: the clock that paces mixing
// bridges, each party's input ring, and the sum/clip/encode of one tick.
// bridge.go decides who hears whom; everything here runs on the clock's
// goroutine except inputRing.write, which runs on a leg's receive goroutine.

// MixClock paces the mixing of every bridge that uses it from one ticker
// goroutine, every FrameDuration. Sharing one clock across the box's
// bridges (BridgeConfig.Clock) means 50 conferences wake the process 50
// times a second, not 2,500, and all mixes of a tick happen together. The
// goroutine runs only while some bridge is mixing; it stops when the last
// one stops (or leaves) and on Close. A bridge without a shared clock gets
// a clock of its own, closed with the bridge.
type MixClock struct {
	mu      sync.Mutex
	members []*Bridge
	list    atomic.Pointer[[]*Bridge]
	stop    chan struct{} // non-nil while the goroutine runs
	closed  bool
	wg      sync.WaitGroup
}

// NewMixClock returns a clock with no bridges; it starts ticking when the
// first bridge starts mixing.
func NewMixClock() *MixClock {
	c := &MixClock{}
	c.list.Store(&[]*Bridge{})
	return c
}

// Close stops the clock and waits for its goroutine. Bridges still using
// it stop mixing (they send nothing until they forward again).
func (c *MixClock) Close() {
	c.mu.Lock()
	c.closed = true
	c.members = nil
	c.publish()
	if c.stop != nil {
		close(c.stop)
		c.stop = nil
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// add makes the clock mix b on every tick.
func (c *MixClock) add(b *Bridge) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || slices.Contains(c.members, b) {
		return
	}
	// Copy on write: the ticking goroutine reads the published list
	// without a lock.
	c.members = append(slices.Clip(c.members), b)
	c.publish()
	if c.stop == nil {
		c.stop = make(chan struct{})
		c.wg.Add(1)
		go c.run(c.stop)
	}
}

// remove stops mixing b; a tick already under way may still mix it once
// (Bridge.mix checks the bridge's own state under its lock).
func (c *MixClock) remove(b *Bridge) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.Index(c.members, b)
	if i < 0 {
		return
	}
	c.members = slices.Delete(slices.Clone(c.members), i, i+1)
	c.publish()
	if len(c.members) == 0 && c.stop != nil {
		close(c.stop)
		c.stop = nil
	}
}

// publish hands the ticking goroutine the current members; c.mu is held.
func (c *MixClock) publish() {
	m := c.members
	c.list.Store(&m)
}

func (c *MixClock) run(stop <-chan struct{}) {
	defer c.wg.Done()
	t := time.NewTicker(FrameDuration)
	defer t.Stop()
	// The first tick is at once: a bridge that just switched from
	// forwarding sends its first mix without waiting a packet time.
	now := time.Now()
	for {
		for _, b := range *c.list.Load() {
			b.mix(now)
		}
		select {
		case <-stop:
			return
		case now = <-t.C:
		}
	}
}

// Input rings. Each party's decoded audio waits in a ring of samples, not
// frames, so 10, 20, 30 and 60 ms packets all work: the mixer takes 160
// samples a tick when the ring has them and silence otherwise. A late
// packet therefore costs one frame of silence once, after which the ring
// holds that frame as a jitter reserve. Overflow drops the oldest samples;
// a reserve that stays above trimDepth for a whole trimWindow (the sender's
// clock runs fast, or a burst arrived) is cut by one frame, so no party's
// delay creeps up for the rest of the call.
const (
	ringSamples = 5 * FrameSamples // 100 ms
	trimDepth   = 3 * FrameSamples
	trimWindow  = 50 // ticks: one second
)

type inputRing struct {
	buf      [ringSamples]int16
	r, n     int
	minDepth int
	reads    int
}

// write decodes a G.711 payload onto the ring; false for other codecs.
func (q *inputRing) write(c Codec, payload []byte) bool {
	var dec func([]int16, []byte) []int16
	switch c.Name {
	case PCMU.Name:
		dec = g711.DecodeUlawTo
	case PCMA.Name:
		dec = g711.DecodeAlawTo
	default:
		return false
	}
	if len(payload) > ringSamples {
		payload = payload[len(payload)-ringSamples:]
	}
	if over := q.n + len(payload) - ringSamples; over > 0 {
		q.r = (q.r + over) % ringSamples
		q.n -= over
	}
	w := (q.r + q.n) % ringSamples
	first := min(len(payload), ringSamples-w)
	// Each destination has the capacity for its part, so neither call
	// allocates.
	dec(q.buf[w:w], payload[:first])
	dec(q.buf[:0], payload[first:])
	q.n += len(payload)
	return true
}

// read takes one frame of samples, reporting false (and taking nothing)
// when fewer than a frame are waiting.
func (q *inputRing) read(dst *[FrameSamples]int16) bool {
	if q.reads == 0 || q.n < q.minDepth {
		q.minDepth = q.n
	}
	q.reads++
	if q.reads >= trimWindow {
		if q.minDepth >= trimDepth {
			q.skip(FrameSamples)
		}
		q.reads = 0
	}
	if q.n < FrameSamples {
		return false
	}
	first := min(FrameSamples, ringSamples-q.r)
	copy(dst[:first], q.buf[q.r:q.r+first])
	copy(dst[first:], q.buf[:FrameSamples-first])
	q.skip(FrameSamples)
	return true
}

func (q *inputRing) skip(n int) {
	n = min(n, q.n)
	q.r = (q.r + n) % ringSamples
	q.n -= n
}

func (q *inputRing) reset() { *q = inputRing{} }

// Mixing arithmetic: samples are summed in int32 (50 full-scale parties
// cannot overflow it) and clipped to int16 only when a listener's mix is
// encoded, so loud parties saturate instead of wrapping round.

func addFrame(acc *[FrameSamples]int32, s *[FrameSamples]int16) {
	for i, v := range s {
		acc[i] += int32(v)
	}
}

func subFrame(acc *[FrameSamples]int32, s *[FrameSamples]int16) {
	for i, v := range s {
		acc[i] -= int32(v)
	}
}

// encodeMix clips acc to int16 and encodes it in c (µ-law unless c is
// PCMA) into dst.
func encodeMix(dst *[FrameSamples]byte, acc *[FrameSamples]int32, c Codec) {
	if c.Name == PCMA.Name {
		for i, v := range acc {
			dst[i] = g711.EncodeAlaw(int16(min(max(v, -32768), 32767)))
		}
		return
	}
	for i, v := range acc {
		dst[i] = g711.EncodeUlaw(int16(min(max(v, -32768), 32767)))
	}
}
