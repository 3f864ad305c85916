package main

import (
	"fmt"
	"strings"
	"testing"
)

func TestServiceUserLifecycle(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)

	// A second admin creates the service user, then disappears.
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "admin2", "password": "admin2-pass-1", "roles": []string{"ROLE_ADMIN"}}).want(t, 201)
	admin2 := p.login("admin2", "admin2-pass-1")
	r := p.do("POST", "/api/v1/service-users", admin2, map[string]any{"name": "crm-sync", "displayName": "CRM", "permissions": []string{"users:read"}}).want(t, 201)
	id, tok := r.str("id"), r.str("token")
	if !strings.HasPrefix(tok, "pbxd_su_") || id == "" {
		t.Fatalf("create answered %s", r.raw)
	}
	p.do("GET", "/api/v1/users", tok, nil).want(t, 200)
	p.do("GET", "/api/v1/users", "basic:"+id+":"+tok, nil).want(t, 200)
	p.do("GET", "/api/v1/users", "basic:0123456789abcdef:"+tok, nil).want(t, 401)
	p.do("POST", "/api/v1/users", tok, map[string]any{"userName": "x"}).want(t, 403)

	for _, path := range []string{"/api/v1/service-users", "/api/v1/service-users/" + id} {
		body := string(p.do("GET", path, admin, nil).want(t, 200).raw)
		if strings.Contains(body, tok) || strings.Contains(body, "pbxd_su_") {
			t.Fatalf("%s shows the token: %s", path, body)
		}
	}
	p.do("POST", "/api/v1/service-users/"+id, admin, map[string]any{"name": "renamed"}).want(t, 400)

	// Not a person: not in /users, not in the headcount.
	users := p.do("GET", "/api/v1/users?fields=*", admin, nil).want(t, 200)
	if users.obj["total"].(float64) != 2 || strings.Contains(string(users.raw), "crm-sync") {
		t.Fatalf("service user in the directory: %s", users.raw)
	}
	if m := string(p.do("GET", "/metrics", "", nil).raw); !strings.Contains(m, "\npbxd_users 2\n") || !strings.Contains(m, "\npbxd_service_users 1\n") {
		t.Fatalf("metrics headcount wrong:\n%s", m)
	}

	// Its creator is disabled, then deleted: the service user keeps working.
	var admin2ID string
	for _, o := range users.obj["objects"].([]any) {
		if u := o.(map[string]any); u["userName"] == "admin2" {
			admin2ID = u["id"].(string)
		}
	}
	p.do("POST", "/api/v1/users/"+admin2ID, admin, map[string]any{"enabled": false}).want(t, 200)
	p.do("GET", "/api/v1/users", admin2, nil).want(t, 401)
	p.do("GET", "/api/v1/users", tok, nil).want(t, 200)
	p.do("DELETE", "/api/v1/users/"+admin2ID, admin, nil).want(t, 204)
	p.do("GET", "/api/v1/users", tok, nil).want(t, 200)

	// Refresh: the old token dies at once.
	r = p.do("POST", "/api/v1/service-users/"+id+"/token", admin, nil).want(t, 200)
	newTok := r.str("token")
	if newTok == tok || !strings.HasPrefix(newTok, "pbxd_su_") {
		t.Fatalf("refresh answered %s", r.raw)
	}
	p.do("GET", "/api/v1/users", tok, nil).want(t, 401)
	p.do("GET", "/api/v1/users", "basic:"+id+":"+tok, nil).want(t, 401)
	p.do("GET", "/api/v1/users", newTok, nil).want(t, 200)
	p.do("GET", "/api/v1/users", "basic:"+id+":"+newTok, nil).want(t, 200)

	// Permissions change takes effect; delete kills the token.
	p.do("PUT", "/api/v1/service-users/"+id, admin, map[string]any{"permissions": []string{"users:write", "users:read"}}).want(t, 200)
	p.do("POST", "/api/v1/users", newTok, map[string]any{"userName": "made-by-crm"}).want(t, 201)
	p.do("DELETE", "/api/v1/service-users/"+id, admin, nil).want(t, 204)
	p.do("GET", "/api/v1/users", newTok, nil).want(t, 401)

	// Every one of these changes is audited.
	audit := string(p.do("GET", "/api/v1/audit?rows=100", admin, nil).want(t, 200).raw)
	for _, action := range []string{"serviceUser.create", "serviceUser.refreshToken", "serviceUser.update", "serviceUser.delete", "user.create", "user.update", "user.delete"} {
		if !strings.Contains(audit, `"action":"`+action+`"`) {
			t.Errorf("audit lacks %s", action)
		}
	}
}

