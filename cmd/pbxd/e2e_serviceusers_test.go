package main

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// TestServiceUserCredentials covers how a service-user token may and may
// not be presented.
func TestServiceUserCredentials(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	a := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "Recording Export", "displayName": "Recordings",
		"permissions": []string{"users:read"}}).want(t, 201)
	b := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "Salesforce Integration", "permissions": []string{"users:read"}}).want(t, 201)
	aID, aTok, bID, bTok := a.str("id"), a.str("token"), b.str("id"), b.str("token")
	if a.header.Get("Location") != "/api/v1/service-users/"+aID || a.str("displayName") != "Recordings" || b.str("displayName") != "Salesforce Integration" {
		t.Fatalf("create: %v %s / %s", a.header, a.raw, b.raw)
	}
	if aTok == bTok || len(aTok) < 40 {
		t.Fatalf("tokens %q %q", aTok, bTok)
	}
	basic := func(id, tok string) string {
		return "raw:Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+tok))
	}
	session := p.login("admin", e2eAdminPassword)

	ok := []string{aTok, "basic:" + aID + ":" + aTok, "raw:bearer " + aTok, "raw:BEARER " + aTok, "raw:basic " + base64.StdEncoding.EncodeToString([]byte(aID+":"+aTok)), basic(bID, bTok)}
	for _, auth := range ok {
		p.do("GET", "/api/v1/users", auth, nil).want(t, 200)
	}
	bad := []string{
		basic(bID, aTok),                // another service user's id
		basic("0123456789abcdef", aTok), // an unknown id
		basic(aID, bTok),
		basic(aID, aTok+"x"),
		basic(aID, ""),
		basic("", aTok),
		"raw:Basic " + base64.StdEncoding.EncodeToString([]byte(aTok)), // no id
		"raw:Basic " + base64.StdEncoding.EncodeToString([]byte(aID+":"+session)),
		basic(p.userID(t, admin, "admin"), session), // a session token is Bearer only
		"raw:Bearer " + aID + ":" + aTok,
		"raw:Bearer " + aTok + " " + aTok,
		"raw:Bearer " + aTok[:len(aTok)-1],
		"raw:Bearer " + strings.ToUpper(aTok),
	}
	var ref resp
	for i, auth := range bad {
		r := wantProblem(t, p.do("GET", "/api/v1/users", auth, nil), 401, "urn:pbxd:problem:unauthorized")
		if i == 0 {
			ref = r
		} else if problemKey(r) != problemKey(ref) {
			t.Errorf("credentials %d are refused differently: %s", i, r.raw)
		}
	}

	// Listing and reading never show a token.
	for _, path := range []string{"/api/v1/service-users", "/api/v1/service-users/" + aID, "/api/v1/service-users?rows=1&start=1", "/api/v1/audit?rows=100"} {
		r := p.do("GET", path, admin, nil).want(t, 200)
		for _, s := range []string{aTok, bTok, "pbxd_su_", `"token"`} {
			if strings.Contains(string(r.raw), s) {
				t.Errorf("GET %s shows %q", path, s[:min(len(s), 12)])
			}
		}
	}
	one := p.do("GET", "/api/v1/service-users/"+aID, admin, nil).want(t, 200)
	if one.str("name") != "Recording Export" || one.obj["hasToken"] != true || one.num("lastUsedAt") == 0 || one.num("tokenCreatedAt") == 0 {
		t.Fatalf("service user: %s", one.raw)
	}

	// Refresh: exactly the newest token works, at once, as Bearer and Basic.
	tok := aTok
	for i := 0; i < 3; i++ {
		r := p.do("POST", "/api/v1/service-users/"+aID+"/token", admin, nil).want(t, 200)
		next := r.str("token")
		if next == tok || !strings.HasPrefix(next, "pbxd_su_") || r.str("id") != aID {
			t.Fatalf("refresh: %s", r.raw)
		}
		wantProblem(t, p.do("GET", "/api/v1/users", tok, nil), 401, "")
		wantProblem(t, p.do("GET", "/api/v1/users", "basic:"+aID+":"+tok, nil), 401, "")
		p.do("GET", "/api/v1/users", next, nil).want(t, 200)
		p.do("GET", "/api/v1/users", "basic:"+aID+":"+next, nil).want(t, 200)
		tok = next
	}
	wantProblem(t, p.do("GET", "/api/v1/users", aTok, nil), 401, "")
	// Refreshing one service user leaves the others alone.
	p.do("GET", "/api/v1/users", bTok, nil).want(t, 200)

	// Delete: the token dies, the id is gone, the name is free.
	p.do("DELETE", "/api/v1/service-users/"+aID, admin, nil).want(t, 204)
	wantProblem(t, p.do("GET", "/api/v1/users", tok, nil), 401, "")
	wantProblem(t, p.do("GET", "/api/v1/users", "basic:"+aID+":"+tok, nil), 401, "")
	wantProblem(t, p.do("GET", "/api/v1/service-users/"+aID, admin, nil), 404, "urn:pbxd:problem:not-found")
	wantProblem(t, p.do("POST", "/api/v1/service-users/"+aID+"/token", admin, nil), 404, "urn:pbxd:problem:not-found")
	wantProblem(t, p.do("DELETE", "/api/v1/service-users/"+aID, admin, nil), 404, "urn:pbxd:problem:not-found")
	wantProblem(t, p.do("PUT", "/api/v1/service-users/"+aID, admin, map[string]any{"displayName": "x"}), 404, "urn:pbxd:problem:not-found")
	p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "Recording Export"}).want(t, 201)
	p.do("GET", "/api/v1/users", bTok, nil).want(t, 200)
}

