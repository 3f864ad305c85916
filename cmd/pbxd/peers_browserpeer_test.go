package main

// The harness's own far end: a small SIP-over-WebSocket server with a
// pion peer, so the browser tooling is proven without pbxd.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	pionmedia "github.com/pion/webrtc/v4/pkg/media"

	"pbxd/media/tone"
)

// browserPeer is a SIP-over-WebSocket server with a WebRTC peer (pion)
// behind it: the far end of TestBrowserHarness, which checks the pages,
// the driver and the assertions of the browser tests without pbxd. It
// accepts any REGISTER (echoing the Contact with expires, no
// challenge), answers INVITEs with a PCMU answer that sends a tone, takes
// BYE and INFO, and calls the registered browser itself (Invite, Bye).
// What it hears is decoded for tone checks, and RFC 4733 events are kept
// as digits.
type browserPeer struct {
	t      *testing.T
	ln     net.Listener
	api    *webrtc.API
	toneHz float64
	addr   string

	mu        sync.Mutex
	conn      net.Conn
	contact   string // the browser's registered Contact URI
	aor       string
	pc        *webrtc.PeerConnection
	stopTone  chan struct{}
	heard     []int16
	events    map[uint32]byte // RFC 4733 event by timestamp
	digits    []byte
	infos     []string
	responses chan browserPeerMsg
	wg        sync.WaitGroup
}

// browserPeerMsg is a parsed SIP message.
type browserPeerMsg struct {
	first string
	hdr   [][2]string // in order, names lower case
	body  string
}

func parseBrowserPeerMsg(s string) browserPeerMsg {
	head, body, _ := strings.Cut(s, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	m := browserPeerMsg{first: lines[0], body: body}
	for _, l := range lines[1:] {
		if k, v, ok := strings.Cut(l, ":"); ok {
			m.hdr = append(m.hdr, [2]string{strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)})
		}
	}
	return m
}

func (m browserPeerMsg) get(name string) string {
	for _, h := range m.hdr {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

func (m browserPeerMsg) all(name string) []string {
	var out []string
	for _, h := range m.hdr {
		if h[0] == name {
			out = append(out, h[1])
		}
	}
	return out
}

// uriOf is the URI inside <…> of a header value.
func uriOf(v string) string {
	if i := strings.Index(v, "<"); i >= 0 {
		if j := strings.Index(v[i:], ">"); j > 0 {
			return v[i+1 : i+j]
		}
	}
	return strings.TrimSpace(strings.Split(v, ";")[0])
}

// loopbackWebRTC is what a pion peer talking to pbxd is made with: a
// media engine with the pages' audio codecs (PCMU and telephone-event)
// and a setting engine that keeps ICE on loopback UDP, like the pages.
func loopbackWebRTC(t *testing.T) (*webrtc.MediaEngine, webrtc.SettingEngine) {
	t.Helper()
	m := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/telephone-event", ClockRate: 8000, SDPFmtpLine: "0-16"}, PayloadType: 101},
	} {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	var s webrtc.SettingEngine
	s.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	s.SetIncludeLoopbackCandidate(true)
	s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	s.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	return m, s
}

func startBrowserPeer(t *testing.T, toneHz float64) *browserPeer {
	t.Helper()
	m, s := loopbackWebRTC(t)
	// Chromium also checks its candidates on other interfaces against
	// ours; one socket that ignores every source off loopback keeps the
	// answers on loopback.
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: loopbackPackets{udp}})
	s.SetICEUDPMux(mux)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		udp.Close()
		t.Fatal(err)
	}
	p := &browserPeer{t: t, ln: ln, api: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(s)), toneHz: toneHz,
		addr: ln.Addr().String(), events: map[uint32]byte{}, responses: make(chan browserPeerMsg, 16)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		p.close()
		mux.Close()
	})
	return p
}

// loopbackPackets is a UDP socket that drops datagrams from sources off
// loopback.
type loopbackPackets struct{ c *net.UDPConn }

func (l loopbackPackets) ReadFrom(b []byte) (int, net.Addr, error) {
	for i := 0; ; i++ {
		n, a, err := l.c.ReadFromUDP(b)
		if err != nil || a.IP.IsLoopback() || i >= 10000 {
			return n, a, err
		}
	}
}
func (l loopbackPackets) WriteTo(b []byte, a net.Addr) (int, error) { return l.c.WriteTo(b, a) }
func (l loopbackPackets) Close() error                              { return l.c.Close() }
func (l loopbackPackets) LocalAddr() net.Addr                       { return l.c.LocalAddr() }
func (l loopbackPackets) SetDeadline(t time.Time) error             { return l.c.SetDeadline(t) }
func (l loopbackPackets) SetReadDeadline(t time.Time) error         { return l.c.SetReadDeadline(t) }
func (l loopbackPackets) SetWriteDeadline(t time.Time) error        { return l.c.SetWriteDeadline(t) }

