package main

import (
	"fmt"
	"strings"
	"testing"
)

// acdBox is a pbxd with an agent, a second agent, a supervisor and a
// calls:control service user, all logged in.
type acdBox struct {
	*proc
	t                          *testing.T
	admin                      string
	agent, other, sup          string
	agentTok, otherTok, supTok string
	cti, ctiID                 string
}

func startACDBox(t *testing.T, dataDir string) *acdBox {
	t.Helper()
	p := startAdmin(t, dataDir)
	b := &acdBox{proc: p, t: t, admin: p.login("admin", e2eAdminPassword)}
	mk := func(name string, roles ...string) string {
		return p.do("POST", "/api/v1/users", b.admin, map[string]any{"userName": name, "password": name + "-pass-1", "roles": roles,
			"timezone": "Europe/Berlin"}).want(t, 201).str("id")
	}
	b.agent, b.other, b.sup = mk("agent", "ROLE_AGENT"), mk("other", "ROLE_AGENT"), mk("sup", "ROLE_SUPERVISOR")
	b.agentTok, b.otherTok, b.supTok = p.login("agent", "agent-pass-1"), p.login("other", "other-pass-1"), p.login("sup", "sup-pass-1")
	su := p.do("POST", "/api/v1/service-users", b.admin, map[string]any{"name": "cti", "permissions": []string{"calls:control"}}).want(t, 201)
	b.cti, b.ctiID = su.str("token"), su.str("id")
	return b
}

func (b *acdBox) acd(tok, uid string) resp {
	b.t.Helper()
	return b.do("GET", "/api/v1/users/"+uid+"/acd", tok, nil).want(b.t, 200)
}

// TestACDLoginSurvivesRestart: an agent's ACD login (channels, queues,
// status) is kept in the store, so a restart of the box (SIGTERM, and
// kill -9) does not log agents out; logout goes back to offline.
func TestACDLoginSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startACDBox(t, dir)
	q := b.do("POST", "/api/v1/queues", b.admin, map[string]any{"name": "Support", "priority": 2}).want(t, 201).str("id")
	login := b.do("POST", "/api/v1/acd/login", b.agentTok, map[string]any{
		"channels": map[string]any{"voice": map[string]any{"enabled": true, "limit": 1, "multitasking": false, "priority": 1}},
		"queues":   []string{q}, "status": map[string]any{"status": 2, "statusId": "break"}}).want(t, 200)
	loginAt := login.num("loginAt")
	if loginAt == 0 {
		t.Fatalf("no loginAt: %s", login.raw)
	}
	b.do("POST", "/api/v1/users/"+b.agent+"/status", b.supTok, map[string]any{"statusId": "available"}).want(t, 200)
	before := b.acd(b.agentTok, b.agent)
	if before.obj["loggedIn"] != true || before.str("statusId") != "available" || before.obj["routable"] != true {
		t.Fatalf("before restart: %s", before.raw)
	}
	ses := b.do("GET", "/api/v1/sessions/current", b.agentTok, nil).want(t, 200)
	if ses.num("acdLoginAt") != loginAt || ses.str("statusId") != "available" || ses.num("status") != 1 ||
		fmt.Sprint(ses.obj["queues"]) != fmt.Sprint([]any{q}) || ses.str("timezone") != "Europe/Berlin" {
		t.Fatalf("session: %s", ses.raw)
	}

	b.Stop()
	p := start(t, startOpts{dataDir: dir})
	admin := p.login("admin", e2eAdminPassword)
	after := p.do("GET", "/api/v1/users/"+b.agent+"/acd", admin, nil).want(t, 200)
	for _, k := range []string{"loggedIn", "loginAt", "statusId", "status", "statusStartedAt", "queues", "channels"} {
		if fmt.Sprint(after.obj[k]) != fmt.Sprint(before.obj[k]) {
			t.Errorf("%s after restart: %v, before %v", k, after.obj[k], before.obj[k])
		}
	}
	p.Kill() // kill -9: what was acknowledged is still there
	p = start(t, startOpts{dataDir: dir})
	tok := p.login("agent", "agent-pass-1")
	if r := p.do("GET", "/api/v1/users/"+b.agent+"/acd", tok, nil).want(t, 200); r.num("loginAt") != loginAt || r.obj["loggedIn"] != true {
		t.Fatalf("after kill -9: %s", r.raw)
	}
	p.do("POST", "/api/v1/acd/logout", tok, nil).want(t, 204)
	out := p.do("GET", "/api/v1/users/"+b.agent+"/acd", tok, nil).want(t, 200)
	if out.obj["loggedIn"] != false || out.str("statusId") != "offline" || out.num("status") != 0 {
		t.Fatalf("after logout: %s", out.raw)
	}
	wantProblem(t, p.do("POST", "/api/v1/users/"+b.agent+"/status", tok, map[string]any{"statusId": "break"}), 409, "urn:pbxd:problem:acd-not-logged-in")
	// The audit log has the story.
	audit := string(p.do("GET", "/api/v1/audit?rows=200", admin, nil).want(t, 200).raw)
	for _, a := range []string{"acd.login", "acd.status", "acd.logout", "queue.create"} {
		if !strings.Contains(audit, `"action":"`+a+`"`) {
			t.Errorf("audit lacks %s", a)
		}
	}
}

