package agents

import (
	"context"
	"sync"
	"time"

	"pbxd/media"
	"pbxd/media/webrtcleg"
	"pbxd/store"
)

// browserAnswerWait bounds how long the agent's page has to answer the
// connection offer; browserConnectWait how long ICE and DTLS may take.
const (
	browserAnswerWait  = 60 * time.Second
	browserConnectWait = 15 * time.Second
)

// connectBrowser rings the agent's browser: pbxd opens a WebRTC leg, sends
// its offer on the user's event stream ("connection.offer"), and the page
// answers with AnswerBrowser. The leg then is the agent's connection.
func (m *Manager) connectBrowser(u *store.User) error {
	if m.cfg.WebRTC == nil {
		return ErrNoBrowser
	}
	leg, err := m.cfg.WebRTC.Open(u.ID + "/agent")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	offer, err := leg.Offer(ctx)
	cancel()
	if err != nil {
		leg.Close()
		return err
	}
	m.mu.Lock()
	a := m.get(u.ID)
	if a.state != Disconnected || m.closed {
		m.mu.Unlock()
		leg.Close()
		return ErrAlreadyConnected
	}
	wait, stop := context.WithTimeout(context.Background(), browserAnswerWait)
	answered := make(chan []byte, 1)
	a.state, a.cancel, a.browser, a.answered = Connecting, stop, leg, answered
	a.gen++
	gen := a.gen
	m.wg.Add(1)
	m.mu.Unlock()
	m.publish(u.ID, "connection", map[string]any{"state": Connecting, "target": store.ConnectBrowser})
	m.publish(u.ID, "connection.offer", map[string]any{"type": "offer", "sdp": string(offer)})

	up := make(chan struct{})
	var once sync.Once
	bc := &browserConn{leg: leg, done: make(chan struct{})}
	leg.OnState(func(state string) {
		switch state {
		case webrtcleg.StateConnected:
			once.Do(func() { close(up) })
		case webrtcleg.StateFailed, webrtcleg.StateClosed:
			bc.end()
			m.connectionEnded(u.ID, "browser "+state)
		}
	})
	leg.OnTimeout(func() {
		bc.end()
		leg.Close()
		m.connectionEnded(u.ID, "media-timeout")
	})
	go func() {
		defer m.wg.Done()
		defer stop()
		fail := func(reason string) {
			leg.Close()
			m.mu.Lock()
			if a.gen == gen && a.state == Connecting {
				a.state, a.cancel, a.browser, a.answered = Disconnected, nil, nil, nil
			}
			m.mu.Unlock()
			m.publish(u.ID, "connection", map[string]any{"state": Disconnected, "reason": reason})
		}
		select {
		case sdp := <-answered:
			if err := leg.SetAnswer(sdp); err != nil {
				fail("bad answer")
				return
			}
		case <-wait.Done():
			fail("no answer")
			return
		}
		select {
		case <-up:
		case <-time.After(browserConnectWait):
			fail("no media connection")
			return
		case <-wait.Done():
			fail("cancelled")
			return
		}
		m.mu.Lock()
		if a.gen != gen || a.state != Connecting {
			m.mu.Unlock()
			leg.Close()
			return
		}
		a.browser, a.answered = nil, nil
		m.connectedLocked(a, bc)
		m.mu.Unlock()
		m.log.Info("agent connected", "user", u.ID, "target", store.ConnectBrowser)
		m.publish(u.ID, "connection", map[string]any{"state": Connected, "target": store.ConnectBrowser})
	}()
	return nil
}

// AnswerBrowser takes the agent's page's SDP answer to the connection
// offer.
func (m *Manager) AnswerBrowser(userID string, sdp []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.agents[userID]
	if a == nil || a.state != Connecting || a.answered == nil {
		return ErrNoOffer
	}
	select {
	case a.answered <- sdp:
		a.answered = nil
		return nil
	default:
		return ErrNoOffer
	}
}

// browserConn is an agent's browser as a connection.
type browserConn struct {
	leg  *webrtcleg.Leg
	once sync.Once
	done chan struct{}
}

func (b *browserConn) Media() media.Leg { return b.leg }

func (b *browserConn) HangupBy(string) {
	b.end()
	b.leg.Close()
}

func (b *browserConn) Done() <-chan struct{} { return b.done }

func (b *browserConn) end() { b.once.Do(func() { close(b.done) }) }