func TestUsersSearchPaginationAndRoles(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	for i := 0; i < 23; i++ {
		p.do("POST", "/api/v1/users", admin, map[string]any{"userName": fmt.Sprintf("agent%02d@example.com", i),
			"firstName": "Agent", "lastName": fmt.Sprintf("Number%02d", i), "extension": fmt.Sprintf("%d", 300+i)}).want(t, 201)
	}
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "agent00@EXAMPLE.com"}).want(t, 409)
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "dup-ext", "extension": "300"}).want(t, 409)

	// Follow next links through every page of a search.
	seen := map[string]bool{}
	path := "/api/v1/users?q=agent&rows=5"
	pages := 0
	for path != "" {
		r := p.do("GET", path, admin, nil).want(t, 200)
		if r.obj["total"].(float64) != 23 {
			t.Fatalf("total %v", r.obj["total"])
		}
		for _, o := range r.obj["objects"].([]any) {
			uri := o.(string)
			if !strings.HasPrefix(uri, "/api/v1/users/") || seen[uri] {
				t.Fatalf("bad or repeated object %q", uri)
			}
			seen[uri] = true
		}
		path, _ = r.obj["next"].(string)
		pages++
	}
	if len(seen) != 23 || pages != 5 {
		t.Fatalf("collected %d users in %d pages", len(seen), pages)
	}
	r := p.do("GET", "/api/v1/users?q=NUMBER07&fields=*", admin, nil).want(t, 200)
	objs := r.obj["objects"].([]any)
	if len(objs) != 1 || objs[0].(map[string]any)["extension"] != "307" {
		t.Fatalf("search: %s", r.raw)
	}
	if r := p.do("GET", "/api/v1/users?q=315", admin, nil).want(t, 200); r.obj["count"].(float64) != 1 {
		t.Fatalf("extension search: %s", r.raw)
	}
	for _, bad := range []string{"rows=0", "rows=abc", "start=-1", "rows=100000", "fields=name", "bogus=1"} {
		r := p.do("GET", "/api/v1/users?"+bad, admin, nil).want(t, 400)
		if r.header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("%s: content type %s", bad, r.header.Get("Content-Type"))
		}
	}

	// Roles: a write replaces the whole set; the password is never shown.
	r = p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "sup", "password": "sup-password-1", "roles": []string{"ROLE_AGENT", "ROLE_ADMIN"},
		"doNotDisturb": "on", "timezone": "America/New_York", "changePasswordOnFirstLogin": false}).want(t, 201)
	supID := r.str("id")
	r = p.do("PUT", "/api/v1/users/"+supID, admin, map[string]any{"roles": []string{"ROLE_AGENT"}}).want(t, 200)
	if fmt.Sprint(r.obj["roles"]) != "[ROLE_AGENT]" {
		t.Fatalf("roles %v", r.obj["roles"])
	}
	full := string(p.do("GET", "/api/v1/users/"+supID+"?subresources=*", admin, nil).want(t, 200).raw)
	if strings.Contains(full, "sup-password-1") || strings.Contains(full, "argon2") || !strings.Contains(full, `"devices":[]`) {
		t.Fatalf("user view: %s", full)
	}

	// A device password is shown once.
	r = p.do("POST", "/api/v1/users/"+supID+"/devices", admin, map[string]any{"name": "desk", "username": "sup-desk"}).want(t, 201)
	devPW := r.str("password")
	if len(devPW) < 16 {
		t.Fatalf("generated device password %q", devPW)
	}
	if body := string(p.do("GET", "/api/v1/users/"+supID+"/devices", admin, nil).want(t, 200).raw); strings.Contains(body, devPW) || strings.Contains(body, "ha1") {
		t.Fatalf("device list shows secrets: %s", body)
	}
	p.do("POST", "/api/v1/users/"+supID+"/devices", admin, map[string]any{"name": "again", "username": "sup-desk"}).want(t, 409)

	// The agent: directory yes, own names and password yes, nothing else.
	agent := p.login("sup", "sup-password-1")
	other := p.login("sup", "sup-password-1")
	p.do("GET", "/api/v1/users?fields=*", agent, nil).want(t, 200)
	p.do("POST", "/api/v1/users/"+supID, agent, map[string]any{"lastName": "Visor"}).want(t, 200)
	p.do("POST", "/api/v1/users/"+supID, agent, map[string]any{"roles": []string{"ROLE_ADMIN"}}).want(t, 403)
	p.do("POST", "/api/v1/users/"+supID, agent, map[string]any{"enabled": false}).want(t, 403)
	p.do("POST", "/api/v1/users", agent, map[string]any{"userName": "x"}).want(t, 403)
	p.do("GET", "/api/v1/service-users", agent, nil).want(t, 403)
	p.do("GET", "/api/v1/audit", agent, nil).want(t, 403)
	p.do("POST", "/api/v1/users/"+supID, agent, map[string]any{"currentPassword": "wrong-password", "password": "sup-password-2"}).want(t, 403)
	p.do("POST", "/api/v1/users/"+supID, agent, map[string]any{"currentPassword": "sup-password-1", "password": "sup-password-2"}).want(t, 200)
	p.do("GET", "/api/v1/sessions/current", agent, nil).want(t, 200)
	p.do("GET", "/api/v1/sessions/current", other, nil).want(t, 401) // other sessions revoked
	p.login("sup", "sup-password-2")
}

