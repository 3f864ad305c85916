package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"pbxd/store"
)

// newTestServerWith is newTestServer with the Config changed by edit
// before the server is built (clock, call runtime, ping interval …).
func newTestServerWith(tb testing.TB, edit func(*Config)) *testServer {
	tb.Helper()
	st, err := store.Open(store.Config{Dir: tb.TempDir(), GCInterval: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"}
	if edit != nil {
		edit(&cfg)
	}
	s := New(cfg)
	tb.Cleanup(func() {
		s.Close()
		st.Close()
	})
	if _, _, err := s.EnsureAdmin(context.Background(), func() (string, error) { return testAdminPassword, nil }); err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{Server: s, st: st}
	ts.adminToken = ts.login(tb, "admin", testAdminPassword)
	return ts
}

// mustGet is a GET that must answer 200; it returns the body.
func (ts *testServer) mustGet(tb testing.TB, path, token string) []byte {
	tb.Helper()
	code, body := ts.do(tb, "GET", path, token, nil)
	if code != 200 {
		tb.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body
}

// fakeCalls stands in for the call runtime.
type fakeCalls struct {
	mu           sync.Mutex
	disconnected []string
	state        AgentCallState
}

func (f *fakeCalls) AgentState(string) AgentCallState {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fakeCalls) Disconnect(uid string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disconnected = append(f.disconnected, uid)
	return nil
}

func (f *fakeCalls) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.disconnected...)
}

// people is a box with an agent, a second agent, a supervisor and service
// users with calls:control and users:read.
type people struct {
	ts                         *testServer
	agent, other, sup          string // ids
	agentTok, otherTok, supTok string
	ctrlTok, readerTok         string
	queue                      string
	breakID                    string
	statusByID                 map[string]string
	calls                      *fakeCalls
	clock                      *fakeClock
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newPeople(t *testing.T) *people { return newPeopleWith(t, nil) }

func newPeopleWith(t *testing.T, edit func(*Config)) *people {
	t.Helper()
	pp := &people{calls: &fakeCalls{}, clock: &fakeClock{t: time.Now().Truncate(time.Millisecond)}}
	pp.ts = newTestServerWith(t, func(c *Config) {
		c.Calls, c.Now = pp.calls, pp.clock.now
		if edit != nil {
			edit(c)
		}
	})
	ts := pp.ts
	pp.agent = ts.createUser(t, map[string]any{"userName": "agent", "password": "agent-pass-1", "roles": []string{"ROLE_AGENT"}, "timezone": "Europe/Berlin"})
	pp.other = ts.createUser(t, map[string]any{"userName": "other", "password": "other-pass-1", "roles": []string{"ROLE_AGENT"}})
	pp.sup = ts.createUser(t, map[string]any{"userName": "sup", "password": "super-pass-1", "roles": []string{"ROLE_SUPERVISOR"}})
	pp.agentTok = ts.login(t, "agent", "agent-pass-1")
	pp.otherTok = ts.login(t, "other", "other-pass-1")
	pp.supTok = ts.login(t, "sup", "super-pass-1")
	mk := func(name string, perms ...string) string {
		code, body := ts.do(t, "POST", "/api/v1/service-users", ts.adminToken, map[string]any{"name": name, "permissions": perms})
		if code != 201 {
			t.Fatalf("%d %s", code, body)
		}
		return decode[serviceUserView](t, body).Token
	}
	pp.ctrlTok = mk("cti", "calls:control")
	pp.readerTok = mk("reader", "users:read")
	code, body := ts.do(t, "POST", "/api/v1/queues", ts.adminToken, map[string]any{"name": "Sales"})
	if code != 201 {
		t.Fatalf("queue: %d %s", code, body)
	}
	pp.queue = decode[queueView](t, body).ID
	code, body = ts.do(t, "GET", "/api/v1/statuses", pp.agentTok, nil)
	if code != 200 {
		t.Fatalf("statuses: %d %s", code, body)
	}
	pp.statusByID = map[string]string{}
	for _, o := range decode[struct{ Objects []statusView }](t, body).Objects {
		pp.statusByID[o.StatusID] = o.ID
	}
	pp.breakID = pp.statusByID["break"]
	return pp
}

func TestStatusCatalogueAPI(t *testing.T) {
	pp := newPeople(t)
	ts := pp.ts
	if len(pp.statusByID) != 5 || pp.breakID == "" {
		t.Fatalf("seeded catalogue %v", pp.statusByID)
	}
	// Any logged-in caller reads it, service users too.
	for _, tok := range []string{pp.agentTok, pp.readerTok, pp.ctrlTok} {
		if code, _ := ts.do(t, "GET", "/api/v1/statuses/"+pp.breakID, tok, nil); code != 200 {
			t.Errorf("read: %d", code)
		}
	}
	for _, tc := range []struct {
		token, method, path string
		body                any
		want                int
	}{
		{pp.agentTok, "POST", "/api/v1/statuses", map[string]any{"statusId": "meeting", "name": "Meeting", "status": 2}, 403},
		{pp.supTok, "POST", "/api/v1/statuses", map[string]any{"statusId": "meeting", "name": "Meeting", "status": 2}, 403},
		{ts.adminToken, "POST", "/api/v1/statuses", map[string]any{"statusId": "Meeting!", "name": "Meeting", "status": 2}, 400},
		{ts.adminToken, "POST", "/api/v1/statuses", map[string]any{"statusId": "meeting", "name": "Meeting", "status": 7}, 400},
		{ts.adminToken, "POST", "/api/v1/statuses", map[string]any{"statusId": "meeting", "name": "Meeting", "status": 0}, 400},
		{ts.adminToken, "POST", "/api/v1/statuses", map[string]any{"statusId": "meeting", "name": "Meeting"}, 400},
		{ts.adminToken, "POST", "/api/v1/statuses", map[string]any{"statusId": "meeting", "name": "Meeting", "status": 2}, 201},
		{ts.adminToken, "POST", "/api/v1/statuses", map[string]any{"statusId": "meeting", "name": "Again", "status": 2}, 409},
		{ts.adminToken, "PUT", "/api/v1/statuses/" + pp.breakID, map[string]any{"statusId": "pause"}, 400},
		{ts.adminToken, "PUT", "/api/v1/statuses/" + pp.breakID, map[string]any{"name": "Coffee", "status": 3}, 200},
		{ts.adminToken, "PUT", "/api/v1/statuses/" + pp.statusByID["available"], map[string]any{"status": 2}, 409},
		{ts.adminToken, "PUT", "/api/v1/statuses/" + pp.statusByID["available"], map[string]any{"name": "Ready"}, 200},
		{ts.adminToken, "DELETE", "/api/v1/statuses/" + pp.statusByID["offline"], nil, 409},
		{ts.adminToken, "DELETE", "/api/v1/statuses/" + pp.statusByID["lunch"], nil, 204},
		{ts.adminToken, "DELETE", "/api/v1/statuses/" + pp.statusByID["lunch"], nil, 404},
		{ts.adminToken, "GET", "/api/v1/statuses/nope", nil, 400},
	} {
		code, body := ts.do(t, tc.method, tc.path, tc.token, tc.body)
		if code != tc.want {
			t.Errorf("%s %s %v: %d, want %d: %s", tc.method, tc.path, tc.body, code, tc.want, body)
		}
		if code >= 400 && !strings.Contains(string(body), "urn:pbxd:problem:") {
			t.Errorf("%s %s: not a problem: %s", tc.method, tc.path, body)
		}
	}
	code, body := ts.do(t, "DELETE", "/api/v1/statuses/"+pp.statusByID["offline"], ts.adminToken, nil)
	if code != 409 || !strings.Contains(string(body), ProbSystemStatus) {
		t.Fatalf("system delete: %d %s", code, body)
	}
	// A status in use is refused.
	if code, body := ts.do(t, "POST", "/api/v1/users/"+pp.other, ts.adminToken, map[string]any{"defaultAcdLoginStatus": "meeting"}); code != 200 {
		t.Fatalf("default status: %d %s", code, body)
	}
	body = ts.mustGet(t, "/api/v1/statuses?rows=10", ts.adminToken)
	var meeting string
	for _, o := range decode[struct{ Objects []statusView }](t, body).Objects {
		if o.StatusID == "meeting" {
			meeting = o.ID
		}
	}
	if code, body := ts.do(t, "DELETE", "/api/v1/statuses/"+meeting, ts.adminToken, nil); code != 409 || !strings.Contains(string(body), ProbInUse) {
		t.Fatalf("in-use delete: %d %s", code, body)
	}
	// Reclassifying moves agents in the status with it.
	if code, body := ts.do(t, "POST", "/api/v1/acd/login", pp.agentTok, map[string]any{"status": map[string]any{"statusId": "break"}}); code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	if code, body := ts.do(t, "PUT", "/api/v1/statuses/"+pp.breakID, ts.adminToken, map[string]any{"status": 2}); code != 200 {
		t.Fatalf("reclassify: %d %s", code, body)
	}
	code, body = ts.do(t, "GET", "/api/v1/users/"+pp.agent+"/acd", pp.agentTok, nil)
	if v := decode[acdStateView](t, body); code != 200 || v.Status != 2 || v.StatusID != "break" || v.StatusName != "Coffee" {
		t.Fatalf("state after reclassify: %d %s", code, body)
	}
}

func TestACDLoginStatusLogout(t *testing.T) {
	pp := newPeople(t)
	ts := pp.ts
	// Validation.
	for _, tc := range []struct {
		body  any
		field string
		code  int
	}{
		{map[string]any{"queues": []string{"nope"}}, "queues", 400},
		{map[string]any{"queues": []string{store.NewID()}}, "queues", 400},
		{map[string]any{"status": map[string]any{"statusId": "snooze"}}, "status.statusId", 400},
		{map[string]any{"status": map[string]any{"status": 1}}, "status.statusId", 400},
		{map[string]any{"status": map[string]any{"statusId": "offline"}}, "status.statusId", 400},
		{map[string]any{"status": map[string]any{"statusId": "break", "status": 1}}, "status.status", 400},
		{map[string]any{"channels": map[string]any{"voice": map[string]any{"limit": -1}}}, "channels", 400},
		{map[string]any{"channels": map[string]any{"Voice!": map[string]any{}}}, "channels", 400},
		{map[string]any{"color": "red"}, "color", 400},
		{[]byte(`{"queues":`), "", 400},
	} {
		code, body := ts.do(t, "POST", "/api/v1/acd/login", pp.agentTok, tc.body)
		if code != tc.code || (tc.field != "" && !strings.Contains(string(body), `"field":"`+tc.field+`"`)) {
			t.Errorf("%v: %d %s", tc.body, code, body)
		}
	}
	// No body at all: voice, no queues, available.
	t0 := pp.clock.now()
	code, body := ts.do(t, "POST", "/api/v1/acd/login", pp.agentTok, nil)
	if code != 200 || decode[acdLoginResponse](t, body).LoginAt != t0.UnixMilli() {
		t.Fatalf("login: %d %s", code, body)
	}
	body = ts.mustGet(t, "/api/v1/users/"+pp.agent+"/acd", pp.agentTok)
	v := decode[acdStateView](t, body)
	if !v.LoggedIn || v.StatusID != "available" || v.Status != 1 || !v.Routable || !v.Channels["voice"].Enabled || v.Channels["voice"].Limit != 1 {
		t.Fatalf("state: %s", body)
	}
	// A second login updates channels and queues but keeps loginAt.
	pp.clock.advance(time.Minute)
	code, body = ts.do(t, "POST", "/api/v1/acd/login", pp.agentTok, map[string]any{
		"channels": map[string]any{"voice": map[string]any{"enabled": true, "limit": 2, "multitasking": true, "priority": 1}, "chat": map[string]any{"enabled": false, "limit": 0}},
		"queues":   []string{pp.queue, pp.queue}, "status": map[string]any{"status": 2, "statusId": "break"}})
	if code != 200 || decode[acdLoginResponse](t, body).LoginAt != t0.UnixMilli() {
		t.Fatalf("re-login: %d %s", code, body)
	}
	body = ts.mustGet(t, "/api/v1/users/"+pp.agent+"/acd", pp.agentTok)
	v = decode[acdStateView](t, body)
	if v.StatusID != "break" || v.Routable || len(v.Queues) != 1 || v.Channels["voice"].Limit != 2 || v.Channels["chat"].Enabled ||
		v.StatusStartedAt != pp.clock.now().UnixMilli() {
		t.Fatalf("after re-login: %s", body)
	}
	// The queue shows its member.
	code, body = ts.do(t, "GET", "/api/v1/queues/"+pp.queue, pp.agentTok, nil)
	if qv := decode[queueView](t, body); code != 200 || qv.Members == nil || len(*qv.Members) != 1 || (*qv.Members)[0].UserID != pp.agent {
		t.Fatalf("queue members: %s", body)
	}

	// changeStatus: oneself, or others by supervisors, admins and calls:control.
	for _, tc := range []struct {
		who, token, target string
		body               any
		want               int
	}{
		{"agent self", pp.agentTok, pp.agent, map[string]any{"statusId": "available"}, 200},
		{"agent other", pp.agentTok, pp.other, map[string]any{"statusId": "available"}, 403},
		{"reader", pp.readerTok, pp.agent, map[string]any{"statusId": "break"}, 403},
		{"supervisor", pp.supTok, pp.agent, map[string]any{"statusId": "break"}, 200},
		{"admin", ts.adminToken, pp.agent, map[string]any{"statusId": "after-call-work"}, 200},
		{"service calls:control", pp.ctrlTok, pp.agent, map[string]any{"statusId": "break"}, 200},
		{"not logged in", pp.supTok, pp.other, map[string]any{"statusId": "break"}, 409},
		{"unknown status", pp.agentTok, pp.agent, map[string]any{"statusId": "nap"}, 400},
		{"offline", pp.agentTok, pp.agent, map[string]any{"statusId": "offline"}, 400},
		{"no such user", ts.adminToken, store.NewID(), map[string]any{"statusId": "break"}, 404},
		{"default (available)", pp.agentTok, pp.agent, nil, 200},
	} {
		code, body := ts.do(t, "POST", "/api/v1/users/"+tc.target+"/status", tc.token, tc.body)
		if code != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.who, code, tc.want, body)
		}
	}
	body = ts.mustGet(t, "/api/v1/users/"+pp.agent+"/acd", pp.supTok)
	if v := decode[acdStateView](t, body); v.StatusID != "available" || v.ChangedBy != pp.agent {
		t.Fatalf("final status: %s", body)
	}
	// Reading others' ACD state.
	if code, _ := ts.do(t, "GET", "/api/v1/users/"+pp.agent+"/acd", pp.otherTok, nil); code != 403 {
		t.Errorf("agent read another's state: %d", code)
	}
	code, body = ts.do(t, "GET", "/api/v1/acd?loggedIn=true", pp.supTok, nil)
	if env := decode[listEnvelope](t, body); code != 200 || env.Total != 1 {
		t.Fatalf("board: %d %s", code, body)
	}
	if code, _ := ts.do(t, "GET", "/api/v1/acd", pp.agentTok, nil); code != 403 {
		t.Errorf("agent read the board: %d", code)
	}
	// Acting for others through ?userId=.
	if code, _ := ts.do(t, "POST", "/api/v1/acd/login?userId="+pp.other, pp.agentTok, nil); code != 403 {
		t.Errorf("agent logged another in: %d", code)
	}
	if code, body := ts.do(t, "POST", "/api/v1/acd/login", pp.ctrlTok, nil); code != 400 {
		t.Errorf("service user without userId: %d %s", code, body)
	}
	if code, body := ts.do(t, "POST", "/api/v1/acd/login?userId="+pp.other, pp.ctrlTok, nil); code != 200 {
		t.Errorf("service user for a user: %d %s", code, body)
	}
	if code, _ := ts.do(t, "POST", "/api/v1/acd/logout?userId="+pp.other, pp.supTok, nil); code != 204 {
		t.Errorf("supervisor logout for a user: %d", code)
	}
	if code, _ := ts.do(t, "POST", "/api/v1/acd/login", pp.readerTok, nil); code != 403 {
		t.Errorf("users:read logged in: %d", code)
	}
	// Logout: offline, idempotent, queues kept for the next login.
	if code, _ := ts.do(t, "POST", "/api/v1/acd/logout", pp.agentTok, nil); code != 204 {
		t.Fatal(code)
	}
	if code, _ := ts.do(t, "POST", "/api/v1/acd/logout", pp.agentTok, nil); code != 204 {
		t.Fatal(code)
	}
	body = ts.mustGet(t, "/api/v1/users/"+pp.agent+"/acd", pp.agentTok)
	if v := decode[acdStateView](t, body); v.LoggedIn || v.StatusID != "offline" || v.Status != 0 || len(v.Queues) != 1 {
		t.Fatalf("after logout: %s", body)
	}
	if code, _ := ts.do(t, "POST", "/api/v1/users/"+pp.agent+"/status", pp.agentTok, map[string]any{"statusId": "break"}); code != 409 {
		t.Fatalf("status change while logged out: %d", code)
	}
	// Every change is audited.
	body = ts.mustGet(t, "/api/v1/audit?rows=100", ts.adminToken)
	for _, a := range []string{"acd.login", "acd.status", "acd.logout"} {
		if !strings.Contains(string(body), `"action":"`+a+`"`) {
			t.Errorf("no %s in the audit log", a)
		}
	}
}

