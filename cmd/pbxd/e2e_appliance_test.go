package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRestartPersistence(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startAdmin(t, dir)
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "gina", "password": "gina-password-1", "extension": "401"}).want(t, 201).str("id")
	p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "desk", "username": "gina-desk"}).want(t, 201)
	su := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "export", "permissions": []string{"users:read"}}).want(t, 201)
	p.do("GET", "/api/v1/users", su.str("token"), nil).want(t, 200)
	p.Stop()
	if !strings.Contains(p.Logs(), "store closed") {
		t.Fatalf("no clean store close on SIGTERM:\n%s", p.Logs())
	}

	q := start(t, startOpts{dataDir: dir}) // no admin password: must not re-create
	if strings.Contains(q.Logs(), "first start") {
		t.Fatalf("admin re-created on restart:\n%s", q.Logs())
	}
	q.do("GET", "/api/v1/users/"+uid+"?subresources=*", su.str("token"), nil).want(t, 200)
	r := q.do("GET", "/api/v1/service-users/"+su.str("id"), q.login("admin", e2eAdminPassword), nil).want(t, 200)
	if r.obj["lastUsedAt"].(float64) == 0 {
		t.Fatalf("last use not recorded across restart: %s", r.raw)
	}
	q.login("gina", "gina-password-1")
}

func TestKill9KeepsAcknowledgedWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startAdmin(t, dir)
	admin := p.login("admin", e2eAdminPassword)
	var ids []string
	for i := 0; i < 30; i++ {
		ids = append(ids, p.do("POST", "/api/v1/users", admin, map[string]any{"userName": fmt.Sprintf("k%02d", i)}).want(t, 201).str("id"))
	}
	su := p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "k", "permissions": []string{"users:read"}}).want(t, 201)
	newTok := p.do("POST", "/api/v1/service-users/"+su.str("id")+"/token", admin, nil).want(t, 200).str("token")
	p.Kill()

	q := start(t, startOpts{dataDir: dir})
	for _, id := range ids {
		q.do("GET", "/api/v1/users/"+id, newTok, nil).want(t, 200)
	}
	q.do("GET", "/api/v1/users", su.str("token"), nil).want(t, 401)
	if q.do("GET", "/api/v1/users", newTok, nil).want(t, 200).obj["total"].(float64) != 31 {
		t.Fatal("user count after kill -9")
	}
	q.do("GET", "/api/v1/users", admin, nil).want(t, 200) // the session survived too
}

// TestSystemdNotify gives the real binary a notify socket of its own and
// checks READY=1 (only once HTTP accepts), watchdog pings and STOPPING=1.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	sockDir, err := os.MkdirTemp("", "n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sockPath := filepath.Join(sockDir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := start(t, startOpts{noWait: true, env: []string{"NOTIFY_SOCKET=" + sockPath, "WATCHDOG_USEC=400000", "PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}})

	buf := make([]byte, 4096)
	read := func() string {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("notify socket: %v\n%s", err, p.Logs())
		}
		return string(buf[:n])
	}
	var msgs []string
	for {
		m := read()
		msgs = append(msgs, m)
		if strings.Contains(m, "READY=1") {
			if !strings.Contains(m, "STATUS=") {
				t.Fatalf("READY without STATUS: %q", m)
			}
			break
		}
	}
	if !strings.Contains(msgs[0], "STATUS=opening store") {
		t.Errorf("first message %q", msgs[0])
	}
	// HTTP must already accept when READY=1 arrives.
	var addr string
	for deadline := time.Now().Add(5 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, line := range strings.Split(p.Logs(), "\n") {
			if i := strings.Index(line, `"http":"`); i >= 0 && strings.Contains(line, "pbxd ready") {
				addr = line[i+8:]
				addr = addr[:strings.IndexByte(addr, '"')]
			}
		}
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("READY=1 before the listener accepts (%q): %v", addr, err)
	}
	c.Close()
	start := time.Now()
	pings := 0
	for pings < 3 {
		if m := read(); strings.Contains(m, "WATCHDOG=1") {
			pings++
		}
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("3 watchdog pings took %v with a 400ms watchdog", d)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	for {
		if m := read(); strings.Contains(m, "STOPPING=1") {
			break
		}
	}
	<-p.exited
	if p.exitErr != nil {
		t.Fatalf("exit: %v", p.exitErr)
	}
}

