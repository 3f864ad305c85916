//go:build bench

package main

// Browser figures of the call-control benchmarks (bench_control_test.go
// has the SIP phone's):
//
//   - the /phone page calling a SIP phone, ctlWebCalls times in a row, the
//     way the page does it: it connects this browser (POST
//     /api/v1/connection {"target":"browser"}), pbxd's WebRTC offer comes
//     as a connection.offer event, the page posts its SDP answer (POST
//     /api/v1/connection/answer), ICE and DTLS-SRTP come up (connection
//     event "connected"), and the page dials (POST /api/v1/dial) an
//     extension whose registered SIP phone gets pbxd's INVITE. The
//     headline is the page's SDP post → that INVITE; each step is reported
//     too, and the dial step against the API → wire budget;
//   - CPU per bridged WebRTC call: ctlWebSteps pages at once (pion peers in
//     the test process, one agent each), each in a call through pbxd to
//     one registered SIP phone, a PCMU tone both ways at 50 packets/s per
//     direction; pbxd's CPU over ctlWebWindow (from /proc/PID/stat) per
//     call and per packet it forwarded, with its RSS, PSS and heap.
//
// The page's WebRTC side is pion, loopback only like the browser
// harness's far end (peers_browserpeer_test.go).

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"pbxd/media/tone"
)

const (
	ctlWebCalls  = 50
	ctlWebWindow = 10 * time.Second
	ctlWebConc   = 4 // pages connecting at once
)

// ctlWebSteps are the numbers of simultaneous browser calls.
var ctlWebSteps = []int{10, 25, 50}

func TestBenchControlWebRTC(t *testing.T) {
	nofile := raiseNoFile()
	debug := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
	b := startCallBox(t, append(ctlArgs, "--debug-listen", debug)...)
	pid := b.cmd.Process.Pid
	base := time.Now()
	b.phoneUser("ctl-wcust", ctlCustExt, nil)
	cust := newCtlPhone(t, base, b.sip, "ctl-wcust-dev")
	peers := newCtlPeers(t)
	fmt.Printf("BENCH control-webrtc-env cpus=%d machine_idle_pct=%.0f nofile=%d calls=%d steps=%v window_s=%.0f pps_per_direction=50\n",
		runtime.NumCPU(), benchIdle(time.Second), nofile, ctlWebCalls, ctlWebSteps, ctlWebWindow.Seconds())
	agents := provisionWebAgents(t, b, ctlWebSteps[len(ctlWebSteps)-1])
	defer ctlHTTP.CloseIdleConnections()
	st := sampleProc(b.base, debug, pid)
	fmt.Printf("BENCH control-webrtc-idle when=%q agents=%d rss_kb=%d pss_kb=%d heap_live_kb=%d goroutines=%d\n",
		"after creating and logging in the agents, before any call", len(agents), ctlRSS(pid), st.pss, st.heap/1024, st.goroutines)
	// The logins' argon2id memory goes back to the system once hashing
	// has been quiet for two seconds.
	time.Sleep(3 * time.Second)
	st = sampleProc(b.base, debug, pid)
	fmt.Printf("BENCH control-webrtc-idle when=%q agents=%d rss_kb=%d pss_kb=%d heap_live_kb=%d goroutines=%d\n",
		"3 s later", len(agents), ctlRSS(pid), st.pss, st.heap/1024, st.goroutines)

	// The page's call, one after the other.
	a := agents[0]
	quiet := benchWaitQuiet(5 * time.Second)
	var offer, connected, dial, answerToInvite, connectToInvite, dialRTT []time.Duration
	for i, deadline := 0, time.Now().Add(ctlPartLimit); i < ctlWarmup+ctlWebCalls && time.Now().Before(deadline); i++ {
		cust.conn.drain()
		tm, err := a.connect(b.base, peers)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		r, wid, err := a.dial(b.base)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		inv, err := cust.conn.next(5 * time.Second)
		if err == nil {
			_, err = a.ev.next("workitem.answered", fieldIs("workitemId", wid), 10*time.Second)
		}
		if err == nil {
			err = a.hangup(b.base, peers)
		}
		if err == nil {
			err = cust.waitBye(inv.callID, 5*time.Second)
		}
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if i >= ctlWarmup {
			offer, connected = append(offer, tm.offer.Sub(tm.post)), append(connected, tm.connected.Sub(tm.answer))
			dial, dialRTT = append(dial, inv.at.Sub(r.sent)), append(dialRTT, r.rtt)
			answerToInvite, connectToInvite = append(answerToInvite, inv.at.Sub(tm.answer)), append(connectToInvite, inv.at.Sub(tm.post))
		}
	}
	idle := waitCallsIdle(t, b.base)
	fmt.Printf("BENCH control-browser-call what=%q calls=%d machine_idle_pct_before=%.0f %s %s %s %s calls_active_after=%d budget=none\n",
		"/phone page: answer posted → INVITE read at the SIP phone (the page dials on connected)", len(dial), quiet,
		ctlPcts("answer_post_to_invite", answerToInvite), ctlPcts("connect_post_to_invite", connectToInvite),
		ctlPcts("connect_post_to_offer_event", offer), ctlPcts("answer_post_to_connected_event", connected), idle)
	printWire("control-browser-dial", "POST /api/v1/dial (agent on a WebRTC leg) sent → INVITE read at the SIP phone", quiet, dial, dialRTT, -1)

	// CPU per bridged call, stepped.
	for _, n := range ctlWebSteps {
		benchWebStep(t, b, debug, cust, peers, agents[:n])
	}
	fmt.Println("BENCH control-webrtc-note cpu_us_per_packet=\"pbxd CPU in the window / packets it forwarded (each received once and sent once)\"" +
		" heap_live=\"after a GC; per call it includes the media buffers (pion ICE, DTLS, SRTP state) that the budget leaves out\"" +
		" test_process_cpu=\"the pion pages and the SIP phone, on the same cores\"")
	for _, a := range agents {
		if n := a.ev.dropped.Load(); n > 0 {
			t.Errorf("%s: %d events dropped by the test's reader", a.name, n)
		}
	}
}