// TestServiceUserPermissions: each permission opens exactly its part of the
// API; a users:write integration cannot make or touch admins.
func TestServiceUserPermissions(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	adminID := p.userID(t, admin, "admin")
	mk := func(name string, perms ...string) string {
		t.Helper()
		if perms == nil {
			perms = []string{}
		}
		return p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": name, "permissions": perms}).want(t, 201).str("token")
	}
	reader, writer, calls, none, root := mk("reader", "users:read"), mk("writer", "users:write", "users:read"), mk("calls", "calls:control"), mk("none"), mk("root", "admin")
	agentID := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "agent"}).want(t, 201).str("id")
	adminDev := p.do("POST", "/api/v1/users/"+adminID+"/devices", admin, map[string]any{"name": "desk", "username": "admin-desk"}).want(t, 201).str("id")

	type call struct {
		method, path string
		body         any
	}
	check := func(who, tok string, code int, calls ...call) {
		t.Helper()
		for _, c := range calls {
			r := p.do(c.method, c.path, tok, c.body)
			if r.code != code {
				t.Errorf("%s: %s %s answered %d, want %d: %.200s", who, c.method, c.path, r.code, code, r.raw)
			}
		}
	}
	check("reader", reader, 200, call{"GET", "/api/v1/users", nil}, call{"GET", "/api/v1/users/" + agentID, nil},
		call{"GET", "/api/v1/skills", nil}, call{"GET", "/api/v1/users/" + agentID + "/devices", nil}, call{"GET", "/api/v1/sessions/current", nil})
	check("reader", reader, 403, call{"POST", "/api/v1/users", map[string]any{"userName": "r1"}},
		call{"POST", "/api/v1/users/" + agentID, map[string]any{"firstName": "x"}}, call{"DELETE", "/api/v1/users/" + agentID, nil},
		call{"POST", "/api/v1/skills", map[string]any{"name": "r"}}, call{"GET", "/api/v1/service-users", nil},
		call{"GET", "/api/v1/audit", nil}, call{"POST", "/api/v1/users/" + agentID + "/devices", map[string]any{"name": "d", "username": "r-d"}})
	for who, tok := range map[string]string{"calls": calls, "none": none} {
		check(who, tok, 403, call{"GET", "/api/v1/users", nil}, call{"GET", "/api/v1/users/" + agentID, nil}, call{"GET", "/api/v1/skills", nil})
		check(who, tok, 200, call{"GET", "/api/v1/sessions/current", nil})
	}
	check("writer", writer, 201, call{"POST", "/api/v1/users", map[string]any{"userName": "made-by-writer", "password": "writer-made-1"}},
		call{"POST", "/api/v1/skills", map[string]any{"name": "w"}}, call{"POST", "/api/v1/users/" + agentID + "/devices", map[string]any{"name": "d", "username": "w-d"}})
	check("writer", writer, 200, call{"POST", "/api/v1/users/" + agentID, map[string]any{"firstName": "Changed", "password": "set-by-writer-1"}})
	p.login("agent", "set-by-writer-1")
	// No escalation through users:write.
	check("writer", writer, 403,
		call{"POST", "/api/v1/users", map[string]any{"userName": "evil-admin", "roles": []string{"ROLE_ADMIN"}}},
		call{"POST", "/api/v1/users/" + agentID, map[string]any{"roles": []string{"ROLE_ADMIN"}}},
		call{"POST", "/api/v1/users/" + adminID, map[string]any{"password": "taken-over-1"}},
		call{"POST", "/api/v1/users/" + adminID, map[string]any{"enabled": false}},
		call{"DELETE", "/api/v1/users/" + adminID, nil},
		call{"POST", "/api/v1/users/" + adminID + "/devices", map[string]any{"name": "d", "username": "admin-d"}},
		call{"DELETE", "/api/v1/users/" + adminID + "/devices/" + adminDev, nil},
		call{"GET", "/api/v1/service-users", nil},
		call{"POST", "/api/v1/service-users", map[string]any{"name": "w2", "permissions": []string{"admin"}}},
		call{"GET", "/api/v1/audit", nil})
	p.login("admin", e2eAdminPassword)
	if r := p.do("GET", "/api/v1/users/"+adminID+"/devices/"+adminDev, admin, nil); r.code != 200 {
		t.Errorf("a users:write service user removed an admin's device: %s", r.raw)
	}
	check("writer", writer, 204, call{"DELETE", "/api/v1/users/" + agentID, nil})
	// The admin permission manages everything, service users included.
	check("root", root, 200, call{"GET", "/api/v1/service-users", nil}, call{"GET", "/api/v1/audit", nil}, call{"GET", "/api/v1/registrations", nil})
	check("root", root, 201, call{"POST", "/api/v1/users", map[string]any{"userName": "second-admin", "roles": []string{"ROLE_ADMIN"}}})

	// Changing permissions takes effect on the next request.
	suID := ""
	for _, o := range objects(t, p.do("GET", "/api/v1/service-users", admin, nil).want(t, 200)) {
		if su := o.(map[string]any); su["name"] == "reader" {
			suID = su["id"].(string)
		}
	}
	r := p.do("POST", "/api/v1/service-users/"+suID, admin, map[string]any{"permissions": []string{"users:write", "users:write"}, "displayName": "Now a writer"}).want(t, 200)
	if r.str("displayName") != "Now a writer" || r.str("name") != "reader" || len(r.obj["permissions"].([]any)) != 1 {
		t.Fatalf("update: %s", r.raw)
	}
	check("reader→writer", reader, 201, call{"POST", "/api/v1/users", map[string]any{"userName": "made-by-reader"}})
	check("reader→writer", reader, 403, call{"GET", "/api/v1/users", nil})

	// The name is fixed; an unknown permission is refused.
	wantProblem(t, p.do("POST", "/api/v1/service-users/"+suID, admin, map[string]any{"name": "renamed"}), 400, "")
	wantProblem(t, p.do("PUT", "/api/v1/service-users/"+suID, admin, map[string]any{"name": "READER"}), 400, "")
	p.do("PUT", "/api/v1/service-users/"+suID, admin, map[string]any{"name": "reader"}).want(t, 200)
	wantProblem(t, p.do("POST", "/api/v1/service-users/"+suID, admin, map[string]any{"permissions": []string{"superuser"}}), 400, "urn:pbxd:problem:validation")
	for _, bad := range []map[string]any{
		{"permissions": []string{"users:read"}},
		{"name": ""},
		{"name": "bad/name"},
		{"name": strings.Repeat("n", 65)},
		{"name": "ok-name", "permissions": []string{"users:*"}},
		{"name": "ok-name", "displayName": "two\nlines"},
		{"name": "ok-name", "token": "pbxd_su_chosen"},
	} {
		wantProblem(t, p.do("POST", "/api/v1/service-users", admin, bad), 400, "")
	}
	// Names are unique.
	wantProblem(t, p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "writer"}), 409, "urn:pbxd:problem:conflict")
}