func TestACDAutoLogin(t *testing.T) {
	pp := newPeople(t)
	ts := pp.ts
	// Off: 204 and nothing changes.
	if code, body := ts.do(t, "POST", "/api/v1/acd/auto-login", pp.agentTok, nil); code != 204 || len(body) != 0 {
		t.Fatalf("auto-login off: %d %s", code, body)
	}
	// The agent sets their own ACD preferences; connectTo is for admins.
	if code, body := ts.do(t, "POST", "/api/v1/users/"+pp.agent, pp.agentTok, map[string]any{"acdAutoLogin": true, "defaultAcdLoginStatus": "break", "acdAutoAccept": true}); code != 200 {
		t.Fatalf("own preferences: %d %s", code, body)
	}
	if code, _ := ts.do(t, "POST", "/api/v1/users/"+pp.agent, pp.agentTok, map[string]any{"connectTo": "number", "connectNumber": "+4930123"}); code != 403 {
		t.Fatalf("agent set connectTo: %d", code)
	}
	code, body := ts.do(t, "POST", "/api/v1/acd/auto-login", pp.agentTok, nil)
	if code != 200 || decode[acdLoginResponse](t, body).LoginAt != pp.clock.now().UnixMilli() {
		t.Fatalf("auto-login: %d %s", code, body)
	}
	body = ts.mustGet(t, "/api/v1/users/"+pp.agent+"/acd", pp.agentTok)
	if v := decode[acdStateView](t, body); !v.LoggedIn || v.StatusID != "break" || v.Status != 2 {
		t.Fatalf("after auto-login: %s", body)
	}
	// Again: the running login is kept.
	first := pp.clock.now().UnixMilli()
	pp.clock.advance(time.Hour)
	code, body = ts.do(t, "POST", "/api/v1/acd/auto-login", pp.agentTok, nil)
	if code != 200 || decode[acdLoginResponse](t, body).LoginAt != first {
		t.Fatalf("repeated auto-login: %d %s", code, body)
	}
	// The session shows the ACD fields.
	pp.calls.state = AgentCallState{InMute: true, InConference: true}
	code, body = ts.do(t, "GET", "/api/v1/sessions/current", pp.agentTok, nil)
	var us userSession
	_ = json.Unmarshal(body, &us)
	if code != 200 || !us.AcdAutoLogin || !us.AcdAutoAccept || us.AcdLoginAt != first || us.StatusID != "break" || us.Status != 2 ||
		us.DefaultAcdLoginStatus != "break" || !us.InMute || !us.InConference || us.Timezone != "Europe/Berlin" ||
		us.StatusStartedAt != first || len(us.ActiveChannels) != 1 {
		t.Fatalf("session: %d %s", code, body)
	}
	code, body = ts.do(t, "POST", "/api/v1/sessions", pp.agentTok, map[string]any{"platform": "web"})
	if code != 200 || !strings.Contains(string(body), `"acdLoginAt":`) || !strings.Contains(string(body), `"queues":[]`) {
		t.Fatalf("initSession: %d %s", code, body)
	}
}

