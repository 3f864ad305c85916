package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSessionDocument checks login's TokenResponse, the UserSession of
// isLoggedIn and initSession, and logout.
func TestSessionDocument(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "sid", "password": "sid-password-1", "firstName": "Sid",
		"lastName": "Vik", "timezone": "Asia/Tokyo"}).want(t, 201).str("id")

	before := time.Now()
	lr := p.do("POST", "/api/v1/login", "", map[string]string{"username": "sid", "password": "sid-password-1"}).want(t, 200)
	tok := lr.str("token")
	if !strings.HasPrefix(tok, "pbxd_ses_") || lr.str("location") != "/api/v1/users/"+uid {
		t.Fatalf("TokenResponse: %s", lr.raw)
	}
	if exp := time.UnixMilli(int64(lr.num("expiresAt"))); exp.Before(before.Add(12*time.Hour-time.Minute)) || exp.After(time.Now().Add(12*time.Hour+time.Minute)) {
		t.Errorf("expiresAt %v is not 12h after the login", exp)
	}
	if lr.header.Get("Cache-Control") != "no-store" {
		t.Errorf("a token answer may be cached: Cache-Control %q", lr.header.Get("Cache-Control"))
	}

	cur := p.do("GET", "/api/v1/sessions/current", tok, nil).want(t, 200)
	loginAt := time.UnixMilli(int64(cur.num("loginAt")))
	if cur.str("_id") == "" || cur.str("userId") != uid || cur.str("username") != "sid" || cur.str("firstName") != "Sid" ||
		cur.str("lastName") != "Vik" || cur.str("timezone") != "Asia/Tokyo" || cur.obj["enabled"] != true ||
		cur.str("objectType") != "UserSession" || loginAt.Before(before.Add(-time.Second)) || loginAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("UserSession: %s", cur.raw)
	}
	if auths, _ := cur.obj["authorities"].([]any); len(auths) != 1 || auths[0].(map[string]any)["authority"] != "ROLE_AGENT" {
		t.Fatalf("authorities: %v", cur.obj["authorities"])
	}
	for _, k := range []string{"token", "password", "passwordHash", "deviceToken"} {
		if _, ok := cur.obj[k]; ok {
			t.Errorf("UserSession has %q", k)
		}
	}
	if strings.Contains(string(cur.raw), tok) {
		t.Error("UserSession echoes the token")
	}

	// initSession records the platform and never echoes the device token.
	r := p.do("POST", "/api/v1/sessions", tok, map[string]any{"platform": "android", "deviceToken": "fcm-device-token-123"}).want(t, 200)
	if r.str("platform") != "android" || r.str("_id") != cur.str("_id") || strings.Contains(string(r.raw), "fcm-device-token-123") {
		t.Fatalf("initSession: %s", r.raw)
	}
	devs, _ := r.obj["devices"].(map[string]any)
	if d, _ := devs[cur.str("_id")].(map[string]any); d == nil || d["platform"] != "android" || d["current"] != true {
		t.Fatalf("devices after initSession: %v", r.obj["devices"])
	}
	if c := p.do("GET", "/api/v1/sessions/current", tok, nil).want(t, 200); c.str("platform") != "android" || strings.Contains(string(c.raw), "fcm-device-token-123") {
		t.Fatalf("current after initSession: %s", c.raw)
	}
	// A second session on another platform shows up next to the first.
	other := p.login("sid", "sid-password-1")
	r = p.do("POST", "/api/v1/sessions", other, map[string]any{"platform": "web"}).want(t, 200)
	if devs, _ := r.obj["devices"].(map[string]any); len(devs) != 2 {
		t.Fatalf("two initialised sessions: %v", r.obj["devices"])
	}
	for _, bad := range []any{
		map[string]any{"platform": "windows"},
		map[string]any{"platform": ""},
		map[string]any{"platform": "WEB"},
		map[string]any{"deviceToken": "x"},
		map[string]any{"platform": "web", "deviceToken": ""},
		map[string]any{"platform": "web", "deviceToken": strings.Repeat("d", 5000)},
		map[string]any{"platform": "web", "extra": true},
		map[string]any{"platform": 1},
	} {
		wantProblem(t, p.do("POST", "/api/v1/sessions", tok, bad), 400, "")
	}
	wantProblem(t, p.do("POST", "/api/v1/sessions", "", map[string]any{"platform": "web"}), 401, "urn:pbxd:problem:unauthorized")

	// Logout ends this session only.
	p.do("POST", "/api/v1/logout", tok, nil).want(t, 204)
	wantProblem(t, p.do("GET", "/api/v1/sessions/current", tok, nil), 401, "urn:pbxd:problem:unauthorized")
	wantProblem(t, p.do("POST", "/api/v1/logout", tok, nil), 401, "urn:pbxd:problem:unauthorized")
	wantProblem(t, p.do("POST", "/api/v1/sessions", tok, map[string]any{"platform": "web"}), 401, "urn:pbxd:problem:unauthorized")
	p.do("GET", "/api/v1/sessions/current", other, nil).want(t, 200)
	wantProblem(t, p.do("GET", "/api/v1/sessions/current", "", nil), 401, "urn:pbxd:problem:unauthorized")

	// A service user is "logged in" but has no session to initialise or end.
	su := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "probe", "permissions": []string{"users:read"}}).want(t, 201)
	sc := p.do("GET", "/api/v1/sessions/current", su.str("token"), nil).want(t, 200)
	if sc.str("kind") != "service" || sc.str("id") != su.str("id") || strings.Contains(string(sc.raw), su.str("token")) {
		t.Fatalf("service user's current session: %s", sc.raw)
	}
	wantProblem(t, p.do("POST", "/api/v1/sessions", su.str("token"), map[string]any{"platform": "web"}), 400, "")
	wantProblem(t, p.do("POST", "/api/v1/logout", su.str("token"), nil), 400, "")
	p.do("GET", "/api/v1/users", su.str("token"), nil).want(t, 200)
}

