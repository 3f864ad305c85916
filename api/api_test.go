package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestOpenAPICoversEveryRoute(t *testing.T) {
	ts := newTestServer(t, false)
	code, body := ts.do(t, "GET", "/api/v1/openapi.json", "", nil)
	if code != 200 {
		t.Fatalf("%d", code)
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	for _, rt := range ts.routes {
		op, ok := doc.Paths[rt.pattern][strings.ToLower(rt.method)]
		if !ok {
			t.Errorf("%s %s missing from the OpenAPI document", rt.method, rt.pattern)
			continue
		}
		if op["summary"] == "" || op["responses"] == nil {
			t.Errorf("%s %s lacks summary or responses", rt.method, rt.pattern)
		}
		if rt.req != nil && op["requestBody"] == nil {
			t.Errorf("%s %s lacks its request body", rt.method, rt.pattern)
		}
	}
}

func TestPageEnvelope(t *testing.T) {
	pg := page{start: 0, rows: 2}
	env := pg.envelope("/x", url.Values{"q": {"a b"}}, 5, nil, 2)
	if env.Previous != nil || env.Next == nil || *env.Next != "/x?q=a+b&rows=2&start=2" {
		t.Fatalf("first page: %+v", env)
	}
	pg = page{start: 4, rows: 2}
	env = pg.envelope("/x", nil, 5, nil, 1)
	if env.Next != nil || env.Previous == nil || *env.Previous != "/x?rows=2&start=2" {
		t.Fatalf("last page: next=%v prev=%v", env.Next, *env.Previous)
	}
	for _, q := range []string{"rows=0", "rows=1001", "rows=x", "start=-1", "start=1.5", "rows=1&rows=2"} {
		v, _ := url.ParseQuery(q)
		if _, p := parsePage(v); p == nil || p.Status != 400 {
			t.Errorf("parsePage(%s) accepted", q)
		}
	}
}

func TestPermissions(t *testing.T) {
	ts := newTestServer(t, false)
	agentID := ts.createUser(t, map[string]any{"userName": "agent", "password": "agent-pass-1", "roles": []string{"ROLE_AGENT"}})
	otherID := ts.createUser(t, map[string]any{"userName": "other", "roles": []string{"ROLE_AGENT"}})
	agent := ts.login(t, "agent", "agent-pass-1")
	code, body := ts.do(t, "POST", "/api/v1/service-users", ts.adminToken, map[string]any{"name": "reader", "permissions": []string{"users:read"}})
	if code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	reader := decode[serviceUserView](t, body).Token
	code, body = ts.do(t, "POST", "/api/v1/service-users", ts.adminToken, map[string]any{"name": "writer", "permissions": []string{"users:write", "users:read"}})
	if code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	writer := decode[serviceUserView](t, body).Token

	tests := []struct {
		who, token, method, path string
		body                     any
		want                     int
	}{
		{"agent", agent, "GET", "/api/v1/users", nil, 200},
		{"agent", agent, "GET", "/api/v1/users/" + otherID, nil, 200},
		{"agent", agent, "POST", "/api/v1/users/" + agentID, map[string]any{"firstName": "Ann"}, 200},
		{"agent", agent, "POST", "/api/v1/users/" + agentID, map[string]any{"roles": []string{"ROLE_ADMIN"}}, 403},
		{"agent", agent, "PUT", "/api/v1/users/" + agentID, map[string]any{"extension": "123"}, 403},
		{"agent", agent, "POST", "/api/v1/users/" + otherID, map[string]any{"firstName": "X"}, 403},
		{"agent", agent, "POST", "/api/v1/users", map[string]any{"userName": "x"}, 403},
		{"agent", agent, "DELETE", "/api/v1/users/" + otherID, nil, 403},
		{"agent", agent, "GET", "/api/v1/service-users", nil, 403},
		{"agent", agent, "GET", "/api/v1/audit", nil, 403},
		{"agent", agent, "POST", "/api/v1/users/" + agentID + "/devices", map[string]any{"name": "d", "username": "d1"}, 403},
		{"agent", agent, "POST", "/api/v1/skills", map[string]any{"name": "s"}, 403},
		{"reader", reader, "GET", "/api/v1/users?fields=*", nil, 200},
		{"reader", reader, "POST", "/api/v1/users", map[string]any{"userName": "x"}, 403},
		{"reader", reader, "GET", "/api/v1/service-users", nil, 403},
		{"writer", writer, "POST", "/api/v1/users", map[string]any{"userName": "made-by-writer"}, 201},
		{"writer", writer, "POST", "/api/v1/users", map[string]any{"userName": "sneaky", "roles": []string{"ROLE_ADMIN"}}, 403},
		{"writer", writer, "POST", "/api/v1/users/" + otherID, map[string]any{"roles": []string{"ROLE_ADMIN"}}, 403},
		{"writer", writer, "POST", "/api/v1/service-users", map[string]any{"name": "x"}, 403},
		{"nobody", "", "GET", "/api/v1/users", nil, 401},
		{"garbage", "pbxd_su_garbage", "GET", "/api/v1/users", nil, 401},
	}
	for _, tc := range tests {
		code, body := ts.do(t, tc.method, tc.path, tc.token, tc.body)
		if code != tc.want {
			t.Errorf("%s %s %s: got %d, want %d: %s", tc.who, tc.method, tc.path, code, tc.want, body)
		}
	}
}

func TestLastAdminIsProtected(t *testing.T) {
	ts := newTestServer(t, false)
	var adminID string
	code, body := ts.do(t, "GET", "/api/v1/users?fields=*", ts.adminToken, nil)
	if code != 200 {
		t.Fatal(code)
	}
	var env struct{ Objects []userView }
	_ = json.Unmarshal(body, &env)
	adminID = env.Objects[0].ID
	for _, tc := range []struct {
		method string
		body   any
	}{
		{"DELETE", nil},
		{"POST", map[string]any{"enabled": false}},
		{"POST", map[string]any{"roles": []string{"ROLE_AGENT"}}},
	} {
		if code, body := ts.do(t, tc.method, "/api/v1/users/"+adminID, ts.adminToken, tc.body); code != http.StatusConflict {
			t.Errorf("%s %v on the last admin: %d %s", tc.method, tc.body, code, body)
		}
	}
	ts.createUser(t, map[string]any{"userName": "admin2", "roles": []string{"ROLE_ADMIN"}})
	if code, body := ts.do(t, "POST", "/api/v1/users/"+adminID, ts.adminToken, map[string]any{"roles": []string{"ROLE_AGENT"}}); code != 200 {
		t.Fatalf("demote with a second admin present: %d %s", code, body)
	}
}

func TestPasswordChangeGate(t *testing.T) {
	ts := newTestServer(t, false)
	id := ts.createUser(t, map[string]any{"userName": "newbie", "password": "temp-pass-1", "changePasswordOnFirstLogin": true})
	tok := ts.login(t, "newbie", "temp-pass-1")
	code, body := ts.do(t, "GET", "/api/v1/users", tok, nil)
	if code != 403 || !strings.Contains(string(body), ProbPasswordChange) {
		t.Fatalf("gate: %d %s", code, body)
	}
	if code, _ := ts.do(t, "GET", "/api/v1/sessions/current", tok, nil); code != 200 {
		t.Fatalf("sessions/current behind the gate: %d", code)
	}
	if code, _ := ts.do(t, "POST", "/api/v1/users/"+id, tok, map[string]any{"firstName": "N"}); code != 403 {
		t.Fatalf("name change without password change: %d", code)
	}
	if code, body := ts.do(t, "POST", "/api/v1/users/"+id, tok, map[string]any{"currentPassword": "temp-pass-1", "password": "final-pass-1"}); code != 200 {
		t.Fatalf("password change: %d %s", code, body)
	}
	if code, body := ts.do(t, "GET", "/api/v1/users", tok, nil); code != 200 {
		t.Fatalf("after change: %d %s", code, body)
	}
}

func TestLoginThrottlePerAddress(t *testing.T) {
	ts := newTestServer(t, false)
	// Different usernames from one address: the per-address allowance (20)
	// runs out even though no single username reaches its own.
	var code int
	var last []byte
	for i := 0; i < 22; i++ {
		code, last = ts.do(t, "POST", "/api/v1/login", "", map[string]string{"username": "spray" + strings.Repeat("x", i), "password": "guess-guess"})
	}
	if code != http.StatusTooManyRequests || !strings.Contains(string(last), ProbTooManyRequests) {
		t.Fatalf("address throttle: %d %s", code, last)
	}
	// The right password is refused too while the back-off lasts.
	if code, _ := ts.do(t, "POST", "/api/v1/login", "", map[string]string{"username": "admin", "password": testAdminPassword}); code != http.StatusTooManyRequests {
		t.Fatalf("login during back-off: %d", code)
	}
}
