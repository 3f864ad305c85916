package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"pbxd/pbx/trunks"
	"pbxd/store"
)

// fakeTrunks stands in for pbx/trunks.Manager.
type fakeTrunks struct {
	mu      sync.Mutex
	reloads int
}

func (f *fakeTrunks) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	return nil
}

func (f *fakeTrunks) Status(id string) trunks.Status {
	return trunks.Status{State: trunks.StateFailed, Since: time.UnixMilli(1_700_000_000_000), LastStatus: 403,
		LastError: "trunks: registration refused: 403 Forbidden", NextAttempt: time.UnixMilli(1_700_000_030_000)}
}

func (f *fakeTrunks) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reloads
}

const trunkSecret = "Carrier-Secret-42"

func newTrunkServer(t *testing.T) (*testServer, *fakeTrunks) {
	t.Helper()
	ts := newTestServer(t, false)
	f := &fakeTrunks{}
	ts.cfg.Trunks = f
	return ts, f
}

func fullTrunk() map[string]any {
	return map[string]any{
		"name": "Carrier One", "host": "sip.carrier.example:5080", "transport": "TCP", "username": "4930100",
		"authUsername": "acct@carrier.example", "password": trunkSecret, "register": true, "registerExpires": 600,
		"callerId": "+4930100", "callerName": "Front desk", "dids": map[string]string{"+4930100": "201", "4930101": "202"},
		"prefixes": []string{"0049", "00", "00"}, "strip": 1, "addPrefix": "+", "priority": 3,
	}
}

