package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFlagsFromEnvironment: every serve flag can come from PBXD_<FLAG>, and
// the command line wins over the environment.
func TestFlagsFromEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pwFile := filepath.Join(t.TempDir(), "admin-pw")
	if err := os.WriteFile(pwFile, []byte("from-a-file-pass-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := launch(t, []string{"serve"}, []string{
		"PBXD_DATA_DIR=" + dir, "PBXD_HTTP_LISTEN=127.0.0.1:0", "PBXD_SIP_LISTEN=127.0.0.1:0",
		"PBXD_ADMIN_PASSWORD_FILE=" + pwFile, "PBXD_LOG_FORMAT=json", "PBXD_LOG_LEVEL=debug", "PBXD_SESSION_TTL=90m",
		"PBXD_SIP_REALM=office.example", "PBXD_SIP_AUTH_ALGORITHMS=SHA-256", "PBXD_DEBUG_LISTEN=127.0.0.1:0",
	})
	if p.dataDir != dir {
		t.Errorf("data dir %q, want %q", p.dataDir, dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "db")); err != nil {
		t.Errorf("no database under PBXD_DATA_DIR: %v", err)
	}
	// The password file's trailing newline is not part of the password.
	lr := p.do("POST", "/api/v1/login", "", map[string]string{"username": "admin", "password": "from-a-file-pass-1"}).want(t, 200)
	if exp := time.UnixMilli(int64(lr.num("expiresAt"))); exp.After(time.Now().Add(91*time.Minute)) || exp.Before(time.Now().Add(89*time.Minute)) {
		t.Errorf("PBXD_SESSION_TTL=90m gave a session until %v", exp)
	}
	admin := lr.str("token")
	uid := p.userID(t, admin, "admin")
	if d := p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "d", "username": "realm-d"}).want(t, 201); d.str("realm") != "office.example" {
		t.Errorf("PBXD_SIP_REALM: device realm %q", d.str("realm"))
	}
	// PBXD_SIP_AUTH_ALGORITHMS: only SHA-256 is offered.
	ph := newPhone(t, p.sip, "realm-d")
	if _, ch := ph.register("Contact: <sip:realm-d@" + ph.local() + ">"); strings.Count(ch, "WWW-Authenticate:") != 1 ||
		!strings.Contains(ch, `realm="office.example"`) || !strings.Contains(ch, "algorithm=SHA-256") {
		t.Errorf("challenge with PBXD_SIP_AUTH_ALGORITHMS=SHA-256 and PBXD_SIP_REALM=office.example:\n%s", ch)
	}
	debug, profiler := false, ""
	for _, rec := range p.logRecords(t) {
		if rec["level"] == "DEBUG" {
			debug = true
		}
		if rec["msg"] == "profiling enabled" {
			profiler, _ = rec["debug"].(string)
		}
	}
	if !strings.HasPrefix(profiler, "http://127.0.0.1:") {
		t.Errorf("PBXD_DEBUG_LISTEN: profiler at %q", profiler)
	} else if r, err := client.Get(profiler); err != nil || r.StatusCode != 200 {
		t.Errorf("profiler %s: %v %v", profiler, r, err)
	} else {
		r.Body.Close()
	}
	// The profiler is not on the API listener.
	wantProblem(t, p.do("GET", "/debug/pprof/", admin, nil), 404, "")
	if !debug {
		t.Error("PBXD_LOG_LEVEL=debug logged nothing at debug level")
	}
	p.Stop()

	// The command line wins over the environment.
	q := launch(t, []string{"serve", "--log-format", "json", "--session-ttl", "2h"}, []string{
		"PBXD_DATA_DIR=" + dir, "PBXD_HTTP_LISTEN=127.0.0.1:0", "PBXD_SIP_LISTEN=127.0.0.1:0", "PBXD_LOG_FORMAT=text", "PBXD_SESSION_TTL=90m",
	})
	lr = q.do("POST", "/api/v1/login", "", map[string]string{"username": "admin", "password": "from-a-file-pass-1"}).want(t, 200)
	if exp := time.UnixMilli(int64(lr.num("expiresAt"))); exp.Before(time.Now().Add(119 * time.Minute)) {
		t.Errorf("--session-ttl 2h did not win over PBXD_SESSION_TTL=90m: session until %v", exp)
	}
	q.Stop()
}

