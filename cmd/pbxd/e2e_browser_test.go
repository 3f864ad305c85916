package main

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"pbxd/media/tone"
)

// browserAuth are the pbxd flags the browser tests need: none. JsSIP 3.13
// and SIP.js 0.21 keep only the last WWW-Authenticate (and
// Proxy-Authenticate) header of a challenge and answer MD5 only, so pbxd
// challenges requests over WebSocket with MD5 alone; the tests run pbxd
// with its default algorithms (MD5 and SHA-256) to prove it.
var browserAuth = []string{}

// browserLibraries are the SIP stacks the browser tests run, each in its
// own page.
var browserLibraries = []string{"jssip", "sipjs"}

// webPhone is a browser softphone account: a user with an extension and
// a device whose credentials the page uses.
type webPhone struct {
	dev, ext string
}

func (b *callBox) webPhone(name, ext string) webPhone {
	b.t.Helper()
	b.phoneUser(name, ext, nil)
	return webPhone{dev: name + "-dev", ext: ext}
}

// scenario is a browser scenario for the account, against b's WebSocket.
func (w webPhone) scenario(b *callBox, library string, steps ...browserStep) browserScenario {
	return browserScenario{Library: library, WSURL: "ws://" + b.sipWS, URI: "sip:" + w.dev + "@127.0.0.1",
		User: w.dev, Password: "pw-" + w.dev, Steps: steps}
}

// bindings lists the live registrations of device dev.
func (b *callBox) bindings(t *testing.T, dev string) []map[string]any {
	t.Helper()
	r := b.do("GET", "/api/v1/registrations", b.admin, nil).want(t, 200)
	var out []map[string]any
	objs, _ := r.obj["objects"].([]any)
	for _, o := range objs {
		if m, _ := o.(map[string]any); m != nil && m["deviceUsername"] == dev {
			out = append(out, m)
		}
	}
	return out
}

// wantRegistered checks that the page registered: the library said so,
// and the 200 echoed its Contact with an expires parameter.
func wantRegistered(t *testing.T, res browserResult) {
	t.Helper()
	if _, ok := res.Event("registered"); !ok {
		t.Fatalf("the page did not register:\n%v", res)
	}
	reg, ok := res.SIPFirst("out", "REGISTER")
	if !ok || !strings.Contains(reg.Text, "SIP/2.0/WS ") || !strings.Contains(reg.Text, ".invalid") {
		t.Errorf("REGISTER as a browser sends it (Via WS, a .invalid host):\n%s", reg.Text)
	}
	ok200, ok := res.SIPFirst("in", "SIP/2.0 200")
	if !ok || !regexp.MustCompile(`(?im)^Contact: <sip:[^>]+\.invalid;transport=ws>.*;expires=\d+`).MatchString(ok200.Text) {
		t.Errorf("the 200 to the REGISTER should echo the Contact with expires:\n%s", ok200.Text)
	}
}

// wantChallenged checks that the page answered pbxd's digest challenge.
func wantChallenged(t *testing.T, res browserResult) {
	t.Helper()
	if _, ok := res.SIPFirst("in", "SIP/2.0 401"); !ok {
		t.Errorf("pbxd did not challenge the REGISTER:\n%s", res.SIPTrace())
	}
	var regs int
	for _, m := range res.SIP {
		if m.Dir == "out" && strings.HasPrefix(m.FirstLine(), "REGISTER") && strings.Contains(m.Text, "Authorization: Digest") {
			regs++
		}
	}
	if regs == 0 {
		t.Errorf("no REGISTER with credentials:\n%s", res.SIPTrace())
	}
}

