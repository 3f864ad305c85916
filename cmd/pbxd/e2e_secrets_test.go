package main

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestNoSecretsInLogsOrAnswers runs every secret-bearing operation with
// debug logging, then searches the whole log and every answer that is not
// the one-time answer carrying the secret: no password, token, device
// token, HA1 or password hash may appear anywhere.
func TestNoSecretsInLogsOrAnswers(t *testing.T) {
	t.Parallel()
	p := start(t, startOpts{env: []string{"PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}, args: []string{"--log-level", "debug"}})
	secrets := map[string]string{"admin password": e2eAdminPassword}
	var answers []resp // everything that must not carry a secret
	keep := func(r resp) resp { answers = append(answers, r); return r }

	admin := p.login("admin", e2eAdminPassword)
	secrets["admin session token"] = admin
	uid := keep(p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "gil", "password": "gil-password-1", "extension": "801"}).want(t, 201)).str("id")
	secrets["user password"] = "gil-password-1"
	gil := p.login("gil", "gil-password-1")
	secrets["user session token"] = gil
	keep(p.do("POST", "/api/v1/sessions", gil, map[string]any{"platform": "ios", "deviceToken": "apns-device-token-secret"}).want(t, 200))
	secrets["device token"] = "apns-device-token-secret"

	// Failed attempts carry secrets too.
	keep(p.do("POST", "/api/v1/login", "", map[string]string{"username": "gil", "password": "wrong-guess-secret"}).want(t, 401))
	keep(p.do("POST", "/api/v1/login", "", map[string]string{"username": "no-such-user", "password": "unknown-user-secret"}).want(t, 401))
	keep(p.do("POST", "/api/v1/users/"+uid, gil, map[string]any{"currentPassword": "bad-current-secret", "password": "never-set-secret"}).want(t, 403))
	keep(p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "bad user", "password": "rejected-user-secret"}).want(t, 400))
	secrets["wrong password"], secrets["unknown user's password"] = "wrong-guess-secret", "unknown-user-secret"
	secrets["wrong current password"], secrets["refused new password"] = "bad-current-secret", "never-set-secret"
	secrets["rejected user's password"] = "rejected-user-secret"

	// Password changes: own and by an admin.
	keep(p.do("POST", "/api/v1/users/"+uid, gil, map[string]any{"currentPassword": "gil-password-1", "password": "gil-password-2"}).want(t, 200))
	keep(p.do("PUT", "/api/v1/users/"+uid, admin, map[string]any{"password": "gil-password-3"}).want(t, 200))
	secrets["changed password"], secrets["reset password"] = "gil-password-2", "gil-password-3"

	// Devices: chosen and generated passwords, and their HA1s.
	p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "desk", "username": "gil-desk", "password": "chosen-phone-secret"}).want(t, 201)
	gen := p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "soft", "username": "gil-soft"}).want(t, 201).str("password")
	secrets["chosen device password"], secrets["generated device password"] = "chosen-phone-secret", gen
	for _, d := range []struct{ user, pw string }{{"gil-desk", "chosen-phone-secret"}, {"gil-soft", gen}} {
		secrets[d.user+" HA1 MD5"] = ha1(md5Hex, d.user, d.pw)
		secrets[d.user+" HA1 SHA-256"] = ha1(sha256Hex, d.user, d.pw)
		// A phone registers, once wrongly and once rightly.
		ph := newPhone(t, p.sip, d.user)
		contact := "Contact: <sip:" + d.user + "@" + ph.local() + ">"
		_, ch := ph.register(contact)
		ph.register(contact, answer(t, ch, "MD5", d.user, "wrong-phone-secret", 1))
		_, ch = ph.register(contact)
		if code, res := ph.register(contact, answer(t, ch, "SHA-256", d.user, d.pw, 1)); code != 200 {
			t.Fatalf("%s register: %d\n%s", d.user, code, res)
		}
	}
	secrets["wrong phone password"] = "wrong-phone-secret"

	// Service users: created, used both ways, refreshed, misused.
	su := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "crm", "permissions": []string{"users:read"}}).want(t, 201)
	suTok := su.str("token")
	keep(p.do("GET", "/api/v1/users", suTok, nil).want(t, 200))
	keep(p.do("GET", "/api/v1/users", "basic:"+su.str("id")+":"+suTok, nil).want(t, 200))
	keep(p.do("POST", "/api/v1/users", suTok, map[string]any{"userName": "x"}).want(t, 403))
	refreshed := p.do("POST", "/api/v1/service-users/"+su.str("id")+"/token", admin, nil).want(t, 200).str("token")
	keep(p.do("GET", "/api/v1/users", suTok, nil).want(t, 401))
	keep(p.do("GET", "/api/v1/users", "raw:Basic "+base64.StdEncoding.EncodeToString([]byte("0123456789abcdef:"+refreshed)), nil).want(t, 401))
	secrets["service-user token"], secrets["refreshed token"] = suTok, refreshed

	// Secrets in places they do not belong.
	keep(p.do("GET", "/api/v1/users?q=x&token="+refreshed, admin, nil))
	// (A path is echoed in its 404 as the instance: only the log is checked.)
	p.do("GET", "/api/v1/"+refreshed, admin, nil).want(t, 404)
	keep(p.do("POST", "/api/v1/logout", gil, nil))

	// Everything an admin can read.
	for _, path := range []string{"/api/v1/users?subresources=*", "/api/v1/users/" + uid + "?subresources=*", "/api/v1/users/" + uid + "/devices",
		"/api/v1/service-users", "/api/v1/service-users/" + su.str("id"), "/api/v1/audit?rows=1000", "/api/v1/registrations",
		"/api/v1/sessions/current", "/metrics", "/api/v1/openapi.json", "/healthz"} {
		keep(p.do("GET", path, admin, nil).want(t, 200))
	}
	p.Stop()

	logs := p.Logs()
	if !strings.Contains(logs, `"level":"DEBUG"`) {
		t.Fatal("the run did not log at debug level")
	}
	for what, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log contains the %s", what)
		}
		for _, r := range answers {
			if strings.Contains(string(r.raw), s) {
				t.Errorf("an answer contains the %s: %.300s", what, r.raw)
			}
			for k, v := range r.header {
				if strings.Contains(strings.Join(v, " "), s) {
					t.Errorf("header %s contains the %s", k, what)
				}
			}
		}
	}
	for _, s := range []string{"$argon2id", "argon2id$"} {
		if strings.Contains(logs, s) {
			t.Errorf("the log contains a password hash (%s)", s)
		}
		for _, r := range answers {
			if strings.Contains(string(r.raw), s) {
				t.Errorf("an answer contains a password hash: %.300s", r.raw)
			}
		}
	}
}
