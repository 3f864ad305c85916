package agents

import (
	"context"
	"time"

	"pbxd/media"
	"pbxd/pbx/b2bua"
	"pbxd/store"
)

// connectRing bounds how long the agent's phone may ring.
const connectRing = 60 * time.Second

// Connect places the connection to the agent's phone (connectToServer):
// pbxd calls the user's registered devices, asking them to answer by
// themselves, and keeps that leg up. It returns at once; the connection
// state arrives as events and in State.
func (m *Manager) Connect(userID, target string) error {
	var u *store.User
	if err := m.cfg.Store.View(func(tx *store.Tx) (err error) { u, err = tx.GetUser(userID); return err }); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	a := m.get(userID)
	if a.state != Disconnected {
		m.mu.Unlock()
		return ErrAlreadyConnected
	}
	if target == "" {
		target = u.ConnectTarget()
	}
	if target == store.ConnectBrowser {
		m.mu.Unlock()
		return m.connectBrowser(u)
	}
	ctx, cancel := context.WithTimeout(context.Background(), connectRing)
	a.state, a.cancel = Connecting, cancel
	a.gen++
	gen := a.gen
	m.wg.Add(1)
	m.mu.Unlock()
	m.publish(userID, "connection", map[string]any{"state": Connecting})

	req := connectionTarget(u, target)
	req.Role, req.AutoAnswer = "agent", true
	req.OnEnd = func(reason string) { m.connectionEnded(userID, reason) }
	go func() {
		defer m.wg.Done()
		defer cancel()
		placed, err := m.cfg.Calls.Originate(ctx, req)
		m.mu.Lock()
		if err != nil {
			if a.gen == gen && a.state == Connecting {
				a.state, a.cancel = Disconnected, nil
			}
			m.mu.Unlock()
			reason := "failed"
			if ce, ok := err.(*b2bua.CallError); ok {
				reason = ce.Reason
			}
			m.log.Info("agent connection failed", "user", userID, "err", err)
			m.publish(userID, "connection", map[string]any{"state": Disconnected, "reason": reason})
			return
		}
		if a.gen != gen || a.state != Connecting {
			// Disconnected while the phone was answering.
			m.mu.Unlock()
			placed.Hangup()
			return
		}
		m.connectedLocked(a, placed)
		m.mu.Unlock()
		m.log.Info("agent connected", "user", userID)
		m.publish(userID, "connection", map[string]any{"state": Connected})
	}()
	return nil
}

// connectedLocked makes c the agent's connection; m.mu is held.
func (m *Manager) connectedLocked(a *agent, c connLeg) {
	a.state, a.cancel, a.conn = Connected, nil, c
	a.bridge = media.NewBridge(media.BridgeConfig{Clock: m.cfg.MixClock})
	a.bridge.Add(c.Media())
	a.out, a.muted = false, false
}

// connectionTarget is what connectToServer calls: the user's registered
// devices (the default), or an external number through a trunk.
func connectionTarget(u *store.User, target string) b2bua.OriginateRequest {
	r := b2bua.OriginateRequest{UserID: u.ID, FromNumber: "pbxd", FromName: "pbxd"}
	if target == store.ConnectNumber && u.ConnectNumber != "" {
		r.UserID, r.Number = "", u.ConnectNumber
	}
	return r
}

// Disconnect hangs up the agent's connection and every call the agent is
// in (disconnectFromServer); a supervisor's monitoring ends too.
func (m *Manager) Disconnect(userID string) error {
	m.mu.Lock()
	a := m.agents[userID]
	if a == nil || a.state == Disconnected {
		m.mu.Unlock()
		return ErrNotConnected
	}
	var hang []*b2bua.Placed
	if a.cancel != nil {
		a.cancel()
		a.cancel = nil
	}
	if a.browser != nil {
		a.browser.Close()
		a.browser, a.answered = nil, nil
	}
	conn := a.conn
	more, ended := m.teardown(a)
	hang = append(hang, more...)
	m.mu.Unlock()
	m.publishMonitoringEnded(ended)
	for _, p := range hang {
		p.HangupBy("agent")
	}
	if conn != nil {
		conn.HangupBy("agent")
	}
	m.publish(userID, "connection", map[string]any{"state": Disconnected, "reason": "disconnected"})
	return nil
}

// connectionEnded handles a connection leg that ended by itself (the
// agent hung up the phone, its media stopped): state goes disconnected,
// the agent's calls end.
func (m *Manager) connectionEnded(userID, reason string) {
	m.mu.Lock()
	a := m.agents[userID]
	if a == nil || a.state != Connected {
		m.mu.Unlock()
		return
	}
	hang, ended := m.teardown(a)
	m.mu.Unlock()
	m.publishMonitoringEnded(ended)
	for _, p := range hang {
		p.HangupBy("system")
	}
	m.log.Info("agent connection dropped", "user", userID, "reason", reason)
	m.publish(userID, "connection", map[string]any{"state": Disconnected, "reason": reason})
}

// teardown resets an agent to disconnected and returns the calls to hang
// up (outside m.mu: hanging up calls back into the manager). Monitoring
// in either direction ends; ended lists it, for the events.
func (m *Manager) teardown(a *agent) (hang []*b2bua.Placed, ended []monitoring) {
	for id, c := range a.calls {
		if c.cancel != nil {
			c.cancel()
		}
		if c.placed != nil {
			hang = append(hang, c.placed)
		}
		delete(a.calls, id)
	}
	if a.watching != "" {
		ended = append(ended, monitoring{a.id, a.watching})
		m.stopWatchingLocked(a)
	}
	for sup := range a.watchers {
		if s := m.agents[sup]; s != nil {
			ended = append(ended, monitoring{sup, a.id})
			m.stopWatchingLocked(s)
		}
	}
	if a.bridge != nil {
		a.bridge.Close()
		a.bridge = nil
	}
	a.state, a.conn, a.out, a.muted = Disconnected, nil, false, false
	return hang, ended
}
