package main

// Self-tests of the peer tooling (SIPp scenarios, baresip, RTP capture),
// peer to peer on loopback without pbxd, so that a failing call test
// through pbxd points at pbxd and not at its tools.

import (
	"crypto/md5"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wantAudio checks that flow carried G.711 audio with a tone at hz for
// about talk: at least half the packets expected at 50 per second (the
// machine may be busy), nearly all non-silent, most of it the tone.
func wantAudio(t *testing.T, what string, f rtpFlow, pt uint8, hz float64, talk time.Duration) {
	t.Helper()
	want := int(talk.Seconds() * 50 / 2)
	if f.Packets < want {
		t.Errorf("%s: %d RTP packets, want at least %d: %v", what, f.Packets, want, f)
		return
	}
	if f.PayloadTypes[pt] < f.Packets*9/10 {
		t.Errorf("%s: payload types %v, want mostly %d", what, f.PayloadTypes, pt)
	}
	if f.NonSilent < f.Audio*9/10 {
		t.Errorf("%s: %d of %d audio packets are non-silent", what, f.NonSilent, f.Audio)
	}
	if l := f.Levels(hz); l.Tone < l.Blocks*8/10 {
		t.Errorf("%s: the %v Hz tone is in %d of %d blocks", what, hz, l.Tone, l.Blocks)
	}
}

func TestPeersAudioHelpers(t *testing.T) {
	t.Parallel()
	tone := toneSamples(1000, toneAmplitude, audioRate)
	for _, c := range []struct {
		name string
		enc  func(int16) byte
		dec  func(byte) int16
	}{{"ulaw", ulawEncode, ulawDecode}, {"alaw", alawEncode, alawDecode}} {
		// G.711 keeps a sample within about 1/16 of its size.
		for _, s := range []int16{0, 1, -1, 100, -100, 1000, -1000, 8000, -8000, 32767, -32768} {
			got := c.dec(c.enc(s))
			if d := math.Abs(float64(got) - float64(s)); d > math.Abs(float64(s))/16+16 {
				t.Errorf("%s: %d -> %d", c.name, s, got)
			}
		}
	}
	// Reference points of G.711.
	if ulawEncode(0) != 0xff || ulawDecode(0x00) != -32124 || ulawDecode(0x80) != 32124 {
		t.Errorf("µ-law reference points: enc(0)=%#x dec(0)=%d dec(0x80)=%d", ulawEncode(0), ulawDecode(0), ulawDecode(0x80))
	}
	if alawEncode(0) != 0xd5 || alawDecode(0xd5) != 8 || alawDecode(0xaa) != 32256 {
		t.Errorf("A-law reference points: enc(0)=%#x dec(0xd5)=%d dec(0xaa)=%d", alawEncode(0), alawDecode(0xd5), alawDecode(0xaa))
	}
	if l := measureAudio(tone, 1000); l.Tone != l.Blocks || l.Blocks != 50 {
		t.Errorf("a 1000 Hz tone: %+v", l)
	}
	if l := measureAudio(tone, 600); l.Tone != 0 || l.NonSilent != 50 {
		t.Errorf("a 1000 Hz tone is not 600 Hz: %+v", l)
	}
	if l := measureAudio(make([]int16, audioRate), 1000); l.NonSilent != 0 {
		t.Errorf("silence: %+v", l)
	}

	dir := t.TempDir()
	wav := filepath.Join(dir, "t.wav")
	if err := writeWAV(wav, audioRate, tone); err != nil {
		t.Fatal(err)
	}
	rate, ch, got, err := readWAV(wav)
	if err != nil || rate != audioRate || ch != 1 || !slices.Equal(got, tone) {
		t.Fatalf("WAV round trip: %v %d %d %d samples", err, rate, ch, len(got))
	}

	// A pcap written for SIPp reads back as the same RTP.
	pc := filepath.Join(dir, "t.pcap")
	if err := writeRTPPcap(pc, 8, tone); err != nil {
		t.Fatal(err)
	}
	pkts, err := readPcap(pc)
	if err != nil {
		t.Fatal(err)
	}
	flows := rtpFlows(pkts)
	if len(flows) != 1 {
		t.Fatalf("%d flows", len(flows))
	}
	f := *flows[0]
	if f.Packets != 50 || f.PayloadTypes[8] != 50 || len(f.SSRCs) != 1 || f.Duration() != 980*time.Millisecond {
		t.Errorf("pcap flow: %v", f)
	}
	wantAudio(t, "pcap", f, 8, 1000, time.Second)
	// A capture cut anywhere (tcpdump killed while writing) reads
	// without an error.
	raw, _ := os.ReadFile(pc)
	cut := filepath.Join(dir, "cut.pcap")
	for n := 24; n < 24+3*(16+230); n += 7 {
		os.WriteFile(cut, raw[:n], 0o644)
		if _, err := readPcap(cut); err != nil {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
}

// sippPair runs one UAC scenario against one UAS scenario with the RTP
// of both captured, and returns both results and the capture.
func sippPair(t *testing.T, uas, uac sippOpts) (uasRes, uacRes sippResult, c *rtpCapture, callee, caller *sippProc) {
	t.Helper()
	callee = startSIPpUAS(t, uas)
	uac.Target = callee.Addr
	uac.MediaPort = freeUDPPortRange(t, 4)
	c = startRTPCapture(t, callee.MediaPort, uac.MediaPort)
	caller = startSIPpUAC(t, uac)
	uacRes = caller.Wait()
	uasRes = callee.Wait()
	c.Stop()
	return uasRes, uacRes, c, callee, caller
}

func TestPeersSIPpCall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		codecs []string
		pt     uint8
	}{
		{"PCMU first", []string{"PCMU", "PCMA"}, 0},
		{"PCMA first", []string{"PCMA", "PCMU"}, 8},
		{"PCMA only", []string{"PCMA"}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			talk := 1500 * time.Millisecond
			uasRes, uacRes, c, callee, caller := sippPair(t,
				sippOpts{Scenario: "uas_answer.xml"},
				sippOpts{Scenario: "uac_call.xml", Codecs: tc.codecs, Talk: talk})
			if uacRes.Err != nil || uasRes.Err != nil {
				t.Fatalf("UAC: %v\nUAS: %v", uacRes, uasRes)
			}
			if got := uasRes.Requests(); !slices.Equal(got, []string{"INVITE", "ACK", "BYE"}) {
				t.Errorf("UAS received %v", got)
			}
			wantAudio(t, "caller to callee", c.From(caller.MediaPort), tc.pt, sippCallerHz, talk)
			wantAudio(t, "callee to caller", c.From(callee.MediaPort), tc.pt, sippCalleeHz, talk)
			if to := c.To(caller.MediaPort); to.Packets != c.From(callee.MediaPort).Packets {
				t.Errorf("the caller's port got %d packets, the callee sent %d", to.Packets, c.From(callee.MediaPort).Packets)
			}
		})
	}
}

