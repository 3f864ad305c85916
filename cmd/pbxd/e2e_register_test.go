package main

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sipPhone speaks SIP over UDP from a loopback socket, computing digest
// answers the way a desk phone does.
type sipPhone struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
	user string
	cseq int
	call string
}

func newPhone(t *testing.T, server, user string) *sipPhone {
	raddr, err := net.ResolveUDPAddr("udp4", server)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &sipPhone{t: t, conn: c, to: raddr, user: user, call: fmt.Sprintf("reg-%d@127.0.0.1", time.Now().UnixNano())}
}

func (ph *sipPhone) local() string { return ph.conn.LocalAddr().String() }

// register sends one REGISTER with extra header lines and returns the
// response's status code and text.
func (ph *sipPhone) register(extra ...string) (int, string) {
	ph.t.Helper()
	ph.cseq++
	msg := strings.Join(append([]string{
		"REGISTER sip:127.0.0.1 SIP/2.0",
		fmt.Sprintf("Via: SIP/2.0/UDP %s;branch=z9hG4bK-%d-%d;rport", ph.local(), time.Now().UnixNano(), ph.cseq),
		"Max-Forwards: 70",
		fmt.Sprintf("From: <sip:%s@127.0.0.1>;tag=t%d", ph.user, ph.cseq),
		fmt.Sprintf("To: <sip:%s@127.0.0.1>", ph.user),
		"Call-ID: " + ph.call,
		fmt.Sprintf("CSeq: %d REGISTER", ph.cseq),
		"User-Agent: pbxd-test-phone",
	}, extra...), "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
	return ph.send(msg)
}

func (ph *sipPhone) send(msg string) (int, string) {
	ph.t.Helper()
	if _, err := ph.conn.WriteToUDP([]byte(msg), ph.to); err != nil {
		ph.t.Fatal(err)
	}
	buf := make([]byte, 65535)
	for {
		_ = ph.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := ph.conn.Read(buf)
		if err != nil {
			ph.t.Fatalf("no SIP response: %v", err)
		}
		res := string(buf[:n])
		var code int
		fmt.Sscanf(res, "SIP/2.0 %d", &code)
		if code >= 200 {
			return code, res
		}
	}
}

var nonceRE = regexp.MustCompile(`WWW-Authenticate: Digest realm="([^"]+)", nonce="([^"]+)", algorithm=(\S+), qop="auth"`)

// answer builds an Authorization line for the first challenge using alg.
func answer(t *testing.T, challenge, alg, user, pass string, nc int) string {
	t.Helper()
	var realm, nonce string
	for _, m := range nonceRE.FindAllStringSubmatch(challenge, -1) {
		if strings.TrimSuffix(m[3], ",") == alg {
			realm, nonce = m[1], m[2]
		}
	}
	if nonce == "" {
		t.Fatalf("no %s challenge in:\n%s", alg, challenge)
	}
	h := md5.New
	if alg == "SHA-256" {
		h = sha256.New
	}
	hx := func(s string) string { x := h(); x.Write([]byte(s)); return hex.EncodeToString(x.Sum(nil)) }
	ncs := fmt.Sprintf("%08x", nc)
	resp := hx(hx(user+":"+realm+":"+pass) + ":" + nonce + ":" + ncs + ":abc123:auth:" + hx("REGISTER:sip:127.0.0.1"))
	return fmt.Sprintf(`Authorization: Digest username="%s", realm="%s", nonce="%s", uri="sip:127.0.0.1", response="%s", algorithm=%s, cnonce="abc123", qop=auth, nc=%s`,
		user, realm, nonce, resp, alg, ncs)
}

func TestRegisterWithDigest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startAdmin(t, dir)
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "reg-alice", "extension": "501"}).want(t, 201).str("id")
	p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "desk", "username": "alice-phone", "password": "phone-pass-1"}).want(t, 201)

	ph := newPhone(t, p.sip, "alice-phone")
	contact := fmt.Sprintf("Contact: <sip:alice-phone@%s>", ph.local())
	code, ch := ph.register(contact, "Expires: 120")
	if code != 401 || strings.Count(ch, "WWW-Authenticate:") != 2 || !strings.Contains(ch, "algorithm=SHA-256") || !strings.Contains(ch, "algorithm=MD5") {
		t.Fatalf("challenge: %d\n%s", code, ch)
	}
	for i, alg := range []string{"SHA-256", "MD5"} {
		auth := answer(t, ch, alg, "alice-phone", "phone-pass-1", i+1)
		code, res := ph.register(contact, "Expires: 120", auth)
		if code != 200 || !regexp.MustCompile(`Contact: <sip:alice-phone@[0-9.:]+>;expires=1[12][0-9]`).MatchString(res) {
			t.Fatalf("%s register: %d\n%s", alg, code, res)
		}
		if i == 0 {
			// The same answer again is a replay.
			if code, _ := ph.register(contact, "Expires: 120", auth); code != 401 {
				t.Fatalf("replayed answer: %d", code)
			}
		}
	}
	// Wrong password and unknown device get the same challenge.
	_, ch = ph.register(contact)
	wrong, _ := ph.register(contact, answer(t, ch, "MD5", "alice-phone", "bad-password", 1))
	ghost := newPhone(t, p.sip, "ghost")
	_, gch := ghost.register(contact)
	unknown, _ := ghost.register(contact, answer(t, gch, "MD5", "ghost", "whatever-1", 1))
	if wrong != 401 || unknown != 401 {
		t.Fatalf("wrong password %d, unknown device %d", wrong, unknown)
	}
	// Garbage does not wedge the server.
	ph.conn.WriteToUDP([]byte("\x00\x01garbage\r\n\r\n"), ph.to)
	ph.conn.WriteToUDP([]byte("REGISTER sip:x SIP/2.0\r\nVia: broken\r\n\r\n"), ph.to)
	// OPTIONS pings are answered.
	if code, res := ph.send("OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + ph.local() + ";branch=z9hG4bK-opt1;rport\r\n" +
		"From: <sip:mon@127.0.0.1>;tag=m1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: opt1@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"); code != 200 || !regexp.MustCompile(`Allow: REGISTER, INVITE, .*OPTIONS`).MatchString(res) {
		t.Fatalf("OPTIONS: %d\n%s", code, res)
	}
	// Too brief.
	_, ch = ph.register(contact)
	if code, res := ph.register(contact, "Expires: 30", answer(t, ch, "MD5", "alice-phone", "phone-pass-1", 1)); code != 423 || !strings.Contains(res, "Min-Expires: 60") {
		t.Fatalf("brief: %d\n%s", code, res)
	}

	// The binding is visible to admins and survives a restart.
	regs := p.do("GET", "/api/v1/registrations", admin, nil).want(t, 200)
	if regs.obj["total"].(float64) != 1 || !strings.Contains(string(regs.raw), `"source":"`+ph.local()+`"`) {
		t.Fatalf("registrations: %s", regs.raw)
	}
	p.Stop()
	q := start(t, startOpts{dataDir: dir})
	admin = q.login("admin", e2eAdminPassword)
	if q.do("GET", "/api/v1/registrations", admin, nil).want(t, 200).obj["total"].(float64) != 1 {
		t.Fatal("binding lost on restart")
	}
	// Disabling the user drops the registration, and the phone cannot register again.
	q.do("POST", "/api/v1/users/"+uid, admin, map[string]any{"enabled": false}).want(t, 200)
	if q.do("GET", "/api/v1/registrations", admin, nil).want(t, 200).obj["total"].(float64) != 0 {
		t.Fatal("a disabled user's binding survived")
	}
	ph = newPhone(t, q.sip, "alice-phone")
	_, ch = ph.register(contact)
	if code, _ := ph.register(contact, answer(t, ch, "MD5", "alice-phone", "phone-pass-1", 1)); code != 403 {
		t.Fatalf("disabled user's phone registered: %d", code)
	}
	q.do("POST", "/api/v1/users/"+uid, admin, map[string]any{"enabled": true}).want(t, 200)
	_, ch = ph.register(contact)
	if code, _ := ph.register(contact, answer(t, ch, "MD5", "alice-phone", "phone-pass-1", 1)); code != 200 {
		t.Fatalf("re-enabled user's phone: %d", code)
	}
	// Unregister with the wildcard.
	_, ch = ph.register("Contact: *", "Expires: 0")
	if code, res := ph.register("Contact: *", "Expires: 0", answer(t, ch, "SHA-256", "alice-phone", "phone-pass-1", 1)); code != 200 || strings.Contains(res, "Contact:") {
		t.Fatalf("unregister: %d\n%s", code, res)
	}
	if q.do("GET", "/api/v1/registrations", admin, nil).want(t, 200).obj["total"].(float64) != 0 {
		t.Fatal("binding left after unregister")
	}
}