func (p *browserPeer) accept() {
	defer p.wg.Done()
	for i := 0; i < 16; i++ { // a test opens one or two pages
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u := ws.Upgrader{Protocol: func(b []byte) bool { return string(b) == "sip" }}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := u.Upgrade(c); err != nil {
			c.Close()
			continue
		}
		c.SetDeadline(time.Time{})
		p.mu.Lock()
		p.conn = c
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *browserPeer) serve(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	for n := 0; n < 10000; n++ {
		raw, err := wsutil.ReadClientText(c)
		if err != nil {
			return
		}
		m := parseBrowserPeerMsg(string(raw))
		method, _, _ := strings.Cut(m.first, " ")
		switch method {
		case "SIP/2.0":
			select {
			case p.responses <- m:
			default:
			}
		case "REGISTER":
			contact := m.get("contact")
			p.mu.Lock()
			p.contact, p.aor = uriOf(contact), uriOf(m.get("to"))
			p.mu.Unlock()
			contact = regexp.MustCompile(`;expires=\d+`).ReplaceAllString(contact, "")
			expires := "600"
			if strings.Contains(m.get("contact"), "expires=0") || m.get("expires") == "0" {
				expires = "0"
			}
			p.respond(m, "200 OK", []string{"Contact: " + contact + ";expires=" + expires}, "")
		case "INVITE":
			sdp, err := p.answer(m.body)
			if err != nil {
				p.t.Errorf("browser peer: answering the browser's offer: %v", err)
				p.respond(m, "488 Not Acceptable Here", nil, "")
				continue
			}
			p.respond(m, "200 OK", []string{p.contactHeader(), "Content-Type: application/sdp"}, sdp)
		case "BYE":
			p.respond(m, "200 OK", nil, "")
			p.hangup()
		case "INFO":
			p.mu.Lock()
			p.infos = append(p.infos, m.body)
			p.mu.Unlock()
			p.respond(m, "200 OK", nil, "")
		case "ACK":
		default:
			p.respond(m, "405 Method Not Allowed", nil, "")
		}
	}
}

func (p *browserPeer) contactHeader() string {
	return "Contact: <sip:peer@" + p.addr + ";transport=ws>"
}

func (p *browserPeer) send(msg string) {
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	if c == nil {
		p.t.Errorf("browser peer: no WebSocket to send on")
		return
	}
	if err := wsutil.WriteServerText(c, []byte(msg)); err != nil {
		p.t.Errorf("browser peer: %v", err)
	}
}

func (p *browserPeer) respond(req browserPeerMsg, status string, extra []string, body string) {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + status + "\r\n")
	for _, v := range req.all("via") {
		b.WriteString("Via: " + v + "\r\n")
	}
	to := req.get("to")
	if !strings.Contains(to, ";tag=") {
		to += ";tag=peer1"
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n", req.get("from"), to, req.get("call-id"), req.get("cseq"))
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	p.send(b.String())
}

// newPC makes the peer connection of a call: a PCMU track that sends
// the tone, and a reader of what the browser sends.
func (p *browserPeer) newPC() (*webrtc.PeerConnection, error) {
	pc, err := p.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "audio", "peer")
	if err != nil {
		pc.Close()
		return nil, err
	}
	if _, err := pc.AddTrack(track); err != nil {
		pc.Close()
		return nil, err
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		errs := 0
		for i := 0; i < 100000; i++ { // 30 minutes of 20 ms packets at most
			n, _, err := tr.Read(buf)
			if err != nil {
				// A payload type the track did not expect yet is one bad
				// packet; a closed track ends the call.
				if errs++; errors.Is(err, io.EOF) || errs > 100 || pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
					return
				}
				continue
			}
			r, ok := parseRTP(buf[:n])
			if !ok {
				continue
			}
			p.mu.Lock()
			if pcm := g711Decode(r.PayloadType, r.Payload); pcm != nil {
				p.heard = append(p.heard, pcm...)
			} else if len(r.Payload) >= 4 {
				if _, seen := p.events[r.Timestamp]; !seen && r.Payload[0] < 16 {
					p.events[r.Timestamp] = r.Payload[0]
					p.digits = append(p.digits, "0123456789*#ABCD"[r.Payload[0]])
				}
			}
			p.mu.Unlock()
		}
	})
	stop := make(chan struct{})
	p.mu.Lock()
	if p.pc != nil {
		p.mu.Unlock()
		pc.Close()
		return nil, errors.New("a call is already up")
	}
	p.pc, p.stopTone = pc, stop
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		osc := tone.NewOscillator(audioRate, toneAmplitude, p.toneHz)
		frame := make([]int16, samplesPerPacket)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 90000; i++ { // 30 minutes at most
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			osc.Next(frame)
			data := make([]byte, len(frame))
			for j, s := range frame {
				data[j] = ulawEncode(s)
			}
			_ = track.WriteSample(pionmedia.Sample{Data: data, Duration: 20 * time.Millisecond})
		}
	}()
	return pc, nil
}

