package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTortureMessages replays the RFC 4475 torture messages over UDP and
// TCP: whatever each one gets (an answer, a 400, or nothing), pbxd must keep
// answering a well-formed REGISTER afterwards and must not exit.
func TestTortureMessages(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	files, err := filepath.Glob(filepath.Join("testdata", "rfc4475", "*.dat"))
	if err != nil || len(files) < 40 {
		t.Fatalf("torture messages: %d files, %v", len(files), err)
	}
	probe := newPhone(t, p.sip, "probe")
	for _, f := range files {
		msg, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".dat")
		u, err := net.Dial("udp4", p.sip)
		if err != nil {
			t.Fatal(err)
		}
		u.Write(msg)
		u.Close()
		c, err := net.DialTimeout("tcp4", p.sip, 2*time.Second)
		if err != nil {
			t.Fatalf("%s: TCP listener gone: %v", name, err)
		}
		c.Write(msg)
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		c.Close()
		if n > 0 && strings.HasPrefix(string(buf[:n]), "SIP/2.0 5") {
			t.Errorf("%s: server error answer %q", name, strings.SplitN(string(buf[:n]), "\r\n", 2)[0])
		}
		if code, _ := probe.register("Contact: <sip:probe@" + probe.local() + ">"); code != 401 {
			t.Fatalf("after %s the registrar answered %d", name, code)
		}
	}
	select {
	case <-p.exited:
		t.Fatalf("pbxd exited: %v\n%s", p.exitErr, tail(p.Logs(), 3000))
	default:
	}
}