func TestUserACDAttributes(t *testing.T) {
	ts := newTestServer(t, false)
	id := ts.createUser(t, map[string]any{"userName": "ann", "roles": []string{"ROLE_SUPERVISOR", "ROLE_AGENT"}})
	code, body := ts.do(t, "GET", "/api/v1/users/"+id, ts.adminToken, nil)
	v := decode[userView](t, body)
	if code != 200 || v.ConnectTo != "device" || v.DefaultAcdLoginStatus != "available" || v.AcdAutoLogin || len(v.Roles) != 2 {
		t.Fatalf("defaults: %s", body)
	}
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"connectTo": "pigeon"}, "connectTo"},
		{map[string]any{"connectTo": "number"}, "connectNumber"},
		{map[string]any{"connectNumber": "12a"}, "connectNumber"},
		{map[string]any{"defaultAcdLoginStatus": "snooze"}, "defaultAcdLoginStatus"},
		{map[string]any{"defaultAcdLoginStatus": "offline"}, "defaultAcdLoginStatus"},
		{map[string]any{"defaultAcdLoginStatus": "Bad Slug"}, "defaultAcdLoginStatus"},
		{map[string]any{"roles": []string{"ROLE_ROOT"}}, "roles"},
	} {
		code, body := ts.do(t, "POST", "/api/v1/users/"+id, ts.adminToken, tc.body)
		if code != 400 || !strings.Contains(string(body), `"field":"`+tc.field+`"`) {
			t.Errorf("%v: %d %s", tc.body, code, body)
		}
	}
	code, body = ts.do(t, "PUT", "/api/v1/users/"+id, ts.adminToken, map[string]any{"connectTo": "number", "connectNumber": "+4930123456",
		"acdAutoLogin": true, "acdAutoAccept": true, "defaultAcdLoginStatus": "break"})
	v = decode[userView](t, body)
	if code != 200 || v.ConnectTo != "number" || v.ConnectNumber != "+4930123456" || !v.AcdAutoLogin || !v.AcdAutoAccept || v.DefaultAcdLoginStatus != "break" {
		t.Fatalf("update: %d %s", code, body)
	}
	// The stored record keeps "device" as empty; connectNumber stays.
	code, body = ts.do(t, "PUT", "/api/v1/users/"+id, ts.adminToken, map[string]any{"connectTo": "device"})
	if v = decode[userView](t, body); code != 200 || v.ConnectTo != "device" || v.ConnectNumber != "+4930123456" {
		t.Fatalf("back to device: %s", body)
	}
	// Create validates the same way.
	if code, body := ts.do(t, "POST", "/api/v1/users", ts.adminToken, map[string]any{"userName": "bob", "connectTo": "number"}); code != 400 {
		t.Fatalf("create without number: %d %s", code, body)
	}
}