// TestBadCommandLines: usage mistakes exit 2 with a message and start
// nothing; "version" and "help" exit 0.
func TestBadCommandLines(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		env  []string
		code int
		says string
	}{
		{nil, nil, 2, "Usage"},
		{[]string{"frobnicate"}, nil, 2, "unknown command"},
		{[]string{"version"}, nil, 0, "pbxd "},
		{[]string{"help"}, nil, 0, "Usage"},
		{[]string{"serve", "--help"}, nil, 0, "--http-listen"},
		{[]string{"serve", "--no-such-flag"}, nil, 2, "no-such-flag"},
		{[]string{"serve", "--data-dir", dir, "extra-argument"}, nil, 2, "unexpected arguments"},
		{[]string{"serve", "--data-dir", dir, "--log-format", "xml"}, nil, 2, "log-format"},
		{[]string{"serve", "--data-dir", dir, "--log-level", "loud"}, nil, 2, "log-level"},
		{[]string{"serve", "--data-dir", dir, "--session-ttl", "10s"}, nil, 2, "session-ttl"},
		{[]string{"serve", "--data-dir", dir, "--session-ttl", "forever"}, nil, 2, "session-ttl"},
		{[]string{"serve", "--data-dir", dir, "--debug-listen", "0.0.0.0:6060"}, nil, 2, "loopback"},
		{[]string{"serve"}, []string{"PBXD_DATA_DIR=" + dir, "PBXD_STORE_SYNC=perhaps"}, 2, "PBXD_STORE_SYNC"},
		{[]string{"serve"}, []string{"PBXD_DATA_DIR=" + dir, "PBXD_SESSION_TTL=abc"}, 2, "PBXD_SESSION_TTL"},
		{[]string{"serve"}, []string{"PBXD_DATA_DIR=" + dir, "PBXD_SHUTDOWN_TIMEOUT=abc"}, 2, "PBXD_SHUTDOWN_TIMEOUT"},
		{[]string{"serve"}, []string{"PBXD_DATA_DIR=" + dir, "PBXD_DEBUG_LISTEN=192.0.2.1:6060"}, 2, "loopback"},
	} {
		code, out := runToExit(t, tc.args, tc.env)
		if code != tc.code || !strings.Contains(out, tc.says) {
			t.Errorf("pbxd %v %v: exit %d, want %d with %q:\n%s", tc.args, tc.env, code, tc.code, tc.says, out)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused command line touched the data directory: %v", entries)
	}
}

// TestStartupFailures: a weak first password, a data directory in use and
// a taken HTTP port each stop pbxd with exit code 1 and a clear log line,
// leave no secret in the log, and do not harm the data.
func TestStartupFailures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := []string{"serve", "--data-dir", dir, "--http-listen", "127.0.0.1:0", "--sip-listen", "127.0.0.1:0", "--log-format", "json"}

	code, out := runToExit(t, base, []string{"PBXD_ADMIN_PASSWORD=weak"})
	if code != 1 || !strings.Contains(out, "admin password") || strings.Contains(out, `"weak"`) || strings.Contains(out, "=weak") {
		t.Errorf("weak first password: exit %d:\n%s", code, out)
	}
	// Nothing was created: the next start with a good password makes the admin.
	p := start(t, startOpts{dataDir: dir, env: []string{"PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}})
	admin := p.login("admin", e2eAdminPassword)
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "still-here"}).want(t, 201)

	// A second pbxd on the same data directory refuses to start; the first
	// keeps serving.
	code, out = runToExit(t, base, nil)
	if code != 1 || !strings.Contains(out, `"level":"ERROR"`) {
		t.Errorf("second pbxd on a data directory in use: exit %d:\n%s", code, out)
	}
	p.do("GET", "/api/v1/users?q=still-here", admin, nil).want(t, 200)
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "after-the-intruder"}).want(t, 201)
	p.Stop()

	// A taken HTTP port: exit 1, the store is closed cleanly.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := append(append([]string{}, base...), "--http-listen", ln.Addr().String())
	code, out = runToExit(t, taken, nil)
	if code != 1 || !strings.Contains(out, "http-listen") || !strings.Contains(out, `"msg":"store closed"`) {
		t.Errorf("taken HTTP port: exit %d:\n%s", code, out)
	}
	q := start(t, startOpts{dataDir: dir})
	admin = q.login("admin", e2eAdminPassword)
	if r := q.do("GET", "/api/v1/users", admin, nil).want(t, 200); r.num("total") != 3 {
		t.Fatalf("users after the failed starts: %s", r.raw)
	}
}

// TestAdminPasswordFileOnlyOnFirstStart: the password file is read on the
// first start only (README), so an installer may delete it afterwards; an
// unreadable file on the first start is an error.
func TestAdminPasswordFileOnlyOnFirstStart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "state", "pbxd")
	pwFile := filepath.Join(t.TempDir(), "admin-pw")
	args := []string{"serve", "--data-dir", dir, "--http-listen", "127.0.0.1:0", "--sip-listen", "127.0.0.1:0", "--admin-password-file", pwFile}
	code, out := runToExit(t, args, nil)
	if code != 1 || !strings.Contains(out, "admin-password-file") {
		t.Errorf("first start with a missing password file: exit %d:\n%s", code, out)
	}
	if err := os.WriteFile(pwFile, []byte("file-admin-pass-1\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := launch(t, args, nil)
	p.login("admin", "file-admin-pass-1")
	// The state directory is private: it holds password hashes and HA1s.
	for _, d := range []string{dir, filepath.Join(dir, "db")} {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: %v %v", d, fi.Mode(), err)
		}
	}
	p.Stop()
	if err := os.Remove(pwFile); err != nil {
		t.Fatal(err)
	}
	q := launch(t, args, nil)
	q.login("admin", "file-admin-pass-1")
	q.Stop()
}