// TestACDCatalogueAndAutoLogin: the status catalogue is seeded on the
// first start and kept; admins extend it; autoLoginToAcd uses the user's
// acdAutoLogin and defaultAcdLoginStatus, and answers 204 when it is off.
func TestACDCatalogueAndAutoLogin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := startACDBox(t, dir)
	cat := b.do("GET", "/api/v1/statuses", b.agentTok, nil).want(t, 200)
	var slugs []string
	ids := map[string]string{}
	for _, o := range objects(t, cat) {
		m := o.(map[string]any)
		slugs = append(slugs, fmt.Sprintf("%s:%v", m["statusId"], m["status"]))
		ids[m["statusId"].(string)] = m["id"].(string)
	}
	if fmt.Sprint(slugs) != "[offline:0 available:1 break:2 lunch:2 after-call-work:3]" {
		t.Fatalf("seeded catalogue %v", slugs)
	}
	wantProblem(t, b.do("POST", "/api/v1/statuses", b.supTok, map[string]any{"statusId": "meeting", "name": "Meeting", "status": 2}), 403, "urn:pbxd:problem:forbidden")
	meeting := b.do("POST", "/api/v1/statuses", b.admin, map[string]any{"statusId": "meeting", "name": "Meeting", "status": 2}).want(t, 201)
	wantProblem(t, b.do("POST", "/api/v1/statuses", b.admin, map[string]any{"statusId": "meeting", "name": "Meeting", "status": 2}), 409, "urn:pbxd:problem:conflict")
	wantProblem(t, b.do("DELETE", "/api/v1/statuses/"+ids["available"], b.admin, nil), 409, "urn:pbxd:problem:system-status")
	b.do("DELETE", "/api/v1/statuses/"+ids["lunch"], b.admin, nil).want(t, 204)
	wantProblem(t, b.do("POST", "/api/v1/acd/login", b.agentTok, map[string]any{"status": map[string]any{"statusId": "lunch"}}), 400, "urn:pbxd:problem:validation")

	// Auto-login off: 204, nothing happens.
	if r := b.do("POST", "/api/v1/acd/auto-login", b.agentTok, nil).want(t, 204); len(r.raw) != 0 {
		t.Fatalf("204 with a body: %s", r.raw)
	}
	if b.acd(b.agentTok, b.agent).obj["loggedIn"] != false {
		t.Fatal("auto-login while off logged in")
	}
	// The agent turns it on for themselves, with the new status.
	u := b.do("POST", "/api/v1/users/"+b.agent, b.agentTok, map[string]any{"acdAutoLogin": true, "defaultAcdLoginStatus": "meeting"}).want(t, 200)
	if u.obj["acdAutoLogin"] != true || u.str("defaultAcdLoginStatus") != "meeting" || u.str("connectTo") != "device" {
		t.Fatalf("user: %s", u.raw)
	}
	wantProblem(t, b.do("POST", "/api/v1/users/"+b.agent, b.agentTok, map[string]any{"connectTo": "number", "connectNumber": "+4930999"}), 403, "")
	b.do("POST", "/api/v1/users/"+b.agent, b.admin, map[string]any{"connectTo": "number", "connectNumber": "+4930999"}).want(t, 200)
	wantProblem(t, b.do("DELETE", "/api/v1/statuses/"+meeting.str("id"), b.admin, nil), 409, "urn:pbxd:problem:in-use")
	r := b.do("POST", "/api/v1/acd/auto-login", b.agentTok, nil).want(t, 200)
	if r.num("loginAt") == 0 {
		t.Fatalf("auto-login: %s", r.raw)
	}
	st := b.acd(b.agentTok, b.agent)
	if st.obj["loggedIn"] != true || st.str("statusId") != "meeting" || st.str("statusName") != "Meeting" || st.obj["routable"] != false {
		t.Fatalf("after auto-login: %s", st.raw)
	}
	ses := b.do("POST", "/api/v1/sessions", b.agentTok, map[string]any{"platform": "web"}).want(t, 200)
	if ses.obj["acdAutoLogin"] != true || ses.str("defaultAcdLoginStatus") != "meeting" || ses.num("acdLoginAt") != r.num("loginAt") ||
		ses.obj["inMute"] != false || ses.obj["inConference"] != false {
		t.Fatalf("session: %s", ses.raw)
	}
	// The catalogue and the settings survive a restart; lunch stays deleted.
	b.Stop()
	p := start(t, startOpts{dataDir: dir})
	tok := p.login("agent", "agent-pass-1")
	cat = p.do("GET", "/api/v1/statuses", tok, nil).want(t, 200)
	if n := cat.num("total"); n != 5 || strings.Contains(string(cat.raw), `"lunch"`) || !strings.Contains(string(cat.raw), `"meeting"`) {
		t.Fatalf("catalogue after restart (%v): %s", n, cat.raw)
	}
	if r2 := p.do("POST", "/api/v1/acd/auto-login", tok, nil).want(t, 200); r2.num("loginAt") != r.num("loginAt") {
		t.Fatalf("a repeated auto-login started a new login: %s", r2.raw)
	}
	if u := p.do("GET", "/api/v1/users/"+b.agent, tok, nil).want(t, 200); u.str("connectTo") != "number" || u.str("connectNumber") != "+4930999" {
		t.Fatalf("connection settings after restart: %s", u.raw)
	}
}

