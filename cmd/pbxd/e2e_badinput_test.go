package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"
)

// TestBadBodies sends malformed bodies to the two most exposed writes,
// POST /login and POST /users: each gets the right 4xx problem, nothing is
// created, and the process keeps serving.
func TestBadBodies(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	jsonCT := map[string]string{"Content-Type": "application/json"}
	big := []byte(`{"userName":"` + strings.Repeat("a", 1<<20) + `"}`)
	deep := []byte(strings.Repeat("[", 200000) + strings.Repeat("]", 200000))
	cases := []struct {
		name string
		ct   string
		body []byte
		want int
	}{
		{"truncated", "application/json", []byte(`{"a":`), 400},
		{"not JSON", "application/json", []byte(`userName=x`), 400},
		{"array", "application/json", []byte(`[1,2]`), 400},
		{"string", "application/json", []byte(`"x"`), 400},
		{"null", "application/json", []byte(`null`), 400},
		{"empty", "application/json", []byte{}, 400},
		{"whitespace", "application/json", []byte(" \n\t "), 400},
		{"two values", "application/json", []byte(`{} {}`), 400},
		{"trailing garbage", "application/json", []byte(`{}x`), 400},
		{"unknown member", "application/json", []byte(`{"nope":1}`), 400},
		{"deep nesting", "application/json", deep, 400},
		{"invalid UTF-8 framing", "application/json", []byte("{\"\xff\":1}"), 400},
		{"over 1 MiB", "application/json", big, 413},
		{"text/plain", "text/plain", []byte(`{}`), 415},
		{"form", "application/x-www-form-urlencoded", []byte(`userName=x`), 415},
		{"multipart", "multipart/form-data; boundary=x", []byte("--x--"), 415},
		{"no media type", "json", []byte(`{}`), 415},
	}
	for _, path := range []string{"/api/v1/login", "/api/v1/users"} {
		for _, tc := range cases {
			hdr := map[string]string{"Content-Type": tc.ct, "Authorization": "Bearer " + admin}
			r := p.mustSend(t, "POST", path, hdr, tc.body)
			if why := problemOK(r, tc.want, ""); why != "" {
				t.Errorf("POST %s %s: %s: %.300s", path, tc.name, why, r.raw)
			}
		}
	}
	// Wrong types and invalid members, as JSON.
	for _, tc := range []struct {
		path, body string
		want       int
	}{
		{"/api/v1/login", `{"username":"admin","password":5}`, 400},
		{"/api/v1/login", `{"username":["admin"],"password":"x"}`, 400},
		{"/api/v1/login", `{"username":"admin"}`, 400},
		{"/api/v1/login", `{"password":"e2e-admin-pass-1"}`, 400},
		{"/api/v1/login", `{"username":"` + strings.Repeat("u", 200) + `","password":"x"}`, 400},
		{"/api/v1/login", `{"username":"admin","password":"` + strings.Repeat("p", 300) + `"}`, 400},
		{"/api/v1/login", `{"username":"admin","password":"e2e-admin-pass-1","remember":true}`, 400},
		{"/api/v1/users", `{"userName":"x","roles":"ROLE_AGENT"}`, 400},
		{"/api/v1/users", `{"userName":"x","roles":[1]}`, 400},
		{"/api/v1/users", `{"userName":"x","enabled":"yes"}`, 400},
		{"/api/v1/users", `{"userName":"x","changePasswordOnFirstLogin":"true"}`, 400},
		{"/api/v1/users", `{"userName":"x","doNotDisturb":true}`, 400},
		{"/api/v1/users", `{"userName":"x","extension":100}`, 400},
		{"/api/v1/users", `{"userName":42}`, 400},
		{"/api/v1/users", `{"userName":"x","id":"0123456789abcdef"}`, 400},
		{"/api/v1/users", `{"userName":"x","passwordHash":"$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA"}`, 400},
		{"/api/v1/users", `{"userName":"x","skills":[]}`, 400},
		{"/api/v1/users", `{"userName":"x","createdBy":"me"}`, 400},
	} {
		r := p.mustSend(t, "POST", tc.path, map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + admin}, []byte(tc.body))
		if why := problemOK(r, tc.want, ""); why != "" {
			t.Errorf("POST %s %.80s: %s: %.300s", tc.path, tc.body, why, r.raw)
		}
	}
	// A JSON media type with parameters, or a +json type, is fine; so is
	// none at all.
	for i, ct := range []string{"application/json; charset=utf-8", "application/merge-patch+json", "Application/JSON", ""} {
		hdr := map[string]string{"Authorization": "Bearer " + admin}
		if ct != "" {
			hdr["Content-Type"] = ct
		}
		r := p.mustSend(t, "POST", "/api/v1/users", hdr, []byte(`{"userName":"ok`+string(rune('a'+i))+`"}`))
		if r.code != 201 {
			t.Errorf("Content-Type %q: %d %s", ct, r.code, r.raw)
		}
	}
	// The failed logins above did not count as guesses against admin's
	// password, and nothing else was created.
	p.mustSend(t, "POST", "/api/v1/login", jsonCT, []byte(`{"username":"admin","password":"`+e2eAdminPassword+`"}`)).want(t, 200)
	if r := p.do("GET", "/api/v1/users", admin, nil).want(t, 200); r.num("total") != 5 {
		t.Errorf("users after the bad bodies: %s", r.raw)
	}
	p.do("GET", "/healthz", "", nil).want(t, 200)
	checkNo5xx(t, p)
}