// TestRegistrarKeepAlive: pbxd pings UDP contacts with OPTIONS from its SIP
// port (so the phone's NAT mapping stays open) and drops a contact that
// stopped answering.
func TestRegistrarKeepAlive(t *testing.T) {
	t.Parallel()
	p := start(t, startOpts{env: []string{"PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}, args: []string{"--sip-keepalive", "1s"}})
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "ka-user", "extension": "502"}).want(t, 201).str("id")
	p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "desk", "username": "ka-phone", "password": "phone-pass-1"}).want(t, 201)
	ph := newPhone(t, p.sip, "ka-phone")
	contact := fmt.Sprintf("Contact: <sip:ka-phone@%s>", ph.local())
	_, ch := ph.register(contact)
	if code, _ := ph.register(contact, answer(t, ch, "MD5", "ka-phone", "phone-pass-1", 1)); code != 200 {
		t.Fatalf("register: %d", code)
	}
	// Answer two pings, checking where they come from.
	buf := make([]byte, 65535)
	for i := 0; i < 2; i++ {
		ph.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := ph.conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("no keep-alive OPTIONS: %v", err)
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, "OPTIONS sip:ka-phone@") || from.String() != p.sip {
			t.Fatalf("ping %d from %s:\n%s", i, from, msg)
		}
		res := "SIP/2.0 200 OK\r\n"
		for _, line := range strings.Split(msg, "\r\n") {
			for _, h := range []string{"Via:", "From:", "To:", "Call-ID:", "CSeq:"} {
				if strings.HasPrefix(line, h) {
					res += line + "\r\n"
				}
			}
		}
		ph.conn.WriteToUDP([]byte(res+"Content-Length: 0\r\n\r\n"), from)
	}
	// Then go silent: the contact is dropped after a few missed pings.
	deadline := time.Now().Add(15 * time.Second)
	for p.do("GET", "/api/v1/registrations", admin, nil).want(t, 200).obj["total"].(float64) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("an unanswering contact was kept")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(p.Logs(), "contact stopped answering") {
		t.Fatal("dropping the contact was not logged")
	}
}