// TestACDPermissions: who may do what, for agents, supervisors, admins and
// service users.
func TestACDPermissions(t *testing.T) {
	t.Parallel()
	b := startACDBox(t, "")
	reader := b.do("POST", "/api/v1/service-users", b.admin, map[string]any{"name": "dir", "permissions": []string{"users:read"}}).want(t, 201).str("token")
	b.do("POST", "/api/v1/acd/login", b.otherTok, nil).want(t, 200)
	for _, tc := range []struct {
		who, token, method, path string
		body                     any
		want                     int
	}{
		{"agent: own login", b.agentTok, "POST", "/api/v1/acd/login", nil, 200},
		{"agent: login for another", b.agentTok, "POST", "/api/v1/acd/login?userId=" + b.other, nil, 403},
		{"agent: own status", b.agentTok, "POST", "/api/v1/users/" + b.agent + "/status", map[string]any{"statusId": "break"}, 200},
		{"agent: another's status", b.agentTok, "POST", "/api/v1/users/" + b.other + "/status", map[string]any{"statusId": "break"}, 403},
		{"agent: another's ACD state", b.agentTok, "GET", "/api/v1/users/" + b.other + "/acd", nil, 403},
		{"agent: the ACD board", b.agentTok, "GET", "/api/v1/acd", nil, 403},
		{"agent: force another out", b.agentTok, "POST", "/api/v1/users/" + b.other + "/force-logout", nil, 403},
		{"agent: create a queue", b.agentTok, "POST", "/api/v1/queues", map[string]any{"name": "Q"}, 403},
		{"agent: read queues", b.agentTok, "GET", "/api/v1/queues", nil, 200},
		{"agent: create a contact", b.agentTok, "POST", "/api/v1/contacts", map[string]any{"lastName": "Kunde"}, 201},
		{"agent: another's history", b.agentTok, "GET", "/api/v1/history?rangeType=today&userId=" + b.other, nil, 403},
		{"supervisor: another's status", b.supTok, "POST", "/api/v1/users/" + b.other + "/status", map[string]any{"statusId": "after-call-work"}, 200},
		{"supervisor: the ACD board", b.supTok, "GET", "/api/v1/acd?loggedIn=true", nil, 200},
		{"supervisor: another's history", b.supTok, "GET", "/api/v1/history?rangeType=today&userId=" + b.other, nil, 200},
		{"supervisor: change the catalogue", b.supTok, "POST", "/api/v1/statuses", map[string]any{"statusId": "x", "name": "X", "status": 2}, 403},
		{"supervisor: logout for another", b.supTok, "POST", "/api/v1/acd/logout?userId=" + b.agent, nil, 204},
		{"service calls:control: login for a user", b.cti, "POST", "/api/v1/acd/login?userId=" + b.agent, nil, 200},
		{"service calls:control: login without userId", b.cti, "POST", "/api/v1/acd/login", nil, 400},
		{"service calls:control: status", b.cti, "POST", "/api/v1/users/" + b.agent + "/status", map[string]any{"statusId": "break"}, 200},
		{"service calls:control: board", b.cti, "GET", "/api/v1/acd", nil, 200},
		{"service calls:control: force out", b.cti, "POST", "/api/v1/users/" + b.agent + "/force-logout", nil, 403},
		{"service users:read: status", reader, "POST", "/api/v1/users/" + b.agent + "/status", map[string]any{"statusId": "break"}, 403},
		{"service users:read: catalogue", reader, "GET", "/api/v1/statuses", nil, 200},
		{"service users:read: contacts", reader, "GET", "/api/v1/contacts", nil, 200},
		{"service users:read: write a contact", reader, "POST", "/api/v1/contacts", map[string]any{"lastName": "X"}, 403},
		{"admin: anything", b.admin, "POST", "/api/v1/users/" + b.agent + "/status", map[string]any{"statusId": "available"}, 200},
		{"nobody", "", "GET", "/api/v1/statuses", nil, 401},
	} {
		r := b.do(tc.method, tc.path, tc.token, tc.body)
		if r.code != tc.want {
			t.Errorf("%s: %s %s answered %d, want %d: %s", tc.who, tc.method, tc.path, r.code, tc.want, r.raw)
		}
		if r.code >= 400 {
			if why := problemOK(r, tc.want, ""); why != "" {
				t.Errorf("%s: %s", tc.who, why)
			}
		}
	}
	// Every new route is in the OpenAPI document.
	doc := b.do("GET", "/api/v1/openapi.json", "", nil).want(t, 200)
	paths := doc.obj["paths"].(map[string]any)
	for _, rt := range []string{"GET /api/v1/statuses", "POST /api/v1/statuses", "GET /api/v1/statuses/{id}", "PUT /api/v1/statuses/{id}",
		"DELETE /api/v1/statuses/{id}", "POST /api/v1/acd/login", "POST /api/v1/acd/auto-login", "POST /api/v1/acd/logout", "GET /api/v1/acd",
		"GET /api/v1/users/{id}/acd", "POST /api/v1/users/{id}/status", "POST /api/v1/users/{id}/force-logout",
		"POST /api/v1/users/{id}/force-logout-and-disable", "GET /api/v1/queues", "POST /api/v1/queues", "PUT /api/v1/queues/{id}",
		"GET /api/v1/campaigns", "POST /api/v1/campaigns", "DELETE /api/v1/campaigns/{id}", "GET /api/v1/contacts", "POST /api/v1/contacts",
		"GET /api/v1/contacts/{id}/history", "GET /api/v1/history", "GET /api/v1/events"} {
		method, path, _ := strings.Cut(rt, " ")
		ops, _ := paths[path].(map[string]any)
		if ops[strings.ToLower(method)] == nil {
			t.Errorf("OpenAPI lacks %s", rt)
		}
	}
	ev := paths["/api/v1/events"].(map[string]any)["get"].(map[string]any)
	if _, ok := ev["responses"].(map[string]any)["101"]; !ok {
		t.Errorf("the events route is not documented as 101: %v", ev["responses"])
	}
}

