package main

import (
	"testing"
	"time"
)

// agentUser makes a user who logs in (ROLE_AGENT) with an extension and a
// SIP device; it returns the user id and a session token.
func (b *callBox) agentUser(name, ext string, roles ...string) (string, string) {
	b.t.Helper()
	if len(roles) == 0 {
		roles = []string{"ROLE_AGENT"}
	}
	uid := b.phoneUser(name, ext, map[string]any{"password": "pw-" + name + "-123", "roles": roles})
	return uid, b.login(name, "pw-"+name+"-123")
}

// waitConnection waits until the user's connection is in state.
func (b *callBox) waitConnection(token, state string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := b.do("GET", "/api/v1/connection", token, nil).want(b.t, 200)
		if r.str("connection") == state {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("connection is %s, want %s", r.raw, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAgentConnectDialMute: pbxd calls the agent's phone and keeps that
// leg up; the agent dials a customer, who is bridged to the agent's leg;
// mute silences the agent for the customer while the agent still hears;
// disconnecting ends both legs.
func TestAgentConnectDialMute(t *testing.T) {
	t.Parallel()
	b := startCallBox(t)
	_, tok := b.agentUser("agent1", "801")
	b.phoneUser("cust1", "802", nil)

	// Not connected: dialing is refused with a clear problem.
	wantProblem(t, b.do("POST", "/api/v1/dial", tok, map[string]any{"to": "802"}), 409, "urn:pbxd:problem:not-connected")

	agentPhone := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", ToneHz: 700, Register: b.registration("agent1-dev"), Audio: 30 * time.Second})
	customer := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", ToneHz: 1300, Register: b.registration("cust1-dev")})
	c := startRTPCapture(t, agentPhone.MediaPort, customer.MediaPort)
	b.do("POST", "/api/v1/connection", tok, nil).want(t, 202)
	b.waitConnection(tok, "connected")
	wid := b.do("POST", "/api/v1/dial", tok, map[string]any{"to": "802", "name": "Customer One"}).want(t, 200).str("workitemId")
	if wid == "" {
		t.Fatal("no workitem id")
	}
	time.Sleep(2 * time.Second)
	muted := time.Now()
	if r := b.do("POST", "/api/v1/mute", tok, nil).want(t, 200); r.obj["inMute"] != true {
		t.Fatalf("mute: %s", r.raw)
	}
	time.Sleep(1500 * time.Millisecond)
	unmuted := time.Now()
	b.do("DELETE", "/api/v1/mute", tok, nil).want(t, 200)
	time.Sleep(1500 * time.Millisecond)
	b.do("DELETE", "/api/v1/connection", tok, nil).want(t, 204)
	b.waitConnection(tok, "disconnected")
	agentPhone.Stop()
	customer.Stop()
	c.Stop()

	heard := func(f rtpFlow, hz float64) float64 { return f.Levels(hz).ToneSeconds() }
	start := muted.Add(-2 * time.Second)
	if s := heard(c.ToDuring(customer.MediaPort, start, muted), 700); s < 1 {
		t.Errorf("before mute the customer heard %.2fs of the agent", s)
	}
	if s := heard(c.ToDuring(agentPhone.MediaPort, start, muted), 1300); s < 1 {
		t.Errorf("the agent heard %.2fs of the customer", s)
	}
	if s := heard(c.ToDuring(customer.MediaPort, muted.Add(60*time.Millisecond), unmuted), 700); s > 0.05 {
		t.Errorf("while muted the customer heard %.2fs of the agent", s)
	}
	if s := heard(c.ToDuring(agentPhone.MediaPort, muted.Add(60*time.Millisecond), unmuted), 1300); s < 1 {
		t.Errorf("while muted the agent heard only %.2fs of the customer", s)
	}
	if s := heard(c.ToDuring(customer.MediaPort, unmuted.Add(60*time.Millisecond), unmuted.Add(1400*time.Millisecond)), 700); s < 0.8 {
		t.Errorf("after unmute the customer heard %.2fs of the agent", s)
	}
	w := b.lastWorkitem()
	wantWorkitem(t, w, map[string]any{"id": wid, "type": "InternalCall", "to": "802", "endReason": "completed"})
}