func TestSupervisorScopes(t *testing.T) {
	ts := newTestServer(t, false)
	ts.createUser(t, map[string]any{"userName": "sup", "password": "super-pass-1", "roles": []string{"ROLE_SUPERVISOR"}})
	agent := ts.createUser(t, map[string]any{"userName": "agent", "password": "agent-pass-1", "roles": []string{"ROLE_AGENT"}})
	sup := ts.login(t, "sup", "super-pass-1")
	for _, tc := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/api/v1/users", nil, 200},
		{"GET", "/api/v1/workitems?userId=" + agent, nil, 200},
		{"GET", "/api/v1/history?rangeType=today&userId=" + agent, nil, 200},
		{"POST", "/api/v1/users", map[string]any{"userName": "x"}, 403},
		{"POST", "/api/v1/users/" + agent, map[string]any{"roles": []string{"ROLE_ADMIN"}}, 403},
		{"GET", "/api/v1/audit", nil, 403},
		{"POST", "/api/v1/queues", map[string]any{"name": "Q"}, 403},
	} {
		if code, body := ts.do(t, tc.method, tc.path, sup, tc.body); code != tc.want {
			t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, code, tc.want, body)
		}
	}
}

func TestForceLogout(t *testing.T) {
	pp := newPeople(t)
	ts := pp.ts
	code, body := ts.do(t, "POST", "/api/v1/users/"+pp.agent+"/devices", ts.adminToken, map[string]any{"name": "desk", "username": "agent-desk"})
	if code != 201 {
		t.Fatalf("device: %d %s", code, body)
	}
	err := ts.st.UpdateSoft(func(tx *store.Tx) error {
		return tx.SetBindings("agent-desk", []*store.Binding{{DeviceUsername: "agent-desk", UserID: pp.agent, Contact: "sip:agent@192.0.2.9",
			Expires: time.Now().Add(time.Hour)}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := ts.do(t, "POST", "/api/v1/acd/login", pp.agentTok, nil); code != 200 {
		t.Fatal(code)
	}
	second := ts.login(t, "agent", "agent-pass-1")
	// Who may.
	for _, tc := range []struct {
		who, token, target string
		want               int
	}{
		{"agent", pp.otherTok, pp.agent, 403},
		{"calls:control service", pp.ctrlTok, pp.agent, 403},
		{"supervisor on an admin", pp.supTok, adminID(t, ts), 403},
		{"unknown user", pp.supTok, store.NewID(), 404},
	} {
		if code, body := ts.do(t, "POST", "/api/v1/users/"+tc.target+"/force-logout", tc.token, nil); code != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.who, code, tc.want, body)
		}
	}
	if code, body := ts.do(t, "POST", "/api/v1/users/"+pp.agent+"/force-logout", pp.supTok, nil); code != 204 {
		t.Fatalf("force-logout: %d %s", code, body)
	}
	for _, tok := range []string{pp.agentTok, second} {
		if code, _ := ts.do(t, "GET", "/api/v1/sessions/current", tok, nil); code != 401 {
			t.Errorf("session alive after force-logout: %d", code)
		}
	}
	if got := pp.calls.calls(); len(got) != 1 || got[0] != pp.agent {
		t.Errorf("Disconnect calls %v", got)
	}
	body = ts.mustGet(t, "/api/v1/users/"+pp.agent+"/acd", pp.supTok)
	if v := decode[acdStateView](t, body); v.LoggedIn || v.StatusID != "offline" {
		t.Fatalf("ACD after force-logout: %s", body)
	}
	// The user may log in again; registrations are kept.
	tok := ts.login(t, "agent", "agent-pass-1")
	var bs []*store.Binding
	ts.st.View(func(tx *store.Tx) (err error) { bs, err = tx.Bindings("agent-desk"); return err })
	if len(bs) != 1 {
		t.Fatalf("bindings after force-logout: %d", len(bs))
	}
	// And disable.
	if code, body := ts.do(t, "POST", "/api/v1/users/"+pp.sup+"/force-logout-and-disable", pp.supTok, nil); code != 400 {
		t.Errorf("disable oneself: %d %s", code, body)
	}
	if code, body := ts.do(t, "POST", "/api/v1/users/"+pp.agent+"/force-logout-and-disable", pp.supTok, nil); code != 204 {
		t.Fatalf("force-logout-and-disable: %d %s", code, body)
	}
	if code, _ := ts.do(t, "GET", "/api/v1/users", tok, nil); code != 401 {
		t.Errorf("session alive after disable: %d", code)
	}
	if code, _ := ts.do(t, "POST", "/api/v1/login", "", map[string]string{"username": "agent", "password": "agent-pass-1"}); code != 401 {
		t.Errorf("disabled user logged in: %d", code)
	}
	ts.st.View(func(tx *store.Tx) (err error) { bs, err = tx.Bindings("agent-desk"); return err })
	if len(bs) != 0 {
		t.Fatalf("bindings after disable: %d", len(bs))
	}
	body = ts.mustGet(t, "/api/v1/users/"+pp.agent, ts.adminToken)
	if decode[userView](t, body).Enabled {
		t.Fatal("still enabled")
	}
	if code, body := ts.do(t, "POST", "/api/v1/acd/login?userId="+pp.agent, ts.adminToken, nil); code != 409 || !strings.Contains(string(body), ProbUserDisabled) {
		t.Fatalf("ACD login of a disabled user: %d %s", code, body)
	}
	// The last admin cannot be disabled.
	if code, body := ts.do(t, "POST", "/api/v1/users/"+adminID(t, ts)+"/force-logout-and-disable", pp.supTok, nil); code != 403 {
		t.Fatalf("supervisor disabled the admin: %d %s", code, body)
	}
	body = ts.mustGet(t, "/api/v1/audit?rows=100", ts.adminToken)
	for _, a := range []string{"user.forceLogout", "user.forceLogoutAndDisable"} {
		if !strings.Contains(string(body), `"action":"`+a+`"`) {
			t.Errorf("no %s in the audit log", a)
		}
	}
}

func adminID(t *testing.T, ts *testServer) string {
	t.Helper()
	var id string
	ts.st.View(func(tx *store.Tx) error {
		u, err := tx.UserByName("admin")
		if err == nil {
			id = u.ID
		}
		return err
	})
	return id
}

func TestAgentProblemsAreRegistered(t *testing.T) {
	for typ, title := range agentTitles {
		if !strings.HasPrefix(typ, "urn:pbxd:problem:") || title == "" {
			t.Errorf("%s: %q", typ, title)
		}
	}
	if p := agentProblem(http.StatusConflict, ProbInUse, "x"); p.Title == "" || p.Status != 409 {
		t.Fatalf("%+v", p)
	}
}
