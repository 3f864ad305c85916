package main

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// snapshot is what an admin can read of the whole box, for comparing it
// across restarts.
func snapshot(t *testing.T, p *proc, admin string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, path := range []string{"/api/v1/users?subresources=*&rows=1000", "/api/v1/service-users?rows=1000", "/api/v1/skills?rows=1000",
		"/api/v1/audit?rows=1000"} {
		out[path] = string(p.do("GET", path, admin, nil).want(t, 200).raw)
	}
	return out
}

// TestRestartKeepsEverything: after SIGTERM and a new start on the same data
// directory, every record reads back byte for byte, tokens and sessions
// still work, SIP devices still authenticate, and the first admin is not
// created again whatever PBXD_ADMIN_PASSWORD now says.
func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startAdmin(t, dir)
	admin := p.login("admin", e2eAdminPassword)
	es := p.do("POST", "/api/v1/skills", admin, map[string]any{"name": "Spanish", "description": "es"}).want(t, 201).str("id")
	ann := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "ann", "password": "ann-password-1", "firstName": "Ann",
		"lastName": "Lee", "roles": []string{"ROLE_AGENT", "ROLE_ADMIN"}, "doNotDisturb": "on", "extension": "2001",
		"timezone": "Europe/Berlin"}).want(t, 201).str("id")
	p.do("POST", "/api/v1/users/"+ann+"/skills", admin, map[string]any{"skillId": es, "proficiency": 6}).want(t, 200)
	p.do("POST", "/api/v1/users/"+ann+"/devices", admin, map[string]any{"name": "desk", "username": "ann-desk", "password": "ann-phone-pw1"}).want(t, 201)
	devPW := p.do("POST", "/api/v1/users/"+ann+"/devices", admin, map[string]any{"name": "soft", "username": "ann-soft"}).want(t, 201).str("password")
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "off", "enabled": false, "changePasswordOnFirstLogin": true}).want(t, 201)
	su := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "export", "displayName": "Export", "permissions": []string{"users:read", "history:read"}}).want(t, 201)
	oldTok := su.str("token")
	suTok := p.do("POST", "/api/v1/service-users/"+su.str("id")+"/token", admin, nil).want(t, 200).str("token")
	p.do("GET", "/api/v1/users", suTok, nil).want(t, 200)
	annTok := p.login("ann", "ann-password-1")
	p.do("POST", "/api/v1/sessions", annTok, map[string]any{"platform": "ios", "deviceToken": "apns-1"}).want(t, 200)
	annSession := string(p.do("GET", "/api/v1/sessions/current", annTok, nil).want(t, 200).raw)
	before := snapshot(t, p, admin)
	p.Stop()
	if !strings.Contains(p.Logs(), `"msg":"store closed"`) {
		t.Fatalf("no clean store close on SIGTERM:\n%s", tail(p.Logs(), 2000))
	}

	for round := 0; round < 2; round++ {
		q := start(t, startOpts{dataDir: dir, env: []string{"PBXD_ADMIN_PASSWORD=a-different-pass-1"}})
		logs := q.Logs()
		if strings.Contains(logs, "first start") || strings.Contains(logs, `"password"`) || strings.Contains(logs, "a-different-pass-1") {
			t.Fatalf("restart %d logged a first start or a password:\n%s", round, logs)
		}
		after := snapshot(t, q, admin) // the admin's session survived
		for path, b := range before {
			if after[path] != b {
				t.Errorf("restart %d: GET %s changed:\nbefore %s\nafter  %s", round, path, b, after[path])
			}
		}
		if got := string(q.do("GET", "/api/v1/sessions/current", annTok, nil).want(t, 200).raw); got != annSession {
			t.Errorf("restart %d: the session changed:\n%s\n%s", round, annSession, got)
		}
		q.do("GET", "/api/v1/users", suTok, nil).want(t, 200)
		q.do("GET", "/api/v1/users", "basic:"+su.str("id")+":"+suTok, nil).want(t, 200)
		wantProblem(t, q.do("GET", "/api/v1/users", oldTok, nil), 401, "")
		q.do("POST", "/api/v1/login", "", map[string]string{"username": "admin", "password": "a-different-pass-1"}).want(t, 401)
		q.login("admin", e2eAdminPassword)
		q.login("ann", "ann-password-1")
		q.do("POST", "/api/v1/login", "", map[string]string{"username": "off", "password": "whatever-pass"}).want(t, 401)
		// Unique indexes came back too.
		wantProblem(t, q.do("POST", "/api/v1/users", admin, map[string]any{"userName": "ANN"}), 409, "")
		wantProblem(t, q.do("POST", "/api/v1/users", admin, map[string]any{"userName": "ann2", "extension": "2001"}), 409, "")
		wantProblem(t, q.do("POST", "/api/v1/users/"+ann+"/devices", admin, map[string]any{"name": "x", "username": "ann-desk"}), 409, "")
		wantProblem(t, q.do("POST", "/api/v1/skills", admin, map[string]any{"name": "spanish"}), 409, "")
		wantProblem(t, q.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "export"}), 409, "")
		// Devices authenticate with the HA1 stored before the restart.
		for _, d := range []struct{ user, pw string }{{"ann-desk", "ann-phone-pw1"}, {"ann-soft", devPW}} {
			ph := newPhone(t, q.sip, d.user)
			contact := "Contact: <sip:" + d.user + "@" + ph.local() + ">"
			_, ch := ph.register(contact)
			if code, res := ph.register(contact, answer(t, ch, "SHA-256", d.user, d.pw, 1)); code != 200 {
				t.Fatalf("restart %d: %s cannot register: %d\n%s", round, d.user, code, res)
			}
		}
		// This round logged in and used tokens: compare the next round
		// with what the box shows now.
		before = snapshot(t, q, admin)
		annSession = string(q.do("GET", "/api/v1/sessions/current", annTok, nil).want(t, 200).raw)
		q.Stop()
		if !strings.Contains(q.Logs(), `"msg":"store closed"`) {
			t.Fatalf("restart %d: no clean store close", round)
		}
	}
}