// ctlRSS is a process's resident set size in KiB, or -1.
func ctlRSS(pid int) int {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
	}
	return -1
}

// benchWebStep puts every agent's page in a call to the SIP phone, holds
// the calls for a measured window with audio both ways, and hangs up.
// pbxd's live heap (after a GC, through --debug-listen) is taken before
// the calls and after the window, with the calls still up.
func benchWebStep(t *testing.T, b *callBox, debug string, cust *ctlPhone, peers *ctlPeers, agents []*ctlWebAgent) {
	n, pid := len(agents), b.cmd.Process.Pid
	before := sampleProc(b.base, debug, pid)
	rssBefore := ctlRSS(pid)
	quiet := benchWaitQuiet(5 * time.Second)
	t0 := time.Now()
	err := ctlEach(agents, func(a *ctlWebAgent) error {
		if _, err := a.connect(b.base, peers); err != nil {
			return err
		}
		_, wid, err := a.dial(b.base)
		if err == nil {
			_, err = a.ev.next("workitem.answered", fieldIs("workitemId", wid), 20*time.Second)
		}
		return err
	})
	if err != nil {
		t.Fatalf("%d browser calls: %v", n, err)
	}
	setup := time.Since(t0)
	time.Sleep(time.Second)

	cust.media.sourcesSeen(0)
	heard0 := make([]uint64, n)
	for i, a := range agents {
		heard0[i] = a.peer.recv.Load()
	}
	custRecv0, custSent0 := cust.media.recv.Load(), cust.media.sentPkts.Load()
	peersSent0 := peers.sent.Load()
	cpu0, self0, stat0, w0 := cpuTime(pid), benchSelfCPU(), readCPUStat(), time.Now()
	time.Sleep(ctlWebWindow)
	cpu, self, machineIdle, window := cpuTime(pid)-cpu0, benchSelfCPU()-self0, stat0.idleSince(), time.Since(w0)
	rss := ctlRSS(pid)
	toPhone, fromPhone := cust.media.recv.Load()-custRecv0, cust.media.sentPkts.Load()-custSent0
	fromPages := peers.sent.Load() - peersSent0
	// A call carries audio when at least a tenth of its packets came
	// through in each direction.
	enough := uint64(window.Seconds() * 50 / 10)
	phoneHears := cust.media.sourcesSeen(enough)
	var toPages uint64
	pagesHear := 0
	for i, a := range agents {
		d := a.peer.recv.Load() - heard0[i]
		toPages += d
		if d >= enough {
			pagesHear++
		}
	}
	fwd := toPhone + toPages
	loaded := sampleProc(b.base, debug, pid)
	heapPerCall := float64(loaded.heap-before.heap) / 1024 / float64(n)
	fmt.Printf("BENCH control-webrtc-cpu calls=%d machine_idle_pct_before=%.0f setup_s=%.2f window_s=%.1f pbxd_cpu_pct=%.1f pbxd_cpu_pct_per_call=%.2f pbxd_cpu_us_per_packet=%.1f "+
		"packets_in=%d packets_forwarded=%d calls_with_audio_to_phone=%d calls_with_audio_to_page=%d test_process_cpu_pct=%.0f machine_idle_pct=%.0f "+
		"rss_kb=%d rss_before_kb=%d pss_kb=%d heap_live_kb=%d heap_live_before_kb=%d heap_live_per_call_kb=%.0f heap_budget_per_call_kb=100 heap_within_budget=%t goroutines=%d\n",
		n, quiet, setup.Seconds(), window.Seconds(), 100*cpu.Seconds()/window.Seconds(), 100*cpu.Seconds()/window.Seconds()/float64(n),
		float64(cpu.Microseconds())/float64(max(fwd, 1)), fromPhone+fromPages, fwd, phoneHears, pagesHear, 100*self.Seconds()/window.Seconds(), machineIdle,
		rss, rssBefore, loaded.pss, loaded.heap/1024, before.heap/1024, heapPerCall, heapPerCall < 100, loaded.goroutines)
	if phoneHears < n || pagesHear < n {
		t.Errorf("%d browser calls: audio reached the phone in %d and the pages in %d", n, phoneHears, pagesHear)
	}

	if err := ctlEach(agents, func(a *ctlWebAgent) error { return a.hangup(b.base, peers) }); err != nil {
		t.Fatalf("hanging up %d browser calls: %v", n, err)
	}
	for deadline := time.Now().Add(10 * time.Second); cust.active() > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if left := cust.active(); left > 0 {
		t.Fatalf("%d of %d calls still up at the phone after hanging up", left, n)
	}
	waitCallsIdle(t, b.base)
}