func TestPeersSIPpHold(t *testing.T) {
	t.Parallel()
	talk := time.Second
	uasRes, uacRes, c, callee, caller := sippPair(t,
		sippOpts{Scenario: "uas_answer.xml"},
		sippOpts{Scenario: "uac_reinvite_hold.xml", Talk: talk, Hold: 500 * time.Millisecond})
	if uacRes.Err != nil || uasRes.Err != nil {
		t.Fatalf("UAC: %v\nUAS: %v", uacRes, uasRes)
	}
	if got := uasRes.Requests(); !slices.Equal(got, []string{"INVITE", "ACK", "INVITE", "ACK", "INVITE", "ACK", "BYE"}) {
		t.Errorf("UAS received %v", got)
	}
	var dirs []string
	for _, m := range uasRes.Messages {
		if m.Sent && m.Status() == 200 && strings.Contains(m.Text, "m=audio") {
			for _, d := range []string{"sendrecv", "recvonly", "sendonly", "inactive"} {
				if strings.Contains(m.Text, "a="+d) {
					dirs = append(dirs, d)
				}
			}
		}
	}
	if !slices.Equal(dirs, []string{"sendrecv", "recvonly", "sendrecv"}) {
		t.Errorf("the UAS answered %v", dirs)
	}
	wantAudio(t, "caller to callee", c.From(caller.MediaPort), 0, sippCallerHz, 2*talk)
	wantAudio(t, "callee to caller", c.From(callee.MediaPort), 0, sippCalleeHz, 2*talk)
}

