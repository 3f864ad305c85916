package main

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

// TestDevicesLifecycle covers a user's SIP devices: the password is
// returned once, never again, and neither are its HA1 hashes.
func TestDevicesLifecycle(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "dora", "password": "dora-password-1"}).want(t, 201).str("id")
	other := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "otto"}).want(t, 201).str("id")

	r := p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "Desk phone", "username": "dora-desk"}).want(t, 201)
	gen, did := r.str("password"), r.str("id")
	if !regexp.MustCompile(`^[A-Za-z0-9]{20}$`).MatchString(gen) {
		t.Fatalf("generated device password %q", gen)
	}
	if r.str("username") != "dora-desk" || r.str("userId") != uid || r.str("realm") != "pbxd" || r.header.Get("Location") != r.str("uri") ||
		r.str("uri") != "/api/v1/users/"+uid+"/devices/"+did {
		t.Fatalf("create device: %v %s", r.header, r.raw)
	}
	r2 := p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "Soft", "username": "dora-soft", "password": "Soft-phone-pw1"}).want(t, 201)
	secrets := []string{gen, "Soft-phone-pw1", ha1(md5Hex, "dora-desk", gen), ha1(sha256Hex, "dora-desk", gen),
		ha1(md5Hex, "dora-soft", "Soft-phone-pw1"), ha1(sha256Hex, "dora-soft", "Soft-phone-pw1")}
	agent := p.login("dora", "dora-password-1")
	for _, rd := range []struct{ path, tok string }{
		{"/api/v1/users/" + uid + "/devices", admin},
		{"/api/v1/users/" + uid + "/devices", agent},
		{"/api/v1/users/" + uid + "/devices/" + did, admin},
		{"/api/v1/users/" + uid + "?subresources=*", admin},
		{"/api/v1/users?subresources=*", agent},
		{"/api/v1/audit?rows=100", admin},
	} {
		body := string(p.do("GET", rd.path, rd.tok, nil).want(t, 200).raw)
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("GET %s shows a device secret", rd.path)
			}
		}
		if strings.Contains(body, `"password"`) || strings.Contains(strings.ToLower(body), "ha1") {
			t.Errorf("GET %s shows secret members: %s", rd.path, body)
		}
	}
	list := p.do("GET", "/api/v1/users/"+uid+"/devices", admin, nil).want(t, 200)
	if list.num("total") != 2 || list.num("count") != 2 {
		t.Fatalf("devices: %s", list.raw)
	}
	// A device is found only under its own user.
	wantProblem(t, p.do("GET", "/api/v1/users/"+other+"/devices/"+did, admin, nil), 404, "")
	wantProblem(t, p.do("DELETE", "/api/v1/users/"+other+"/devices/"+did, admin, nil), 404, "")
	wantProblem(t, p.do("GET", "/api/v1/users/"+uid+"/devices/0123456789abcdef", admin, nil), 404, "")
	wantProblem(t, p.do("POST", "/api/v1/users/0123456789abcdef/devices", admin, map[string]any{"name": "x", "username": "nobodys"}), 404, "")

	// SIP usernames are unique on the box, whoever owns the device.
	wantProblem(t, p.do("POST", "/api/v1/users/"+other+"/devices", admin, map[string]any{"name": "x", "username": "dora-desk"}), 409, "urn:pbxd:problem:conflict")
	for _, bad := range []map[string]any{
		{"username": "no-name"},
		{"name": "x"},
		{"name": "x", "username": "has space"},
		{"name": "x", "username": "-leading"},
		{"name": "x", "username": "ok1", "password": "short"},
		{"name": "x", "username": "ok2", "password": `quote"inside1`},
		{"name": "two\nlines", "username": "ok3"},
	} {
		wantProblem(t, p.do("POST", "/api/v1/users/"+other+"/devices", admin, bad), 400, "")
	}
	// Agents read devices but do not manage them.
	wantProblem(t, p.do("POST", "/api/v1/users/"+uid+"/devices", agent, map[string]any{"name": "mine", "username": "dora-3"}), 403, "urn:pbxd:problem:forbidden")
	wantProblem(t, p.do("DELETE", "/api/v1/users/"+uid+"/devices/"+did, agent, nil), 403, "urn:pbxd:problem:forbidden")

	p.do("DELETE", "/api/v1/users/"+uid+"/devices/"+did, admin, nil).want(t, 204)
	wantProblem(t, p.do("DELETE", "/api/v1/users/"+uid+"/devices/"+did, admin, nil), 404, "")
	wantProblem(t, p.do("GET", "/api/v1/users/"+uid+"/devices/"+did, admin, nil), 404, "")
	if r := p.do("GET", "/api/v1/users/"+uid+"/devices", admin, nil).want(t, 200); r.num("total") != 1 || !strings.Contains(string(r.raw), r2.str("id")) {
		t.Fatalf("after delete: %s", r.raw)
	}
	// The username is free again.
	p.do("POST", "/api/v1/users/"+other+"/devices", admin, map[string]any{"name": "reuse", "username": "dora-desk"}).want(t, 201)
}

func md5Hex(s string) string    { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
func sha256Hex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// ha1 is a device's digest HA1 in the default realm.
func ha1(h func(string) string, user, pw string) string { return h(user + ":pbxd:" + pw) }
