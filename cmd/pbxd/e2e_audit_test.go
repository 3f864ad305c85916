package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestAuditTrail: every change lands in the audit log, newest first, with
// who did it and to what; refused requests leave no record; only admins
// read it.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	adminID := p.userID(t, admin, "admin")
	writer := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "writer", "permissions": []string{"users:write", "users:read"}}).want(t, 201)
	agentID := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "audited", "password": "audited-pass-1"}).want(t, 201).str("id")
	agent := p.login("audited", "audited-pass-1")

	type want struct{ action, actorKind, actorName, targetID string }
	var expect []want
	step := func(w want, r resp) {
		t.Helper()
		if r.code >= 300 {
			t.Fatalf("%s: %d %s", w.action, r.code, r.raw)
		}
		if w.targetID == "*" {
			w.targetID = r.str("id")
		}
		expect = append(expect, w)
	}
	a := func(action, target string) want { return want{action, "user", "admin", target} }
	step(a("user.create", "*"), p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "u1", "firstName": "One"}))
	u1 := expect[len(expect)-1].targetID
	step(a("user.update", u1), p.do("POST", "/api/v1/users/"+u1, admin, map[string]any{"lastName": "Uno"}))
	step(a("device.create", "*"), p.do("POST", "/api/v1/users/"+u1+"/devices", admin, map[string]any{"name": "d", "username": "u1-d"}))
	dev := expect[len(expect)-1].targetID
	step(a("device.delete", dev), p.do("DELETE", "/api/v1/users/"+u1+"/devices/"+dev, admin, nil))
	step(a("skill.create", "*"), p.do("POST", "/api/v1/skills", admin, map[string]any{"name": "Audit"}))
	sk := expect[len(expect)-1].targetID
	step(a("user.assignSkill", u1), p.do("POST", "/api/v1/users/"+u1+"/skills", admin, map[string]any{"skillId": sk}))
	step(a("user.unassignSkill", u1), p.do("DELETE", "/api/v1/users/"+u1+"/skills/"+sk, admin, nil))
	step(a("skill.delete", sk), p.do("DELETE", "/api/v1/skills/"+sk, admin, nil))
	step(a("serviceUser.create", "*"), p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "temp"}))
	su := expect[len(expect)-1].targetID
	step(a("serviceUser.update", su), p.do("PUT", "/api/v1/service-users/"+su, admin, map[string]any{"displayName": "Temp"}))
	step(a("serviceUser.refreshToken", su), p.do("POST", "/api/v1/service-users/"+su+"/token", admin, nil))
	step(a("serviceUser.delete", su), p.do("DELETE", "/api/v1/service-users/"+su, admin, nil))
	step(want{"user.create", "service", "writer", "*"}, p.do("POST", "/api/v1/users", writer.str("token"), map[string]any{"userName": "by-writer"}))
	step(want{"user.update", "user", "audited", agentID}, p.do("POST", "/api/v1/users/"+agentID, agent, map[string]any{"firstName": "Me"}))
	step(want{"user.update", "user", "audited", agentID}, p.do("POST", "/api/v1/users/"+agentID, agent, map[string]any{"currentPassword": "audited-pass-1", "password": "audited-pass-2"}))
	step(a("user.delete", u1), p.do("DELETE", "/api/v1/users/"+u1, admin, nil))

	// Refused requests are not changes.
	total := p.do("GET", "/api/v1/audit?rows=1", admin, nil).want(t, 200).num("total")
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "by-writer"}).want(t, 409)
	p.do("POST", "/api/v1/users", agent, map[string]any{"userName": "nope"}).want(t, 403)
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "bad name"}).want(t, 400)
	p.do("DELETE", "/api/v1/users/"+adminID, admin, nil).want(t, 409)
	p.do("DELETE", "/api/v1/users/0123456789abcdef", admin, nil).want(t, 404)
	p.do("GET", "/api/v1/users", admin, nil).want(t, 200)
	if now := p.do("GET", "/api/v1/audit?rows=1", admin, nil).want(t, 200).num("total"); now != total {
		t.Errorf("refused requests or reads added %v audit records", now-total)
	}

	// Newest first, exactly our steps.
	r := p.do("GET", fmt.Sprintf("/api/v1/audit?rows=%d", len(expect)), admin, nil).want(t, 200)
	recs := objects(t, r)
	if len(recs) != len(expect) {
		t.Fatalf("%d records: %s", len(recs), r.raw)
	}
	var prevAt float64
	for i, o := range recs {
		rec := o.(map[string]any)
		w := expect[len(expect)-1-i]
		if rec["action"] != w.action || rec["actorKind"] != w.actorKind || rec["actorName"] != w.actorName || rec["targetId"] != w.targetID {
			t.Errorf("record %d: %v, want %+v", i, rec, w)
		}
		if rec["actorId"] == nil || rec["id"] == nil || rec["remoteAddr"] != "127.0.0.1" {
			t.Errorf("record %d lacks actorId, id or remoteAddr: %v", i, rec)
		}
		at, _ := rec["at"].(float64)
		if i > 0 && at > prevAt {
			t.Errorf("record %d is newer than the one before it", i)
		}
		prevAt = at
	}
	// The password change is recorded as a change of the password, without it.
	if !strings.Contains(string(r.raw), `"fields":"password"`) || strings.Contains(string(r.raw), "audited-pass") {
		t.Errorf("password change record: %s", r.raw)
	}
	// Logins are recorded too, as the session's owner.
	all := p.do("GET", "/api/v1/audit?rows=1000", admin, nil).want(t, 200)
	logins := 0
	for _, o := range objects(t, all) {
		if rec := o.(map[string]any); rec["action"] == "session.login" {
			logins++
		}
	}
	if logins != 2 {
		t.Errorf("%d session.login records, want 2", logins)
	}
	// Paging through the audit log gives every record once.
	seen := map[string]bool{}
	for path := "/api/v1/audit?rows=4"; path != ""; {
		r := p.do("GET", path, admin, nil).want(t, 200)
		for _, o := range objects(t, r) {
			id := o.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("record %s on two pages", id)
			}
			seen[id] = true
		}
		path, _ = r.obj["next"].(string)
	}
	if len(seen) != int(all.num("total")) {
		t.Errorf("paged %d records of %v", len(seen), all.obj["total"])
	}

	// Only admins read it.
	wantProblem(t, p.do("GET", "/api/v1/audit", agent, nil), 403, "urn:pbxd:problem:forbidden")
	wantProblem(t, p.do("GET", "/api/v1/audit", writer.str("token"), nil), 403, "urn:pbxd:problem:forbidden")
	wantProblem(t, p.do("GET", "/api/v1/audit", "", nil), 401, "")
	root := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "root", "permissions": []string{"admin"}}).want(t, 201).str("token")
	p.do("GET", "/api/v1/audit", root, nil).want(t, 200)
	wantProblem(t, p.do("GET", "/api/v1/audit?rows=0", admin, nil), 400, "")
}