func TestPeersSIPpCalleeHangsUp(t *testing.T) {
	t.Parallel()
	talk := 1500 * time.Millisecond
	uasRes, uacRes, c, callee, caller := sippPair(t,
		sippOpts{Scenario: "uas_answer_bye.xml", Talk: talk},
		sippOpts{Scenario: "uac_call_wait_bye.xml"})
	if uacRes.Err != nil || uasRes.Err != nil {
		t.Fatalf("UAC: %v\nUAS: %v", uacRes, uasRes)
	}
	if got := uacRes.Requests(); !slices.Equal(got, []string{"BYE"}) {
		t.Errorf("UAC received %v", got)
	}
	wantAudio(t, "caller to callee", c.From(caller.MediaPort), 0, sippCallerHz, talk)
	wantAudio(t, "callee to caller", c.From(callee.MediaPort), 0, sippCalleeHz, talk)
}

func TestPeersSIPpBusy(t *testing.T) {
	t.Parallel()
	callee := startSIPpUAS(t, sippOpts{Scenario: "uas_busy.xml"})
	mp := freeUDPPortRange(t, 4)
	c := startRTPCapture(t, callee.MediaPort, mp)
	uacRes := runSIPpUAC(t, sippOpts{Scenario: "uac_rejected.xml", Target: callee.Addr, MediaPort: mp})
	uasRes := callee.Wait()
	if uacRes.Err != nil || uasRes.Err != nil {
		t.Fatalf("UAC: %v\nUAS: %v", uacRes, uasRes)
	}
	if got := uacRes.Responses(); !slices.Equal(got, []int{486}) {
		t.Errorf("UAC received %v", got)
	}
	if flows := c.Flows(); len(flows) != 0 {
		t.Errorf("RTP for a rejected call: %v", flows)
	}
}

func TestPeersSIPpCancel(t *testing.T) {
	t.Parallel()
	callee := startSIPpUAS(t, sippOpts{Scenario: "uas_ring_noanswer.xml"})
	uacRes := runSIPpUACOK(t, sippOpts{Scenario: "uac_cancel.xml", Target: callee.Addr, Talk: 500 * time.Millisecond})
	uasRes := callee.WaitOK()
	got := uacRes.Responses()
	if !slices.Contains(got, 180) || !slices.Contains(got, 200) || !slices.Contains(got, 487) {
		t.Errorf("UAC received %v", got)
	}
	if got := uasRes.Requests(); !slices.Equal(got, []string{"INVITE", "CANCEL", "ACK"}) {
		t.Errorf("UAS received %v", got)
	}
}

func TestPeersBaresipCall(t *testing.T) {
	t.Parallel()
	alice := startBaresip(t, baresipOpts{User: "alice", ToneHz: 500})
	bob := startBaresip(t, baresipOpts{User: "bob", ToneHz: 900})
	c := startRTPCapture(t, alice.RTPPort, bob.RTPPort)

	alice.Dial(bob.URI)
	in := bob.WaitEvent("CALL_INCOMING", 10*time.Second)
	if !strings.Contains(in.PeerURI, "alice@") {
		t.Errorf("incoming call from %q", in.PeerURI)
	}
	alice.WaitEvent("CALL_RINGING", 10*time.Second)
	bob.Answer()
	alice.WaitEvent("CALL_ESTABLISHED", 10*time.Second)
	bob.WaitEvent("CALL_ESTABLISHED", 10*time.Second)
	talk := 2 * time.Second
	time.Sleep(talk)
	alice.Hangup()
	alice.WaitEvent("CALL_CLOSED", 10*time.Second)
	bob.WaitEvent("CALL_CLOSED", 10*time.Second)

	// Each heard the other's tone, and RTP flowed both ways.
	for _, h := range []struct {
		who   *baresip
		hz    float64
		other float64
	}{{alice, 900, 500}, {bob, 500, 900}} {
		got := measureAudio(h.who.Received(), h.hz)
		if got.ToneSeconds() < talk.Seconds()/2 {
			t.Errorf("%s heard %.2fs of %v Hz: %+v", h.who.opts.User, got.ToneSeconds(), h.hz, got)
		}
		if own := measureAudio(h.who.Received(), h.other); own.Tone > 0 {
			t.Errorf("%s heard its own tone: %+v", h.who.opts.User, own)
		}
	}
	wantAudio(t, "alice to bob", c.From(alice.RTPPort), 0, 500, talk)
	wantAudio(t, "bob to alice", c.From(bob.RTPPort), 0, 900, talk)
}

