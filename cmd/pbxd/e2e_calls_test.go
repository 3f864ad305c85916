package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// callBox is a pbxd with users and SIP devices for call tests.
type callBox struct {
	*proc
	t     *testing.T
	admin string
	// seen are the call records lastWorkitem has returned.
	seen map[string]bool
}

func startCallBox(t *testing.T, args ...string) *callBox {
	t.Helper()
	p := start(t, startOpts{env: []string{"PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}, args: args})
	return &callBox{proc: p, t: t, admin: p.login("admin", e2eAdminPassword), seen: map[string]bool{}}
}

// startPhonePair is a call box with two phone users (name, extension),
// checked at the end of the test to be back to idle: no call, dialog or
// RTP leg left and no goroutine beyond the baseline taken here.
func startPhonePair(t *testing.T, a, aExt, b, bExt string) *callBox {
	t.Helper()
	box := startCallBox(t)
	box.phoneUser(a, aExt, nil)
	box.phoneUser(b, bExt, nil)
	baseline := box.gauge("pbxd_goroutines")
	t.Cleanup(func() { box.waitIdle(baseline) })
	return box
}

// phoneUser makes a user with an extension and one SIP device whose
// username and password are derived from name; it returns the user id.
func (b *callBox) phoneUser(name, ext string, extra map[string]any) string {
	b.t.Helper()
	body := map[string]any{"userName": name, "extension": ext, "firstName": strings.ToUpper(name[:1]) + name[1:]}
	for k, v := range extra {
		body[k] = v
	}
	uid := b.do("POST", "/api/v1/users", b.admin, body).want(b.t, 201).str("id")
	b.addDevice(uid, name+"-dev")
	return uid
}

func (b *callBox) addDevice(uid, dev string) {
	b.t.Helper()
	b.do("POST", "/api/v1/users/"+uid+"/devices", b.admin, map[string]any{"name": dev, "username": dev, "password": "pw-" + dev}).want(b.t, 201)
}

func (b *callBox) registration(dev string) *sippRegistration {
	return &sippRegistration{Registrar: b.sip, Username: dev, Password: "pw-" + dev}
}

// caller is a SIPp caller of device dev dialling ext.
func (b *callBox) caller(scenario, dev, ext string) sippOpts {
	return sippOpts{Scenario: scenario, Target: b.sip, From: dev, To: ext, Username: dev, Password: "pw-" + dev}
}

// lastWorkitem waits until the newest call record is one it has not
// returned before (records are written a moment after the call's SIP
// exchange) and has ended, and returns it.
func (b *callBox) lastWorkitem() map[string]any {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := b.do("GET", "/api/v1/workitems?rows=1", b.admin, nil).want(b.t, 200)
		if objs, _ := r.obj["objects"].([]any); len(objs) == 1 {
			w := objs[0].(map[string]any)
			if id, _ := w["id"].(string); w["state"] == "ended" && !b.seen[id] {
				b.seen[id] = true
				return w
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no ended call record: %s", r.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// gauge reads one value from /metrics.
func (b *callBox) gauge(name string) float64 {
	b.t.Helper()
	body := string(b.do("GET", "/metrics", "", nil).want(b.t, 200).raw)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	b.t.Fatalf("no %s on /metrics", name)
	return 0
}

// waitIdle waits until no call, dialog or RTP leg is left and the
// goroutines are back to (about) baseline: nothing leaked.
func (b *callBox) waitIdle(baseline float64) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		calls, dialogs, legs, gr := b.gauge("pbxd_calls_active"), b.gauge("pbxd_sip_dialogs"), b.gauge("pbxd_rtp_legs"), b.gauge("pbxd_goroutines")
		if calls == 0 && dialogs == 0 && legs == 0 && gr <= baseline+5 {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("not idle after the calls: %v calls, %v dialogs, %v RTP legs, %v goroutines (baseline %v)", calls, dialogs, legs, gr, baseline)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// wantWorkitem checks fields of a call record.
func wantWorkitem(t *testing.T, w map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if fmt.Sprint(w[k]) != fmt.Sprint(v) {
			t.Errorf("workitem %s = %v, want %v (record %v)", k, w[k], v, w)
		}
	}
}

// TestCallThroughPBX: a SIPp phone calls an extension registered by
// another SIPp phone; pbxd challenges the INVITE (407), bridges the call
// with media anchored on the box, and each phone hears the other's tone.
func TestCallThroughPBX(t *testing.T) {
	t.Parallel()
	b := startPhonePair(t, "alice", "701", "bob", "702")
	for _, tc := range []struct {
		codecs []string
		pt     uint8
	}{{[]string{"PCMU", "PCMA"}, 0}, {[]string{"PCMA"}, 8}} {
		t.Run(tc.codecs[0], func(t *testing.T) {
			talk := 2 * time.Second
			callee := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: b.registration("bob-dev")})
			uac := b.caller("uac_call.xml", "alice-dev", "702")
			uac.Codecs, uac.Talk = tc.codecs, talk
			res, c := capturedCall(t, callee, &uac)
			if st := res.Responses(); !slices.Contains(st, 407) || !slices.Contains(st, 200) {
				t.Errorf("caller saw %v, want a 407 challenge then 200", st)
			}
			// What each phone sent reached the other through pbxd.
			wantAudio(t, "caller sent", c.From(uac.MediaPort), tc.pt, sippCallerHz, talk)
			wantAudio(t, "callee heard", c.To(callee.MediaPort), tc.pt, sippCallerHz, talk)
			wantAudio(t, "callee sent", c.From(callee.MediaPort), tc.pt, sippCalleeHz, talk)
			wantAudio(t, "caller heard", c.To(uac.MediaPort), tc.pt, sippCalleeHz, talk)
			// Media is anchored: neither phone sent to the other directly.
			for _, f := range c.Flows() {
				if f.Src.Port() == uint16(uac.MediaPort) && f.Dst.Port() == uint16(callee.MediaPort) {
					t.Errorf("media bypassed pbxd: %v", f)
				}
			}
			w := b.lastWorkitem()
			wantWorkitem(t, w, map[string]any{"type": "InternalCall", "from": "701", "to": "702", "endReason": "completed", "hangupBy": "caller"})
			if w["answeredAt"] == nil || w["duration"].(float64) < 1000 {
				t.Errorf("answered call record: %v", w)
			}
			wantLegMedia(t, w, 40)
		})
	}
}

// wantLegMedia checks both legs' RTP statistics in a call record.
func wantLegMedia(t *testing.T, w map[string]any, min float64) {
	t.Helper()
	media, _ := w["media"].([]any)
	if len(media) != 2 {
		t.Fatalf("media statistics: %v", w["media"])
	}
	for _, m := range media {
		m := m.(map[string]any)
		if m["packetsReceived"].(float64) < min || m["packetsSent"].(float64) < min {
			t.Errorf("leg statistics %v", m)
		}
	}
}

// TestCallTwoPhones: two baresip phones registered as two extensions call
// each other through pbxd, each playing a tone from a file; RTP flows both
// ways on both legs with non-silent payloads, and each phone hears the
// other's tone (and not its own). The second call makes pbxd transcode:
// bob's phone speaks only PCMA, alice's only PCMU.
func TestCallTwoPhones(t *testing.T) {
	t.Parallel()
	// baresip 1.0.0 cannot answer a challenge that also offers SHA-256.
	b := startCallBox(t, "--sip-auth-algorithms", "MD5")
	b.phoneUser("alice", "711", nil)
	b.phoneUser("bob", "712", nil)
	for _, tc := range []struct {
		name                 string
		aliceCodecs, bobCods []string
		alicePT, bobPT       uint8
	}{
		{"same codec", nil, nil, 0, 0},
		{"transcoded", []string{"PCMU"}, []string{"PCMA"}, 0, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			alice := startBaresip(t, baresipOpts{User: "alice-dev", Password: "pw-alice-dev", Registrar: b.sip, ToneHz: 500, Codecs: tc.aliceCodecs})
			bob := startBaresip(t, baresipOpts{User: "bob-dev", Password: "pw-bob-dev", Registrar: b.sip, ToneHz: 900, AutoAnswer: true, Codecs: tc.bobCods})
			alice.WaitRegistered(10 * time.Second)
			bob.WaitRegistered(10 * time.Second)
			c := startRTPCapture(t, alice.RTPPort, bob.RTPPort)
			alice.Dial("sip:712@" + b.sip)
			alice.WaitEvent("CALL_ESTABLISHED", 15*time.Second)
			bob.WaitEvent("CALL_ESTABLISHED", 15*time.Second)
			talk := 2 * time.Second
			time.Sleep(talk)
			bob.Hangup()
			bob.WaitEvent("CALL_CLOSED", 10*time.Second)
			alice.WaitEvent("CALL_CLOSED", 10*time.Second)
			c.Stop()

			for _, h := range []struct {
				who       *baresip
				hz, other float64
			}{{alice, 900, 500}, {bob, 500, 900}} {
				got := measureAudio(h.who.Received(), h.hz)
				if got.ToneSeconds() < talk.Seconds()/2 {
					t.Errorf("%s heard %.2fs of the %v Hz tone: %+v", h.who.opts.User, got.ToneSeconds(), h.hz, got)
				}
				if own := measureAudio(h.who.Received(), h.other); own.Tone > 0 {
					t.Errorf("%s heard its own tone: %+v", h.who.opts.User, own)
				}
			}
			wantAudio(t, "alice sent", c.From(alice.RTPPort), tc.alicePT, 500, talk)
			wantAudio(t, "bob heard", c.To(bob.RTPPort), tc.bobPT, 500, talk)
			wantAudio(t, "bob sent", c.From(bob.RTPPort), tc.bobPT, 900, talk)
			wantAudio(t, "alice heard", c.To(alice.RTPPort), tc.alicePT, 900, talk)
			w := b.lastWorkitem()
			wantWorkitem(t, w, map[string]any{"type": "InternalCall", "from": "711", "to": "712", "endReason": "completed", "hangupBy": "callee"})
			wantLegMedia(t, w, 40)
		})
	}
}

// finalCode is the last final status a SIPp caller received.
func finalCode(r sippResult) int {
	code := 0
	for _, c := range r.Responses() {
		if c >= 200 && c != 407 {
			code = c
		}
	}
	return code
}

// TestCallSetupOutcomes: cancel while ringing, busy, unknown number, do
// not disturb, nobody registered, ring timeout — each caller gets the
// right final answer, the callee side sees what it should, and each call
// leaves a record with its end reason.
func TestCallSetupOutcomes(t *testing.T) {
	t.Parallel()
	b := startCallBox(t, "--ring-timeout", "2s")
	b.phoneUser("carol", "721", nil)
	b.phoneUser("dave", "722", nil)
	b.phoneUser("erin", "723", map[string]any{"doNotDisturb": "on"})
	b.phoneUser("frank", "724", nil) // never registers
	defer b.waitIdle(b.gauge("pbxd_goroutines"))

	t.Run("cancel", func(t *testing.T) {
		callee := startSIPpUAS(t, sippOpts{Scenario: "uas_ring_noanswer.xml", Register: b.registration("dave-dev")})
		uac := b.caller("uac_cancel.xml", "carol-dev", "722")
		uac.Talk = 700 * time.Millisecond
		runSIPpUACOK(t, uac)
		res := callee.WaitOK()
		if got := res.Requests(); !slices.Contains(got, "CANCEL") {
			t.Errorf("the callee got %v, want the CANCEL relayed", got)
		}
		wantWorkitem(t, b.lastWorkitem(), map[string]any{"endReason": "cancelled", "endStatus": 487, "duration": 0})
	})
	t.Run("busy", func(t *testing.T) {
		startSIPpUAS(t, sippOpts{Scenario: "uas_busy.xml", Register: b.registration("dave-dev")})
		res := runSIPpUACOK(t, b.caller("uac_rejected.xml", "carol-dev", "722"))
		if code := finalCode(res); code != 486 {
			t.Errorf("busy callee: the caller got %d (%v)", code, res.Responses())
		}
		wantWorkitem(t, b.lastWorkitem(), map[string]any{"endReason": "busy", "endStatus": 486})
	})
	for _, tc := range []struct {
		name, to string
		code     int
		reason   string
	}{
		{"unknown number", "799", 404, "not-found"},
		{"do not disturb", "723", 486, "busy"},
		{"not registered", "724", 480, "unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runSIPpUACOK(t, b.caller("uac_rejected.xml", "carol-dev", tc.to))
			if code := finalCode(res); code != tc.code {
				t.Errorf("the caller got %d (%v), want %d", code, res.Responses(), tc.code)
			}
			wantWorkitem(t, b.lastWorkitem(), map[string]any{"endReason": tc.reason, "endStatus": tc.code})
		})
	}
	t.Run("ring timeout", func(t *testing.T) {
		callee := startSIPpUAS(t, sippOpts{Scenario: "uas_ring_noanswer.xml", Register: b.registration("dave-dev")})
		began := time.Now()
		res := runSIPpUACOK(t, b.caller("uac_rejected.xml", "carol-dev", "722"))
		if code := finalCode(res); code != 480 || time.Since(began) < 1500*time.Millisecond {
			t.Errorf("the caller got %d after %v, want 480 after the 2s ring time", code, time.Since(began))
		}
		if got := callee.WaitOK().Requests(); !slices.Contains(got, "CANCEL") {
			t.Errorf("the callee got %v, want a CANCEL", got)
		}
		wantWorkitem(t, b.lastWorkitem(), map[string]any{"endReason": "no-answer", "endStatus": 480})
	})
	t.Run("wrong password", func(t *testing.T) {
		uac := b.caller("uac_rejected.xml", "carol-dev", "722")
		uac.Password = "not-the-password"
		res := runSIPpUAC(t, uac)
		if res.Err == nil || slices.Contains(res.Responses(), 180) {
			t.Errorf("a wrong password placed a call: %v", res.Responses())
		}
	})
}

// TestCallHoldAndCalleeHangup: a re-INVITE (or an UPDATE) for hold and
// unhold is relayed to the other phone (which answers it) and audio flows
// again afterwards; a callee that hangs up ends the caller's leg too.
func TestCallHoldAndCalleeHangup(t *testing.T) {
	t.Parallel()
	b := startPhonePair(t, "gina", "731", "hank", "732")
	for _, scenario := range []string{"uac_reinvite_hold.xml", "uac_update_hold.xml"} {
		t.Run("hold by "+strings.Split(scenario, "_")[1], func(t *testing.T) { testHold(t, b, scenario) })
	}
	// A re-INVITE without SDP (a session refresh some phones send) is
	// answered by pbxd with its current offer, the phone's answer in the
	// ACK is applied, and the call goes on with audio both ways.
	t.Run("refresh without SDP", func(t *testing.T) {
		callee := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: b.registration("hank-dev")})
		uac := b.caller("uac_reinvite_nosdp.xml", "gina-dev", "732")
		uac.Talk = time.Second
		_, c := capturedCall(t, callee, &uac)
		if got := callee.Wait().Requests(); !slices.Equal(got, []string{"INVITE", "ACK", "BYE"}) {
			t.Errorf("the callee got %v: the refresh is pbxd's to answer", got)
		}
		if !slices.ContainsFunc(b.logRecords(t), func(r map[string]any) bool {
			return r["msg"] == "answer taken from the ACK" && r["leg"] == "caller"
		}) {
			t.Error("pbxd did not apply the answer in the ACK of the refresh")
		}
		wantAudio(t, "callee heard", c.To(callee.MediaPort), 0, sippCallerHz, 2*time.Second)
		wantAudio(t, "caller heard", c.To(uac.MediaPort), 0, sippCalleeHz, 2*time.Second)
		wantWorkitem(t, b.lastWorkitem(), map[string]any{"endReason": "completed", "hangupBy": "caller"})
	})
	t.Run("callee hangs up", func(t *testing.T) {
		callee := startSIPpUAS(t, sippOpts{Scenario: "uas_answer_bye.xml", Talk: time.Second, Register: b.registration("hank-dev")})
		runSIPpUACOK(t, b.caller("uac_call_wait_bye.xml", "gina-dev", "732"))
		callee.WaitOK()
		wantWorkitem(t, b.lastWorkitem(), map[string]any{"endReason": "completed", "hangupBy": "callee"})
	})
}

