package webrtcleg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"pbxd/media"
)

// candidates lists the "addr port" of every host candidate in sdp.
func candidates(sdp []byte) []string {
	re := regexp.MustCompile(`a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ host`)
	var out []string
	for _, m := range re.FindAllSubmatch(sdp, -1) {
		out = append(out, string(m[1])+" "+string(m[2]))
	}
	sort.Strings(out)
	return out
}

// call connects a browser to a new leg of e and checks a tone each way.
func call(t *testing.T, e *Engine, name string, toLeg, toBrowser float64) (*Leg, []byte) {
	t.Helper()
	l, err := e.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rx := &sink{}
	l.SetReceiver(rx)
	b := newBrowser(t, nil)
	_, answer := connect(t, l, b)
	snd := sendTone(l, toBrowser, media.PCMU, 1)
	b.sendTone(toLeg, 0, 40)
	got := b.waitPackets(35, func(p *rtp.Packet) bool { return p.PayloadType == 0 })
	snd.Stop()
	assertTone(t, name+": browser", decode("PCMU", payloadsOf(got[5:])...), toBrowser)
	var pl [][]byte
	for _, f := range rx.wait(t, media.KindAudio, 35) {
		pl = append(pl, f.Payload)
	}
	assertTone(t, name+": leg", decode("PCMU", pl...), toLeg)
	return l, answer
}

// TestSinglePortTwoBrowsers runs two calls at once through the engine's
// one UDP port: both are up, with media checked each way, at the same time.
func TestSinglePortTwoBrowsers(t *testing.T) {
	checkGoroutines(t)
	e := newEngine(t, Config{})
	answers := make(chan []byte, 2)
	var both, checked sync.WaitGroup
	both.Add(2)
	checked.Add(2)
	for i, f := range [][2]float64{{400, 1000}, {700, 1300}} {
		t.Run(fmt.Sprint("browser", i), func(t *testing.T) {
			t.Parallel()
			var once sync.Once
			counted := func() { once.Do(checked.Done) }
			defer counted() // also when call fails the test
			func() {
				defer both.Done() // also when call fails the test
				_, a := call(t, e, fmt.Sprint("browser", i), f[0], f[1])
				answers <- a
			}()
			both.Wait() // neither call ends before both worked
			if n := e.Active(); n != 2 {
				t.Errorf("%d legs open, want 2", n)
			}
			counted()
			checked.Wait() // nor before both counted the open legs
		})
	}
	t.Cleanup(func() {
		close(answers)
		want := []string{fmt.Sprintf("127.0.0.1 %d", e.Port())}
		for a := range answers {
			if got := candidates(a); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("candidates %v, want %v", got, want)
			}
		}
	})
}

// TestLite runs the engine as an ICE-lite agent, answering and offering.
func TestLite(t *testing.T) {
	checkGoroutines(t)
	e := newEngine(t, Config{Lite: true})
	_, answer := call(t, e, "lite-answer", 400, 1000)
	if !bytes.Contains(answer, []byte("a=ice-lite")) {
		t.Errorf("answer not ice-lite:\n%s", answer)
	}

	l, err := e.Open("lite-offer")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	offer, err := l.Offer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(offer, []byte("a=ice-lite")) {
		t.Errorf("offer not ice-lite:\n%s", offer)
	}
	b := newBrowser(t, nil)
	if err := l.SetAnswer(b.answer(offer)); err != nil {
		t.Fatal(err)
	}
	b.waitConnected()
	snd := sendTone(l, 700, media.PCMU, 3)
	got := b.waitPackets(30, func(p *rtp.Packet) bool { return p.PayloadType == 0 })
	snd.Stop()
	assertTone(t, "browser from lite offerer", decode("PCMU", payloadsOf(got[5:])...), 700)
}

// TestPublicIPs checks the NAT rewrite: with BindIP unspecified the engine
// listens on a wildcard socket and advertises only the public address
// (here loopback, so the browser can reach it); with AdvertisePrivate the
// local address stays next to the public one.
func TestPublicIPs(t *testing.T) {
	checkGoroutines(t)
	e := newEngine(t, Config{PublicIPs: []netip.Addr{loopback}})
	if got := e.Addrs(); len(got) != 1 || !got[0].IsUnspecified() {
		t.Errorf("listening on %v, want one wildcard socket", got)
	}
	_, answer := call(t, e, "nat", 400, 1000)
	if got, want := candidates(answer), []string{fmt.Sprintf("127.0.0.1 %d", e.Port())}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("candidates %v, want %v:\n%s", got, want, answer)
	}

	e2 := newEngine(t, Config{BindIP: loopback, PublicIPs: []netip.Addr{netip.MustParseAddr("198.51.100.7")}, AdvertisePrivate: true})
	_, answer = call(t, e2, "nat-and-lan", 700, 1300)
	want := []string{fmt.Sprintf("127.0.0.1 %d", e2.Port()), fmt.Sprintf("198.51.100.7 %d", e2.Port())}
	if got := candidates(answer); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("candidates %v, want %v", got, want)
	}

	e3 := newEngine(t, Config{BindIP: loopback, PublicIPs: []netip.Addr{netip.MustParseAddr("198.51.100.7")}})
	l, _ := e3.Open("replaced")
	defer l.Close()
	answer, err := l.Answer(context.Background(), newBrowser(t, nil).offer())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := candidates(answer), []string{fmt.Sprintf("198.51.100.7 %d", e3.Port())}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("candidates %v, want %v", got, want)
	}
}