func TestPeersBaresipHold(t *testing.T) {
	t.Parallel()
	alice := startBaresip(t, baresipOpts{User: "alice", ToneHz: 500})
	bob := startBaresip(t, baresipOpts{User: "bob", ToneHz: 900, AutoAnswer: true})
	c := startRTPCapture(t, alice.RTPPort, bob.RTPPort)
	alice.Dial(bob.URI)
	alice.WaitEvent("CALL_ESTABLISHED", 10*time.Second)
	bob.WaitEvent("CALL_ESTABLISHED", 10*time.Second)
	time.Sleep(time.Second)
	alice.Hold()
	bob.WaitEvent("CALL_REMOTE_SDP", 10*time.Second) // the offer of the INVITE
	bob.WaitEvent("CALL_REMOTE_SDP", 10*time.Second) // the hold re-INVITE
	held := time.Now()
	time.Sleep(time.Second)
	// alice sends again as soon as she takes the call off hold, which can
	// be before Resume returns: the hold window ends when it is asked for.
	resuming := time.Now()
	alice.Resume()
	resumed := time.Now()
	bob.WaitEvent("CALL_REMOTE_SDP", 10*time.Second)
	time.Sleep(time.Second)
	bob.Hangup()
	alice.WaitEvent("CALL_CLOSED", 10*time.Second)

	// baresip 1.0.0 sends nothing either way while a call is held.
	from, to := held.Add(300*time.Millisecond), resuming
	if f := c.FromDuring(alice.RTPPort, from, to); f.Packets > 0 {
		t.Errorf("alice sent during the hold: %v", f)
	}
	if f := c.FromDuring(bob.RTPPort, from, to); f.Packets > 0 {
		t.Errorf("bob sent during the hold: %v", f)
	}
	wantAudio(t, "alice after the hold", c.FromDuring(alice.RTPPort, resumed, time.Now()), 0, 500, 700*time.Millisecond)
	wantAudio(t, "bob after the hold", c.FromDuring(bob.RTPPort, resumed, time.Now()), 0, 900, 700*time.Millisecond)
}

// TestPeersRegister registers a SIPp callee and a baresip phone with the
// pbxd registrar, which already works.
func TestPeersRegister(t *testing.T) {
	t.Parallel()
	// baresip 1.0.0 cannot answer a challenge that also offers SHA-256.
	p := start(t, startOpts{env: []string{"PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}, args: []string{"--sip-auth-algorithms", "MD5"}})
	admin := p.login("admin", e2eAdminPassword)
	for _, d := range []struct{ user, ext, dev string }{{"peer-sipp", "651", "peer-sipp-dev"}, {"peer-baresip", "652", "peer-baresip-dev"}} {
		uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": d.user, "extension": d.ext}).want(t, 201).str("id")
		p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "desk", "username": d.dev, "password": "pass-" + d.dev}).want(t, 201)
	}
	uas := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml",
		Register: &sippRegistration{Registrar: p.sip, Username: "peer-sipp-dev", Password: "pass-peer-sipp-dev"}})
	phone := startBaresip(t, baresipOpts{User: "peer-baresip-dev", Password: "pass-peer-baresip-dev", Registrar: p.sip})
	phone.WaitRegistered(10 * time.Second)
	regs := p.do("GET", "/api/v1/registrations", admin, nil).want(t, 200)
	if regs.obj["total"].(float64) != 2 || !strings.Contains(string(regs.raw), "127.0.0.1:"+strconv.Itoa(uas.Port)) ||
		!strings.Contains(string(regs.raw), "127.0.0.1:"+strconv.Itoa(phone.Port)) {
		t.Fatalf("registrations: %s", regs.raw)
	}
	// The SIPp binding goes when the test ends; a subtest's end shows it.
	t.Run("unregister", func(t *testing.T) {
		uas := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml",
			Register: &sippRegistration{Registrar: p.sip, Username: "peer-sipp-dev", Password: "pass-peer-sipp-dev"}})
		uas.Stop()
	})
	regs = p.do("GET", "/api/v1/registrations", admin, nil).want(t, 200)
	if regs.obj["total"].(float64) != 2 {
		t.Fatalf("registrations after the subtest: %s", regs.raw)
	}
	uas.Stop()
}