// TestLoginFailuresLookAlike: unknown user, wrong password, disabled user
// and a user without a password get the same 401.
func TestLoginFailuresLookAlike(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "eve", "password": "eve-password-1"}).want(t, 201)
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "nopw"}).want(t, 201)
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "off", "password": "off-password-1", "enabled": false}).want(t, 201)

	var ref resp
	for i, c := range []struct{ user, pw string }{
		{"eve", "wrong-password-1"},
		{"nobody", "wrong-password-1"},
		{"off", "off-password-1"},
		{"nopw", "any-password-1"},
		{"EVE", "wrong-password-1"},
		{"nobody-at-all-with-a-much-longer-name@example.com", "eve-password-1"},
	} {
		r := wantProblem(t, p.do("POST", "/api/v1/login", "", map[string]string{"username": c.user, "password": c.pw}), 401, "urn:pbxd:problem:unauthorized")
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.user)
		}
		if _, ok := r.obj["token"]; ok {
			t.Errorf("%s: a failed login carries a token member", c.user)
		}
		if i == 0 {
			ref = r
		} else if problemKey(r) != problemKey(ref) || len(r.raw) != len(ref.raw) {
			t.Errorf("login as %s answers differently from a wrong password:\n%s\n%s", c.user, r.raw, ref.raw)
		}
	}
	// The user name is case-insensitive for a good login too.
	p.login("EvE", "eve-password-1")
}

// TestLoginThrottle: after repeated wrong passwords for one username, login
// answers 429 with Retry-After, even with the right password, until the
// back-off has passed; other users are not affected.
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "tim", "password": "tim-password-1"}).want(t, 201)

	var r resp
	attempts := 0
	for attempts < 10 {
		attempts++
		r = p.do("POST", "/api/v1/login", "", map[string]string{"username": "tim", "password": "guess-" + strconv.Itoa(attempts)})
		if r.code != 401 {
			break
		}
	}
	wantProblem(t, r, 429, "urn:pbxd:problem:too-many-requests")
	if attempts < 6 || attempts > 7 {
		t.Errorf("the first 429 came at attempt %d; want it after 5 free failures", attempts)
	}
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 900 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// The right password does not get through the back-off either, and the
	// answer is the same.
	good := p.do("POST", "/api/v1/login", "", map[string]string{"username": "tim", "password": "tim-password-1"})
	wantProblem(t, good, 429, "urn:pbxd:problem:too-many-requests")
	if good.header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	wantProblem(t, p.do("POST", "/api/v1/login", "", map[string]string{"username": "TIM", "password": "tim-password-1"}), 429, "")
	// Another user logs in meanwhile.
	p.login("admin", e2eAdminPassword)

	// After the wait, the right password works and the count starts over.
	time.Sleep(time.Duration(retry)*time.Second + 100*time.Millisecond)
	p.login("tim", "tim-password-1")
	p.do("POST", "/api/v1/login", "", map[string]string{"username": "tim", "password": "guess-again"}).want(t, 401)
}