// TestForcedLogout: forceLogout ends the agent's ACD login and sessions
// (they may log in again, their phones stay registered);
// forceLogoutAndDisable also disables the user and drops the phones'
// registrations at once, and the phone cannot register again.
func TestForcedLogout(t *testing.T) {
	t.Parallel()
	b := startACDBox(t, "")
	b.do("POST", "/api/v1/users/"+b.agent+"/devices", b.admin, map[string]any{"name": "desk", "username": "agent-desk", "password": "desk-pass-1"}).want(t, 201)
	ph := newPhone(t, b.sip, "agent-desk")
	contact := fmt.Sprintf("Contact: <sip:agent-desk@%s>", ph.local())
	_, ch := ph.register(contact, "Expires: 300")
	if code, res := ph.register(contact, "Expires: 300", answer(t, ch, "MD5", "agent-desk", "desk-pass-1", 1)); code != 200 {
		t.Fatalf("register: %d\n%s", code, res)
	}
	regs := func() float64 { return b.do("GET", "/api/v1/registrations", b.admin, nil).want(t, 200).num("total") }
	if regs() != 1 {
		t.Fatal("no registration")
	}
	b.do("POST", "/api/v1/acd/login", b.agentTok, nil).want(t, 200)
	second := b.login("agent", "agent-pass-1")

	wantProblem(t, b.do("POST", "/api/v1/users/"+b.agent+"/force-logout", b.otherTok, nil), 403, "urn:pbxd:problem:forbidden")
	b.do("POST", "/api/v1/users/"+b.agent+"/force-logout", b.supTok, nil).want(t, 204)
	for _, tok := range []string{b.agentTok, second} {
		wantProblem(t, b.do("GET", "/api/v1/sessions/current", tok, nil), 401, "urn:pbxd:problem:unauthorized")
	}
	if st := b.acd(b.supTok, b.agent); st.obj["loggedIn"] != false || st.str("statusId") != "offline" {
		t.Fatalf("ACD after force-logout: %s", st.raw)
	}
	if regs() != 1 {
		t.Fatal("force-logout dropped the registration")
	}
	again := b.login("agent", "agent-pass-1")
	b.do("GET", "/api/v1/sessions/current", again, nil).want(t, 200)

	b.do("POST", "/api/v1/users/"+b.agent+"/force-logout-and-disable", b.supTok, nil).want(t, 204)
	wantProblem(t, b.do("GET", "/api/v1/sessions/current", again, nil), 401, "urn:pbxd:problem:unauthorized")
	wantProblem(t, b.do("POST", "/api/v1/login", "", map[string]string{"username": "agent", "password": "agent-pass-1"}), 401, "")
	if regs() != 0 {
		t.Fatal("the disabled user's phone is still registered")
	}
	_, ch = ph.register(contact, "Expires: 300")
	if code, _ := ph.register(contact, "Expires: 300", answer(t, ch, "MD5", "agent-desk", "desk-pass-1", 1)); code == 200 {
		t.Fatal("a disabled user's phone registered again")
	}
	if u := b.do("GET", "/api/v1/users/"+b.agent, b.admin, nil).want(t, 200); u.obj["enabled"] != false {
		t.Fatalf("still enabled: %s", u.raw)
	}
	// Supervisors cannot force an admin out; the audit log names who did what.
	adminID := b.userID(t, b.admin, "admin")
	wantProblem(t, b.do("POST", "/api/v1/users/"+adminID+"/force-logout", b.supTok, nil), 403, "")
	audit := string(b.do("GET", "/api/v1/audit?rows=200", b.admin, nil).want(t, 200).raw)
	for _, a := range []string{`"action":"user.forceLogout"`, `"action":"user.forceLogoutAndDisable"`} {
		if !strings.Contains(audit, a) {
			t.Errorf("audit lacks %s", a)
		}
	}
}
