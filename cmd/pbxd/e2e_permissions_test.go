package main

import (
	"fmt"
	"testing"
)

// TestAgentPermissions checks what ROLE_AGENT may and may not do.
func TestAgentPermissions(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	me := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "agent7", "password": "agent7-pass-1", "firstName": "Ada",
		"extension": "700"}).want(t, 201).str("id")
	peer := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "agent8", "firstName": "Bob"}).want(t, 201).str("id")
	adminID := p.userID(t, admin, "admin")
	dev := p.do("POST", "/api/v1/users/"+peer+"/devices", admin, map[string]any{"name": "d", "username": "agent8-d"}).want(t, 201).str("id")
	agent := p.login("agent7", "agent7-pass-1")
	second := p.login("agent7", "agent7-pass-1")

	// Reading the directory is allowed.
	for _, path := range []string{"/api/v1/users", "/api/v1/users?fields=*", "/api/v1/users/" + peer, "/api/v1/users/" + adminID,
		"/api/v1/users/" + me + "?subresources=*", "/api/v1/users/" + peer + "/devices", "/api/v1/skills", "/api/v1/sessions/current"} {
		p.do("GET", path, agent, nil).want(t, 200)
	}
	// Own first and last name: yes.
	r := p.do("POST", "/api/v1/users/"+me, agent, map[string]any{"firstName": "Adele", "lastName": "Smith"}).want(t, 200)
	if r.str("firstName") != "Adele" || r.str("lastName") != "Smith" {
		t.Fatalf("own names: %s", r.raw)
	}
	p.do("PUT", "/api/v1/users/"+me, agent, map[string]any{"lastName": "Jones"}).want(t, 200)

	forbidden := []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/users/" + me, map[string]any{"roles": []string{"ROLE_ADMIN"}}},
		{"POST", "/api/v1/users/" + me, map[string]any{"roles": []string{"ROLE_AGENT"}}},
		{"POST", "/api/v1/users/" + me, map[string]any{"extension": "701"}},
		{"POST", "/api/v1/users/" + me, map[string]any{"enabled": false}},
		{"POST", "/api/v1/users/" + me, map[string]any{"timezone": "Europe/Paris"}},
		{"POST", "/api/v1/users/" + me, map[string]any{"changePasswordOnFirstLogin": true}},
		{"POST", "/api/v1/users/" + me, map[string]any{"firstName": "Ok", "extension": "702"}},
		{"PUT", "/api/v1/users/" + me, map[string]any{"roles": []string{"ROLE_ADMIN", "ROLE_AGENT"}}},
		{"POST", "/api/v1/users/" + peer, map[string]any{"firstName": "Hacked"}},
		{"PUT", "/api/v1/users/" + peer, map[string]any{"password": "hijacked-pass-1"}},
		{"POST", "/api/v1/users/" + adminID, map[string]any{"lastName": "Hacked"}},
		{"POST", "/api/v1/users", map[string]any{"userName": "sneaky"}},
		{"DELETE", "/api/v1/users/" + peer, nil},
		{"DELETE", "/api/v1/users/" + me, nil},
		{"GET", "/api/v1/service-users", nil},
		{"POST", "/api/v1/service-users", map[string]any{"name": "mine"}},
		{"GET", "/api/v1/audit", nil},
		{"GET", "/api/v1/registrations", nil},
		{"POST", "/api/v1/skills", map[string]any{"name": "x"}},
		{"POST", "/api/v1/users/" + me + "/devices", map[string]any{"name": "x", "username": "agent7-x"}},
		{"DELETE", "/api/v1/users/" + peer + "/devices/" + dev, nil},
	}
	for _, f := range forbidden {
		if why := problemOK(p.do(f.method, f.path, agent, f.body), 403, "urn:pbxd:problem:forbidden"); why != "" {
			t.Errorf("agent %s %s %v: %s", f.method, f.path, f.body, why)
		}
	}
	// Nothing of that happened.
	if r := p.do("GET", "/api/v1/users/"+me, admin, nil).want(t, 200); fmt.Sprint(r.obj["roles"]) != "[ROLE_AGENT]" || r.str("extension") != "700" || r.obj["enabled"] != true {
		t.Fatalf("the agent changed protected fields: %s", r.raw)
	}
	if r := p.do("GET", "/api/v1/users/"+peer, admin, nil).want(t, 200); r.str("firstName") != "Bob" {
		t.Fatalf("the agent changed another user: %s", r.raw)
	}
	if r := p.do("GET", "/api/v1/users", admin, nil).want(t, 200); r.num("total") != 3 {
		t.Fatalf("users: %s", r.raw)
	}

	// Own password: needs the current one.
	wantProblem(t, p.do("POST", "/api/v1/users/"+me, agent, map[string]any{"password": "agent7-pass-2"}), 400, "")
	wantProblem(t, p.do("POST", "/api/v1/users/"+me, agent, map[string]any{"currentPassword": "not-my-password", "password": "agent7-pass-2"}), 403, "")
	wantProblem(t, p.do("POST", "/api/v1/users/"+me, agent, map[string]any{"currentPassword": "agent7-pass-1", "password": "short"}), 400, "")
	wantProblem(t, p.do("POST", "/api/v1/users/"+me, agent, map[string]any{"currentPassword": "agent7-pass-1"}), 400, "")
	p.do("GET", "/api/v1/sessions/current", second, nil).want(t, 200) // failed attempts revoke nothing
	p.do("POST", "/api/v1/users/"+me, agent, map[string]any{"currentPassword": "agent7-pass-1", "password": "agent7-pass-2"}).want(t, 200)
	p.do("GET", "/api/v1/sessions/current", agent, nil).want(t, 200)
	wantProblem(t, p.do("GET", "/api/v1/sessions/current", second, nil), 401, "urn:pbxd:problem:unauthorized")
	p.do("POST", "/api/v1/login", "", map[string]string{"username": "agent7", "password": "agent7-pass-1"}).want(t, 401)
	p.login("agent7", "agent7-pass-2")

	// A user without roles sees only themselves.
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "norole", "password": "norole-pass-1", "roles": []string{}}).want(t, 201)
	nr := p.login("norole", "norole-pass-1")
	nrID := p.do("GET", "/api/v1/sessions/current", nr, nil).want(t, 200).str("userId")
	p.do("GET", "/api/v1/users/"+nrID, nr, nil).want(t, 200)
	wantProblem(t, p.do("GET", "/api/v1/users", nr, nil), 403, "urn:pbxd:problem:forbidden")
	wantProblem(t, p.do("GET", "/api/v1/users/"+me, nr, nil), 403, "urn:pbxd:problem:forbidden")
}
