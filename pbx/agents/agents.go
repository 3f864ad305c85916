// Package agents is the contact-center call runtime: an agent's
// connection to the box (pbxd calls the agent's phone and keeps that leg
// up), the calls the agent places over it, mute, conferences, supervisor
// monitoring (listen, coach, join) and ending calls. Every operation acts
// on real audio: the agent's leg and the customers' legs meet in one media
// bridge per agent, which forwards or mixes as the parties require.
package agents

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"pbxd/media"
	"pbxd/media/webrtcleg"
	"pbxd/pbx/b2bua"
	"pbxd/store"
)

// Config wires the manager.
type Config struct {
	Store *store.Store
	Calls *b2bua.Engine
	// WebRTC opens connections to agents' browsers (the phone page); nil
	// means browsers cannot be a connection target.
	WebRTC *webrtcleg.Engine
	// MixClock drives the agents' bridges when they mix.
	MixClock *media.MixClock
	// Publish, when set, reports state changes to a user's event stream.
	// It must not block.
	Publish func(userID, typ string, data any)
	Logger  *slog.Logger
	Now     func() time.Time
}

// Connection states.
const (
	Disconnected = "disconnected"
	Connecting   = "connecting"
	Connected    = "connected"
)

// Errors the API maps to problem types.
var (
	ErrNotConnected     = errors.New("agents: not connected to the server")
	ErrAlreadyConnected = errors.New("agents: already connected or connecting")
	ErrNoWorkitem       = errors.New("agents: no such call")
	ErrNotInConference  = errors.New("agents: not in a conference")
	ErrBusy             = errors.New("agents: already in a call")
	ErrSelf             = errors.New("agents: a supervisor cannot monitor themselves")
	ErrMonitoring       = errors.New("agents: not monitoring")
	ErrClosed           = errors.New("agents: shutting down")
	ErrNoBrowser        = errors.New("agents: browsers cannot connect on this server")
	ErrNoOffer          = errors.New("agents: no connection offer is waiting for an answer")
)

// Manager holds every agent's live state.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	agents map[string]*agent
	closed bool
	wg     sync.WaitGroup
}

// agent is one user's live call state.
type agent struct {
	id    string
	state string
	// conn is the answered connection leg; cancel stops one still ringing.
	conn   connLeg
	cancel context.CancelFunc
	// browser is the WebRTC leg offered to the agent's browser, waiting
	// for its answer; answered receives the answer.
	browser  *webrtcleg.Leg
	answered chan []byte
	// gen counts connection attempts, so a late answer to an abandoned
	// one is not taken for the current one.
	gen int
	// bridge joins the agent's leg, the customers' and monitoring
	// supervisors'. out is true after exitConference (the agent's leg is
	// taken out, the others go on talking).
	bridge *media.Bridge
	out    bool
	muted  bool
	calls  map[string]*custCall
	// watching is the agent this supervisor monitors; watchers are the
	// supervisors monitoring this agent, with their mode.
	watching string
	mode     string
	watchers map[string]string
}

// connLeg is the agent's connection: a call pbxd placed to the agent's
// phone, or the agent's browser.
type connLeg interface {
	Media() media.Leg
	HangupBy(by string)
	Done() <-chan struct{}
}

// custCall is a call an agent placed: ringing until placed is set.
type custCall struct {
	id     string
	to     string
	placed *b2bua.Placed
	cancel context.CancelFunc
}

// New returns a manager.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{cfg: cfg, log: cfg.Logger, agents: map[string]*agent{}}
}

func (m *Manager) publish(userID, typ string, data any) {
	if m.cfg.Publish != nil {
		m.cfg.Publish(userID, typ, data)
	}
}

// get returns the agent record, making it; m.mu is held.
func (m *Manager) get(id string) *agent {
	a := m.agents[id]
	if a == nil {
		a = &agent{id: id, state: Disconnected, calls: map[string]*custCall{}, watchers: map[string]string{}}
		m.agents[id] = a
	}
	return a
}

// State is what an agent's session shows.
type State struct {
	Connection   string
	InMute       bool
	InConference bool
	Workitems    []string
	// Watching is the agent a supervisor monitors, with the mode.
	Watching, Mode string
}

// State reports a user's live state.
func (m *Manager) State(userID string) State {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.agents[userID]
	if a == nil {
		return State{Connection: Disconnected}
	}
	st := State{Connection: a.state, InMute: a.muted, InConference: a.inConference(), Watching: a.watching, Mode: a.mode}
	for id := range a.calls {
		st.Workitems = append(st.Workitems, id)
	}
	return st
}

// inConference: the agent's leg is in a bridge with two or more others.
func (a *agent) inConference() bool {
	if a.out {
		return false
	}
	n := 0
	for _, c := range a.calls {
		if c.placed != nil {
			n++
		}
	}
	return n >= 2
}

// answeredCalls counts the agent's calls that are up.
func (a *agent) answeredCalls() int {
	n := 0
	for _, c := range a.calls {
		if c.placed != nil {
			n++
		}
	}
	return n
}

// Close hangs up every connection and call and waits for the calls in
// setup to give up.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	ids := make([]string, 0, len(m.agents))
	for id := range m.agents {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		_ = m.Disconnect(id)
	}
	m.wg.Wait()
}
