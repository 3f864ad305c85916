package api

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"pbxd/store"
)

// wsClient is a test WebSocket client; a goroutine reads all the time,
// answering the server's pings, and hands over data frames and the end.
type wsClient struct {
	t      *testing.T
	conn   net.Conn
	frames chan frameOrErr
}

type frameOrErr struct {
	data []byte
	err  error
}

func dialEvents(t *testing.T, base, query string, header http.Header) (*wsClient, error) {
	t.Helper()
	d := ws.Dialer{Timeout: 5 * time.Second}
	if header != nil {
		d.Header = ws.HandshakeHeaderHTTP(header)
	}
	conn, _, _, err := d.Dial(context.Background(), "ws"+strings.TrimPrefix(base, "http")+"/api/v1/events"+query)
	if err != nil {
		return nil, err
	}
	c := &wsClient{t: t, conn: conn, frames: make(chan frameOrErr, 100)}
	go func() {
		for {
			data, _, err := wsutil.ReadServerData(conn)
			c.frames <- frameOrErr{data, err}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return c, nil
}

// next reads the next event; a close frame comes back as wsutil.ClosedError.
func (c *wsClient) next(within time.Duration) (wsEvent, error) {
	c.t.Helper()
	var f frameOrErr
	select {
	case f = <-c.frames:
	case <-time.After(within):
		return wsEvent{}, errors.New("timeout")
	}
	if f.err != nil {
		return wsEvent{}, f.err
	}
	data := f.data
	var e wsEvent
	if err := json.Unmarshal(data, &e); err != nil {
		c.t.Fatalf("frame is not an event: %s", data)
	}
	return e, nil
}

// waitFor reads events until one of type typ.
func (c *wsClient) waitFor(typ string) wsEvent {
	c.t.Helper()
	for {
		e, err := c.next(5 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		if e.Type == typ {
			return e
		}
	}
}

// closedWith reads until the server closes and returns the close code.
func (c *wsClient) closedWith() ws.StatusCode {
	c.t.Helper()
	for {
		_, err := c.next(5 * time.Second)
		var ce wsutil.ClosedError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			c.t.Fatalf("socket ended without a close frame: %v", err)
		}
	}
}

func upgradeHeaders() map[string]string {
	return map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
}

func rawGet(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf [4096]byte
	n, _ := res.Body.Read(buf[:])
	return res, buf[:n]
}

func TestEventsWebSocket(t *testing.T) {
	pp := newPeopleWith(t, func(c *Config) { c.EventsPing = 100 * time.Millisecond })
	ts := pp.ts
	before := runtime.NumGoroutine() // the store's and the server's own
	hs := httptest.NewServer(ts.Handler())
	defer hs.Close()

	// Refusals are problem documents, before any upgrade.
	for _, tc := range []struct {
		name, query string
		hdr         map[string]string
		code        int
		typ         string
	}{
		{"no credentials", "", upgradeHeaders(), 401, ProbUnauthorized},
		{"bad access_token", "?access_token=pbxd_ses_nonsense", upgradeHeaders(), 401, ProbUnauthorized},
		{"agent for another", "?access_token=" + pp.agentTok + "&userId=" + pp.other, upgradeHeaders(), 403, ProbForbidden},
		{"unknown user", "?access_token=" + pp.supTok + "&userId=" + store.NewID(), upgradeHeaders(), 404, ProbNotFound},
		{"not a WebSocket", "?access_token=" + pp.agentTok, nil, 426, ProbWebSocketUpgrade},
		{"bad key", "?access_token=" + pp.agentTok, map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "short"}, 400, ProbBadRequest},
		{"old version", "?access_token=" + pp.agentTok, map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "8", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, 426, ProbWebSocketUpgrade},
		{"service user without userId", "?access_token=" + pp.ctrlTok, upgradeHeaders(), 400, ProbValidation},
		{"users:read service user", "?access_token=" + pp.readerTok + "&userId=" + pp.agent, upgradeHeaders(), 403, ProbForbidden},
		{"unknown parameter", "?access_token=" + pp.agentTok + "&x=1", upgradeHeaders(), 400, ProbValidation},
	} {
		res, body := rawGet(t, hs.URL+"/api/v1/events"+tc.query, tc.hdr)
		if res.StatusCode != tc.code || res.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), tc.typ) {
			t.Errorf("%s: %d %s %s", tc.name, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}

	// The agent listens to their own events with access_token.
	agent, err := dialEvents(t, hs.URL, "?access_token="+pp.agentTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The supervisor listens to the agent with the Authorization header.
	sup, err := dialEvents(t, hs.URL, "?userId="+pp.agent, http.Header{"Authorization": {"Bearer " + pp.supTok}})
	if err != nil {
		t.Fatal(err)
	}
	// A service user with calls:control too.
	cti, err := dialEvents(t, hs.URL, "?userId="+pp.agent+"&access_token="+pp.ctrlTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, ts, 4) // agent, supervisor (+ own sessions), cti
	if code, body := ts.do(t, "POST", "/api/v1/acd/login", pp.agentTok, map[string]any{"queues": []string{pp.queue}}); code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	for _, c := range []*wsClient{agent, sup, cti} {
		e := c.waitFor("acd.login")
		data, _ := e.Data.(map[string]any)
		if e.UserID != pp.agent || e.At != pp.clock.now().UnixMilli() || data["statusId"] != "available" {
			t.Fatalf("acd.login event %+v", e)
		}
		st := c.waitFor("status")
		if d := st.Data.(map[string]any); d["statusId"] != "available" || d["previousStatusId"] != "offline" {
			t.Fatalf("status event %+v", st)
		}
	}
	if code, _ := ts.do(t, "POST", "/api/v1/users/"+pp.agent+"/status", pp.supTok, map[string]any{"statusId": "break"}); code != 200 {
		t.Fatal(code)
	}
	e := agent.waitFor("status")
	if d := e.Data.(map[string]any); d["statusId"] != "break" || d["status"] != float64(2) || d["changedBy"] != pp.sup {
		t.Fatalf("status change seen by the agent: %+v", e)
	}
	// Pings keep an answering client alive past several intervals.
	time.Sleep(350 * time.Millisecond)
	if code, _ := ts.do(t, "POST", "/api/v1/users/"+pp.agent+"/status", pp.agentTok, map[string]any{"statusId": "available"}); code != 200 {
		t.Fatal(code)
	}
	agent.waitFor("status")

	// Refreshing the service user's token closes its socket at the next check.
	var suID string
	ts.st.View(func(tx *store.Tx) error {
		sus, _ := tx.ListServiceUsers()
		for _, su := range sus {
			if su.Name == "cti" {
				suID = su.ID
			}
		}
		return nil
	})
	if code, body := ts.do(t, "POST", "/api/v1/service-users/"+suID+"/token", ts.adminToken, nil); code != 200 {
		t.Fatalf("refresh: %d %s", code, body)
	}
	if code := cti.closedWith(); code != closePolicy {
		t.Fatalf("cti socket closed with %d", code)
	}
	// The supervisor logs out: their socket on the agent closes.
	if code, _ := ts.do(t, "POST", "/api/v1/logout", pp.supTok, nil); code != 204 {
		t.Fatal(code)
	}
	if code := sup.closedWith(); code != closePolicy {
		t.Fatalf("supervisor socket closed with %d", code)
	}
	// The agent's socket sees its session end, then closes.
	if code, _ := ts.do(t, "POST", "/api/v1/logout", pp.agentTok, nil); code != 204 {
		t.Fatal(code)
	}
	ended := agent.waitFor("session.ended")
	if d := ended.Data.(map[string]any); d["reason"] != "logout" {
		t.Fatalf("session.ended %+v", ended)
	}
	if code := agent.closedWith(); code != closePolicy {
		t.Fatalf("agent socket closed with %d", code)
	}
	waitSubscribers(t, ts, 0)

	// A client that never answers pings is dropped after two intervals.
	tok := ts.login(t, "other", "other-pass-1")
	raw, err := net.Dial("tcp", strings.TrimPrefix(hs.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	req := "GET /api/v1/events?access_token=" + tok + " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := raw.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, ts, 1)
	waitSubscribers(t, ts, 0)

	// Server shutdown closes open sockets with 1001.
	other, err := dialEvents(t, hs.URL, "?access_token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, ts, 1)
	closed := make(chan ws.StatusCode, 1)
	go func() { closed <- other.closedWith() }()
	ts.Server.Close()
	if code := <-closed; code != closeGoingAway {
		t.Fatalf("shutdown closed with %d", code)
	}
	hs.Close()
	deadline := time.Now().Add(3 * time.Second)
	// Server.Close also ended the flusher goroutine counted in before.
	for runtime.NumGoroutine() >= before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n >= before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestEventsForcedLogoutClosesSocket(t *testing.T) {
	pp := newPeopleWith(t, func(c *Config) { c.EventsPing = time.Hour })
	hs := httptest.NewServer(pp.ts.Handler())
	defer hs.Close()
	c, err := dialEvents(t, hs.URL, "?access_token="+pp.agentTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitSubscribers(t, pp.ts, 1)
	if code, _ := pp.ts.do(t, "POST", "/api/v1/acd/login", pp.agentTok, nil); code != 200 {
		t.Fatal(code)
	}
	c.waitFor("acd.login")
	if code, _ := pp.ts.do(t, "POST", "/api/v1/users/"+pp.agent+"/force-logout", pp.supTok, nil); code != 204 {
		t.Fatal(code)
	}
	out := c.waitFor("acd.logout")
	if d := out.Data.(map[string]any); d["reason"] != "forced" || d["changedBy"] != pp.sup {
		t.Fatalf("acd.logout %+v", out)
	}
	if d := c.waitFor("session.ended").Data.(map[string]any); d["reason"] != "forced" {
		t.Fatalf("session.ended %+v", d)
	}
	// Even with pings an hour apart, the socket closes at once.
	if code := c.closedWith(); code != closePolicy {
		t.Fatalf("closed with %d", code)
	}
}

// waitSubscribers waits until the bus has n subscriptions.
func waitSubscribers(t *testing.T, ts *testServer, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for ts.events.Stats().Subscribers != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want %d", ts.events.Stats().Subscribers, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
