package media_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pbxd/media"
	"pbxd/media/g711"
	"pbxd/media/tone"
)

// fakeLeg is an in-memory media.Leg: a talker goroutine plays its tone
// into the bridge as its party would, and it keeps what the bridge sends
// (decoded) with its own Sequencer's output, as a real leg would put it on
// the wire.
type fakeLeg struct {
	id    string
	codec media.Codec
	evPT  uint8
	freq  float64 // the party's tone; 0 sends silence
	amp   int16
	ptime int // samples per packet, FrameSamples when 0
	recv  atomic.Pointer[recvBox]
	seq   *media.Sequencer
	// discard keeps nothing of what is sent (benchmarks).
	discard bool

	mu      sync.Mutex
	heard   []int16
	sent    []sentPacket
	events  int
	errs    int
	packets int
}

type recvBox struct{ r media.Receiver }

type sentPacket struct {
	at     time.Time
	source uint32
	seq    uint16
	ts     uint32
	marker bool
	n      int // samples
}

func newFakeLeg(id string, c media.Codec, freq float64) *fakeLeg {
	return &fakeLeg{id: id, codec: c, evPT: 101, freq: freq, amp: tone.AmplitudeDBFS(-20), seq: media.NewSequencer(8000)}
}

func (l *fakeLeg) ID() string              { return l.id }
func (l *fakeLeg) Codec() media.Codec      { return l.codec }
func (l *fakeLeg) EventPayloadType() uint8 { return l.evPT }
func (l *fakeLeg) Stats() media.Stats      { return media.Stats{} }
func (l *fakeLeg) Close() error            { return nil }

func (l *fakeLeg) SetReceiver(r media.Receiver) {
	if r == nil {
		l.recv.Store(nil)
		return
	}
	l.recv.Store(&recvBox{r})
}

func (l *fakeLeg) Send(f *media.Frame) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.discard {
		l.packets++
		return nil
	}
	switch f.Kind {
	case media.KindEvent:
		l.events++
		return nil
	case media.KindAudio:
		if f.Codec.Name != l.codec.Name {
			l.errs++
			return media.ErrCodec
		}
	}
	now := time.Now()
	seq, ts, m := l.seq.Next(f, now)
	l.sent = append(l.sent, sentPacket{at: now, source: f.Source, seq: seq, ts: ts, marker: m, n: len(f.Payload)})
	if l.codec.Name == media.PCMA.Name {
		l.heard = g711.DecodeAlawTo(l.heard, f.Payload)
	} else {
		l.heard = g711.DecodeUlawTo(l.heard, f.Payload)
	}
	return nil
}

// reset forgets what the leg was sent so far.
func (l *fakeLeg) reset() {
	l.mu.Lock()
	l.heard, l.sent = l.heard[:0], l.sent[:0]
	l.mu.Unlock()
}

// since returns the audio of the packets sent at or after t.
func (l *fakeLeg) since(t time.Time) []int16 {
	l.mu.Lock()
	defer l.mu.Unlock()
	off := 0
	for _, p := range l.sent {
		if !p.at.Before(t) {
			break
		}
		off += p.n
	}
	return append([]int16(nil), l.heard[off:]...)
}

func (l *fakeLeg) packetsSent() []sentPacket {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sentPacket(nil), l.sent...)
}

func (l *fakeLeg) codecErrors() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs
}

// talk plays the leg's tone (or silence) into its receiver, a packet every
// ptime, until the test ends.
func (l *fakeLeg) talk(t testing.TB) {
	ptime := l.ptime
	if ptime == 0 {
		ptime = media.FrameSamples
	}
	stop, done := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		var osc *tone.Oscillator
		if l.freq > 0 {
			osc = tone.NewOscillator(8000, l.amp, l.freq)
		}
		pcm := make([]int16, ptime)
		payload := make([]byte, 0, ptime)
		f := media.Frame{Kind: media.KindAudio, Codec: l.codec, Source: uint32(len(l.id)) << 24}
		tick := time.NewTicker(time.Duration(ptime) * time.Second / 8000)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if osc != nil {
				osc.Next(pcm)
			}
			if l.codec.Name == media.PCMA.Name {
				payload = g711.EncodeAlawTo(payload[:0], pcm)
			} else {
				payload = g711.EncodeUlawTo(payload[:0], pcm)
			}
			f.Seq++
			f.Timestamp += uint32(ptime)
			f.Payload = payload
			if box := l.recv.Load(); box != nil {
				box.r.Receive(l, &f)
			}
		}
	}()
}

// sendEvent sends one RFC 4733 packet from the leg's party.
func (l *fakeLeg) sendEvent() {
	f := media.Frame{Kind: media.KindEvent, Source: 99, Payload: []byte{5, 0x8a, 0, 160}}
	if box := l.recv.Load(); box != nil {
		box.r.Receive(l, &f)
	}
}

// newBridge is a bridge with the default configuration, closed when the
// test ends.
func newBridge(t *testing.T) *media.Bridge {
	t.Helper()
	br := media.NewBridge(media.BridgeConfig{})
	t.Cleanup(br.Close)
	return br
}