// TestBrowserRegister: JsSIP and SIP.js in headless Chromium register
// over pbxd's SIP WebSocket with digest (MD5 over WebSocket: see browserAuth);
// pbxd lists the
// binding with transport WS and the connection's real address; the page
// unregisters on stop, and the binding is gone.
func TestBrowserRegister(t *testing.T) {
	t.Parallel()
	b := startCallBox(t, browserAuth...)
	phones := map[string]webPhone{}
	for i, lib := range browserLibraries {
		phones[lib] = b.webPhone("web"+lib, fmt.Sprint(751+i))
	}
	for _, lib := range browserLibraries {
		t.Run(lib, func(t *testing.T) {
			w := phones[lib]
			run := startBrowser(t, w.scenario(b, lib,
				browserStep{Do: "register"},
				browserStep{Do: "screenshot", Name: "registered"},
				browserStep{Do: "waitSignal", Name: "checked"},
				browserStep{Do: "unregister"},
			))
			run.WaitEvent("registered", 30*time.Second)
			regs := b.bindings(t, w.dev)
			run.Signal("checked")
			res := run.Wait()
			if !res.OK {
				t.Fatalf("%v", res)
			}
			wantRegistered(t, res)
			wantChallenged(t, res)
			if len(regs) != 1 {
				t.Fatalf("bindings of %s while registered: %v", w.dev, regs)
			}
			reg := regs[0]
			src, _ := reg["source"].(string)
			ua, _ := reg["userAgent"].(string)
			if reg["transport"] != "WS" || !strings.HasPrefix(src, "127.0.0.1:") || !strings.Contains(reg["contact"].(string), ".invalid") {
				t.Errorf("the binding should be the WebSocket connection's: %v", reg)
			}
			if want := map[string]string{"jssip": "JsSIP", "sipjs": "SIP.js"}[lib]; !strings.Contains(ua, want) {
				t.Errorf("binding user agent %q, want %s", ua, want)
			}
			if _, ok := res.Event("unregistered"); !ok {
				t.Errorf("the page did not unregister:\n%v", res)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(b.bindings(t, w.dev)) > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("binding left after the page unregistered: %v", b.bindings(t, w.dev))
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// wantBrowserHeard checks the page's statistics of a call: packets in
// and out, the remote track playing and loud, and the loudest frequency
// the page hears is hz.
func wantBrowserHeard(t *testing.T, res browserResult, hz float64) {
	t.Helper()
	s := res.LastStats()
	t.Logf("browser stats: codec %s in %+v out %+v peak %+v pair %+v", s.Codec, s.Inbound, s.Outbound, s.RemotePeak, s.SelectedPair)
	if s.Inbound == nil || s.Inbound.PacketsReceived < 50 || s.Inbound.TotalSamplesReceived == 0 || s.Inbound.AudioLevel <= 0 {
		t.Errorf("the browser received no audio: %+v", s.Inbound)
	}
	if s.Outbound == nil || s.Outbound.PacketsSent < 50 {
		t.Errorf("the browser sent no audio: %+v", s.Outbound)
	}
	if s.Codec == "" {
		t.Errorf("no codec in the browser's statistics")
	}
	if _, ok := res.Event("remotePlaying"); !ok || s.RemoteAudio == nil || s.RemoteAudio.Paused {
		t.Errorf("the remote track is not playing: %+v", s.RemoteAudio)
	}
	if s.RemotePeak == nil || math.Abs(s.RemotePeak.Hz-hz) > 30 {
		t.Errorf("the browser should hear %v Hz loudest, heard %+v", hz, s.RemotePeak)
	}
}

// wantToneReceived checks what a SIP phone received from the browser:
// RTP, non-silent G.711, the browser's tone and not the phone's own.
func wantToneReceived(t *testing.T, what string, f rtpFlow, hz, own float64) {
	t.Helper()
	t.Logf("%s: %v", what, f)
	if f.Packets < 50 || f.Audio == 0 {
		t.Errorf("%s: %d RTP packets (%d G.711), want a call's worth", what, f.Packets, f.Audio)
		return
	}
	if f.NonSilent < f.Audio/2 {
		t.Errorf("%s: %d of %d audio packets are non-silent", what, f.NonSilent, f.Audio)
	}
	r := tone.Detect(f.Samples, audioRate, []float64{hz, own})
	if r[hz] < tone.PresentRatio || r[own] > tone.AbsentRatio {
		t.Errorf("%s: tone ratios %v, want the browser's %v Hz and not %v Hz", what, r, hz, own)
	}
}

// telephoneEvents are the RFC 4733 events of payload type pt sent to
// port, one digit per event (its packets share a timestamp).
func telephoneEvents(pkts []udpPacket, port int, pt uint8) string {
	const digits = "0123456789*#ABCD"
	var out strings.Builder
	seen := map[uint32]bool{}
	for _, p := range pkts {
		if int(p.Dst.Port()) != port {
			continue
		}
		r, ok := parseRTP(p.Payload)
		if !ok || r.PayloadType != pt || len(r.Payload) < 4 || seen[r.Timestamp] {
			continue
		}
		seen[r.Timestamp] = true
		if ev := int(r.Payload[0]); ev < len(digits) {
			out.WriteByte(digits[ev])
		} else {
			out.WriteString(fmt.Sprintf("<%d>", ev))
		}
	}
	return out.String()
}

// telephoneEventPT is the telephone-event payload type in an SDP body.
func telephoneEventPT(sdp string) (uint8, bool) {
	m := regexp.MustCompile(`a=rtpmap:(\d+) telephone-event/8000`).FindStringSubmatch(sdp)
	if m == nil {
		return 0, false
	}
	var pt uint8
	fmt.Sscan(m[1], &pt)
	return pt, true
}

// wantInviteAuthenticated checks that pbxd challenged the page's INVITE
// (407) and that the page sent it again with its credentials.
func wantInviteAuthenticated(t *testing.T, res browserResult) {
	t.Helper()
	var invites, authed int
	for _, m := range res.SIP {
		if m.Dir == "out" && strings.HasPrefix(m.FirstLine(), "INVITE ") {
			invites++
			if strings.Contains(m.Text, "Proxy-Authorization: Digest") {
				authed++
			}
		}
	}
	if _, ok := res.SIPFirst("in", "SIP/2.0 407"); !ok || invites < 2 || authed == 0 {
		t.Errorf("the INVITE should be challenged and sent again with credentials:\n%s", res.SIPTrace())
	}
}

// wantLoopbackPair checks that the call's ICE pair is 127.0.0.1 on both
// sides. The page keeps Chromium's other host candidates out of its SDP,
// but Chromium still checks them against the far end's loopback
// candidate: a far end that answers those checks (sent from the
// machine's own non-loopback address) makes the media leave loopback.
// pbxd's WebRTC leg answers them so far, and when the browser offers,
// Chromium nominates, and it prefers its host candidate on the eth0
// address (TestBrowserCallsPhone skips the check: waitingForLoopbackICE).
// The harness's own far end drops them (loopbackPackets).
func wantLoopbackPair(t *testing.T, s browserStats) {
	t.Helper()
	if s.SelectedPair == nil || !strings.Contains(s.SelectedPair.Local, " 127.0.0.1:") || !strings.Contains(s.SelectedPair.Remote, " 127.0.0.1:") {
		t.Errorf("%s: the media left loopback: %+v", s.Label, s.SelectedPair)
	}
}

// TestBrowserCallsPhone: a browser softphone (JsSIP, SIP.js) registers
// and calls an extension a SIPp phone answers; audio flows both ways:
// the browser hears the phone's tone with its remote track playing, and
// the phone receives the browser's microphone tone. Then the browser
// sends DTMF (RFC 4733), which reaches the phone as telephone-events.
func TestBrowserCallsPhone(t *testing.T) {
	t.Parallel()
	b := startCallBox(t, browserAuth...)
	phones := map[string]webPhone{}
	for i, lib := range browserLibraries {
		phones[lib] = b.webPhone("caller"+lib, fmt.Sprint(761+i))
	}
	b.phoneUser("deskphone", "769", nil)
	for _, lib := range browserLibraries {
		t.Run(lib, func(t *testing.T) {
			callee := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: b.registration("deskphone-dev")})
			c := startRTPCapture(t, callee.MediaPort)
			w := phones[lib]
			res := runBrowser(t, w.scenario(b, lib,
				browserStep{Do: "register"},
				browserStep{Do: "call", Target: "sip:769@127.0.0.1"},
				browserStep{Do: "wait", Ms: 2500},
				browserStep{Do: "stats", Label: "talking"},
				browserStep{Do: "screenshot", Name: "talking"},
				browserStep{Do: "dtmf", Tones: "1234#", TransportType: "RFC2833"},
				browserStep{Do: "wait", Ms: 300},
				browserStep{Do: "hangup"},
				browserStep{Do: "unregister"},
			))
			// The phone exits after the BYE pbxd relays (if there was a
			// call); whatever is left is stopped.
			for i := 0; i < 50 && !callee.Exited(); i++ {
				if _, ok := res.Step("call"); !ok || !res.OK {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			callee.Stop()
			c.Stop()
			// Registration and the INVITE's challenge over the WebSocket.
			wantRegistered(t, res)
			wantChallenged(t, res)
			wantInviteAuthenticated(t, res)
			if step, ok := res.Step("call"); ok && !step.OK {
				t.Errorf("the call: %s\n%s", step.Error, res.SIPTrace())
			}

			t.Run("audio", func(t *testing.T) {
				if !res.OK {
					t.Fatalf("%v", res)
				}
				if got := callee.Wait().Requests(); !slices.Equal(got, []string{"INVITE", "ACK", "BYE"}) {
					t.Errorf("the phone got %v", got)
				}
				wantBrowserHeard(t, res, sippCalleeHz)
				wantToneReceived(t, "the phone received", c.To(callee.MediaPort), browserToneHz, sippCalleeHz)
				wantWorkitem(t, b.lastWorkitem(), map[string]any{"type": "InternalCall", "from": w.ext, "to": "769", "endReason": "completed", "hangupBy": "caller"})
			})
			t.Run("loopback", func(t *testing.T) {
				wantLoopbackPair(t, res.LastStats())
			})
			t.Run("dtmf", func(t *testing.T) {
				if step, ok := res.Step("dtmf"); !ok || !step.OK {
					t.Fatalf("the page sent no DTMF: %+v", step)
				}
				// The phone got the digits as telephone-events of the
				// payload type pbxd offered it.
				var offer string
				for _, m := range callee.Wait().Messages {
					if !m.Sent && m.Method() == "INVITE" {
						offer = m.Text
					}
				}
				pt, ok := telephoneEventPT(offer)
				if !ok {
					t.Fatalf("pbxd offered the phone no telephone-event:\n%s", offer)
				}
				if got := telephoneEvents(c.Stop(), callee.MediaPort, pt); got != "1234#" {
					t.Errorf("the phone got telephone-events %q, want 1234#", got)
				}
			})
		})
	}
}

// TestBrowserAnswersPhone: a SIPp phone (registered) calls a browser
// softphone's extension; pbxd sends the INVITE over the browser's
// WebSocket, the page answers, audio flows both ways, and the phone
// hangs up.
func TestBrowserAnswersPhone(t *testing.T) {
	t.Parallel()
	b := startCallBox(t, browserAuth...)
	phones := map[string]webPhone{}
	for i, lib := range browserLibraries {
		phones[lib] = b.webPhone("callee"+lib, fmt.Sprint(771+i))
	}
	b.phoneUser("deskcaller", "779", nil)
	for _, lib := range browserLibraries {
		t.Run(lib, func(t *testing.T) {
			w := phones[lib]
			run := startBrowser(t, w.scenario(b, lib,
				browserStep{Do: "register"},
				browserStep{Do: "answer", TimeoutMs: 30000},
				browserStep{Do: "wait", Ms: 2000},
				browserStep{Do: "stats", Label: "talking"},
				browserStep{Do: "screenshot", Name: "talking"},
				browserStep{Do: "waitEnded", TimeoutMs: 15000},
				browserStep{Do: "unregister"},
			))
			run.WaitEvent("registered", 30*time.Second)
			uac := b.caller("uac_call.xml", "deskcaller-dev", w.ext)
			uac.Talk, uac.SIPPort, uac.MediaPort = 4*time.Second, freeUDPPort(t), freeUDPPortRange(t, 4)
			uac.Timeout = 30 * time.Second
			sippRegister(t, *b.registration("deskcaller-dev"), uac.SIPPort)
			c := startRTPCapture(t, uac.MediaPort)
			sres := startSIPpUAC(t, uac).Wait()
			// A call that failed ends the page's answer step too; give it
			// a moment before stopping it.
			res := run.WaitAtMost(10 * time.Second)
			c.Stop()
			// pbxd routes the call to the WebSocket binding, and the page
			// sees it ringing.
			wantRegistered(t, res)
			wantChallenged(t, res)
			if in, ok := res.Event("incoming"); !ok || !strings.Contains(in.From, "779") {
				t.Errorf("the page should see the call from 779: %+v\n%v", in, res)
			}
			if sres.Err != nil {
				t.Logf("the phone's call: %v (responses %v)", sres.Err, sres.Responses())
			}
			if step, ok := res.Step("answer"); ok && !step.OK {
				t.Logf("the page's answer: %s", step.Error)
			}
			for _, e := range res.EventsOf("error") {
				t.Logf("page error in %s: %s", e.Where, e.Message)
			}

			t.Run("audio", func(t *testing.T) {
				if sres.Err != nil || sres.Failed > 0 {
					t.Fatalf("%v", sres)
				}
				if !res.OK {
					t.Fatalf("%v", res)
				}
				if e, ok := res.Event("ended"); !ok || e.Originator != "remote" {
					t.Errorf("the phone's hangup should end the page's call: %+v", e)
				}
				wantBrowserHeard(t, res, sippCallerHz)
				// pbxd offers, so pbxd's ICE agent nominates, and it
				// prefers its host pair on 127.0.0.1 to the peer-reflexive
				// one Chromium's off-loopback checks make.
				wantLoopbackPair(t, res.LastStats())
				wantToneReceived(t, "the phone received", c.To(uac.MediaPort), browserToneHz, sippCallerHz)
				wantWorkitem(t, b.lastWorkitem(), map[string]any{"type": "InternalCall", "from": "779", "to": w.ext, "endReason": "completed", "hangupBy": "caller"})
			})
		})
	}
}
