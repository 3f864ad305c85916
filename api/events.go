package api

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"pbxd/pbx/events"
	"pbxd/store"
)

// Limits of the events WebSocket.
const (
	// wsWriteWait bounds every frame written to the client.
	wsWriteWait = 10 * time.Second
	// wsMaxFrame bounds what a client may send (it has nothing to say
	// beyond control frames).
	wsMaxFrame = 4096
	// wsCloseWait is how long the server waits for the client's close
	// frame after sending its own.
	wsCloseWait = 2 * time.Second
	// wsRecheck is the longest a socket goes without re-checking its
	// credentials (a refreshed service-user token, an expired session);
	// ended sessions are announced on the bus and close it at once.
	wsRecheck = 5 * time.Second
)

// WebSocket close codes pbxd sends (RFC 6455 §7.4).
const (
	closeNormal        ws.StatusCode = 1000
	closeGoingAway     ws.StatusCode = 1001
	closeProtocol      ws.StatusCode = 1002
	closePolicy        ws.StatusCode = 1008
	closeTooBig        ws.StatusCode = 1009
	closeTryAgainLater ws.StatusCode = 1013
)

// wsEvent is one event as a JSON text frame; at is epoch ms.
type wsEvent struct {
	Type   string `json:"type"`
	UserID string `json:"userId"`
	At     int64  `json:"at"`
	Data   any    `json:"data,omitempty"`
}

// canWatch: users watch their own events; supervisors, admins and service
// users with calls:control anyone's.
func canWatch(p *Principal, uid string) bool {
	return p.IsSelf(uid) || isSupervisor(p) || (p.Kind == KindService && p.Can(store.ScopeCallsControl))
}

// wsHandshakeProblem checks the upgrade request before the connection is
// hijacked, so that every refusal is still a problem document.
func wsHandshakeProblem(w http.ResponseWriter, r *http.Request) *Problem {
	upgrade := func() *Problem {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Sec-WebSocket-Version", "13")
		return agentProblem(http.StatusUpgradeRequired, ProbWebSocketUpgrade,
			"this is a WebSocket (RFC 6455, version 13): send GET with Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Key and Sec-WebSocket-Version: 13")
	}
	if r.Method != http.MethodGet || !headerHasToken(r.Header, "Upgrade", "websocket") || !headerHasToken(r.Header, "Connection", "upgrade") {
		return upgrade()
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		return upgrade()
	}
	key, err := base64.StdEncoding.DecodeString(r.Header.Get("Sec-WebSocket-Key"))
	if err != nil || len(key) != 16 {
		return badRequest("Sec-WebSocket-Key must be 16 random bytes in base64")
	}
	return nil
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// handleEvents streams a user's events over a WebSocket. It checks who may
// watch whom and the handshake first (problems are ordinary 4xx answers),
// then upgrades and forwards every event of the user as a text frame. The
// server pings every Config.EventsPing and drops a client that stays
// silent for two intervals; it re-checks the caller's session or token
// every few seconds (wsRecheck) and at once when the user's sessions end,
// and closes the socket (1008) when it is no longer valid. Server shutdown closes with
// 1001, a subscriber that fell behind with 1013 after an overflow event.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := noQuery(r, "userId", "access_token"); prob != nil {
		return prob
	}
	uid := r.URL.Query().Get("userId")
	switch {
	case uid == "" && p.Kind != KindUser:
		return invalid("userId", "a service user must say whose events it listens to")
	case uid == "":
		uid = p.ID
	case !store.ValidID(uid):
		return invalid("userId", "is not a user id")
	}
	if !canWatch(p, uid) {
		return forbidden("agents listen to their own events only; supervisors and admins to anyone's")
	}
	if err := s.st.View(func(tx *store.Tx) error { _, err := tx.GetUser(uid); return err }); err != nil {
		return respond(w, err, "user "+uid, 0, nil)
	}
	if prob := wsHandshakeProblem(w, r); prob != nil {
		return prob
	}
	s.sockMu.Lock()
	if s.sockClosed {
		s.sockMu.Unlock()
		return problem(http.StatusServiceUnavailable, ProbServiceUnavailable, "shutting down")
	}
	s.sockets.Add(1)
	s.sockMu.Unlock()
	defer s.sockets.Done()

	// Subscribe before the handshake answer, so nothing published after
	// the client sees 101 is missed.
	sub := s.events.Subscribe(uid)
	defer sub.Close()
	var own <-chan events.Event
	if p.Kind == KindUser && uid != p.ID {
		// The caller's own session events, to close when it ends.
		ownSub := s.events.Subscribe(p.ID)
		defer ownSub.Close()
		own = ownSub.Events()
	}
	conn, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		// The connection is hijacked (or broken): no problem document
		// can be sent any more.
		s.log.Debug("events: upgrade failed", "err", err)
		if conn != nil {
			conn.Close()
		}
		return nil
	}
	c := &wsConn{conn: conn, br: rw.Reader}
	s.serveSocket(c, p, uid, sub, own)
	return nil
}

// wsConn writes frames one at a time: the event loop and the reader's
// pong answers share it.
type wsConn struct {
	conn net.Conn
	br   *bufio.Reader
	mu   sync.Mutex
}

func (c *wsConn) write(op ws.OpCode, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.conn.SetWriteDeadline(time.Now().Add(wsWriteWait)); err != nil {
		return err
	}
	return ws.WriteFrame(c.conn, ws.NewFrame(op, true, payload))
}

// readResult is how the client's side of the socket ended.
type readResult struct {
	// closed is true when the client sent a close frame with code.
	closed bool
	code   ws.StatusCode
	err    error
}

