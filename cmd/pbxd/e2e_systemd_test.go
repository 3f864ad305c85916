package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// notifySocket is a stand-in for systemd's notification socket.
type notifySocket struct {
	t    *testing.T
	path string
	conn *net.UnixConn
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	// Unix socket paths are short; t.TempDir() can be too long for one.
	dir, err := os.MkdirTemp("", "n")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &notifySocket{t: t, path: path, conn: conn}
}

// next returns the next datagram, or "" when none arrives within d.
func (n *notifySocket) next(d time.Duration) string {
	buf := make([]byte, 4096)
	_ = n.conn.SetReadDeadline(time.Now().Add(d))
	k, err := n.conn.Read(buf)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return ""
		}
		n.t.Fatalf("notify socket: %v", err)
	}
	return string(buf[:k])
}

// waitFor reads datagrams until one contains want and returns all read.
func (n *notifySocket) waitFor(want string, d time.Duration) []string {
	n.t.Helper()
	var got []string
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m := n.next(time.Until(deadline))
		if m == "" {
			break
		}
		got = append(got, m)
		if strings.Contains(m, want) {
			return got
		}
	}
	n.t.Fatalf("no %q within %v; got %q", want, d, got)
	return nil
}

// TestSystemdReadyStatusAndStopping: READY=1 comes once, with a STATUS
// naming the API address, after the listener accepts; STOPPING=1 comes on
// SIGTERM before a clean exit.
func TestSystemdReadyStatusAndStopping(t *testing.T) {
	t.Parallel()
	ns := newNotifySocket(t)
	p := start(t, startOpts{noWait: true, env: []string{"NOTIFY_SOCKET=" + ns.path, "PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}})
	msgs := ns.waitFor("READY=1", 20*time.Second)
	ready := msgs[len(msgs)-1]
	var status string
	for _, line := range strings.Split(ready, "\n") {
		if s, ok := strings.CutPrefix(line, "STATUS="); ok {
			status = s
		}
	}
	addr := regexp.MustCompile(`127\.0\.0\.1:[0-9]+`).FindString(status)
	if addr == "" {
		t.Fatalf("READY STATUS does not name the API address: %q", ready)
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("READY=1 before %s accepts: %v", addr, err)
	}
	c.Close()
	p.base = "http://" + addr
	p.do("GET", "/healthz", "", nil).want(t, 200)
	// Without WATCHDOG_USEC nothing more is sent until the stop.
	if m := ns.next(700 * time.Millisecond); m != "" {
		t.Fatalf("unexpected notification without a watchdog: %q", m)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	rest := ns.waitFor("STOPPING=1", 10*time.Second)
	if code := p.exitCode(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	for _, m := range append(msgs[:len(msgs)-1], rest...) {
		if strings.Contains(m, "READY=1") {
			t.Errorf("READY=1 sent twice: %q", m)
		}
	}
}

// TestSystemdWatchdogSettings: the watchdog pings only when systemd asked
// this process for them.
func TestSystemdWatchdogSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		env   []string
		pings bool
	}{
		{"enabled", []string{"WATCHDOG_USEC=300000"}, true},
		{"for another process", []string{"WATCHDOG_USEC=300000", "WATCHDOG_PID=1"}, false},
		{"zero", []string{"WATCHDOG_USEC=0"}, false},
		{"garbage", []string{"WATCHDOG_USEC=soon"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newNotifySocket(t)
			p := start(t, startOpts{env: append([]string{"NOTIFY_SOCKET=" + ns.path}, tc.env...)})
			ns.waitFor("READY=1", 10*time.Second)
			pings := 0
			deadline := time.Now().Add(1200 * time.Millisecond)
			for time.Now().Before(deadline) {
				m := ns.next(time.Until(deadline))
				if m == "" {
					break
				}
				if strings.Contains(m, "WATCHDOG=1") {
					pings++
				}
			}
			if tc.pings && pings < 4 {
				t.Errorf("%d watchdog pings in 1.2s with a 300ms watchdog", pings)
			}
			if !tc.pings && pings > 0 {
				t.Errorf("%d watchdog pings with %v", pings, tc.env)
			}
			p.do("GET", "/healthz", "", nil).want(t, 200)
			p.Stop()
		})
	}
}

// TestSystemdSocketMissing: a NOTIFY_SOCKET nobody listens on does not keep
// pbxd from serving or from stopping cleanly.
func TestSystemdSocketMissing(t *testing.T) {
	t.Parallel()
	p := start(t, startOpts{env: []string{"NOTIFY_SOCKET=" + filepath.Join(t.TempDir(), "gone"), "WATCHDOG_USEC=200000",
		"PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}})
	p.login("admin", e2eAdminPassword)
	time.Sleep(300 * time.Millisecond)
	p.do("GET", "/healthz", "", nil).want(t, 200)
	p.Stop()
}