func TestTrunkCRUD(t *testing.T) {
	ts, f := newTrunkServer(t)
	var bodies [][]byte
	code, body := ts.do(t, "POST", "/api/v1/trunks", ts.adminToken, fullTrunk())
	bodies = append(bodies, body)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	v := decode[trunkView](t, body)
	if v.ID == "" || v.URI != "/api/v1/trunks/"+v.ID || !v.PasswordSet || v.Transport != "tcp" || !v.Enabled ||
		v.RegisterExpires != 600 || len(v.Prefixes) != 2 || v.DIDs["4930101"] != "202" || v.AuthUsername != "acct@carrier.example" {
		t.Fatalf("view %+v", v)
	}
	if v.Registration == nil || v.Registration.State != "failed" || v.Registration.LastStatus != 403 || v.Registration.Since != 1_700_000_000_000 {
		t.Fatalf("registration %+v", v.Registration)
	}
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	if _, ok := raw["password"]; ok {
		t.Fatal("the view has a password member")
	}
	if f.count() != 1 {
		t.Fatalf("%d reloads after create", f.count())
	}

	code, body = ts.do(t, "GET", "/api/v1/trunks", ts.adminToken, nil)
	bodies = append(bodies, body)
	env := decode[struct {
		Count, Total int
		Objects      []trunkView
	}](t, body)
	if code != 200 || env.Count != 1 || env.Total != 1 || env.Objects[0].ID != v.ID {
		t.Fatalf("list: %d %s", code, body)
	}
	code, body = ts.do(t, "GET", v.URI, ts.adminToken, nil)
	bodies = append(bodies, body)
	if code != 200 || decode[trunkView](t, body).Name != "Carrier One" {
		t.Fatalf("get: %d %s", code, body)
	}

	// Members sent are changed; the rest stays, the password too.
	code, body = ts.do(t, "POST", v.URI, ts.adminToken, map[string]any{"enabled": false, "dids": map[string]string{"4930102": "203"}, "name": "Carrier 1"})
	bodies = append(bodies, body)
	u := decode[trunkView](t, body)
	if code != 200 || u.Enabled || u.Name != "Carrier 1" || len(u.DIDs) != 1 || !u.PasswordSet || u.Host != v.Host || u.Priority != 3 {
		t.Fatalf("update: %d %s", code, body)
	}
	var stored *store.Trunk
	_ = ts.st.View(func(tx *store.Tx) (err error) { stored, err = tx.GetTrunk(v.ID); return err })
	if stored.Password != trunkSecret || stored.ContactToken == "" {
		t.Fatal("the stored password or contact token was lost")
	}
	// The freed DID can go to another trunk; the new one cannot.
	other := map[string]any{"name": "b", "host": "192.0.2.1", "dids": map[string]string{"4930100": "204"}}
	if code, body := ts.do(t, "POST", "/api/v1/trunks", ts.adminToken, other); code != 201 {
		t.Fatalf("freed DID: %d %s", code, body)
	}

	code, body = ts.do(t, "PUT", v.URI, ts.adminToken, map[string]any{"password": ""})
	bodies = append(bodies, body)
	if code != 200 || decode[trunkView](t, body).PasswordSet {
		t.Fatalf("clear password: %d %s", code, body)
	}
	if code, body := ts.do(t, "DELETE", v.URI, ts.adminToken, nil); code != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if code, _ := ts.do(t, "GET", v.URI, ts.adminToken, nil); code != 404 {
		t.Fatalf("get after delete: %d", code)
	}
	for _, m := range []string{"POST", "DELETE"} {
		if code, _ := ts.do(t, m, v.URI, ts.adminToken, map[string]any{"enabled": true}); code != 404 {
			t.Fatalf("%s after delete: %d", m, code)
		}
	}
	if code, _ := ts.do(t, "GET", "/api/v1/trunks/nothex", ts.adminToken, nil); code != 400 {
		t.Fatalf("malformed id: %d", code)
	}
	if f.count() != 5 {
		t.Fatalf("%d reloads, want one per change (5)", f.count())
	}

	// The password appears in no response and no audit record.
	code, audit := ts.do(t, "GET", "/api/v1/audit?rows=100", ts.adminToken, nil)
	if code != 200 {
		t.Fatal(code)
	}
	bodies = append(bodies, audit)
	for _, b := range bodies {
		if strings.Contains(string(b), trunkSecret) {
			t.Fatalf("password shown: %s", b)
		}
	}
	for _, want := range []string{`"trunk.create"`, `"trunk.update"`, `"trunk.delete"`, `password`} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit lacks %s: %s", want, audit)
		}
	}
	var recs []*store.AuditRecord
	_ = ts.st.View(func(tx *store.Tx) (err error) { recs, _, err = tx.ListAudit(0, 100); return err })
	all, _ := json.Marshal(recs)
	if strings.Contains(string(all), trunkSecret) {
		t.Fatal("password in a stored audit record")
	}
}

func TestTrunkWithoutRuntime(t *testing.T) {
	ts := newTestServer(t, false)
	code, body := ts.do(t, "POST", "/api/v1/trunks", ts.adminToken, map[string]any{"name": "x", "host": "[2001:db8::1]:5061", "transport": "tls"})
	v := decode[trunkView](t, body)
	if code != 201 || v.Registration != nil || v.Register || v.RegisterExpires != 300 || v.PasswordSet || v.Prefixes == nil || v.DIDs == nil {
		t.Fatalf("%d %s", code, body)
	}
}