// local sets d and returns the local description once gathering is done.
func (p *browserPeer) local(pc *webrtc.PeerConnection, d webrtc.SessionDescription) (string, error) {
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		return "", err
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		return "", errors.New("ICE gathering did not complete in 5s")
	}
	return pc.LocalDescription().SDP, nil
}

func (p *browserPeer) answer(offer string) (string, error) {
	pc, err := p.newPC()
	if err != nil {
		return "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		p.hangup()
		return "", err
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		p.hangup()
		return "", err
	}
	return p.local(pc, ans)
}

// hangup ends the call's media.
func (p *browserPeer) hangup() {
	p.mu.Lock()
	pc, stop := p.pc, p.stopTone
	p.pc, p.stopTone = nil, nil
	p.mu.Unlock()
	if stop != nil {
		close(stop)
	}
	if pc != nil {
		pc.Close()
	}
}

// browserPeerCall is a call the peer placed to the browser.
type browserPeerCall struct {
	callID, toTag, target string
}

// Invite calls the registered browser (INVITE to its Contact over its
// WebSocket, with the peer's offer) and returns once it has answered and
// the ACK is sent.
func (p *browserPeer) Invite(limit time.Duration) browserPeerCall {
	p.t.Helper()
	p.mu.Lock()
	contact, aor := p.contact, p.aor
	p.mu.Unlock()
	if contact == "" {
		p.t.Fatal("browser peer: nobody registered")
	}
	pc, err := p.newPC()
	if err != nil {
		p.t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		p.t.Fatal(err)
	}
	sdp, err := p.local(pc, offer)
	if err != nil {
		p.t.Fatal(err)
	}
	call := browserPeerCall{callID: fmt.Sprintf("peer-%d", time.Now().UnixNano()), target: contact}
	p.send(fmt.Sprintf("INVITE %s SIP/2.0\r\nVia: SIP/2.0/WS peer.invalid;branch=z9hG4bK%d\r\nMax-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1>;tag=peerfrom\r\nTo: <%s>\r\nCall-ID: %s\r\nCSeq: 1 INVITE\r\n%s\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		contact, time.Now().UnixNano(), aor, call.callID, p.contactHeader(), len(sdp), sdp))
	deadline := time.After(limit)
	for {
		select {
		case <-deadline:
			p.t.Fatalf("browser peer: no answer to the INVITE in %v", limit)
		case m := <-p.responses:
			code := strings.Fields(m.first)[1]
			if m.get("call-id") != call.callID || code[0] == '1' {
				continue
			}
			if code != "200" {
				p.t.Fatalf("browser peer: the browser answered %s", m.first)
			}
			if t := regexp.MustCompile(`;tag=([^;>\s]+)`).FindStringSubmatch(m.get("to")); t != nil {
				call.toTag = t[1]
			}
			if c := uriOf(m.get("contact")); c != "" {
				call.target = c
			}
			if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.body}); err != nil {
				p.t.Fatalf("browser peer: the browser's answer: %v\n%s", err, m.body)
			}
			p.send(p.inDialog("ACK", 1, call, aor))
			return call
		}
	}
}

func (p *browserPeer) inDialog(method string, cseq int, call browserPeerCall, aor string) string {
	return fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/WS peer.invalid;branch=z9hG4bK%d\r\nMax-Forwards: 70\r\nFrom: <sip:peer@127.0.0.1>;tag=peerfrom\r\nTo: <%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContent-Length: 0\r\n\r\n",
		method, call.target, time.Now().UnixNano(), aor, call.toTag, call.callID, cseq, method)
}