// TestServiceUsersAreNotPeople: service users stay out of the directory
// and the headcount, and outlive the admins who made them.
func TestServiceUsersAreNotPeople(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	usersBefore, _ := p.metric(t, "pbxd_users")
	su := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "hr-sync", "displayName": "HR sync", "permissions": []string{"users:read"}}).want(t, 201)
	suID, tok := su.str("id"), su.str("token")
	if n, _ := p.metric(t, "pbxd_users"); n != usersBefore {
		t.Errorf("pbxd_users %v → %v after creating a service user", usersBefore, n)
	}
	if n, _ := p.metric(t, "pbxd_service_users"); n != 1 {
		t.Errorf("pbxd_service_users %v", n)
	}
	for _, path := range []string{"/api/v1/users?fields=*", "/api/v1/users?q=hr-sync", "/api/v1/users?q=HR"} {
		r := p.do("GET", path, admin, nil).want(t, 200)
		if strings.Contains(string(r.raw), "hr-sync") || strings.Contains(string(r.raw), suID) {
			t.Errorf("GET %s lists the service user: %s", path, r.raw)
		}
	}
	if r := p.do("GET", "/api/v1/users", admin, nil).want(t, 200); r.num("total") != usersBefore {
		t.Errorf("total %v", r.obj["total"])
	}
	wantProblem(t, p.do("GET", "/api/v1/users/"+suID, admin, nil), 404, "")
	wantProblem(t, p.do("POST", "/api/v1/login", "", map[string]string{"username": "hr-sync", "password": tok}), 401, "")
	// A person may have the same name as a service user.
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "hr-sync"}).want(t, 201)

	// The admin who made it is disabled, then deleted; it keeps working.
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "admin2", "password": "admin2-pass-1", "roles": []string{"ROLE_ADMIN"}}).want(t, 201)
	admin2 := p.login("admin2", "admin2-pass-1")
	su2 := p.do("POST", "/api/v1/service-users", admin2, map[string]any{"name": "made-by-admin2", "permissions": []string{"users:read"}}).want(t, 201)
	admin2ID := p.userID(t, admin, "admin2")
	if su2.str("createdBy") != admin2ID {
		t.Errorf("createdBy %q, want %q", su2.str("createdBy"), admin2ID)
	}
	p.do("POST", "/api/v1/users/"+admin2ID, admin, map[string]any{"enabled": false}).want(t, 200)
	p.do("GET", "/api/v1/users", su2.str("token"), nil).want(t, 200)
	p.do("DELETE", "/api/v1/users/"+admin2ID, admin, nil).want(t, 204)
	p.do("GET", "/api/v1/users", su2.str("token"), nil).want(t, 200)
	p.do("GET", "/api/v1/service-users/"+su2.str("id"), admin, nil).want(t, 200)
}

