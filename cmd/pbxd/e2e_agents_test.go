package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"pbxd/media/tone"
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
	customer.Finish(5 * time.Second)
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

// toneShare is how much of what a party received in [from, to) is the tone
// hz (media/tone's Goertzel ratio: present ≥ 0.1, absent < 0.01).
func toneShare(c *rtpCapture, port int, from, to time.Time, hz float64) float64 {
	f := c.ToDuring(port, from, to)
	return tone.Detect(f.Samples, 8000, []float64{hz})[hz]
}

// party is one phone in a multi-party test: its media port and tone.
type party struct {
	name string
	port int
	hz   float64
}

// wantHears checks who hears whom in a time window: for each listener,
// the tones it must hear and those it must not.
func wantHears(t *testing.T, c *rtpCapture, what string, from, to time.Time, listener party, hears []party, deaf []party) {
	t.Helper()
	for _, p := range hears {
		if s := toneShare(c, listener.port, from, to, p.hz); s < tone.PresentRatio {
			t.Errorf("%s: %s should hear %s (%.0f Hz): share %.3f", what, listener.name, p.name, p.hz, s)
		}
	}
	for _, p := range deaf {
		if s := toneShare(c, listener.port, from, to, p.hz); s >= tone.AbsentRatio {
			t.Errorf("%s: %s should not hear %s (%.0f Hz): share %.3f", what, listener.name, p.name, p.hz, s)
		}
	}
}

// TestAgentConferenceAndMonitoring: an agent dials a customer, then a
// third party into the same call (a conference of three: each hears the
// other two, never itself); the agent steps out (the other two go on
// talking) and back in. Then a supervisor listens (hears both, heard by
// nobody), switches live to coach (only the agent hears the supervisor)
// and to join (everyone hears everyone), and terminates the call.
func TestAgentConferenceAndMonitoring(t *testing.T) {
	t.Parallel()
	b := startCallBox(t)
	_, agentTok := b.agentUser("agent2", "811")
	_, supTok := b.agentUser("super2", "819", "ROLE_ADMIN")
	b.phoneUser("cust2", "812", nil)
	b.phoneUser("third2", "813", nil)
	agentID := b.userID(t, b.admin, "agent2")

	phone := func(dev string, hz float64) party {
		p := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", ToneHz: hz, Register: b.registration(dev), Audio: 40 * time.Second, Timeout: 60 * time.Second})
		return party{name: dev, port: p.MediaPort, hz: hz}
	}
	agent, cust, third, sup := phone("agent2-dev", 700), phone("cust2-dev", 1300), phone("third2-dev", 1900), phone("super2-dev", 400)
	c := startRTPCapture(t, agent.port, cust.port, third.port, sup.port)
	b.do("POST", "/api/v1/connection", agentTok, nil).want(t, 202)
	b.do("POST", "/api/v1/connection", supTok, nil).want(t, 202)
	b.waitConnection(agentTok, "connected")
	b.waitConnection(supTok, "connected")

	wid := b.do("POST", "/api/v1/dial", agentTok, map[string]any{"to": "812"}).want(t, 200).str("workitemId")
	time.Sleep(1500 * time.Millisecond)
	b.do("POST", "/api/v1/dial", agentTok, map[string]any{"to": "813", "conferenceWorkitemId": wid}).want(t, 200)
	time.Sleep(500 * time.Millisecond)
	if r := b.do("GET", "/api/v1/connection", agentTok, nil).want(t, 200); r.obj["inConference"] != true {
		t.Errorf("not in conference: %s", r.raw)
	}
	confAt := time.Now()
	time.Sleep(1500 * time.Millisecond)
	b.do("DELETE", "/api/v1/conference", agentTok, nil).want(t, 200)
	outAt := time.Now()
	time.Sleep(1500 * time.Millisecond)
	b.do("POST", "/api/v1/conference", agentTok, nil).want(t, 200)
	backAt := time.Now()
	time.Sleep(1500 * time.Millisecond)

	b.do("POST", "/api/v1/users/"+agentID+"/listen", supTok, nil).want(t, 200)
	listenAt := time.Now()
	time.Sleep(1500 * time.Millisecond)
	b.do("POST", "/api/v1/users/"+agentID+"/coach", supTok, nil).want(t, 200)
	coachAt := time.Now()
	time.Sleep(1500 * time.Millisecond)
	b.do("POST", "/api/v1/users/"+agentID+"/join", supTok, nil).want(t, 200)
	joinAt := time.Now()
	time.Sleep(1500 * time.Millisecond)
	endAt := time.Now()
	// The supervisor ends the customer's call; the agent stays connected.
	b.do("DELETE", "/api/v1/workitems/"+wid, supTok, nil).want(t, 204)
	time.Sleep(300 * time.Millisecond)
	if r := b.do("GET", "/api/v1/connection", agentTok, nil).want(t, 200); r.str("connection") != "connected" {
		t.Errorf("terminating the call dropped the agent: %s", r.raw)
	}
	b.do("DELETE", "/api/v1/connection", agentTok, nil).want(t, 204)
	b.do("DELETE", "/api/v1/connection", supTok, nil).want(t, 204)
	c.Stop()

	settle := 200 * time.Millisecond
	w := func(from, to time.Time) (time.Time, time.Time) { return from.Add(settle), to }
	f, to := w(confAt, outAt)
	wantHears(t, c, "conference", f, to, agent, []party{cust, third}, []party{agent, sup})
	wantHears(t, c, "conference", f, to, cust, []party{agent, third}, []party{cust, sup})
	wantHears(t, c, "conference", f, to, third, []party{agent, cust}, []party{third, sup})
	f, to = w(outAt, backAt)
	wantHears(t, c, "agent out", f, to, cust, []party{third}, []party{agent})
	wantHears(t, c, "agent out", f, to, third, []party{cust}, []party{agent})
	wantHears(t, c, "agent out", f, to, agent, nil, []party{cust, third})
	f, to = w(listenAt, coachAt)
	wantHears(t, c, "listen", f, to, sup, []party{agent, cust, third}, nil)
	wantHears(t, c, "listen", f, to, agent, []party{cust, third}, []party{sup})
	wantHears(t, c, "listen", f, to, cust, []party{agent, third}, []party{sup})
	f, to = w(coachAt, joinAt)
	wantHears(t, c, "coach", f, to, agent, []party{sup, cust}, nil)
	wantHears(t, c, "coach", f, to, cust, []party{agent}, []party{sup})
	wantHears(t, c, "coach", f, to, third, nil, []party{sup})
	f, to = w(joinAt, endAt)
	wantHears(t, c, "join", f, to, agent, []party{sup, cust}, nil)
	wantHears(t, c, "join", f, to, cust, []party{sup, agent}, nil)

	// Every monitoring start and switch is audited.
	audit := string(b.do("GET", "/api/v1/audit?rows=20", b.admin, nil).want(t, 200).raw)
	for _, a := range []string{"monitoring.start", "monitoring.switch", "workitem.terminate"} {
		if !strings.Contains(audit, a) {
			t.Errorf("no %s in the audit log", a)
		}
	}
}