// TestRestartAfterGeneratedPassword: the generated first password is shown
// once; a restart neither shows it again nor replaces it, and the change is
// still demanded.
func TestRestartAfterGeneratedPassword(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, startOpts{dataDir: dir})
	var generated string
	for _, rec := range p.logRecords(t) {
		if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, "first start: created user admin with a generated password") {
			generated, _ = rec["password"].(string)
		}
	}
	if len(generated) < 16 {
		t.Fatalf("no generated password logged:\n%s", p.Logs())
	}
	p.Stop()
	q := start(t, startOpts{dataDir: dir})
	if strings.Contains(q.Logs(), generated) || strings.Contains(q.Logs(), `"password"`) || strings.Contains(q.Logs(), "first start") {
		t.Fatalf("the second start logged a password:\n%s", q.Logs())
	}
	tok := q.login("admin", generated)
	wantProblem(t, q.do("GET", "/api/v1/users", tok, nil), 403, "urn:pbxd:problem:password-change-required")
	me := q.do("GET", "/api/v1/sessions/current", tok, nil).want(t, 200).str("userId")
	q.do("POST", "/api/v1/users/"+me, tok, map[string]any{"currentPassword": generated, "password": "chosen-pass-1"}).want(t, 200)
	q.Kill()
	r := start(t, startOpts{dataDir: dir})
	tok = r.login("admin", "chosen-pass-1")
	r.do("GET", "/api/v1/users", tok, nil).want(t, 200)
	r.do("POST", "/api/v1/login", "", map[string]string{"username": "admin", "password": generated}).want(t, 401)
}

