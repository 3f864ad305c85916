package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// wsPhone is a browser SIP stack's view of pbxd: SIP messages in text
// frames over one WebSocket with the "sip" subprotocol.
type wsPhone struct {
	t    *testing.T
	conn net.Conn
}

func dialWS(t *testing.T, addr, origin string) (*wsPhone, error) {
	d := ws.Dialer{Protocols: []string{"sip"}, Timeout: 5 * time.Second}
	if origin != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Origin": []string{origin}})
	}
	conn, _, hs, err := d.Dial(context.Background(), "ws://"+addr)
	if err != nil {
		return nil, err
	}
	if hs.Protocol != "sip" {
		conn.Close()
		return nil, fmt.Errorf("subprotocol %q", hs.Protocol)
	}
	t.Cleanup(func() { conn.Close() })
	return &wsPhone{t: t, conn: conn}, nil
}

func (p *wsPhone) send(msg string) {
	p.t.Helper()
	if err := wsutil.WriteClientText(p.conn, []byte(msg)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *wsPhone) recv() string {
	p.t.Helper()
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := wsutil.ReadServerText(p.conn)
	if err != nil {
		p.t.Fatalf("no SIP message over the WebSocket: %v", err)
	}
	return string(b)
}

// register sends a REGISTER the way JsSIP does (a .invalid Via host and
// Contact, transport WS) with extra header lines.
func (p *wsPhone) register(cseq int, extra ...string) string {
	p.t.Helper()
	msg := strings.Join(append([]string{
		"REGISTER sip:127.0.0.1 SIP/2.0",
		fmt.Sprintf("Via: SIP/2.0/WS k3j8d0f2a1.invalid;branch=z9hG4bK%d%d", cseq, time.Now().UnixNano()),
		"Max-Forwards: 69",
		"To: <sip:ws-phone@127.0.0.1>",
		"From: <sip:ws-phone@127.0.0.1>;tag=wsph1",
		"Call-ID: ws-reg-1",
		fmt.Sprintf("CSeq: %d REGISTER", cseq),
		`Contact: <sip:q8x3fz1@k3j8d0f2a1.invalid;transport=ws>;+sip.ice;reg-id=1;+sip.instance="<urn:uuid:8a2f7d84-0000-4000-8000-000000000001>";expires=600`,
		"Expires: 600",
		"Supported: path,gruu,outbound",
		"User-Agent: JsSIP 3.13.8",
	}, extra...), "\r\n") + "\r\nContent-Length: 0\r\n\r\n"
	p.send(msg)
	for {
		res := p.recv()
		if !strings.HasPrefix(res, "SIP/2.0 1") {
			return res
		}
	}
}

// TestSIPOverWebSocket: a browser SIP stack registers over WebSocket with
// digest; the 200 echoes its Contact with expires; the binding records the
// WebSocket connection it came on. A page from another origin is refused,
// and a client that never finishes its handshake holds up nobody.
func TestSIPOverWebSocket(t *testing.T) {
	t.Parallel()
	b := startCallBox(t)
	uid := b.do("POST", "/api/v1/users", b.admin, map[string]any{"userName": "ws-user", "extension": "901"}).want(t, 201).str("id")
	b.addDevice(uid, "ws-phone")
	if b.sipWS == "" {
		t.Fatal("no SIP WebSocket address in the ready line")
	}
	// A silent TCP client that never sends its upgrade request.
	slow, err := net.Dial("tcp", b.sipWS)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()

	ph, err := dialWS(t, b.sipWS, "")
	if err != nil {
		t.Fatalf("WebSocket handshake: %v", err)
	}
	ch := ph.register(1)
	if !strings.HasPrefix(ch, "SIP/2.0 401") {
		t.Fatalf("challenge: %s", ch)
	}
	m := regexp.MustCompile(`nonce="([^"]+)"`).FindStringSubmatch(ch)
	if m == nil {
		t.Fatalf("no nonce:\n%s", ch)
	}
	resp := md5Hex(md5Hex("ws-phone:pbxd:pw-ws-phone") + ":" + m[1] + ":00000001:c1:auth:" + md5Hex("REGISTER:sip:127.0.0.1"))
	res := ph.register(2, fmt.Sprintf(`Authorization: Digest username="ws-phone", realm="pbxd", nonce="%s", uri="sip:127.0.0.1", response="%s", algorithm=MD5, cnonce="c1", qop=auth, nc=00000001`, m[1], resp))
	if !strings.HasPrefix(res, "SIP/2.0 200") || !regexp.MustCompile(`Contact: <sip:q8x3fz1@k3j8d0f2a1\.invalid;transport=ws>;expires=(59\d|600)`).MatchString(res) {
		t.Fatalf("register over WebSocket:\n%s", res)
	}
	regs := b.do("GET", "/api/v1/registrations", b.admin, nil).want(t, 200)
	if !strings.Contains(string(regs.raw), `"transport":"WS"`) || strings.Contains(string(regs.raw), `"source":"k3j8d0f2a1.invalid`) {
		t.Fatalf("the binding should record the WebSocket connection: %s", regs.raw)
	}

	// Pages from elsewhere are refused; the box's own origin is fine.
	if _, err := dialWS(t, b.sipWS, "https://evil.example"); err == nil {
		t.Error("a foreign origin opened a SIP WebSocket")
	}
	if _, err := dialWS(t, b.sipWS, "http://127.0.0.1:8080"); err != nil {
		t.Errorf("the box's own origin: %v", err)
	}
	// Not a WebSocket at all.
	c, err := net.Dial("tcp", b.sipWS)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 64)
	if n, _ := c.Read(buf); !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 400") {
		t.Errorf("a plain HTTP request got %q", buf[:n])
	}
	c.Close()
}
