package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// needSIPp finds the SIPp binary; make test installs it (Debian sip-tester).
func needSIPp(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getuid() == 0 {
			t.Fatal("sipp is missing; `make test` installs it (Debian package sip-tester)")
		}
		t.Skip("sipp not installed")
	}
	return p
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// sippControlPort is a free UDP port for SIPp's remote-control socket
// (-cp), taken from 31000–32699: below the kernel's ephemeral range, so a
// socket some other test binds to port 0 cannot take it between this
// check and SIPp's own bind, and clear of pbxd's RTP ranges in the tests.
func sippControlPort(t *testing.T) int {
	t.Helper()
	for range 1700 {
		port := 31000 + int(nextControlPort.Add(1)%1700)
		c, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("no free UDP port for SIPp's control socket in 31000-32699")
	return 0
}

var nextControlPort atomic.Int64

// runSIPp runs one scenario against target with an injection file and
// fails the test unless every call succeeds.
func runSIPp(t *testing.T, scenario, target, inject string, extra ...string) string {
	t.Helper()
	sipp := needSIPp(t)
	dir := t.TempDir()
	inf := filepath.Join(dir, "inject.csv")
	if err := os.WriteFile(inf, []byte(inject), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := append([]string{target, "-sf", filepath.Join("testdata", "sipp", scenario), "-inf", inf,
		"-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)), "-m", "1", "-timeout", "30s", "-timeout_error",
		"-nostdin", "-trace_err", "-error_file", filepath.Join(dir, "errors.log")}, extra...)
	cmd := exec.CommandContext(ctx, sipp, args...)
	cmd.Dir = "."
	out, err := cmd.CombinedOutput()
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		t.Fatalf("sipp %s failed: %v\n%s\n%s", scenario, err, tail(string(out), 3000), errs)
	}
	return string(out)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func TestSIPpRegisterWithDigest(t *testing.T) {
	t.Parallel()
	needSIPp(t)
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "sipp-user", "extension": "601"}).want(t, 201).str("id")
	p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "sipp", "username": "sipp-phone", "password": "sipp-pass-1"}).want(t, 201)
	runSIPp(t, "register.xml", p.sip, "SEQUENTIAL\nsipp-phone;[authentication username=sipp-phone password=sipp-pass-1]\n")
	regs := p.do("GET", "/api/v1/registrations", admin, nil).want(t, 200)
	if regs.obj["total"].(float64) != 1 || !strings.Contains(string(regs.raw), `"userAgent":"SIPp"`) {
		t.Fatalf("registration not recorded: %s", regs.raw)
	}
	// A wrong password must not register.
	t.Run("wrong password", func(t *testing.T) {
		sipp := needSIPp(t)
		dir := t.TempDir()
		inf := filepath.Join(dir, "inject.csv")
		os.WriteFile(inf, []byte("SEQUENTIAL\nsipp-phone;[authentication username=sipp-phone password=wrong-pass]\n"), 0o600)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, sipp, p.sip, "-sf", filepath.Join("testdata", "sipp", "register.xml"), "-inf", inf,
			"-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)), "-m", "1", "-timeout", "10s", "-timeout_error", "-nostdin")
		if err := cmd.Run(); err == nil {
			t.Fatal("SIPp registered with a wrong password")
		}
	})
}
