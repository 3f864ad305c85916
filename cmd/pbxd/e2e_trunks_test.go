package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// addTrunk creates a trunk through the API and returns its id.
func (b *callBox) addTrunk(body map[string]any) string {
	b.t.Helper()
	return b.do("POST", "/api/v1/trunks", b.admin, body).want(b.t, 201).str("id")
}

// sippReceived returns the first request with method the run received.
func sippReceived(r sippResult, method string) string {
	for _, m := range r.Messages {
		if !m.Sent && m.Method() == method {
			return m.Text
		}
	}
	return ""
}

// TestTrunkWithSIPpCarrier: SIPp stands in for the carrier. A number
// that is not an extension goes out through the trunk chosen by the dial
// plan (prefix, strip, caller ID), and a call from the carrier to a DID
// rings the extension it maps to, without a digest challenge.
func TestTrunkWithSIPpCarrier(t *testing.T) {
	t.Parallel()
	b := startCallBox(t)
	b.phoneUser("kim", "751", nil)
	b.phoneUser("leo", "752", nil)

	t.Run("outbound", func(t *testing.T) {
		carrier := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml"})
		b.addTrunk(map[string]any{"name": "carrier-out", "host": carrier.Addr, "prefixes": []string{"00"}, "strip": 2, "addPrefix": "+",
			"callerId": "4930111222", "callerName": "Example GmbH"})
		uac := b.caller("uac_call.xml", "kim-dev", "004930999888")
		uac.Talk = 1500 * time.Millisecond
		_, c := capturedCall(t, carrier, &uac)
		inv := sippReceived(carrier.Wait(), "INVITE")
		if !strings.HasPrefix(inv, "INVITE sip:+4930999888@") || !strings.Contains(inv, "sip:4930111222@") || !strings.Contains(inv, "Example GmbH") {
			t.Errorf("the carrier got:\n%s", inv)
		}
		wantAudio(t, "carrier heard", c.To(carrier.MediaPort), 0, sippCallerHz, 1500*time.Millisecond)
		wantAudio(t, "caller heard", c.To(uac.MediaPort), 0, sippCalleeHz, 1500*time.Millisecond)
		w := b.lastWorkitem()
		wantWorkitem(t, w, map[string]any{"type": "OutboundCall", "to": "004930999888", "endReason": "completed"})
		if w["trunkId"] == nil {
			t.Errorf("no trunk on the record: %v", w)
		}
	})
	t.Run("inbound", func(t *testing.T) {
		callee := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: b.registration("leo-dev")})
		port := freeUDPPort(t)
		b.addTrunk(map[string]any{"name": "carrier-in", "host": fmt.Sprintf("127.0.0.1:%d", port), "dids": map[string]string{"+4930555000": "752"}})
		uac := sippOpts{Scenario: "uac_call.xml", SIPPort: port, Target: b.sip, From: "4917012345", To: "+4930555000", Talk: time.Second}
		res := runSIPpUACOK(t, uac)
		if slices.Contains(res.Responses(), 407) {
			t.Errorf("the carrier was challenged: %v", res.Responses())
		}
		callee.Finish(5 * time.Second)
		if inv := sippReceived(callee.Wait(), "INVITE"); !strings.Contains(inv, "sip:4917012345@") {
			t.Errorf("the extension got:\n%s", inv)
		}
		wantWorkitem(t, b.lastWorkitem(), map[string]any{"type": "InboundCall", "from": "4917012345", "to": "+4930555000", "endReason": "completed"})
		// Carriers often send a delayed offer (no SDP in the INVITE): the
		// call is answered with pbxd's offer and carries audio both ways.
		callee = startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: b.registration("leo-dev")})
		delayed := uac
		delayed.Scenario = "uac_call_delayed.xml"
		_, c := capturedCall(t, callee, &delayed)
		wantAudio(t, "extension heard the carrier", c.To(callee.MediaPort), 0, sippCallerHz, 800*time.Millisecond)
		wantAudio(t, "carrier heard the extension", c.To(delayed.MediaPort), 0, sippCalleeHz, 800*time.Millisecond)
		wantWorkitem(t, b.lastWorkitem(), map[string]any{"type": "InboundCall", "to": "+4930555000", "endReason": "completed"})
		// An unknown DID from the carrier is refused, not routed out again.
		uac.To = "+4930555999"
		uac.Scenario = "uac_rejected.xml"
		if code := finalCode(runSIPpUACOK(t, uac)); code != 404 {
			t.Errorf("unknown DID: %d", code)
		}
	})
}