// TestLoginThrottlePerSource: many failures for many usernames from one
// address block that address for a while.
func TestLoginThrottlePerSource(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	var r resp
	attempts := 0
	for attempts < 30 {
		attempts++
		// Forwarding headers are not believed: pbxd is reached directly.
		hdr := map[string]string{"Content-Type": "application/json", "X-Forwarded-For": "198.51.100." + strconv.Itoa(attempts),
			"X-Real-IP": "203.0.113." + strconv.Itoa(attempts), "Forwarded": "for=192.0.2." + strconv.Itoa(attempts)}
		r = p.mustSend(t, "POST", "/api/v1/login", hdr, []byte(`{"username":"spray`+strconv.Itoa(attempts)+`","password":"spray-password"}`))
		if r.code != 401 {
			break
		}
	}
	wantProblem(t, r, 429, "urn:pbxd:problem:too-many-requests")
	if attempts > 22 {
		t.Errorf("first 429 at attempt %d", attempts)
	}
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || retry < 1 {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	wantProblem(t, p.do("POST", "/api/v1/login", "", map[string]string{"username": "admin", "password": e2eAdminPassword}), 429, "")
	time.Sleep(time.Duration(retry)*time.Second + 100*time.Millisecond)
	p.login("admin", e2eAdminPassword)
}

// TestPasswordChangeRequired: a user created with changePasswordOnFirstLogin
// can log in but must change the password before anything else.
func TestPasswordChangeRequired(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "newbie", "password": "initial-pass-1", "changePasswordOnFirstLogin": true}).want(t, 201).str("id")
	other := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "peer"}).want(t, 201).str("id")

	tok := p.login("newbie", "initial-pass-1")
	gate := "urn:pbxd:problem:password-change-required"
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/users", nil},
		{"GET", "/api/v1/skills", nil},
		{"GET", "/api/v1/users/" + uid + "/devices", nil},
		{"POST", "/api/v1/users/" + uid, map[string]any{"firstName": "Nina"}},
		{"POST", "/api/v1/users/" + other, map[string]any{"firstName": "Nope"}},
		{"POST", "/api/v1/users/" + uid, map[string]any{"timezone": "Europe/Rome"}},
	} {
		if why := problemOK(p.do(c.method, c.path, tok, c.body), 403, gate); why != "" {
			t.Errorf("%s %s before the password change: %s", c.method, c.path, why)
		}
	}
	cur := p.do("GET", "/api/v1/sessions/current", tok, nil).want(t, 200)
	if cur.obj["credentialsNonExpired"] != false {
		t.Errorf("credentialsNonExpired before the change: %v", cur.obj["credentialsNonExpired"])
	}
	p.do("POST", "/api/v1/sessions", tok, map[string]any{"platform": "web"}).want(t, 200)
	p.do("GET", "/api/v1/users/"+uid, tok, nil).want(t, 200)
	wantProblem(t, p.do("POST", "/api/v1/users/"+uid, tok, map[string]any{"currentPassword": "wrong-password", "password": "second-pass-1"}), 403, "")

	r := p.do("POST", "/api/v1/users/"+uid, tok, map[string]any{"currentPassword": "initial-pass-1", "password": "second-pass-1"}).want(t, 200)
	if r.obj["changePasswordOnFirstLogin"] != false {
		t.Fatalf("flag not cleared: %s", r.raw)
	}
	p.do("GET", "/api/v1/users", tok, nil).want(t, 200)
	if cur := p.do("GET", "/api/v1/sessions/current", tok, nil).want(t, 200); cur.obj["credentialsNonExpired"] != true {
		t.Errorf("credentialsNonExpired after the change: %v", cur.obj["credentialsNonExpired"])
	}
	p.do("POST", "/api/v1/login", "", map[string]string{"username": "newbie", "password": "initial-pass-1"}).want(t, 401)

	// An admin can demand a change of a user who is logged in: the session
	// they hold is gated from the next request on.
	p.do("POST", "/api/v1/users/"+uid, admin, map[string]any{"changePasswordOnFirstLogin": true}).want(t, 200)
	wantProblem(t, p.do("GET", "/api/v1/users", tok, nil), 403, gate)
	p.do("POST", "/api/v1/users/"+uid, tok, map[string]any{"currentPassword": "second-pass-1", "password": "third-pass-1"}).want(t, 200)
	p.do("GET", "/api/v1/users", tok, nil).want(t, 200)
}