// TestAgentDialPolicyEventsAndForcedLogout: the agent's event stream shows
// the connection and the call's life; a campaign's calling hours (in the
// contact's time zone) refuse a dial unless forced, and a forced dial is
// recorded on the workitem and in the audit log; a supervisor's forced
// logout hangs up the agent's connection and call and ends the session;
// the call then shows in the agent's history for today.
func TestAgentDialPolicyEventsAndForcedLogout(t *testing.T) {
	t.Parallel()
	b := startCallBox(t)
	agentID, tok := b.agentUser("agent3", "821")
	_, supTok := b.agentUser("super3", "829", "ROLE_SUPERVISOR")
	b.phoneUser("cust3", "822", nil)
	startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: b.registration("agent3-dev"), Audio: 40 * time.Second, Timeout: 60 * time.Second})
	customer := startSIPpUAS(t, sippOpts{Scenario: "uas_answer.xml", Register: b.registration("cust3-dev"), Audio: 40 * time.Second, Timeout: 60 * time.Second})

	sock, err := b.dialSocket(t, "?userId="+agentID+"&access_token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.do("POST", "/api/v1/connection", tok, nil).want(t, 202)
	if e := sock.waitFor("connection"); e["data"].(map[string]any)["state"] != "connecting" {
		t.Errorf("first connection event: %v", e)
	}
	if e := sock.waitFor("connection"); e["data"].(map[string]any)["state"] != "connected" {
		t.Errorf("second connection event: %v", e)
	}

	// A campaign that may call only in a window two hours from now (UTC),
	// and a contact in UTC.
	now := time.Now().UTC()
	hm := func(t time.Time) string { return t.Format("15:04") }
	camp := b.do("POST", "/api/v1/campaigns", b.admin, map[string]any{"name": "renewals", "callerId": "4930777000", "enabled": true,
		"callingHours": map[string]any{"days": []int{0, 1, 2, 3, 4, 5, 6}, "start": hm(now.Add(2 * time.Hour)), "end": hm(now.Add(3 * time.Hour))}}).want(t, 201).str("id")
	contact := b.do("POST", "/api/v1/contacts", b.admin, map[string]any{"firstName": "Carla", "lastName": "Kunde", "timezone": "UTC",
		"numbers": []map[string]any{{"type": "work", "number": "822"}}}).want(t, 201).str("id")
	wantProblem(t, b.do("POST", "/api/v1/dial", tok, map[string]any{"to": "822", "campaignId": camp, "contactId": contact}), 409, "urn:pbxd:problem:outside-calling-hours")
	r := b.do("POST", "/api/v1/dial", tok, map[string]any{"to": "822", "campaignId": camp, "contactId": contact, "force": true, "context": "renewal offer"}).want(t, 200)
	wid := r.str("workitemId")
	if r.obj["forcedOutsideHours"] != true {
		t.Errorf("dial response: %s", r.raw)
	}
	for _, typ := range []string{"workitem.created", "workitem.ringing", "workitem.answered"} {
		if e := sock.waitFor(typ); e["data"].(map[string]any)["workitemId"] != wid {
			t.Errorf("%s: %v", typ, e)
		}
	}
	b.do("POST", "/api/v1/mute", tok, nil).want(t, 200)
	if e := sock.waitFor("mute"); e["data"].(map[string]any)["inMute"] != true {
		t.Errorf("mute event: %v", e)
	}
	time.Sleep(500 * time.Millisecond)

	// The supervisor forces the agent out: connection and call end, the
	// session dies.
	b.do("POST", "/api/v1/users/"+agentID+"/force-logout", supTok, nil).want(t, 204)
	deadline := time.Now().Add(10 * time.Second)
	for b.do("GET", "/api/v1/connection?userId="+agentID, supTok, nil).want(t, 200).str("connection") != "disconnected" {
		if time.Now().After(deadline) {
			t.Fatal("the forced logout left the connection up")
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.do("GET", "/api/v1/sessions/current", tok, nil).want(t, 401)
	customer.Finish(5 * time.Second)
	if got := customer.Wait().Requests(); !slices.Contains(got, "BYE") {
		t.Errorf("the customer's phone got %v, want a BYE", got)
	}
	w := b.lastWorkitem()
	wantWorkitem(t, w, map[string]any{"id": wid, "endReason": "completed", "forcedOutsideHours": true, "toName": "Carla Kunde"})
	if w["from"] != "4930777000" {
		t.Errorf("the campaign's caller ID was not used: %v", w["from"])
	}
	audit := string(b.do("GET", "/api/v1/audit?rows=30", b.admin, nil).want(t, 200).raw)
	if !strings.Contains(audit, "dial.forceOutsideHours") {
		t.Error("the forced dial is not in the audit log")
	}
	full := b.do("GET", "/api/v1/workitems/"+wid, b.admin, nil).want(t, 200)
	if !strings.Contains(string(full.raw), `"forcedOutsideHours":true`) || !strings.Contains(string(full.raw), contact) {
		t.Errorf("the workitem does not record the override and contact: %s", full.raw)
	}
	// The call is in the agent's history for today (a new login).
	tok = b.login("agent3", "pw-agent3-123")
	hist := b.do("GET", "/api/v1/history?rangeType=today", tok, nil).want(t, 200)
	if !strings.Contains(string(hist.raw), wid) {
		t.Errorf("today's history lacks the call: %s", hist.raw)
	}
	if yest := b.do("GET", "/api/v1/history?rangeType=yesterday", tok, nil).want(t, 200); strings.Contains(string(yest.raw), wid) {
		t.Error("yesterday's history has today's call")
	}
	if ch := b.do("GET", "/api/v1/contacts/"+contact+"/history?rangeType=today", b.admin, nil).want(t, 200); !strings.Contains(string(ch.raw), wid) {
		t.Errorf("the contact's history lacks the call: %s", ch.raw)
	}
}