// testHold: gina (731) calls hank (732), holds and resumes with the
// scenario's method; pbxd offers hank the same directions by re-INVITE.
func testHold(t *testing.T, b *callBox, scenario string) {
	{
		callee := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: b.registration("hank-dev")})
		uac := b.caller(scenario, "gina-dev", "732")
		uac.Talk, uac.Hold = time.Second, 800*time.Millisecond
		_, c := capturedCall(t, callee, &uac)
		res := callee.Wait()
		if got := res.Requests(); !slices.Equal(got, []string{"INVITE", "ACK", "INVITE", "ACK", "INVITE", "ACK", "BYE"}) {
			t.Errorf("the callee got %v, want the hold and unhold re-INVITEs relayed", got)
		}
		var dirs []string
		for _, m := range res.Messages {
			if !m.Sent && m.Method() == "INVITE" {
				for _, d := range []string{"sendrecv", "sendonly", "recvonly", "inactive"} {
					if strings.Contains(m.Text, "a="+d) {
						dirs = append(dirs, d)
					}
				}
			}
		}
		if !slices.Equal(dirs, []string{"sendrecv", "sendonly", "sendrecv"}) {
			t.Errorf("pbxd offered the callee %v", dirs)
		}
		wantAudio(t, "callee heard", c.To(callee.MediaPort), 0, sippCallerHz, 2*time.Second)
		wantAudio(t, "caller heard", c.To(uac.MediaPort), 0, sippCalleeHz, 2*time.Second)
		wantWorkitem(t, b.lastWorkitem(), map[string]any{"endReason": "completed", "hangupBy": "caller"})
	}
}