func TestTrunkValidation(t *testing.T) {
	ts, f := newTrunkServer(t)
	with := func(k string, val any) map[string]any {
		b := map[string]any{"name": "v", "host": "192.0.2.1"}
		if val == nil {
			delete(b, k)
		} else {
			b[k] = val
		}
		return b
	}
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{with("name", nil), "name"},
		{with("name", "  "), "name"},
		{with("name", strings.Repeat("n", 65)), "name"},
		{with("name", "two\nlines"), "name"},
		{with("host", nil), "host"},
		{with("host", ""), "host"},
		{with("host", "2001:db8::1"), "host"},
		{with("host", "sip:carrier.example"), "host"},
		{with("host", "carrier.example:99999"), "host"},
		{with("host", "bad host"), "host"},
		{with("transport", "sctp"), "transport"},
		{with("username", "a b"), "username"},
		{with("authUsername", `a"b`), "authUsername"},
		{with("password", "back\\slash"), "password"},
		{with("password", strings.Repeat("p", 129)), "password"},
		{with("realm", "r\x00"), "realm"},
		{with("registerExpires", 59), "registerExpires"},
		{with("registerExpires", 3601), "registerExpires"},
		{with("fromDomain", "no domain"), "fromDomain"},
		{with("callerId", "4930-100"), "callerId"},
		{with("callerName", `say "hi"`), "callerName"},
		{with("dids", map[string]string{"49x": "201"}), "dids"},
		{with("dids", map[string]string{"++49": "201"}), "dids"},
		{with("dids", map[string]string{"4930100": "2a"}), "dids"},
		{with("dids", map[string]string{"4930100": "1"}), "dids"},
		{with("dids", map[string]string{"4930100": "201", "+4930100": "202"}), "dids"},
		{with("prefixes", []string{"00", "0x"}), "prefixes"},
		{with("prefixes", []string{""}), "prefixes"},
		{with("strip", -1), "strip"},
		{with("strip", 33), "strip"},
		{with("addPrefix", "+-"), "addPrefix"},
		{with("priority", -1), "priority"},
		{with("priority", 1001), "priority"},
		{with("register", true), "username"}, // registering needs a username
	} {
		code, body := ts.do(t, "POST", "/api/v1/trunks", ts.adminToken, tc.body)
		p := decode[Problem](t, body)
		if code != 400 || p.Type != ProbValidation || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("%v: %d %s", tc.body, code, body)
		}
	}
	for _, body := range []any{
		[]byte(`{"name":"x","host":"192.0.2.1","secret":1}`),
		[]byte(`{"name":"x","host":"192.0.2.1","strip":"2"}`),
		[]byte(`{"name":"x",`),
		[]byte(``),
	} {
		if code, b := ts.do(t, "POST", "/api/v1/trunks", ts.adminToken, body); code != 400 {
			t.Errorf("%s: %d %s", body, code, b)
		}
	}
	// Updates are validated too, including against the whole record.
	code, body := ts.do(t, "POST", "/api/v1/trunks", ts.adminToken, map[string]any{"name": "ok", "host": "192.0.2.1"})
	if code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	uri := decode[trunkView](t, body).URI
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"host": "[::1"}, "host"},
		{map[string]any{"register": true}, "username"},
		{map[string]any{"registerExpires": 10}, "registerExpires"},
	} {
		code, body := ts.do(t, "PUT", uri, ts.adminToken, tc.body)
		if p := decode[Problem](t, body); code != 400 || len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
			t.Errorf("update %v: %d %s", tc.body, code, body)
		}
	}
	if f.count() != 1 {
		t.Fatalf("%d reloads: refused changes must not reload", f.count())
	}
}

func TestTrunkConflicts(t *testing.T) {
	ts, _ := newTrunkServer(t)
	create := func(body map[string]any) (int, []byte) {
		return ts.do(t, "POST", "/api/v1/trunks", ts.adminToken, body)
	}
	if code, body := create(fullTrunk()); code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	for _, tc := range []struct {
		body map[string]any
		want string
	}{
		{map[string]any{"name": "CARRIER one", "host": "192.0.2.2"}, `trunk name`},
		{map[string]any{"name": "two", "host": "192.0.2.2", "dids": map[string]string{"4930100": "201"}}, `trunk did "4930100"`},
		{map[string]any{"name": "two", "host": "192.0.2.2", "dids": map[string]string{"+4930101": "201"}}, `trunk did "4930101"`},
	} {
		code, body := create(tc.body)
		if p := decode[Problem](t, body); code != http.StatusConflict || p.Type != ProbConflict || !strings.Contains(p.Detail, tc.want) {
			t.Errorf("%v: %d %s", tc.body, code, body)
		}
	}
	code, body := create(map[string]any{"name": "two", "host": "192.0.2.2"})
	if code != 201 {
		t.Fatalf("%d %s", code, body)
	}
	uri := decode[trunkView](t, body).URI
	for _, upd := range []map[string]any{{"name": "carrier ONE"}, {"dids": map[string]string{"+4930100": "205"}}} {
		if code, body := ts.do(t, "POST", uri, ts.adminToken, upd); code != http.StatusConflict {
			t.Errorf("update %v: %d %s", upd, code, body)
		}
	}
	// A case-only rename of one's own name is fine.
	if code, body := ts.do(t, "POST", uri, ts.adminToken, map[string]any{"name": "TWO"}); code != 200 {
		t.Errorf("rename: %d %s", code, body)
	}
}