// ctlEach runs f for every agent, ctlWebConc at a time, and returns the
// first error.
func ctlEach(agents []*ctlWebAgent, f func(*ctlWebAgent) error) error {
	jobs := make(chan *ctlWebAgent)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < ctlWebConc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a := range jobs {
				if err := f(a); err != nil {
					mu.Lock()
					first = errors.Join(first, fmt.Errorf("%s: %w", a.name, err))
					mu.Unlock()
				}
			}
		}()
	}
	for _, a := range agents {
		jobs <- a
	}
	close(jobs)
	wg.Wait()
	return first
}

// --- the pages' agents ---

// ctlWebAgent is one agent on the /phone page: a session, an event
// stream, and while connected the page's peer.
type ctlWebAgent struct {
	name, ext string
	uid, tok  string
	ev        *ctlEvents
	peer      *ctlPeer
}

// provisionWebAgents makes n agents (ROLE_AGENT, no SIP device) and logs
// each in with an event stream open.
func provisionWebAgents(t *testing.T, b *callBox, n int) []*ctlWebAgent {
	t.Helper()
	agents := make([]*ctlWebAgent, n)
	for i := range agents {
		agents[i] = &ctlWebAgent{name: fmt.Sprintf("ctl-web-%02d", i), ext: strconv.Itoa(7700 + i)}
	}
	err := ctlEach(agents, func(a *ctlWebAgent) error {
		pw := "pw-" + a.name + "-123"
		r, err := ctlDo("POST", b.base, "/api/v1/users", b.admin, map[string]any{"userName": a.name, "extension": a.ext, "firstName": "Web",
			"password": pw, "roles": []string{"ROLE_AGENT"}})
		if err != nil || r.code != 201 {
			return fmt.Errorf("creating the user: %v %d %s", err, r.code, r.raw)
		}
		a.uid, _ = r.obj["id"].(string)
		if r, err = ctlDo("POST", b.base, "/api/v1/login", "", map[string]any{"username": a.name, "password": pw}); err != nil || r.code != 200 {
			return fmt.Errorf("login: %v %d %s", err, r.code, r.raw)
		}
		a.tok, _ = r.obj["token"].(string)
		a.ev, err = dialCtlEvents(b.base, a.uid, a.tok)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, a := range agents {
			if a.ev != nil {
				a.ev.close()
			}
		}
	})
	return agents
}

// ctlWebTimes are the moments of one page connection.
type ctlWebTimes struct{ post, offer, answer, connected time.Time }

// connect does what the page's connect button does and returns once pbxd
// reports the connection up.
func (a *ctlWebAgent) connect(base string, peers *ctlPeers) (ctlWebTimes, error) {
	var tm ctlWebTimes
	r, err := ctlDo("POST", base, "/api/v1/connection", a.tok, map[string]any{"target": "browser"})
	if err != nil || r.code != 202 {
		return tm, fmt.Errorf("connect: %v %d %s", err, r.code, r.raw)
	}
	tm.post = r.sent
	ev, err := a.ev.next("connection.offer", func(map[string]any) (bool, error) { return true, nil }, 10*time.Second)
	if err != nil {
		return tm, err
	}
	tm.offer = ev.at
	sdp, _ := ev.data["sdp"].(string)
	p, answer, err := peers.answer(sdp)
	if err != nil {
		return tm, err
	}
	a.peer = p
	if r, err = ctlDo("POST", base, "/api/v1/connection/answer", a.tok, map[string]any{"sdp": answer}); err != nil || r.code != 204 {
		return tm, fmt.Errorf("answer: %v %d %s", err, r.code, r.raw)
	}
	tm.answer = r.sent
	if ev, err = a.ev.next("connection", stateIs("connected"), 20*time.Second); err != nil {
		return tm, err
	}
	tm.connected = ev.at
	return tm, nil
}