// TestTrunkBetweenTwoBoxes: a second pbxd is the carrier. Box A registers
// its trunk to box B with digest (B sees an ordinary device), a call from
// A's phone to a number behind B crosses both boxes with audio both ways,
// and a call from B to the trunk user's extension reaches A through the
// registered contact and rings the DID's extension there.
func TestTrunkBetweenTwoBoxes(t *testing.T) {
	t.Parallel()
	a := startCallBox(t)
	bb := startCallBox(t)
	// On B, the trunk is a user with a device, and a subscriber at 800.
	trunkUser := bb.do("POST", "/api/v1/users", bb.admin, map[string]any{"userName": "box-a", "extension": "5000"}).want(t, 201).str("id")
	bb.do("POST", "/api/v1/users/"+trunkUser+"/devices", bb.admin, map[string]any{"name": "trunk", "username": "box-a-trunk", "password": "trunk-secret-1"}).want(t, 201)
	bb.phoneUser("remote", "800", nil)
	// On A, a phone at 761 and the trunk to B.
	a.phoneUser("mia", "761", nil)
	a.phoneUser("ned", "762", nil)
	tid := a.addTrunk(map[string]any{"name": "box-b", "host": bb.sip, "username": "box-a-trunk", "password": "trunk-secret-1",
		"register": true, "registerExpires": 120, "prefixes": []string{"9"}, "strip": 1, "dids": map[string]string{"5000": "762"}})
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := a.do("GET", "/api/v1/trunks/"+tid, a.admin, nil).want(t, 200)
		if reg, _ := r.obj["registration"].(map[string]any); reg["state"] == "registered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the trunk did not register: %s", r.raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if regs := bb.do("GET", "/api/v1/registrations", bb.admin, nil).want(t, 200); !strings.Contains(string(regs.raw), "box-a-trunk") {
		t.Fatalf("box B does not list the trunk's registration: %s", regs.raw)
	}

	t.Run("A to B", func(t *testing.T) {
		remote := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: bb.registration("remote-dev")})
		uac := a.caller("uac_call.xml", "mia-dev", "9800")
		uac.Talk = 1500 * time.Millisecond
		_, c := capturedCall(t, remote, &uac)
		wantAudio(t, "the far end heard", c.To(remote.MediaPort), 0, sippCallerHz, 1500*time.Millisecond)
		wantAudio(t, "the caller heard", c.To(uac.MediaPort), 0, sippCalleeHz, 1500*time.Millisecond)
		wantWorkitem(t, a.lastWorkitem(), map[string]any{"type": "OutboundCall", "to": "9800", "endReason": "completed"})
		wantWorkitem(t, bb.lastWorkitem(), map[string]any{"type": "InternalCall", "to": "800", "endReason": "completed"})
	})
	t.Run("B to A", func(t *testing.T) {
		ned := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: a.registration("ned-dev")})
		uac := bb.caller("uac_call.xml", "remote-dev", "5000")
		uac.Talk = time.Second
		runSIPpUACOK(t, uac)
		ned.Finish(5 * time.Second)
		if got := ned.Wait().Requests(); !slices.Contains(got, "INVITE") {
			t.Fatalf("ned's phone got %v", got)
		}
		wantWorkitem(t, a.lastWorkitem(), map[string]any{"type": "InboundCall", "to": "5000", "endReason": "completed"})
	})
	// No password in either box's log.
	for _, box := range []*callBox{a, bb} {
		if strings.Contains(box.Logs(), "trunk-secret-1") {
			t.Fatal("the trunk password was logged")
		}
	}
}