func TestSessionsAndLogin(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "eve", "password": "eve-password-1"}).want(t, 201)
	tok := p.login("eve", "eve-password-1")
	p.do("GET", "/api/v1/sessions/current", tok, nil).want(t, 200)
	r := p.do("POST", "/api/v1/sessions", tok, map[string]any{"platform": "web", "deviceToken": "device-secret-xyz"}).want(t, 200)
	if r.str("platform") != "web" || r.str("username") != "eve" || r.str("_id") == "" || strings.Contains(string(r.raw), "device-secret-xyz") {
		t.Fatalf("initSession: %s", r.raw)
	}
	p.do("POST", "/api/v1/sessions", tok, map[string]any{"platform": "windows"}).want(t, 400)
	p.do("POST", "/api/v1/logout", tok, nil).want(t, 204)
	p.do("GET", "/api/v1/sessions/current", tok, nil).want(t, 401)

	// The same 401 for an unknown user and a wrong password.
	a := p.do("POST", "/api/v1/login", "", map[string]string{"username": "eve", "password": "nope-nope-1"}).want(t, 401)
	b := p.do("POST", "/api/v1/login", "", map[string]string{"username": "nobody", "password": "nope-nope-1"}).want(t, 401)
	if string(a.raw) != string(b.raw) {
		t.Fatalf("distinguishable 401s:\n%s\n%s", a.raw, b.raw)
	}
	// Throttle: after the free failures, 429 with Retry-After.
	var last resp
	for i := 0; i < 8; i++ {
		last = p.do("POST", "/api/v1/login", "", map[string]string{"username": "victim", "password": "guess-guess"})
	}
	if last.code != 429 || last.header.Get("Retry-After") == "" || last.header.Get("Retry-After") == "0" {
		t.Fatalf("throttle: %d %v %s", last.code, last.header, last.raw)
	}

	// A disabled user cannot log in and loses their session.
	tok = p.login("eve", "eve-password-1")
	var eveID string
	for _, o := range p.do("GET", "/api/v1/users?q=eve&fields=*", admin, nil).obj["objects"].([]any) {
		eveID = o.(map[string]any)["id"].(string)
	}
	p.do("POST", "/api/v1/users/"+eveID, admin, map[string]any{"enabled": false}).want(t, 200)
	p.do("GET", "/api/v1/sessions/current", tok, nil).want(t, 401)
	p.do("POST", "/api/v1/login", "", map[string]string{"username": "eve", "password": "eve-password-1"}).want(t, 401)
}

func TestGeneratedAdminPasswordAndNoSecretsInLogs(t *testing.T) {
	t.Parallel()
	p := start(t, startOpts{})
	var generated string
	for _, line := range strings.Split(p.Logs(), "\n") {
		if strings.Contains(line, "generated password") {
			i := strings.Index(line, `"password":"`)
			generated = line[i+len(`"password":"`):]
			generated = generated[:strings.IndexByte(generated, '"')]
		}
	}
	if len(generated) < 16 {
		t.Fatalf("no generated password in the log:\n%s", p.Logs())
	}
	tok := p.login("admin", generated)
	r := p.do("GET", "/api/v1/users", tok, nil).want(t, 403)
	if r.str("type") != "urn:pbxd:problem:password-change-required" {
		t.Fatalf("gate: %s", r.raw)
	}
	me := p.do("GET", "/api/v1/sessions/current", tok, nil).want(t, 200).str("userId")
	p.do("POST", "/api/v1/users/"+me, tok, map[string]any{"currentPassword": generated, "password": "brand-new-pass-1"}).want(t, 200)
	p.do("GET", "/api/v1/users", tok, nil).want(t, 200)

	// Exercise every secret-bearing path, then search the log for them.
	secrets := []string{"brand-new-pass-1", "user-secret-pass-1"}
	id := p.do("POST", "/api/v1/users", tok, map[string]any{"userName": "frank", "password": "user-secret-pass-1"}).want(t, 201).str("id")
	ft := p.login("frank", "user-secret-pass-1")
	secrets = append(secrets, ft)
	secrets = append(secrets, p.do("POST", "/api/v1/users/"+id+"/devices", tok, map[string]any{"name": "d", "username": "frank-d"}).want(t, 201).str("password"))
	su := p.do("POST", "/api/v1/service-users", tok, map[string]any{"name": "s1", "permissions": []string{"admin"}}).want(t, 201)
	secrets = append(secrets, su.str("token"))
	secrets = append(secrets, p.do("POST", "/api/v1/service-users/"+su.str("id")+"/token", tok, nil).want(t, 200).str("token"))
	p.do("POST", "/api/v1/login", "", map[string]string{"username": "frank", "password": "wrong-secret-guess"}).want(t, 401)
	secrets = append(secrets, "wrong-secret-guess", tok)
	p.Stop()
	logs := p.Logs()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("secret %q… appears in the log", s[:6])
		}
	}
	if strings.Contains(logs, "$argon2id") {
		t.Error("a password hash appears in the log")
	}
	if strings.Count(logs, generated) != 1 {
		t.Errorf("the generated admin password appears %d times", strings.Count(logs, generated))
	}
}
