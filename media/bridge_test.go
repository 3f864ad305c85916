package media_test

import (
	"errors"
	"fmt"
	"runtime"
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

// Tones of the parties in these tests.
const (
	fAgent    = 400.0
	fCustomer = 700.0
	fThird    = 1000.0
	fSuper    = 1300.0
)

var allTones = []float64{fAgent, fCustomer, fThird, fSuper}

// listenWindow is how long the tests listen after every change.
const listenWindow = 500 * time.Millisecond

// settle is how long a change is given before listening: well above one
// packet time, so the tests also prove changes are quick.
const settle = 60 * time.Millisecond

// expectHears checks that l's party heard exactly the tones in want (of
// allTones) in audio.
func expectHears(t *testing.T, what string, l *fakeLeg, audio []int16, want ...float64) {
	t.Helper()
	if len(audio) < int(listenWindow.Seconds()*8000)/2 {
		t.Errorf("%s: %s received only %d samples", what, l.id, len(audio))
		return
	}
	r := tone.Detect(audio, 8000, allTones)
	for _, f := range allTones {
		heard := false
		for _, w := range want {
			heard = heard || w == f
		}
		switch {
		case heard && r[f] < tone.PresentRatio:
			t.Errorf("%s: %s should hear %.0f Hz, ratio %.4f (all %v)", what, l.id, f, r[f], r)
		case !heard && r[f] >= tone.AbsentRatio:
			t.Errorf("%s: %s should not hear %.0f Hz, ratio %.4f (all %v)", what, l.id, f, r[f], r)
		}
	}
	if len(want) == 0 && !tone.IsSilent(audio) {
		t.Errorf("%s: %s should hear silence, RMS %.0f", what, l.id, tone.RMS(audio))
	}
}

// listen waits for a change to settle, then records every leg for the
// listening window and returns what each heard.
func listen(legs ...*fakeLeg) map[*fakeLeg][]int16 {
	time.Sleep(settle)
	from := time.Now()
	time.Sleep(listenWindow)
	out := make(map[*fakeLeg][]int16, len(legs))
	for _, l := range legs {
		out[l] = l.since(from)
	}
	return out
}

// checkContinuous checks that l's outgoing stream (as its Sequencer wrote
// it) has consecutive sequence numbers and never-decreasing timestamps.
func checkContinuous(t *testing.T, l *fakeLeg) {
	t.Helper()
	ps := l.packetsSent()
	for i := 1; i < len(ps); i++ {
		a, b := ps[i-1], ps[i]
		if b.seq != a.seq+1 {
			t.Fatalf("%s: packet %d seq %d after %d", l.id, i, b.seq, a.seq)
		}
		if int32(b.ts-a.ts) <= 0 {
			t.Fatalf("%s: packet %d timestamp %d after %d", l.id, i, b.ts, a.ts)
		}
	}
}

func checkNoCodecErrors(t *testing.T, legs ...*fakeLeg) {
	t.Helper()
	for _, l := range legs {
		if n := l.codecErrors(); n != 0 {
			t.Errorf("%s was sent %d frames in the wrong codec", l.id, n)
		}
	}
}

func TestConferenceEachHearsTheOthers(t *testing.T) {
	t.Parallel()
	a := newFakeLeg("a", media.PCMU, fAgent)
	b := newFakeLeg("b", media.PCMA, fCustomer) // mixed codecs
	c := newFakeLeg("c", media.PCMU, fThird)
	br := media.NewBridge(media.BridgeConfig{})
	defer br.Close()
	for _, l := range []*fakeLeg{a, b, c} {
		br.Add(l)
		l.talk(t)
	}
	if !br.Mixing() {
		t.Fatal("three parties not mixed")
	}
	got := listen(a, b, c)
	expectHears(t, "conference", a, got[a], fCustomer, fThird)
	expectHears(t, "conference", b, got[b], fAgent, fThird)
	expectHears(t, "conference", c, got[c], fAgent, fCustomer)
	checkNoCodecErrors(t, a, b, c)
	for _, l := range []*fakeLeg{a, b, c} {
		checkContinuous(t, l)
	}
}

func TestConferenceExitAndReenter(t *testing.T) {
	t.Parallel()
	a := newFakeLeg("a", media.PCMU, fAgent)
	b := newFakeLeg("b", media.PCMU, fCustomer)
	c := newFakeLeg("c", media.PCMA, fThird)
	br := media.NewBridge(media.BridgeConfig{})
	defer br.Close()
	for _, l := range []*fakeLeg{a, b, c} {
		br.Add(l)
		l.talk(t)
	}
	got := listen(a, b, c)
	expectHears(t, "three", a, got[a], fCustomer, fThird)
	expectHears(t, "three", c, got[c], fAgent, fCustomer)

	br.Remove(c)
	left := time.Now()
	if br.Mixing() {
		t.Fatal("two full parties still mixed")
	}
	got = listen(a, b)
	expectHears(t, "c left", a, got[a], fCustomer)
	expectHears(t, "c left", b, got[b], fAgent)
	if n := len(c.since(left.Add(media.FrameDuration))); n != 0 {
		t.Errorf("c was sent %d samples after leaving", n)
	}

	br.Add(c)
	got = listen(a, b, c)
	expectHears(t, "c back", a, got[a], fCustomer, fThird)
	expectHears(t, "c back", b, got[b], fAgent, fThird)
	expectHears(t, "c back", c, got[c], fAgent, fCustomer)
	checkNoCodecErrors(t, a, b, c)
	// a's stream went mix → forward → mix without a jump back.
	checkContinuous(t, a)
	checkContinuous(t, b)
	if got := br.Legs(); len(got) != 3 || got[2] != c {
		t.Fatalf("legs %v", got)
	}
}

func TestSupervisorRoles(t *testing.T) {
	t.Parallel()
	agent := newFakeLeg("agent", media.PCMU, fAgent)
	cust := newFakeLeg("customer", media.PCMA, fCustomer)
	sup := newFakeLeg("supervisor", media.PCMU, fSuper)
	br := media.NewBridge(media.BridgeConfig{})
	defer br.Close()
	br.Add(agent)
	br.Add(cust)
	for _, l := range []*fakeLeg{agent, cust, sup} {
		l.talk(t)
	}
	if br.Mixing() {
		t.Fatal("a two-party call is mixed")
	}
	// The supervisor goes listen → coach → join → listen → coach without
	// re-dialling; each step is checked on every leg.
	steps := []struct {
		name                  string
		role                  media.Role
		agentH, custH, superH []float64
	}{
		{"listen", media.Role{Kind: media.RoleListen}, []float64{fCustomer}, []float64{fAgent}, []float64{fAgent, fCustomer}},
		{"coach", media.Role{Kind: media.RoleCoach, Target: agent}, []float64{fCustomer, fSuper}, []float64{fAgent}, []float64{fAgent, fCustomer}},
		{"join", media.Role{Kind: media.RoleFull}, []float64{fCustomer, fSuper}, []float64{fAgent, fSuper}, []float64{fAgent, fCustomer}},
		{"listen again", media.Role{Kind: media.RoleListen}, []float64{fCustomer}, []float64{fAgent}, []float64{fAgent, fCustomer}},
		{"coach the customer", media.Role{Kind: media.RoleCoach, Target: cust}, []float64{fCustomer}, []float64{fAgent, fSuper}, []float64{fAgent, fCustomer}},
	}
	for i, st := range steps {
		var err error
		if i == 0 {
			err = br.AddWithRole(sup, st.role)
		} else {
			err = br.SetRole(sup, st.role)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if r, ok := br.Role(sup); !ok || r != st.role {
			t.Fatalf("%s: role %+v %v", st.name, r, ok)
		}
		if !br.Mixing() {
			t.Fatalf("%s: not mixing", st.name)
		}
		got := listen(agent, cust, sup)
		expectHears(t, st.name, agent, got[agent], st.agentH...)
		expectHears(t, st.name, cust, got[cust], st.custH...)
		expectHears(t, st.name, sup, got[sup], st.superH...)
	}
	// The supervisor hangs up: back to forwarding, the call goes on.
	br.Remove(sup)
	if br.Mixing() {
		t.Fatal("still mixing after the supervisor left")
	}
	got := listen(agent, cust)
	expectHears(t, "supervisor gone", agent, got[agent], fCustomer)
	expectHears(t, "supervisor gone", cust, got[cust], fAgent)
	checkNoCodecErrors(t, agent, cust, sup)
	checkContinuous(t, agent)
	checkContinuous(t, cust)
}

func TestCoachWhoseTargetLeaves(t *testing.T) {
	t.Parallel()
	agent := newFakeLeg("agent", media.PCMU, fAgent)
	cust := newFakeLeg("customer", media.PCMU, fCustomer)
	sup := newFakeLeg("supervisor", media.PCMU, fSuper)
	br := media.NewBridge(media.BridgeConfig{})
	defer br.Close()
	br.Add(agent)
	br.Add(cust)
	if err := br.AddWithRole(sup, media.Role{Kind: media.RoleCoach, Target: agent}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*fakeLeg{agent, cust, sup} {
		l.talk(t)
	}
	br.Remove(agent)
	got := listen(cust, sup)
	expectHears(t, "target gone", cust, got[cust])
	expectHears(t, "target gone", sup, got[sup], fCustomer)
}

func TestMuteInMixing(t *testing.T) {
	t.Parallel()
	a := newFakeLeg("a", media.PCMU, fAgent)
	b := newFakeLeg("b", media.PCMU, fCustomer)
	c := newFakeLeg("c", media.PCMA, fThird)
	br := media.NewBridge(media.BridgeConfig{})
	defer br.Close()
	for _, l := range []*fakeLeg{a, b, c} {
		br.Add(l)
		l.talk(t)
	}
	time.Sleep(200 * time.Millisecond)
	br.SetMuted(a, true)
	// Everything mixed from one packet time after SetMuted on is free of
	// a's voice.
	muted := time.Now().Add(media.FrameDuration)
	time.Sleep(listenWindow)
	expectHears(t, "muted", b, b.since(muted), fThird)
	expectHears(t, "muted", c, c.since(muted), fCustomer)
	expectHears(t, "muted", a, a.since(muted), fCustomer, fThird)

	br.SetMuted(a, false)
	got := listen(a, b, c)
	expectHears(t, "unmuted", b, got[b], fAgent, fThird)
	expectHears(t, "unmuted", c, got[c], fAgent, fCustomer)
}

func TestMuteWhileForwarding(t *testing.T) {
	t.Parallel()
	a := newFakeLeg("a", media.PCMU, fAgent)
	b := newFakeLeg("b", media.PCMA, fCustomer)
	br := media.NewBridge(media.BridgeConfig{})
	defer br.Close()
	br.Add(a)
	br.Add(b)
	a.talk(t)
	b.talk(t)
	got := listen(a, b)
	expectHears(t, "forwarding", a, got[a], fCustomer)
	expectHears(t, "forwarding", b, got[b], fAgent)
	br.SetMuted(a, true)
	muted := time.Now().Add(media.FrameDuration)
	time.Sleep(listenWindow)
	if n := len(b.since(muted)); n != 0 {
		t.Errorf("b was sent %d samples of the muted party", n)
	}
	expectHears(t, "muted", a, a.since(muted), fCustomer)
	checkNoCodecErrors(t, a, b)
}

func TestLoudPartiesClipWithoutWrapping(t *testing.T) {
	t.Parallel()
	a := newFakeLeg("a", media.PCMU, fAgent)
	b := newFakeLeg("b", media.PCMA, fCustomer)
	c := newFakeLeg("c", media.PCMU, 0) // listens; sends silence
	a.amp, b.amp = 28000, 28000         // together up to 56,000: must clip
	br := media.NewBridge(media.BridgeConfig{})
	defer br.Close()
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

func TestRoleErrors(t *testing.T) {
	t.Parallel()
	a := newFakeLeg("a", media.PCMU, 0)
	b := newFakeLeg("b", media.PCMU, 0)
	out := newFakeLeg("out", media.PCMU, 0)
	br := media.NewBridge(media.BridgeConfig{})
	br.Add(a)
	br.Add(b)
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"SetRole of a stranger", br.SetRole(out, media.Role{Kind: media.RoleListen}), media.ErrNotInBridge},
		{"coach without target", br.SetRole(a, media.Role{Kind: media.RoleCoach}), media.ErrRole},
		{"coach oneself", br.SetRole(a, media.Role{Kind: media.RoleCoach, Target: a}), media.ErrRole},
		{"coach a stranger", br.AddWithRole(out, media.Role{Kind: media.RoleCoach, Target: newFakeLeg("x", media.PCMU, 0)}), media.ErrRole},
		{"listen with a target", br.SetRole(a, media.Role{Kind: media.RoleListen, Target: b}), media.ErrRole},
		{"unknown kind", br.SetRole(a, media.Role{Kind: 9}), media.ErrRole},
		{"valid", br.SetRole(a, media.Role{Kind: media.RoleCoach, Target: b}), nil},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	if _, ok := br.Role(out); ok {
		t.Error("a rejected leg was added")
	}
	if len(br.Legs()) != 2 {
		t.Errorf("legs %v", br.Legs())
	}
	br.Close()
	if err := br.AddWithRole(out, media.Role{}); !errors.Is(err, media.ErrBridgeClosed) {
		t.Errorf("AddWithRole after Close: %v", err)
	}
	if err := br.SetRole(a, media.Role{}); !errors.Is(err, media.ErrBridgeClosed) {
		t.Errorf("SetRole after Close: %v", err)
	}
	br.Add(out)
	if len(br.Legs()) != 0 || a.recv.Load() != nil {
		t.Error("legs still attached after Close")
	}
	if media.RoleCoach.String() != "coach" {
		t.Error(media.RoleCoach.String())
	}
}

func TestSharedClockKeepsConferencesApart(t *testing.T) {
	t.Parallel()
	clock := media.NewMixClock()
	defer clock.Close()
	freqs := []float64{fAgent, fCustomer, fThird}
	type conf struct {
		br   *media.Bridge
		legs []*fakeLeg
	}
	var confs []conf
	for k := 0; k < 5; k++ {
		cf := conf{br: media.NewBridge(media.BridgeConfig{Clock: clock})}
		for i, f := range freqs {
			// Only conference 0 talks; the others are silent, so any
			// crosstalk between conferences on one clock shows.
			if k > 0 {
				f = 0
			}
			l := newFakeLeg(fmt.Sprintf("c%d-%d", k, i), media.PCMU, f)
			cf.br.Add(l)
			l.talk(t)
			cf.legs = append(cf.legs, l)
		}
		defer cf.br.Close()
		confs = append(confs, cf)
	}
	var all []*fakeLeg
	for _, cf := range confs {
		all = append(all, cf.legs...)
	}
	got := listen(all...)
	l := confs[0].legs
	expectHears(t, "shared clock", l[0], got[l[0]], fCustomer, fThird)
	expectHears(t, "shared clock", l[1], got[l[1]], fAgent, fThird)
	for _, cf := range confs[1:] {
		for _, l := range cf.legs {
			expectHears(t, "other conference", l, got[l])
		}
	}
}

func TestGoroutinesEndOnClose(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	base := runtime.NumGoroutine()
	clock := media.NewMixClock()
	var bridges []*media.Bridge
	var legs []*fakeLeg
	for k := 0; k < 6; k++ {
		cfg := media.BridgeConfig{}
		if k%2 == 0 {
			cfg.Clock = clock
		}
		br := media.NewBridge(cfg)
		for i := 0; i < 3; i++ {
			l := newFakeLeg(fmt.Sprintf("l%d-%d", k, i), media.PCMU, 0)
			br.Add(l)
			legs = append(legs, l)
		}
		bridges = append(bridges, br)
	}
	time.Sleep(100 * time.Millisecond)
	for _, l := range legs {
		if len(l.packetsSent()) == 0 {
			t.Fatalf("%s got nothing from its mixing bridge", l.id)
		}
	}
	for _, br := range bridges {
		br.Close()
	}
	clock.Close()
	for _, l := range legs {
		l.reset()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	for _, l := range legs {
		if n := len(l.packetsSent()); n != 0 {
			t.Fatalf("%s was sent %d packets after Close", l.id, n)
		}
	}
}
