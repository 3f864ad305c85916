package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// eventSocket is a WebSocket client of GET /api/v1/events: a goroutine
// reads all the time (answering pbxd's pings) and hands over the events
// and how the socket ended.
type eventSocket struct {
	t      *testing.T
	conn   net.Conn
	frames chan socketFrame
}

type socketFrame struct {
	event map[string]any
	err   error
}

// dialSocket opens the events WebSocket; a refused handshake comes back as
// the HTTP status (ws.StatusError).
func (p *proc) dialSocket(t *testing.T, query string, header http.Header) (*eventSocket, error) {
	t.Helper()
	d := ws.Dialer{Timeout: 5 * time.Second}
	if header != nil {
		d.Header = ws.HandshakeHeaderHTTP(header)
	}
	conn, _, _, err := d.Dial(context.Background(), "ws"+strings.TrimPrefix(p.base, "http")+"/api/v1/events"+query)
	if err != nil {
		return nil, err
	}
	s := &eventSocket{t: t, conn: conn, frames: make(chan socketFrame, 64)}
	go func() {
		for {
			data, _, err := wsutil.ReadServerData(conn)
			if err != nil {
				s.frames <- socketFrame{err: err}
				return
			}
			var e map[string]any
			if err := json.Unmarshal(data, &e); err != nil {
				s.frames <- socketFrame{err: err}
				return
			}
			s.frames <- socketFrame{event: e}
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return s, nil
}

// waitFor returns the next event of type typ (skipping others).
func (s *eventSocket) waitFor(typ string) map[string]any {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-s.frames:
			if f.err != nil {
				s.t.Fatalf("waiting for %s: %v", typ, f.err)
			}
			if f.event["type"] == typ {
				return f.event
			}
		case <-deadline:
			s.t.Fatalf("no %s event", typ)
		}
	}
}

// closeCode waits for the server's close frame and returns its code.
func (s *eventSocket) closeCode() ws.StatusCode {
	s.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-s.frames:
			var ce wsutil.ClosedError
			if errors.As(f.err, &ce) {
				return ce.Code
			}
			if f.err != nil {
				s.t.Fatalf("socket ended without a close frame: %v", f.err)
			}
		case <-deadline:
			s.t.Fatal("the socket stayed open")
		}
	}
}