func TestBadInputNeverFails(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	big := `{"userName":"` + strings.Repeat("a", 1<<20+10) + `"}`
	cases := []struct {
		method, path, auth string
		body               any
		want               int
	}{
		{"POST", "/api/v1/users", admin, `{"userName":`, 400},
		{"POST", "/api/v1/users", admin, `{"userName":"x","roles":"ROLE_ADMIN"}`, 400},
		{"POST", "/api/v1/users", admin, `{"userName":"x","enabled":"yes"}`, 400},
		{"POST", "/api/v1/users", admin, `{"userName":"x","isRoot":true}`, 400},
		{"POST", "/api/v1/users", admin, `{"userName":"bad name!"}`, 400},
		{"POST", "/api/v1/users", admin, `{"userName":"x","timezone":"Mars/Olympus"}`, 400},
		{"POST", "/api/v1/users", admin, `{"userName":"x","roles":["ROLE_ROOT"]}`, 400},
		{"POST", "/api/v1/users", admin, big, 413},
		{"POST", "/api/v1/users", admin, "", 400},
		{"POST", "/api/v1/login", "", `{"username":"a","password":5}`, 400},
		{"POST", "/api/v1/login", "", `[1,2]`, 400},
		{"GET", "/api/v1/users/XYZ", admin, nil, 400},
		{"GET", "/api/v1/users/..%2f..%2fetc", admin, nil, 400},
		{"GET", "/api/v1/users/0123456789abcdef", admin, nil, 404},
		{"DELETE", "/api/v1/service-users/0123456789abcdef", admin, nil, 404},
		{"GET", "/api/v1/nowhere", admin, nil, 404},
		{"PATCH", "/api/v1/users", admin, nil, 405},
		{"GET", "/api/v1/users", "raw:Bearer", nil, 401},
		{"GET", "/api/v1/users", "raw:Basic !!!", nil, 401},
		{"GET", "/api/v1/users", "raw:Token abc", nil, 401},
		{"GET", "/api/v1/users", "raw:Bearer " + strings.Repeat("x", 4000), nil, 401},
		{"GET", "/api/v1/users", "pbxd_ses_0000000000000000000000000000000000000000000000000", nil, 401},
	}
	for _, tc := range cases {
		r := p.do(tc.method, tc.path, tc.auth, tc.body)
		if r.code != tc.want || r.header.Get("Content-Type") != "application/problem+json" || r.str("type") == "" {
			t.Errorf("%s %s %.60v: %d %s (want %d problem)", tc.method, tc.path, tc.body, r.code, r.raw, tc.want)
		}
		if tc.want == 405 && r.header.Get("Allow") == "" {
			t.Errorf("405 without Allow")
		}
	}
	// Wrong content type.
	req := "POST /api/v1/login HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
	c, err := net.Dial("tcp", strings.TrimPrefix(p.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(req))
	var out bytes.Buffer
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = out.ReadFrom(c)
	c.Close()
	if !strings.HasPrefix(out.String(), "HTTP/1.1 415") {
		t.Errorf("text/plain body: %q", out.String())
	}
	p.do("GET", "/healthz", "", nil).want(t, 200)
	if m := string(p.do("GET", "/metrics", "", nil).raw); strings.Contains(m, `status="5`) {
		t.Errorf("a 5xx was served:\n%s", m)
	}
}

func TestMetricsAndOpenAPI(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	p.do("GET", "/api/v1/users/0123456789abcdef", admin, nil).want(t, 404)
	m := string(p.do("GET", "/metrics", "", nil).want(t, 200).raw)
	for _, want := range []string{`pbxd_http_requests_total{route="/api/v1/users/{id}",method="GET",status="404"} 1`,
		`pbxd_http_request_duration_seconds_bucket{route="/api/v1/login",le="+Inf"} 1`, "\npbxd_users 1\n", "\npbxd_sessions 1\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	doc := p.do("GET", "/api/v1/openapi.json", "", nil).want(t, 200)
	if doc.str("openapi") != "3.1.0" {
		t.Fatal("not OpenAPI 3.1")
	}
	paths := doc.obj["paths"].(map[string]any)
	for _, pm := range []string{"POST /api/v1/login", "POST /api/v1/logout", "POST /api/v1/sessions", "GET /api/v1/sessions/current",
		"GET /api/v1/users", "POST /api/v1/users", "GET /api/v1/users/{id}", "POST /api/v1/users/{id}", "PUT /api/v1/users/{id}",
		"DELETE /api/v1/users/{id}", "GET /api/v1/users/{id}/devices", "POST /api/v1/users/{id}/devices",
		"DELETE /api/v1/users/{id}/devices/{deviceId}", "GET /api/v1/skills", "POST /api/v1/skills",
		"GET /api/v1/service-users", "POST /api/v1/service-users", "GET /api/v1/service-users/{id}",
		"DELETE /api/v1/service-users/{id}", "POST /api/v1/service-users/{id}/token", "GET /api/v1/audit", "GET /healthz", "GET /metrics"} {
		method, path, _ := strings.Cut(pm, " ")
		ops, _ := paths[path].(map[string]any)
		if ops[strings.ToLower(method)] == nil {
			t.Errorf("OpenAPI lacks %s", pm)
		}
	}
}

// TestReadmeTour runs the README's curl examples as written against a
// fresh pbxd started the way the README says.
func TestReadmeTour(t *testing.T) {
	for _, tool := range []string{"curl", "jq", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (make test installs it)", tool)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	i, j := strings.Index(text, "<!-- tour:start -->"), strings.Index(text, "<!-- tour:end -->")
	if i < 0 || j < i {
		t.Fatal("README has no tour markers")
	}
	var script strings.Builder
	in := false
	for _, line := range strings.Split(text[i:j], "\n") {
		switch {
		case strings.HasPrefix(line, "```sh"):
			in = true
		case strings.HasPrefix(line, "```"):
			in = false
		case in:
			script.WriteString(line + "\n")
		}
	}
	if !strings.Contains(text, "PBXD_ADMIN_PASSWORD=change-me-now make run") {
		t.Fatal("the README no longer says how the tour's pbxd was started")
	}
	p := start(t, startOpts{env: []string{"PBXD_ADMIN_PASSWORD=change-me-now"}})
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script.String())
	cmd.Env = append(os.Environ(), "PBXD="+p.base)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README tour failed: %v\n%s", err, out)
	}
	for _, want := range []string{"ROLE_ADMIN", "German", "403", "401", "200", "204", "serviceUser.refreshToken admin", `{"status":"ok"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("tour output lacks %q:\n%s", want, out)
		}
	}
}
