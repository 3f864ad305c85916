package media_test

// The bridge with in-memory legs (bridge_fakeleg_test.go): conferences,
// the shared mix clock and shutdown; the listening helpers the other
// bridge tests use. Roles and mute are in bridge_roles_test.go, audio
// levels, packet times and DTMF in bridge_audio_test.go.

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"pbxd/media"
	"pbxd/media/tone"
)

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
	br := newBridge(t)
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
	br := newBridge(t)
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