var cseqInvite = regexp.MustCompile(`(?mi)^CSeq:\s*\d+\s+INVITE`)

// TestCallDelayedOffer: a phone whose INVITE carries no SDP gets pbxd's
// offer in the 200 and answers in its ACK; the callee is offered media as
// usual and audio flows both ways, transcoded when the caller answers
// with the other codec.
func TestCallDelayedOffer(t *testing.T) {
	t.Parallel()
	b := startPhonePair(t, "lena", "751", "moe", "752")
	for _, tc := range []struct {
		codecs             []string
		callerPT, calleePT uint8
	}{{[]string{"PCMU", "PCMA"}, 0, 0}, {[]string{"PCMA"}, 8, 0}} {
		t.Run(strings.Join(tc.codecs, "+"), func(t *testing.T) {
			talk := 2 * time.Second
			callee := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: b.registration("moe-dev")})
			uac := b.caller("uac_call_delayed.xml", "lena-dev", "752")
			uac.Codecs, uac.Talk = tc.codecs, talk
			res, c := capturedCall(t, callee, &uac)
			for _, m := range res.Messages {
				if m.Sent && m.Method() == "INVITE" && strings.Contains(m.Text, "m=audio") {
					t.Errorf("the caller's INVITE carried an offer:\n%s", m.Text)
				}
				if !m.Sent && m.Status() == 200 && cseqInvite.MatchString(m.Text) && !strings.Contains(m.Text, "m=audio") {
					t.Errorf("pbxd's 200 to a delayed offer carried no offer:\n%s", m.Text)
				}
			}
			wantAudio(t, "callee heard", c.To(callee.MediaPort), tc.calleePT, sippCallerHz, talk)
			wantAudio(t, "caller heard", c.To(uac.MediaPort), tc.callerPT, sippCalleeHz, talk)
			wantAudio(t, "caller sent", c.From(uac.MediaPort), tc.callerPT, sippCallerHz, talk)
			w := b.lastWorkitem()
			wantWorkitem(t, w, map[string]any{"type": "InternalCall", "from": "751", "to": "752", "endReason": "completed", "hangupBy": "caller"})
			wantLegMedia(t, w, 40)
		})
	}
	// A phone that answers nothing in its ACK has no media: pbxd hangs up
	// both legs rather than leave a silent call up.
	t.Run("no answer in the ACK", func(t *testing.T) {
		callee := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: b.registration("moe-dev")})
		runSIPpUACOK(t, b.caller("uac_call_delayed_noanswer.xml", "lena-dev", "752"))
		// (SIPp calls a BYE this early "unexpected": only what it got counts.)
		if got := callee.Wait().Requests(); !slices.Contains(got, "BYE") {
			t.Errorf("the callee got %v, want pbxd's BYE", got)
		}
		wantWorkitem(t, b.lastWorkitem(), map[string]any{"endReason": "failed", "hangupBy": "system"})
	})
}