// TestAllInterfaces binds every local address (one socket each, one port)
// with loopback included, and calls over loopback.
func TestAllInterfaces(t *testing.T) {
	checkGoroutines(t)
	e := newEngine(t, Config{Loopback: true})
	_, answer := call(t, e, "any", 400, 1000)
	got := candidates(answer)
	if len(got) != len(e.Addrs()) {
		t.Errorf("candidates %v for addresses %v", got, e.Addrs())
	}
	for _, a := range e.Addrs() {
		if !bytes.Contains(answer, []byte(fmt.Sprintf("%s %d typ host", a, e.Port()))) {
			t.Errorf("no candidate for %s:\n%s", a, answer)
		}
	}
}

// TestStateAndTimeout: the state callback sees the connection come up and,
// when the browser goes away, fail or close (and may close the leg); the
// media timeout fires once when a connected browser sends nothing.
func TestStateAndTimeout(t *testing.T) {
	checkGoroutines(t)
	e := newEngine(t, Config{MediaTimeout: 600 * time.Millisecond, ICEDisconnectedTimeout: 500 * time.Millisecond, ICEFailedTimeout: time.Second})
	l, err := e.Open("state")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	states := make(chan string, 16)
	l.OnState(func(s string) {
		if s == StateFailed || s == StateClosed {
			l.Close() // the call engine hangs up from the callback
		}
		states <- s
	})
	timeouts := make(chan struct{}, 4)
	l.OnTimeout(func() { timeouts <- struct{}{} })
	b := newBrowser(t, nil)
	connect(t, l, b)
	waitState(t, states, StateConnected)
	if l.State() != StateConnected {
		t.Errorf("State() = %s", l.State())
	}
	select {
	case <-timeouts:
	case <-time.After(3 * time.Second):
		t.Fatal("no media timeout")
	}
	b.close() // the browser hangs up without BYE: tab closed
	waitState(t, states, StateClosed, StateFailed)
	if e.Active() != 0 {
		t.Errorf("leg still open after Close from the state callback")
	}
	select {
	case <-timeouts:
		t.Error("media timeout fired twice")
	case <-time.After(300 * time.Millisecond):
	}
}

func waitState(t *testing.T, states <-chan string, want ...string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s := <-states:
			for _, w := range want {
				if s == w {
					return
				}
			}
		case <-deadline:
			t.Fatalf("state never became %v", want)
		}
	}
}

// TestClose: a closed leg refuses everything, the engine forgets it, and
// closing the engine closes the legs still open; no goroutine survives.
func TestClose(t *testing.T) {
	checkGoroutines(t)
	e, err := New(Config{BindIP: loopback, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	l1, _ := call(t, e, "first", 400, 1000)
	l2, err := e.Open("second")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l2.Offer(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.Active() != 2 {
		t.Errorf("Active %d", e.Active())
	}
	if err := l1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l1.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if err := l1.Send(&media.Frame{Codec: media.PCMU, Payload: make([]byte, 160)}); !errors.Is(err, media.ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	if err := l1.SendDTMF(context.Background(), '1', 0); !errors.Is(err, media.ErrClosed) {
		t.Errorf("SendDTMF after Close: %v", err)
	}
	if _, err := l1.Offer(context.Background()); !errors.Is(err, media.ErrClosed) {
		t.Errorf("Offer after Close: %v", err)
	}
	if e.Active() != 1 {
		t.Errorf("Active %d after one Close", e.Active())
	}
	e.Close()
	if e.Active() != 0 {
		t.Errorf("Active %d after engine Close", e.Active())
	}
	if _, err := e.Open("late"); !errors.Is(err, ErrEngineClosed) {
		t.Errorf("Open after Close: %v", err)
	}
}

// TestListenAddrs checks which sockets each configuration binds.
func TestListenAddrs(t *testing.T) {
	onlyLoopback := true
	ias, _ := net.InterfaceAddrs()
	for _, ia := range ias {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() {
			onlyLoopback = false
		}
	}
	addrs, lb, err := listenAddrs(&Config{})
	if err != nil {
		t.Fatal(err)
	}
	hasLoop := slices.ContainsFunc(addrs, netip.Addr.IsLoopback)
	if onlyLoopback != hasLoop || lb != hasLoop {
		t.Errorf("default config: %v (loopback %v) on a host with only loopback: %v", addrs, lb, onlyLoopback)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
		lb   bool
		err  bool
	}{
		{"bind loopback", Config{BindIP: loopback}, "[127.0.0.1]", true, false},
		{"bind other", Config{BindIP: netip.MustParseAddr("192.0.2.10")}, "[192.0.2.10]", false, false},
		{"behind NAT", Config{PublicIPs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}}, "[0.0.0.0]", true, false},
		{"IPv6 off", Config{BindIP: netip.MustParseAddr("::1")}, "", false, true},
	} {
		addrs, lb, err := listenAddrs(&tc.cfg)
		if (err != nil) != tc.err || err == nil && (fmt.Sprint(addrs) != tc.want || lb != tc.lb) {
			t.Errorf("%s: %v %v %v, want %s %v", tc.name, addrs, lb, err, tc.want, tc.lb)
		}
	}
}