// TestEventsWebSocket: an agent's browser connects with access_token and
// receives their ACD and status events as JSON text frames; a supervisor
// watches the same agent with the Authorization header; an agent may not
// watch another; logging out closes the socket; the token never reaches
// the log.
func TestEventsWebSocket(t *testing.T) {
	t.Parallel()
	b := startACDBox(t, "")
	agent, err := b.dialSocket(t, "?access_token="+b.agentTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := b.dialSocket(t, "?userId="+b.agent, http.Header{"Authorization": {"Bearer " + b.supTok}})
	if err != nil {
		t.Fatal(err)
	}
	cti, err := b.dialSocket(t, "?userId="+b.agent+"&access_token="+b.cti, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Refused handshakes are HTTP answers, not sockets.
	_, err = b.dialSocket(t, "?userId="+b.other+"&access_token="+b.agentTok, nil)
	if se, ok := err.(ws.StatusError); !ok || int(se) != 403 {
		t.Fatalf("an agent watching another: %v", err)
	}
	if _, err = b.dialSocket(t, "?access_token=pbxd_ses_wrong", nil); err == nil || err.(ws.StatusError) != 401 {
		t.Fatalf("a bad token: %v", err)
	}
	wantProblem(t, b.do("GET", "/api/v1/events?userId="+b.other, b.agentTok, nil), 403, "urn:pbxd:problem:forbidden")
	r := b.do("GET", "/api/v1/events", b.agentTok, nil)
	wantProblem(t, r, 426, "urn:pbxd:problem:websocket-upgrade-required")
	if r.header.Get("Upgrade") != "websocket" {
		t.Errorf("426 without Upgrade: %v", r.header)
	}

	b.do("POST", "/api/v1/acd/login", b.agentTok, map[string]any{"status": map[string]any{"status": 1, "statusId": "available"}}).want(t, 200)
	for _, s := range []*eventSocket{agent, sup, cti} {
		e := s.waitFor("acd.login")
		if e["userId"] != b.agent || e["at"].(float64) == 0 || e["data"].(map[string]any)["statusId"] != "available" {
			t.Fatalf("acd.login: %v", e)
		}
	}
	b.do("POST", "/api/v1/users/"+b.agent+"/status", b.supTok, map[string]any{"statusId": "break"}).want(t, 200)
	for _, s := range []*eventSocket{agent, sup} {
		var e map[string]any
		for e == nil || e["data"].(map[string]any)["statusId"] != "break" {
			e = s.waitFor("status")
		}
		d := e["data"].(map[string]any)
		if d["status"] != float64(2) || d["changedBy"] != b.sup || d["previousStatusId"] != "available" {
			t.Fatalf("status event: %v", e)
		}
	}
	// Logging out of the ACD is an event; logging out of the session ends
	// the socket with 1008 (policy violation).
	b.do("POST", "/api/v1/acd/logout", b.agentTok, nil).want(t, 204)
	if d := agent.waitFor("acd.logout")["data"].(map[string]any); d["reason"] != "logout" {
		t.Fatalf("acd.logout: %v", d)
	}
	b.do("POST", "/api/v1/logout", b.agentTok, nil).want(t, 204)
	agent.waitFor("session.ended")
	if code := agent.closeCode(); code != 1008 {
		t.Fatalf("agent socket closed with %d", code)
	}
	// The supervisor's socket on the agent is untouched by that.
	b.do("POST", "/api/v1/acd/login?userId="+b.agent, b.supTok, nil).want(t, 200)
	sup.waitFor("acd.login")
	// Refreshing the service user's token closes its socket at the next
	// check of its credentials (within seconds).
	b.do("POST", "/api/v1/service-users/"+b.ctiID+"/token", b.admin, nil).want(t, 200)
	if code := cti.closeCode(); code != 1008 {
		t.Fatalf("cti socket closed with %d", code)
	}
	// The supervisor logs out: closed.
	b.do("POST", "/api/v1/logout", b.supTok, nil).want(t, 204)
	if code := sup.closeCode(); code != 1008 {
		t.Fatalf("supervisor socket closed with %d", code)
	}
	for _, tok := range []string{b.agentTok, b.supTok, b.cti} {
		if strings.Contains(b.Logs(), tok) {
			t.Fatal("a token reached the log")
		}
	}
}

// TestEventsSocketClosesOnForcedLogoutAndShutdown: force-logout closes the
// agent's socket at once; SIGTERM closes the open ones with 1001 and pbxd
// still exits cleanly.
func TestEventsSocketClosesOnForcedLogoutAndShutdown(t *testing.T) {
	t.Parallel()
	b := startACDBox(t, "")
	agent, err := b.dialSocket(t, "?access_token="+b.agentTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := b.dialSocket(t, "?access_token="+b.otherTok, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.do("POST", "/api/v1/acd/login", b.agentTok, nil).want(t, 200)
	agent.waitFor("acd.login")
	b.do("POST", "/api/v1/users/"+b.agent+"/force-logout", b.supTok, nil).want(t, 204)
	if d := agent.waitFor("acd.logout")["data"].(map[string]any); d["reason"] != "forced" {
		t.Fatalf("acd.logout: %v", d)
	}
	if code := agent.closeCode(); code != 1008 {
		t.Fatalf("closed with %d", code)
	}
	done := make(chan ws.StatusCode, 1)
	go func() { done <- other.closeCode() }()
	b.Stop()
	if code := <-done; code != 1001 {
		t.Fatalf("shutdown closed the socket with %d", code)
	}
}