// TestCallForksToEveryContact: a user with a desk phone and a softphone;
// both ring, the softphone answers, the desk phone is cancelled.
func TestCallForksToEveryContact(t *testing.T) {
	t.Parallel()
	b := startCallBox(t)
	b.phoneUser("ivy", "741", nil)
	jack := b.phoneUser("jack", "742", nil)
	b.addDevice(jack, "jack-soft")
	desk := startSIPpUAS(t, sippOpts{Scenario: "uas_ring_noanswer.xml", Register: b.registration("jack-dev")})
	soft := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: b.registration("jack-soft")})
	uac := b.caller("uac_call.xml", "ivy-dev", "742")
	uac.Talk = time.Second
	runSIPpUACOK(t, uac)
	if got := desk.WaitOK().Requests(); !slices.Equal(got, []string{"INVITE", "CANCEL", "ACK"}) {
		t.Errorf("the desk phone got %v, want the INVITE cancelled", got)
	}
	soft.Finish(5 * time.Second)
	if got := soft.Wait().Requests(); !slices.Equal(got, []string{"INVITE", "ACK", "BYE"}) {
		t.Errorf("the softphone got %v", got)
	}
	wantWorkitem(t, b.lastWorkitem(), map[string]any{"endReason": "completed", "to": "742"})
}