// TestKill9AfterEachKindOfWrite: every kind of acknowledged write survives
// a SIGKILL sent right after the answer.
func TestKill9AfterEachKindOfWrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startAdmin(t, dir)
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "kim", "password": "kim-password-1"}).want(t, 201).str("id")
	victim := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "victim", "extension": "555"}).want(t, 201).str("id")
	vdev := p.do("POST", "/api/v1/users/"+victim+"/devices", admin, map[string]any{"name": "d", "username": "victim-d"}).want(t, 201).str("id")
	sk := p.do("POST", "/api/v1/skills", admin, map[string]any{"name": "Sales"}).want(t, 201).str("id")
	su := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "svc", "permissions": []string{"users:read"}}).want(t, 201)
	kimTok := p.login("kim", "kim-password-1")

	steps := []struct {
		name  string
		write func(p *proc)
		check func(q *proc)
	}{
		{"own password change", func(p *proc) {
			p.do("POST", "/api/v1/users/"+uid, kimTok, map[string]any{"currentPassword": "kim-password-1", "password": "kim-password-2"}).want(t, 200)
		}, func(q *proc) {
			q.do("POST", "/api/v1/login", "", map[string]string{"username": "kim", "password": "kim-password-1"}).want(t, 401)
			q.login("kim", "kim-password-2")
			q.do("GET", "/api/v1/sessions/current", kimTok, nil).want(t, 200)
		}},
		{"skill assignment", func(p *proc) {
			p.do("POST", "/api/v1/users/"+uid+"/skills", admin, map[string]any{"skillId": sk, "proficiency": 3}).want(t, 200)
		}, func(q *proc) {
			if r := q.do("GET", "/api/v1/users/"+uid+"/skills", admin, nil).want(t, 200); r.num("total") != 1 {
				t.Errorf("skill lost: %s", r.raw)
			}
		}},
		{"device delete", func(p *proc) {
			p.do("DELETE", "/api/v1/users/"+victim+"/devices/"+vdev, admin, nil).want(t, 204)
		}, func(q *proc) {
			wantProblem(t, q.do("GET", "/api/v1/users/"+victim+"/devices/"+vdev, admin, nil), 404, "")
		}},
		{"user delete", func(p *proc) {
			p.do("DELETE", "/api/v1/users/"+victim, admin, nil).want(t, 204)
		}, func(q *proc) {
			wantProblem(t, q.do("GET", "/api/v1/users/"+victim, admin, nil), 404, "")
			q.do("POST", "/api/v1/users", admin, map[string]any{"userName": "victim", "extension": "555"}).want(t, 201)
			q.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "d", "username": "victim-d"}).want(t, 201)
		}},
		{"disable", func(p *proc) {
			p.do("POST", "/api/v1/users/"+uid, admin, map[string]any{"enabled": false}).want(t, 200)
		}, func(q *proc) {
			wantProblem(t, q.do("GET", "/api/v1/sessions/current", kimTok, nil), 401, "")
			q.do("POST", "/api/v1/login", "", map[string]string{"username": "kim", "password": "kim-password-2"}).want(t, 401)
		}},
		{"logout", func(p *proc) {
			p.do("POST", "/api/v1/logout", admin, nil).want(t, 204)
		}, func(q *proc) {
			wantProblem(t, q.do("GET", "/api/v1/sessions/current", admin, nil), 401, "")
			admin = q.login("admin", e2eAdminPassword)
		}},
		{"service-user permissions", func(p *proc) {
			p.do("PUT", "/api/v1/service-users/"+su.str("id"), admin, map[string]any{"permissions": []string{}}).want(t, 200)
		}, func(q *proc) {
			wantProblem(t, q.do("GET", "/api/v1/users", su.str("token"), nil), 403, "")
		}},
		{"service-user delete", func(p *proc) {
			p.do("DELETE", "/api/v1/service-users/"+su.str("id"), admin, nil).want(t, 204)
		}, func(q *proc) {
			wantProblem(t, q.do("GET", "/api/v1/sessions/current", su.str("token"), nil), 401, "")
			q.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "svc"}).want(t, 201)
		}},
	}
	for _, s := range steps {
		s.write(p)
		p.Kill()
		q := start(t, startOpts{dataDir: dir})
		if strings.Contains(q.Logs(), "first start") {
			t.Fatalf("after %s: the admin was created again", s.name)
		}
		s.check(q)
		p = q
	}
}