// TestBadPathsAndMethods: malformed ids are 400, unknown ones 404, unknown
// paths 404 and wrong methods 405 with Allow — all problem documents.
func TestBadPathsAndMethods(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	uid := p.userID(t, admin, "admin")
	for _, tc := range []struct {
		method, path string
		want         int
		allow        string
	}{
		{"GET", "/api/v1/users/XYZ", 400, ""},
		{"GET", "/api/v1/users/0123456789ABCDEF", 400, ""},
		{"GET", "/api/v1/users/0123456789abcde", 400, ""},
		{"GET", "/api/v1/users/0123456789abcdef0", 400, ""},
		{"GET", "/api/v1/users/..%2f..%2fetc%2fpasswd", 400, ""},
		{"GET", "/api/v1/users/%00", 400, ""},
		{"GET", "/api/v1/users/%2e%2e", 400, ""},
		{"GET", "/api/v1/users/" + strings.Repeat("a", 5000), 400, ""},
		{"DELETE", "/api/v1/users/not-an-id", 400, ""},
		{"GET", "/api/v1/users/" + uid + "/devices/XYZ", 400, ""},
		{"DELETE", "/api/v1/users/" + uid + "/skills/XYZ", 400, ""},
		{"GET", "/api/v1/service-users/XYZ", 400, ""},
		{"POST", "/api/v1/service-users/XYZ/token", 400, ""},
		{"GET", "/api/v1/skills/XYZ", 400, ""},
		{"GET", "/api/v1/users/0123456789abcdef", 404, ""},
		{"GET", "/api/v1/users/0123456789abcdef/devices", 404, ""},
		{"GET", "/api/v1/users/" + uid + "/devices/0123456789abcdef", 404, ""},
		{"GET", "/api/v1/service-users/0123456789abcdef", 404, ""},
		{"GET", "/api/v1/skills/0123456789abcdef", 404, ""},
		{"DELETE", "/api/v1/skills/0123456789abcdef", 404, ""},
		{"GET", "/api/v1/nowhere", 404, ""},
		{"GET", "/api/v2/users", 404, ""},
		{"GET", "/", 404, ""},
		{"GET", "/api/v1/users/" + uid + "/nothing", 404, ""},
		{"GET", "/api/v1/users/" + uid + "/devices/0123456789abcdef/extra", 404, ""},
		{"PATCH", "/api/v1/users/" + uid, 405, "GET, POST, PUT, DELETE"},
		{"DELETE", "/api/v1/users", 405, "GET, POST"},
		{"PUT", "/api/v1/login", 405, "POST"},
		{"GET", "/api/v1/login", 405, "POST"},
		{"DELETE", "/api/v1/sessions/current", 405, "GET"},
		{"POST", "/healthz", 405, "GET"},
		{"POST", "/api/v1/openapi.json", 405, "GET"},
		{"TRACE", "/api/v1/users", 405, "GET, POST"},
		{"GET", "/api/v1/service-users/0123456789abcdef/token", 405, "POST"},
	} {
		r := p.mustSend(t, tc.method, tc.path, map[string]string{"Authorization": "Bearer " + admin}, nil)
		if why := problemOK(r, tc.want, ""); why != "" {
			t.Errorf("%s %.80s: %s: %.200s", tc.method, tc.path, why, r.raw)
			continue
		}
		if tc.allow != "" && r.header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, r.header.Get("Allow"), tc.allow)
		}
	}
	// A 405 and a 404 for an unknown path need no credentials to be told
	// apart from a 401; a known route without credentials is a 401.
	r := p.mustSend(t, "GET", "/api/v1/users/XYZ", nil, nil)
	wantProblem(t, r, 401, "urn:pbxd:problem:unauthorized")
	// Dot segments and doubled slashes are never served as something else:
	// whatever the answer, it is not a 2xx or 5xx and pbxd keeps serving.
	for _, path := range []string{"/api/v1/users/../../healthz", "/api/v1//users", "/api/v1/./users"} {
		raw := rawHTTP(t, p, "GET "+path+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+admin+"\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(raw, "HTTP/1.1 3") && !strings.HasPrefix(raw, "HTTP/1.1 4") {
			t.Errorf("GET %s: %.200q", path, raw)
		}
	}
	p.do("GET", "/healthz", "", nil).want(t, 200)
	checkNo5xx(t, p)
}