// Bye hangs up a call the peer placed and waits for the 200.
func (p *browserPeer) Bye(call browserPeerCall) {
	p.t.Helper()
	p.mu.Lock()
	aor := p.aor
	p.mu.Unlock()
	p.send(p.inDialog("BYE", 2, call, aor))
	deadline := time.After(5 * time.Second)
	for {
		select {
		case <-deadline:
			p.t.Errorf("browser peer: no answer to the BYE")
			p.hangup()
			return
		case m := <-p.responses:
			if m.get("call-id") == call.callID && strings.Contains(m.get("cseq"), "BYE") {
				p.hangup()
				return
			}
		}
	}
}

// Heard returns the audio the peer received and clears it, with the
// RFC 4733 digits and the INFO bodies.
func (p *browserPeer) Heard() (pcm []int16, digits string, infos []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pcm, digits, infos = p.heard, string(p.digits), p.infos
	p.heard, p.digits, p.infos = nil, nil, nil
	p.events = map[uint32]byte{}
	return pcm, digits, infos
}

func (p *browserPeer) close() {
	p.ln.Close()
	p.mu.Lock()
	c := p.conn
	p.mu.Unlock()
	if c != nil {
		c.Close()
	}
	p.hangup()
	p.wg.Wait()
}

// TestBrowserHarness checks the browser harness against its own far end
// (browserPeer), without pbxd: each library registers, calls the peer,
// hears its tone, is heard, sends DTMF as RFC 4733 events and as INFO,
// hangs up, and then answers a call from the peer, which hangs up. The
// same checks guard the pbxd browser tests (e2e_browser_test.go), so
// they fail there only because of pbxd.
func TestBrowserHarness(t *testing.T) {
	t.Parallel()
	const peerHz = 1200
	for _, lib := range browserLibraries {
		t.Run(lib, func(t *testing.T) {
			t.Parallel()
			p := startBrowserPeer(t, peerHz)
			run := startBrowser(t, browserScenario{Library: lib, WSURL: "ws://" + p.addr, URI: "sip:harness@127.0.0.1", User: "harness", Password: "unused",
				Steps: []browserStep{
					{Do: "register"},
					{Do: "call", Target: "sip:peer@127.0.0.1"},
					{Do: "wait", Ms: 2000},
					{Do: "stats", Label: "calling"},
					{Do: "screenshot", Name: "calling"},
					{Do: "dtmf", Tones: "1234#", TransportType: "RFC2833"},
					{Do: "dtmf", Tones: "5", TransportType: "INFO"},
					{Do: "waitSignal", Name: "heard"},
					{Do: "hangup"},
					{Do: "answer"},
					{Do: "wait", Ms: 2000},
					{Do: "stats", Label: "answered"},
					{Do: "waitEnded"},
					{Do: "unregister"},
				}})
			run.WaitHeld("heard", 30*time.Second)
			out, digits, infos := p.Heard()
			run.Signal("heard")
			run.WaitEvent("ended", 10*time.Second)
			call := p.Invite(20 * time.Second)
			time.Sleep(2500 * time.Millisecond)
			in, _, _ := p.Heard()
			p.Bye(call)
			res := run.Wait()
			if !res.OK {
				t.Fatalf("%v", res)
			}
			wantRegistered(t, res)
			if len(res.Stats) != 2 {
				t.Fatalf("stats: %+v", res.Stats)
			}
			for i, what := range []string{"calling", "answered"} {
				r := res
				r.Stats = res.Stats[i : i+1]
				t.Run(what, func(t *testing.T) { wantBrowserHeard(t, r, peerHz) })
			}
			for what, pcm := range map[string][]int16{"calling": out, "answered": in} {
				if r := tone.Detect(pcm, audioRate, []float64{browserToneHz, peerHz}); len(pcm) < audioRate || r[browserToneHz] < tone.PresentRatio || r[peerHz] > tone.AbsentRatio {
					t.Errorf("%s: the peer heard %d samples, tone ratios %v", what, len(pcm), r)
				}
			}
			if digits != "1234#" {
				t.Errorf("the peer got RFC 4733 digits %q, want 1234#", digits)
			}
			if len(infos) != 1 || !strings.Contains(infos[0], "Signal=5") {
				t.Errorf("the peer got INFO bodies %q, want one for 5", infos)
			}
			for _, s := range res.Stats {
				if s.SelectedPair == nil || !strings.Contains(s.SelectedPair.Local, " 127.0.0.1:") || !strings.Contains(s.SelectedPair.Remote, " 127.0.0.1:") {
					t.Errorf("%s: the media left loopback: %+v", s.Label, s.SelectedPair)
				}
			}
		})
	}
}