// TestKill9ConcurrentWrites: acknowledged creates from concurrent clients
// all survive a SIGKILL.
func TestKill9ConcurrentWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startAdmin(t, dir)
	admin := p.login("admin", e2eAdminPassword)
	var mu sync.Mutex
	acked := map[string]string{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 15; i++ {
				name := fmt.Sprintf("c%d-%02d", w, i)
				r, err := p.try("POST", "/api/v1/users", admin, map[string]any{"userName": name, "extension": fmt.Sprintf("%d%02d", 6+w, i)})
				if err != nil || r.code != 201 {
					t.Errorf("create %s: %v %d %s", name, err, r.code, r.raw)
					return
				}
				mu.Lock()
				acked[r.str("id")] = name
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	p.Kill()
	q := start(t, startOpts{dataDir: dir})
	r := q.do("GET", "/api/v1/users?fields=*&rows=1000", admin, nil).want(t, 200)
	found := map[string]string{}
	for _, o := range objects(t, r) {
		u := o.(map[string]any)
		found[u["id"].(string)] = u["userName"].(string)
	}
	for id, name := range acked {
		if found[id] != name {
			t.Errorf("acknowledged user %s (%s) lost", name, id)
		}
	}
	if len(acked) != 60 || len(found) != 61 {
		t.Errorf("%d acknowledged, %d found after kill -9", len(acked), len(found))
	}
}

// TestShutdownIsClean: SIGINT stops pbxd like SIGTERM, and a client that
// stalls mid-request delays the stop by at most --shutdown-timeout.
func TestShutdownIsClean(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startAdmin(t, dir)
	admin := p.login("admin", e2eAdminPassword)
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "before-sigint"}).want(t, 201)
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.exitCode(t, 15*time.Second); code != 0 || !strings.Contains(p.Logs(), `"msg":"store closed"`) {
		t.Fatalf("SIGINT: exit %d\n%s", code, tail(p.Logs(), 2000))
	}

	q := start(t, startOpts{dataDir: dir, args: []string{"--shutdown-timeout", "1s"}})
	c, err := net.Dial("tcp", strings.TrimPrefix(q.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("POST /api/v1/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"userName"))
	time.Sleep(100 * time.Millisecond)
	t0 := time.Now()
	_ = q.cmd.Process.Signal(syscall.SIGTERM)
	if code := q.exitCode(t, 15*time.Second); code != 0 || !strings.Contains(q.Logs(), `"msg":"store closed"`) {
		t.Fatalf("SIGTERM with a stalled client: exit %d\n%s", code, tail(q.Logs(), 2000))
	}
	if d := time.Since(t0); d > 4*time.Second {
		t.Errorf("stopping took %v with --shutdown-timeout 1s", d)
	}
	r := start(t, startOpts{dataDir: dir})
	admin = r.login("admin", e2eAdminPassword)
	if n := r.do("GET", "/api/v1/users", admin, nil).want(t, 200).num("total"); n != 2 {
		t.Errorf("%v users after the stops", n)
	}
}

// TestKill9KeepsRegistrations: a REGISTER answered 200 is an acknowledged
// write too; the binding is there after a SIGKILL and a restart, and so is
// an unregistration.
func TestKill9KeepsRegistrations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startAdmin(t, dir)
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "reg", "extension": "601"}).want(t, 201).str("id")
	for _, d := range []string{"reg-a", "reg-b"} {
		p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": d, "username": d, "password": d + "-password"}).want(t, 201)
	}
	register := func(p *proc, user, expires string) {
		t.Helper()
		ph := newPhone(t, p.sip, user)
		contact := "Contact: <sip:" + user + "@" + ph.local() + ">"
		if expires == "0" {
			contact = "Contact: *" // every binding of the device
		}
		_, ch := ph.register(contact, "Expires: "+expires)
		if code, res := ph.register(contact, "Expires: "+expires, answer(t, ch, "MD5", user, user+"-password", 1)); code != 200 {
			t.Fatalf("REGISTER %s: %d\n%s", user, code, res)
		}
	}
	register(p, "reg-a", "300")
	register(p, "reg-b", "300")
	p.Kill()
	q := start(t, startOpts{dataDir: dir})
	if r := q.do("GET", "/api/v1/registrations", admin, nil).want(t, 200); r.num("total") != 2 {
		t.Fatalf("registrations after kill -9: %s", r.raw)
	}
	register(q, "reg-a", "0")
	q.Kill()
	r := start(t, startOpts{dataDir: dir})
	regs := r.do("GET", "/api/v1/registrations", admin, nil).want(t, 200)
	if regs.num("total") != 1 || strings.Contains(string(regs.raw), `"deviceUsername":"reg-a"`) {
		t.Fatalf("registrations after an unregister and kill -9: %s", regs.raw)
	}
}