// TestLastAdminGuard: the box always keeps one enabled admin.
func TestLastAdminGuard(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	adminID := p.userID(t, admin, "admin")
	conflict := "urn:pbxd:problem:conflict"
	wantProblem(t, p.do("DELETE", "/api/v1/users/"+adminID, admin, nil), 409, conflict)
	wantProblem(t, p.do("POST", "/api/v1/users/"+adminID, admin, map[string]any{"enabled": false}), 409, conflict)
	wantProblem(t, p.do("PUT", "/api/v1/users/"+adminID, admin, map[string]any{"roles": []string{"ROLE_AGENT"}}), 409, conflict)
	wantProblem(t, p.do("PUT", "/api/v1/users/"+adminID, admin, map[string]any{"roles": []string{}}), 409, conflict)
	root := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "root", "permissions": []string{"admin"}}).want(t, 201).str("token")
	wantProblem(t, p.do("DELETE", "/api/v1/users/"+adminID, root, nil), 409, conflict)
	// Nothing changed.
	p.do("GET", "/api/v1/users", admin, nil).want(t, 200)
	if r := p.do("GET", "/api/v1/users/"+adminID, admin, nil).want(t, 200); r.obj["enabled"] != true || fmt.Sprint(r.obj["roles"]) != "[ROLE_ADMIN]" {
		t.Fatalf("admin changed: %s", r.raw)
	}

	// A disabled admin does not count; an enabled one does.
	a2 := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "a2", "roles": []string{"ROLE_ADMIN"}, "enabled": false}).want(t, 201).str("id")
	wantProblem(t, p.do("POST", "/api/v1/users/"+adminID, admin, map[string]any{"enabled": false}), 409, conflict)
	p.do("POST", "/api/v1/users/"+a2, admin, map[string]any{"enabled": true}).want(t, 200)
	p.do("POST", "/api/v1/users/"+a2, admin, map[string]any{"roles": []string{"ROLE_AGENT", "ROLE_ADMIN"}}).want(t, 200)
	// Now the first admin may step down, which takes effect on the very
	// next request of the session that did it …
	p.do("POST", "/api/v1/users/"+adminID, admin, map[string]any{"roles": []string{"ROLE_AGENT"}}).want(t, 200)
	wantProblem(t, p.do("GET", "/api/v1/audit", admin, nil), 403, "urn:pbxd:problem:forbidden")
	p.do("GET", "/api/v1/users", admin, nil).want(t, 200)
	// … and a2, the last admin, is protected in turn.
	wantProblem(t, p.do("DELETE", "/api/v1/users/"+a2, root, nil), 409, conflict)
	wantProblem(t, p.do("POST", "/api/v1/users/"+a2, root, map[string]any{"roles": []string{"ROLE_AGENT"}}), 409, conflict)
	p.do("POST", "/api/v1/users/"+adminID, root, map[string]any{"roles": []string{"ROLE_ADMIN"}}).want(t, 200)
	p.do("DELETE", "/api/v1/users/"+a2, root, nil).want(t, 204)
	// A disabled admin can be deleted even when it is not the last.
	a3 := p.do("POST", "/api/v1/users", root, map[string]any{"userName": "a3", "roles": []string{"ROLE_ADMIN"}, "enabled": false}).want(t, 201).str("id")
	p.do("DELETE", "/api/v1/users/"+a3, root, nil).want(t, 204)
	if r := p.do("GET", "/api/v1/users?fields=*", root, nil).want(t, 200); r.num("total") != 1 {
		t.Fatalf("users: %s", r.raw)
	}
}