// dial calls the SIP phone's extension.
func (a *ctlWebAgent) dial(base string) (ctlResp, string, error) {
	r, err := ctlDo("POST", base, "/api/v1/dial", a.tok, map[string]any{"to": ctlCustExt})
	if err != nil || r.code != 200 {
		return r, "", fmt.Errorf("dial: %v %d %s", err, r.code, r.raw)
	}
	wid, _ := r.obj["workitemId"].(string)
	return r, wid, nil
}

// hangup disconnects (which ends the call too) and closes the peer.
func (a *ctlWebAgent) hangup(base string, peers *ctlPeers) error {
	r, err := ctlDo("DELETE", base, "/api/v1/connection", a.tok, nil)
	if err != nil || r.code != 204 {
		return fmt.Errorf("disconnect: %v %d %s", err, r.code, r.raw)
	}
	_, err = a.ev.next("connection", stateIs("disconnected"), 10*time.Second)
	peers.remove(a.peer)
	a.peer = nil
	return err
}

// --- the pages' WebRTC peers ---

// ctlPeers are the pages' peer connections on one pion API. One goroutine
// sends every peer a 20 ms PCMU tone sample in its 1 ms slot of the 20 ms
// cycle; each peer's track reader counts what it receives.
type ctlPeers struct {
	api     *webrtc.API
	payload []byte
	mu      sync.Mutex
	peers   []*ctlPeer
	next    int
	sent    atomic.Uint64
	stopped chan struct{}
	wg      sync.WaitGroup
}

type ctlPeer struct {
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticSample
	slot  int
	recv  atomic.Uint64
}

func newCtlPeers(t *testing.T) *ctlPeers {
	t.Helper()
	m, s := loopbackWebRTC(t)
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	ps := &ctlPeers{api: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s)), stopped: make(chan struct{})}
	for _, v := range tone.Sine(800, toneAmplitude, audioRate, samplesPerPacket) {
		ps.payload = append(ps.payload, ulawEncode(v))
	}
	ps.wg.Add(1)
	go ps.send()
	t.Cleanup(ps.close)
	return ps
}

// answer makes a peer for pbxd's offer and returns it with its answer
// (every candidate in it: the page does not trickle).
func (ps *ctlPeers) answer(offer string) (*ctlPeer, string, error) {
	pc, err := ps.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", err
	}
	p := &ctlPeer{pc: pc}
	fail := func(err error) (*ctlPeer, string, error) { pc.Close(); return nil, "", err }
	if p.track, err = webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "page"); err != nil {
		return fail(err)
	}
	if _, err := pc.AddTrack(p.track); err != nil {
		return fail(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			p.recv.Add(1)
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(err)
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return fail(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return fail(errors.New("ICE gathering did not complete in 5 s"))
	}
	ps.mu.Lock()
	p.slot = ps.next % 20
	ps.next++
	ps.peers = append(ps.peers, p)
	ps.mu.Unlock()
	return p, pc.LocalDescription().SDP, nil
}

func (ps *ctlPeers) remove(p *ctlPeer) {
	if p == nil {
		return
	}
	ps.mu.Lock()
	for i, x := range ps.peers {
		if x == p {
			ps.peers = append(ps.peers[:i:i], ps.peers[i+1:]...)
			break
		}
	}
	ps.mu.Unlock()
	p.pc.Close()
}

func (ps *ctlPeers) send() {
	defer ps.wg.Done()
	everyMillisecond(ps.stopped, func(tick int) {
		ps.mu.Lock()
		for _, p := range ps.peers {
			if p.slot == tick%20 && p.pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
				if p.track.WriteSample(pionmedia.Sample{Data: ps.payload, Duration: 20 * time.Millisecond}) == nil {
					ps.sent.Add(1)
				}
			}
		}
		ps.mu.Unlock()
	})
}

func (ps *ctlPeers) close() {
	close(ps.stopped)
	ps.wg.Wait()
	ps.mu.Lock()
	peers := ps.peers
	ps.peers = nil
	ps.mu.Unlock()
	for _, p := range peers {
		p.pc.Close()
	}
}