// digestUAS is a stand-in for pbxd's INVITE challenge, to prove the 407
// path of the uac_*.xml scenarios without pbxd: it answers an INVITE
// without credentials with 407 (MD5, qop=auth), checks the digest of the
// next one (403 if wrong) and then plays mode: "answer" (180, 200 with
// SDP, 200 for the BYE), "ring" (180, then 200 and 487 for a CANCEL) or
// "busy" (486).
type digestUAS struct {
	t          *testing.T
	conn       *net.UDPConn
	media      *net.UDPConn
	user, pass string
	mode       string
	done       sync.WaitGroup

	mu                 sync.Mutex
	challenged, authed int
	invite             *sipRequest // the authenticated INVITE, for the 487
}

const digestRealm, digestNonce = "peers-test", "c2VsZi10ZXN0LW5vbmNl"

// sipRequest is a request as far as digestUAS needs it.
type sipRequest struct {
	method  string
	vias    []string
	headers map[string]string // lower-case name → value, first one only
}

func startDigestUAS(t *testing.T, user, pass, mode string) *digestUAS {
	t.Helper()
	d := &digestUAS{t: t, user: user, pass: pass, mode: mode}
	var err error
	if d.conn, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	if d.media, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	d.done.Add(2)
	go func() { // swallow the caller's RTP
		defer d.done.Done()
		buf := make([]byte, 2048)
		for {
			if _, _, err := d.media.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()
	go d.serve()
	t.Cleanup(func() {
		d.conn.Close()
		d.media.Close()
		d.done.Wait()
	})
	return d
}

func (d *digestUAS) addr() string { return d.conn.LocalAddr().String() }

func (d *digestUAS) serve() {
	defer d.done.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		req, ok := parseSIPRequest(string(buf[:n]))
		if !ok {
			continue
		}
		reply := func(code int, reason string, toTag bool, extra ...string) {
			d.conn.WriteToUDP([]byte(buildSIPResponse(req, code, reason, toTag, extra...)), from)
		}
		switch req.method {
		case "INVITE":
			cred := req.headers["proxy-authorization"]
			d.mu.Lock()
			if cred == "" {
				d.challenged++
				d.mu.Unlock()
				reply(407, "Proxy Authentication Required", true,
					`Proxy-Authenticate: Digest realm="`+digestRealm+`", nonce="`+digestNonce+`", algorithm=MD5, qop="auth"`)
				continue
			}
			if !checkDigest(cred, "INVITE", d.user, d.pass) {
				d.mu.Unlock()
				reply(403, "Forbidden", true)
				continue
			}
			d.authed++
			d.invite = &req
			d.mu.Unlock()
			switch d.mode {
			case "busy":
				reply(486, "Busy Here", true)
			case "ring":
				reply(180, "Ringing", true)
			default:
				reply(180, "Ringing", true)
				port := d.media.LocalAddr().(*net.UDPAddr).Port
				sdp := fmt.Sprintf("v=0\r\no=test 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", port)
				reply(200, "OK", true, "Content-Type: application/sdp", "\r\n"+sdp)
			}
		case "CANCEL":
			reply(200, "OK", true)
			d.mu.Lock()
			inv := d.invite
			d.mu.Unlock()
			if inv != nil {
				d.conn.WriteToUDP([]byte(buildSIPResponse(*inv, 487, "Request Terminated", true)), from)
			}
		case "BYE":
			reply(200, "OK", false)
		}
	}
}

// parseSIPRequest reads the request line and headers of a SIP request.
func parseSIPRequest(msg string) (sipRequest, bool) {
	head, _, _ := strings.Cut(msg, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	f := strings.Fields(lines[0])
	if len(f) != 3 || f[2] != "SIP/2.0" {
		return sipRequest{}, false
	}
	r := sipRequest{method: f[0], headers: map[string]string{}}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name, value = strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)
		if name == "via" || name == "v" {
			r.vias = append(r.vias, value)
			continue
		}
		if _, dup := r.headers[name]; !dup {
			r.headers[name] = value
		}
	}
	return r, true
}