func TestTrunkPermissions(t *testing.T) {
	ts, _ := newTrunkServer(t)
	code, body := ts.do(t, "POST", "/api/v1/trunks", ts.adminToken, map[string]any{"name": "t", "host": "192.0.2.1"})
	if code != 201 {
		t.Fatal(code)
	}
	uri := decode[trunkView](t, body).URI
	ts.createUser(t, map[string]any{"userName": "agent", "password": "agent-pass-1", "roles": []string{"ROLE_AGENT"}})
	agent := ts.login(t, "agent", "agent-pass-1")
	token := func(name string, perms ...string) string {
		code, body := ts.do(t, "POST", "/api/v1/service-users", ts.adminToken, map[string]any{"name": name, "permissions": perms})
		if code != 201 {
			t.Fatalf("%d %s", code, body)
		}
		return decode[serviceUserView](t, body).Token
	}
	writer := token("writer", "users:write", "users:read", "calls:control")
	admin := token("integrator", "admin")
	for _, who := range []struct {
		name, token string
		allowed     bool
	}{{"agent", agent, false}, {"users:write service", writer, false}, {"admin service", admin, true}, {"nobody", "", false}} {
		for _, rq := range []struct {
			method, path string
			body         any
			ok           int
		}{
			{"GET", "/api/v1/trunks", nil, 200},
			{"POST", "/api/v1/trunks", map[string]any{"name": "by-" + who.name, "host": "192.0.2.9"}, 201},
			{"GET", uri, nil, 200},
			{"POST", uri, map[string]any{"priority": 2}, 200},
			{"PUT", uri, map[string]any{"priority": 3}, 200},
		} {
			code, body := ts.do(t, rq.method, rq.path, who.token, rq.body)
			want := rq.ok
			switch {
			case who.token == "":
				want = 401
			case !who.allowed:
				want = 403
			}
			if code != want {
				t.Errorf("%s %s %s: %d, want %d: %s", who.name, rq.method, rq.path, code, want, body)
			}
		}
	}
	if code, _ := ts.do(t, "DELETE", uri, agent, nil); code != 403 {
		t.Errorf("agent delete: %d", code)
	}
	if code, _ := ts.do(t, "DELETE", uri, admin, nil); code != 204 {
		t.Errorf("admin service delete: %d", code)
	}
}

func FuzzTrunkWrite(f *testing.F) {
	b, _ := json.Marshal(fullTrunk())
	f.Add(b)
	f.Add([]byte(`{"name":"x","host":"[::1]:5061","transport":"tls","dids":{"+1":"20"}}`))
	f.Add([]byte(`{"name":"x","host":"a..b"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var in trunkWrite
		if decodeBytes(data, &in) != nil || in.validate(true) != nil {
			return
		}
		tr := &store.Trunk{ID: store.NewID()}
		in.apply(tr)
		if checkTrunk(tr) != nil {
			return
		}
		if _, _, err := trunks.SplitHost(tr.Host); err != nil || tr.Name == "" || tr.Strip < 0 {
			t.Fatalf("accepted %+v", tr)
		}
	})
}