// TestBadCredentials: every kind of garbage in Authorization is the same
// 401, never a 400 or 500, and tells nothing about what was wrong.
func TestBadCredentials(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	headers := []string{
		"Bearer",
		"Bearer ",
		"Bearer  ",
		"Basic !!!",
		"Basic " + base64.StdEncoding.EncodeToString([]byte("no-colon")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte(":")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("\x00\x01:\xff")),
		"Basic",
		"Token abc",
		"Digest username=\"admin\"",
		"Negotiate YIIB",
		admin,
		"Bearer " + admin[:len(admin)-2],
		"Bearer " + strings.Replace(admin, "pbxd_ses_", "pbxd_su_", 1),
		"Bearer " + strings.Repeat("x", 4000),
		"Bearer " + strings.Repeat("A", 60000),
		"Bearer pbxd_ses_" + strings.Repeat("0", 49),
		"Bearer \x7f",
		"Bearer tok\ten",
		"bearer\t" + admin,
	}
	var ref resp
	for i, h := range headers {
		r, err := p.send("GET", "/api/v1/users", map[string]string{"Authorization": h}, nil)
		if err != nil {
			// Go's client refuses some header bytes itself; that is not
			// pbxd's doing.
			continue
		}
		if why := problemOK(r, 401, "urn:pbxd:problem:unauthorized"); why != "" {
			t.Errorf("Authorization %.40q: %s: %.200s", h, why, r.raw)
			continue
		}
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %.40q: 401 without WWW-Authenticate", h)
		}
		if i == 0 {
			ref = r
		} else if problemKey(r) != problemKey(ref) {
			t.Errorf("Authorization %.40q is refused differently: %s vs %s", h, r.raw, ref.raw)
		}
	}
	// Two Authorization headers: refused or the first one, never a 5xx.
	raw := rawHTTP(t, p, "GET /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+admin+"\r\nAuthorization: Basic !!!\r\nConnection: close\r\n\r\n")
	if !strings.HasPrefix(raw, "HTTP/1.1 200") && !strings.HasPrefix(raw, "HTTP/1.1 401") && !strings.HasPrefix(raw, "HTTP/1.1 400") {
		t.Errorf("two Authorization headers: %.200q", raw)
	}
	p.do("GET", "/api/v1/users", admin, nil).want(t, 200)
	checkNo5xx(t, p)
}

// TestBadTransport: garbage below the API (request lines, headers, huge
// headers, a slow client) never takes pbxd down.
func TestBadTransport(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	for _, req := range []string{
		"GARBAGE\r\n\r\n",
		"GET / HTTP/9.9\r\n\r\n",
		"GET /api/v1/users HTTP/1.1\r\n\r\n", // no Host
		"GET /api/v1/users HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 100_000) + "\r\n\r\n",
		"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
		"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
		"POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", // the start of a TLS ClientHello
	} {
		raw := rawHTTP(t, p, req)
		// net/http answers an unknown HTTP version with 505 itself, as
		// RFC 9110 says; every other mistake must be a 4xx.
		if strings.HasPrefix(raw, "HTTP/1.1 5") && !strings.HasPrefix(raw, "HTTP/1.1 505") || strings.HasPrefix(raw, "HTTP/1.1 2") || raw == "" {
			t.Errorf("%.60q: %.200q", req, raw)
		}
	}
	// A client that sends half a request and stalls does not block others.
	c, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user"))
	start := time.Now()
	p.do("POST", "/api/v1/login", "", map[string]string{"username": "admin", "password": e2eAdminPassword}).want(t, 200)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a login took %v next to a stalled client", d)
	}
	p.do("GET", "/healthz", "", nil).want(t, 200)
	select {
	case <-p.exited:
		t.Fatalf("pbxd exited: %v", p.exitErr)
	default:
	}
	checkNo5xx(t, p)
}

// rawHTTP writes req on a fresh connection and returns what comes back
// before the server closes it (or 3 s pass).
func rawHTTP(t *testing.T, p *proc, req string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(p.base, "http://"), 2*time.Second)
	if err != nil {
		t.Fatalf("pbxd does not accept connections: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	_, _ = c.Write([]byte(req))
	var out bytes.Buffer
	_, _ = out.ReadFrom(bufio.NewReader(c))
	return out.String()
}

// checkNo5xx fails if /metrics counts any 5xx answer.
func checkNo5xx(t *testing.T, p *proc) {
	t.Helper()
	m := string(p.do("GET", "/metrics", "", nil).want(t, 200).raw)
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, "pbxd_http_requests_total{") && strings.Contains(line, `status="5`) {
			t.Errorf("pbxd answered a 5xx: %s", line)
		}
	}
}