// buildSIPResponse answers req; extra are header lines, and one starting
// with CRLF is the body.
func buildSIPResponse(req sipRequest, code int, reason string, toTag bool, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, v := range req.vias {
		b.WriteString("Via: " + v + "\r\n")
	}
	to := req.headers["to"]
	if toTag && !strings.Contains(to, ";tag=") {
		to += ";tag=digest-uas"
	}
	cseq := req.headers["cseq"]
	if code == 487 {
		n, _, _ := strings.Cut(cseq, " ")
		cseq = n + " INVITE"
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n", req.headers["from"], to, req.headers["call-id"], cseq)
	b.WriteString("Contact: <sip:digest-uas@" + "127.0.0.1" + ">\r\n")
	body := ""
	for _, e := range extra {
		if strings.HasPrefix(e, "\r\n") {
			body = e[2:]
			continue
		}
		b.WriteString(e + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// checkDigest verifies an MD5 digest credential (RFC 2617, qop=auth or
// none) for method, user and password against digestRealm/digestNonce.
func checkDigest(cred, method, user, pass string) bool {
	scheme, rest, _ := strings.Cut(cred, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return false
	}
	p := map[string]string{}
	for _, kv := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		p[strings.ToLower(k)] = strings.Trim(v, `"`)
	}
	if p["username"] != user || p["realm"] != digestRealm || p["nonce"] != digestNonce {
		return false
	}
	h := func(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) }
	ha1, ha2 := h(user+":"+digestRealm+":"+pass), h(method+":"+p["uri"])
	want := h(ha1 + ":" + digestNonce + ":" + ha2)
	if p["qop"] != "" {
		want = h(strings.Join([]string{ha1, digestNonce, p["nc"], p["cnonce"], p["qop"], ha2}, ":"))
	}
	return p["response"] == want
}

// TestPeersSIPpDigest runs the callers against a digest challenger, as
// pbxd challenges INVITEs from devices with 407.
func TestPeersSIPpDigest(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, scenario, mode, password string
		want                           []int
	}{
		{"call", "uac_call.xml", "answer", "right-pass", []int{407, 180, 200, 200}},
		{"cancel", "uac_cancel.xml", "ring", "right-pass", []int{407, 180, 200, 487}},
		{"busy", "uac_rejected.xml", "busy", "right-pass", []int{407, 486}},
		{"wrong password", "uac_rejected.xml", "answer", "wrong-pass", []int{407, 403}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := startDigestUAS(t, "digest-dev", "right-pass", tc.mode)
			r := runSIPpUACOK(t, sippOpts{Scenario: tc.scenario, Target: d.addr(), From: "digest-dev", To: "600",
				Password: tc.password, Talk: 500 * time.Millisecond})
			if got := r.Responses(); !slices.Equal(got, tc.want) {
				t.Errorf("responses %v, want %v\n%s", got, tc.want, r.Trace())
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			wantAuthed := 1
			if tc.password != "right-pass" {
				wantAuthed = 0
			}
			if d.challenged != 1 || d.authed != wantAuthed {
				t.Errorf("challenged %d, authenticated %d", d.challenged, d.authed)
			}
		})
	}
}