// TestSIPOverTLS: with --sip-tls-listen and --tls-self-signed, pbxd makes a
// certificate on the first start, keeps it afterwards, and answers SIP over
// TLS (here an OPTIONS ping and a REGISTER challenge).
func TestSIPOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"--sip-tls-listen", "127.0.0.1:0", "--tls-self-signed"}
	p := start(t, startOpts{dataDir: dir, env: []string{"PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}, args: args})
	addr := regexp.MustCompile(`"sip_tls":"([0-9.:]+)"`).FindStringSubmatch(p.Logs())
	if addr == nil {
		t.Fatalf("no TLS address in the ready line:\n%s", p.Logs())
	}
	crt, err := os.ReadFile(filepath.Join(dir, "tls", "sip.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(crt)
	conn, err := tls.Dial("tcp", addr[1], &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS handshake with the self-signed certificate: %v", err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	for _, m := range []struct{ method, want string }{{"OPTIONS", "SIP/2.0 200"}, {"REGISTER", "SIP/2.0 401"}} {
		msg := fmt.Sprintf("%s sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=z9hG4bK-tls-%s\r\nFrom: <sip:tls-phone@127.0.0.1>;tag=t1\r\n"+
			"To: <sip:tls-phone@127.0.0.1>\r\nCall-ID: tls-%s@127.0.0.1\r\nCSeq: 1 %s\r\nContact: <sip:tls-phone@%s;transport=tls>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			m.method, local, m.method, m.method, m.method, local)
		if _, err := conn.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 8192)
		n, err := conn.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), m.want) {
			t.Fatalf("%s over TLS: %v\n%s", m.method, err, buf[:n])
		}
	}
	if !strings.Contains(p.Logs(), "created a self-signed TLS certificate") {
		t.Fatal("creating the certificate was not logged")
	}
	p.Stop()
	// The second start keeps the certificate.
	q := start(t, startOpts{dataDir: dir, args: args})
	again, _ := os.ReadFile(filepath.Join(dir, "tls", "sip.crt"))
	if string(again) != string(crt) || strings.Contains(q.Logs(), "created a self-signed") {
		t.Fatal("the certificate was replaced on restart")
	}
}