// readLoop reads the client's frames: it answers pings, ignores pongs and
// messages (their arrival proves the client alive), and ends at the
// client's close frame, a protocol error, silence or a broken connection.
func (c *wsConn) readLoop(pongWait time.Duration, done chan<- readResult) {
	state := ws.StateServerSide
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			done <- readResult{err: err}
			return
		}
		if err := ws.CheckHeader(h, state); err != nil {
			done <- readResult{closed: true, code: closeProtocol, err: err}
			return
		}
		if h.Length > wsMaxFrame {
			done <- readResult{closed: true, code: closeTooBig, err: errors.New("frame too large")}
			return
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			done <- readResult{err: err}
			return
		}
		ws.Cipher(payload, h.Mask, 0)
		_ = c.conn.SetReadDeadline(time.Now().Add(pongWait))
		switch {
		case h.OpCode == ws.OpPing:
			if err := c.write(ws.OpPong, payload); err != nil {
				done <- readResult{err: err}
				return
			}
		case h.OpCode == ws.OpClose:
			code, _ := ws.ParseCloseFrameData(payload)
			if code.Empty() {
				code = closeNormal
			}
			done <- readResult{closed: true, code: code}
			return
		case h.OpCode.IsData() && !h.Fin:
			state = state.Set(ws.StateFragmented)
		case h.OpCode == ws.OpContinuation && h.Fin:
			state = state.Clear(ws.StateFragmented)
		}
	}
}

// serveSocket runs one events WebSocket until it ends.
func (s *Server) serveSocket(c *wsConn, p *Principal, uid string, sub *events.Subscription, own <-chan events.Event) {
	ping := s.cfg.EventsPing
	_ = c.conn.SetReadDeadline(time.Now().Add(2 * ping))
	done := make(chan readResult, 1)
	go c.readLoop(2*ping, done)
	readEnded := false
	defer func() {
		c.conn.Close()
		if !readEnded {
			<-done
		}
	}()
	// closeWith sends a close frame and gives the client a moment to
	// answer with its own.
	closeWith := func(code ws.StatusCode, reason string) {
		if c.write(ws.OpClose, ws.NewCloseFrameBody(code, reason)) == nil && !readEnded {
			select {
			case <-done:
				readEnded = true
			case <-time.After(wsCloseWait):
			}
		}
	}
	send := func(e events.Event) bool {
		b, err := json.Marshal(wsEvent{Type: e.Type, UserID: e.UserID, At: ms(e.At), Data: e.Data})
		if err != nil {
			s.log.Error("events: unencodable event", "type", e.Type, "err", err)
			return true
		}
		return c.write(ws.OpText, b) == nil
	}
	// valid re-reads the caller's credentials and permission.
	valid := func() bool {
		np, ok := s.stillValid(p)
		return ok && canWatch(np, uid)
	}
	ticker := time.NewTicker(ping)
	defer ticker.Stop()
	recheck := time.NewTicker(min(ping, wsRecheck))
	defer recheck.Stop()
	log := s.log.With("user_id", uid, "watcher", p.ID)
	log.Debug("events: socket open")
	for {
		select {
		case e, ok := <-sub.Events():
			if !ok {
				if sub.Overflowed() {
					closeWith(closeTryAgainLater, "fell behind; reconnect")
				} else {
					closeWith(closeGoingAway, "closing")
				}
				return
			}
			if !send(e) {
				return
			}
			if e.Type == events.TypeSessionEnded && !valid() {
				closeWith(closePolicy, "session ended")
				return
			}
		case e, ok := <-own:
			if !ok {
				own = nil
				continue
			}
			if e.Type == events.TypeSessionEnded && !valid() {
				closeWith(closePolicy, "session ended")
				return
			}
		case <-recheck.C:
			if !valid() {
				closeWith(closePolicy, "session ended")
				return
			}
		case <-ticker.C:
			if c.write(ws.OpPing, nil) != nil {
				return
			}
		case res := <-done:
			readEnded = true
			if res.closed {
				_ = c.write(ws.OpClose, ws.NewCloseFrameBody(res.code, ""))
			}
			log.Debug("events: socket closed by the client", "code", int(res.code))
			return
		case <-s.stop:
			closeWith(closeGoingAway, "server shutting down")
			return
		}
	}
}

// stillValid re-reads a principal's credentials: the session must still
// exist, not be expired, and belong to an enabled user; a service user's
// token must not have been refreshed or deleted. It returns the principal
// with the roles and permissions as they are now.
func (s *Server) stillValid(p *Principal) (*Principal, bool) {
	var np *Principal
	err := s.st.View(func(tx *store.Tx) error {
		switch p.Kind {
		case KindUser:
			se, err := tx.GetSession(p.SessionID)
			if err != nil {
				return err
			}
			if !se.ExpiresAt.After(s.now()) {
				return store.ErrNotFound
			}
			u, err := tx.GetUser(se.UserID)
			if err != nil {
				return err
			}
			if !u.Enabled {
				return store.ErrNotFound
			}
			np = &Principal{Kind: KindUser, ID: u.ID, Name: u.UserName, User: u, SessionID: se.ID, scopes: userScopes(u)}
		case KindService:
			su, err := tx.GetServiceUser(p.ID)
			if err != nil {
				return err
			}
			if su.TokenHash != p.Service.TokenHash {
				return store.ErrNotFound
			}
			np = &Principal{Kind: KindService, ID: su.ID, Name: su.Name, Service: su, scopes: su.Permissions}
		default:
			return store.ErrNotFound
		}
		return nil
	})
	return np, err == nil
}