// TestDisableAndResetRevokeSessions: disabling a user ends their sessions
// for good (re-enabling does not bring them back); an admin's password
// reset ends the user's sessions but not the admin's.
func TestDisableAndResetRevokeSessions(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "dan", "password": "dan-password-1"}).want(t, 201).str("id")
	a, b := p.login("dan", "dan-password-1"), p.login("dan", "dan-password-1")

	p.do("POST", "/api/v1/users/"+uid, admin, map[string]any{"enabled": false}).want(t, 200)
	for _, tok := range []string{a, b} {
		wantProblem(t, p.do("GET", "/api/v1/sessions/current", tok, nil), 401, "")
	}
	p.do("POST", "/api/v1/login", "", map[string]string{"username": "dan", "password": "dan-password-1"}).want(t, 401)
	p.do("POST", "/api/v1/users/"+uid, admin, map[string]any{"enabled": true}).want(t, 200)
	for _, tok := range []string{a, b} {
		wantProblem(t, p.do("GET", "/api/v1/sessions/current", tok, nil), 401, "")
	}
	c := p.login("dan", "dan-password-1")

	// An admin sets a new password: no current password needed; the user's
	// sessions end, the admin's does not.
	p.do("PUT", "/api/v1/users/"+uid, admin, map[string]any{"password": "dan-password-2"}).want(t, 200)
	wantProblem(t, p.do("GET", "/api/v1/sessions/current", c, nil), 401, "")
	p.do("GET", "/api/v1/sessions/current", admin, nil).want(t, 200)
	p.do("POST", "/api/v1/login", "", map[string]string{"username": "dan", "password": "dan-password-1"}).want(t, 401)
	p.login("dan", "dan-password-2")

	// Sessions are counted.
	n, ok := p.metric(t, "pbxd_sessions")
	if !ok || n != 2 {
		t.Errorf("pbxd_sessions %v, want 2 (admin and dan)", n)
	}
}

// TestSessionExpiry: a session ends at its expiresAt, and the token then
// fails like any other bad token.
func TestSessionExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a one-minute session to expire")
	}
	t.Parallel()
	p := start(t, startOpts{env: []string{"PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}, args: []string{"--session-ttl", "1m"}})
	lr := p.do("POST", "/api/v1/login", "", map[string]string{"username": "admin", "password": e2eAdminPassword}).want(t, 200)
	tok := lr.str("token")
	exp := time.UnixMilli(int64(lr.num("expiresAt")))
	if d := time.Until(exp); d < 55*time.Second || d > 61*time.Second {
		t.Fatalf("a 1m session expires in %v", d)
	}
	time.Sleep(time.Until(exp) - 2*time.Second)
	p.do("GET", "/api/v1/users", tok, nil).want(t, 200) // use does not extend it
	time.Sleep(time.Until(exp) + 500*time.Millisecond)
	wantProblem(t, p.do("GET", "/api/v1/sessions/current", tok, nil), 401, "urn:pbxd:problem:unauthorized")
	wantProblem(t, p.do("POST", "/api/v1/sessions", tok, map[string]any{"platform": "web"}), 401, "urn:pbxd:problem:unauthorized")
	if n, _ := p.metric(t, "pbxd_sessions"); n != 0 {
		t.Errorf("pbxd_sessions counts %v expired sessions", n)
	}
	p.login("admin", e2eAdminPassword)
}
