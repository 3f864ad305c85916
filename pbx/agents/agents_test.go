package agents

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"pbxd/media"
)

// fakeLeg is a media leg with no sockets: the manager's state machine is
// tested on which bridge holds which leg, in which role; the bridge's
// audio routing has its own tests in media.
type fakeLeg struct{ id string }

func (l *fakeLeg) ID() string                 { return l.id }
func (l *fakeLeg) Codec() media.Codec         { return media.PCMU }
func (l *fakeLeg) EventPayloadType() uint8    { return 101 }
func (l *fakeLeg) SetReceiver(media.Receiver) {}
func (l *fakeLeg) Send(*media.Frame) error    { return nil }
func (l *fakeLeg) Stats() media.Stats         { return media.Stats{} }
func (l *fakeLeg) Close() error               { return nil }
func (c *fakeConn) Media() media.Leg          { return c.leg }
func (c *fakeConn) HangupBy(by string)        { c.mu.Lock(); c.by = by; c.mu.Unlock() }
func (c *fakeConn) Done() <-chan struct{}     { return c.done }
func (c *fakeConn) hungUpBy() string          { c.mu.Lock(); defer c.mu.Unlock(); return c.by }
func newFakeConn(id string) *fakeConn         { return &fakeConn{leg: &fakeLeg{id}, done: make(chan struct{})} }
func (r *recorder) publish(u, t string, d any) {
	r.mu.Lock()
	r.ev = append(r.ev, u+" "+t)
	r.mu.Unlock()
}
func (r *recorder) has(u, t string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.ev, u+" "+t)
}
func (r *recorder) reset() { r.mu.Lock(); r.ev = nil; r.mu.Unlock() }

type fakeConn struct {
	leg  *fakeLeg
	done chan struct{}
	mu   sync.Mutex
	by   string
}

type recorder struct {
	mu sync.Mutex
	ev []string
}

// connected returns a manager with the given users connected over fake
// connection legs.
func connected(t *testing.T, ids ...string) (*Manager, map[string]*fakeConn, *recorder) {
	t.Helper()
	rec := &recorder{}
	m := New(Config{Publish: rec.publish})
	conns := map[string]*fakeConn{}
	m.mu.Lock()
	for _, id := range ids {
		c := newFakeConn(id)
		m.connectedLocked(m.get(id), c)
		conns[id] = c
	}
	m.mu.Unlock()
	t.Cleanup(m.Close)
	return m, conns, rec
}

func bridgeOf(m *Manager, id string) *media.Bridge {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.agents[id].bridge
}

func holds(b *media.Bridge, l media.Leg) bool { return slices.Contains(b.Legs(), l) }

func TestOperationsNeedAConnection(t *testing.T) {
	m, _, _ := connected(t, "sup")
	for name, err := range map[string]error{
		"mute":            m.Mute("agent", true),
		"exitConference":  m.ExitConference("agent"),
		"enterConference": m.EnterConference("agent"),
		"disconnect":      m.Disconnect("agent"),
		"monitor":         m.Monitor("sup", "agent", Listen),
	} {
		if !errors.Is(err, ErrNotConnected) {
			t.Errorf("%s while disconnected: %v, want ErrNotConnected", name, err)
		}
	}
	if err := m.Monitor("sup", "sup", Listen); !errors.Is(err, ErrSelf) {
		t.Errorf("monitoring oneself: %v", err)
	}
	if err := m.Monitor("sup", "agent", "shout"); err == nil {
		t.Error("an unknown monitoring mode was accepted")
	}
	if err := m.StopMonitoring("sup"); !errors.Is(err, ErrMonitoring) {
		t.Errorf("stop monitoring while not monitoring: %v", err)
	}
	if err := m.Terminate("no-such-call", "agent"); !errors.Is(err, ErrNoWorkitem) {
		t.Errorf("terminate an unknown call: %v", err)
	}
	if st := m.State("agent"); st.Connection != Disconnected {
		t.Errorf("state of a user never seen: %+v", st)
	}
}

func TestMuteIsIdempotentAndShown(t *testing.T) {
	m, _, rec := connected(t, "agent")
	for _, on := range []bool{true, true, false, false, true} {
		if err := m.Mute("agent", on); err != nil {
			t.Fatal(err)
		}
		if st := m.State("agent"); st.InMute != on || st.Connection != Connected {
			t.Fatalf("after mute(%v): %+v", on, st)
		}
	}
	if !rec.has("agent", "mute") {
		t.Error("no mute event")
	}
	// A new connection starts unmuted.
	if err := m.Disconnect("agent"); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.connectedLocked(m.get("agent"), newFakeConn("agent"))
	m.mu.Unlock()
	if st := m.State("agent"); st.InMute {
		t.Errorf("mute survived a reconnection: %+v", st)
	}
}

func TestMonitoringModesMoveTheSupervisorsLeg(t *testing.T) {
	m, conns, rec := connected(t, "sup", "agent", "other")
	sup := conns["sup"].leg
	agentBridge, supBridge := bridgeOf(m, "agent"), bridgeOf(m, "sup")
	for _, tc := range []struct {
		mode string
		kind media.RoleKind
	}{{Listen, media.RoleListen}, {Coach, media.RoleCoach}, {Join, media.RoleFull}, {Listen, media.RoleListen}} {
		rec.reset()
		if err := m.Monitor("sup", "agent", tc.mode); err != nil {
			t.Fatalf("%s: %v", tc.mode, err)
		}
		role, ok := agentBridge.Role(sup)
		if !ok || role.Kind != tc.kind {
			t.Fatalf("%s: supervisor's role in the agent's bridge %+v (present %v)", tc.mode, role, ok)
		}
		if tc.mode == Coach && role.Target != conns["agent"].leg {
			t.Fatalf("coach whispers to %v, not the agent", role.Target)
		}
		if holds(supBridge, sup) {
			t.Fatalf("%s: the supervisor's leg is still in its own bridge", tc.mode)
		}
		if len(agentBridge.Legs()) != 2 {
			t.Fatalf("%s: switching modes left %d legs in the agent's bridge", tc.mode, len(agentBridge.Legs()))
		}
		if st := m.State("sup"); st.Watching != "agent" || st.Mode != tc.mode {
			t.Fatalf("%s: supervisor state %+v", tc.mode, st)
		}
		if !rec.has("sup", "monitoring") || !rec.has("agent", "monitoring") {
			t.Fatalf("%s: monitoring events not sent to both", tc.mode)
		}
	}

	// Monitoring another agent leaves the first one's bridge.
	if err := m.Monitor("sup", "other", Join); err != nil {
		t.Fatal(err)
	}
	if holds(agentBridge, sup) || !holds(bridgeOf(m, "other"), sup) {
		t.Fatal("the supervisor's leg did not move to the other agent's bridge")
	}
	if err := m.StopMonitoring("sup"); err != nil {
		t.Fatal(err)
	}
	if holds(bridgeOf(m, "other"), sup) || !holds(supBridge, sup) {
		t.Fatal("stop monitoring did not bring the supervisor's leg home")
	}
	if st := m.State("sup"); st.Watching != "" || st.Mode != "" {
		t.Fatalf("supervisor state after stop: %+v", st)
	}
}

func TestWatchedAgentDisconnecting(t *testing.T) {
	m, conns, rec := connected(t, "sup", "agent")
	if err := m.Monitor("sup", "agent", Listen); err != nil {
		t.Fatal(err)
	}
	rec.reset()
	if err := m.Disconnect("agent"); err != nil {
		t.Fatal(err)
	}
	if by := conns["agent"].hungUpBy(); by != "agent" {
		t.Errorf("the agent's connection was hung up by %q", by)
	}
	if st := m.State("agent"); st.Connection != Disconnected {
		t.Errorf("agent after disconnect: %+v", st)
	}
	// The supervisor stays connected and is back on its own bridge.
	if st := m.State("sup"); st.Connection != Connected || st.Watching != "" {
		t.Errorf("supervisor after the agent left: %+v", st)
	}
	if !holds(bridgeOf(m, "sup"), conns["sup"].leg) {
		t.Error("the supervisor's leg was not returned to its own bridge")
	}
	if !rec.has("sup", "monitoring") {
		t.Error("the supervisor was not told that monitoring ended")
	}
	if err := m.Disconnect("agent"); !errors.Is(err, ErrNotConnected) {
		t.Errorf("second disconnect: %v", err)
	}
}

func TestConnectionDroppingEndsMonitoringOfOthers(t *testing.T) {
	m, conns, rec := connected(t, "sup", "agent")
	if err := m.Monitor("sup", "agent", Coach); err != nil {
		t.Fatal(err)
	}
	rec.reset()
	m.connectionEnded("sup", "media timeout")
	if st := m.State("sup"); st.Connection != Disconnected {
		t.Fatalf("supervisor after its phone dropped: %+v", st)
	}
	if !rec.has("sup", "connection") {
		t.Error("no connection event when the leg dropped")
	}
	if !rec.has("agent", "monitoring") {
		t.Error("the agent was not told that coaching ended")
	}
	if holds(bridgeOf(m, "agent"), conns["sup"].leg) {
		t.Error("a dropped supervisor's leg stayed in the agent's bridge")
	}
	m.mu.Lock()
	watchers := len(m.agents["agent"].watchers)
	m.mu.Unlock()
	if watchers != 0 {
		t.Errorf("the agent still lists %d watchers", watchers)
	}
}

func TestConferenceNeedsTwoAnsweredCalls(t *testing.T) {
	m, _, _ := connected(t, "agent")
	if err := m.ExitConference("agent"); !errors.Is(err, ErrNotInConference) {
		t.Errorf("exit without a conference: %v", err)
	}
	if err := m.EnterConference("agent"); !errors.Is(err, ErrNotInConference) {
		t.Errorf("enter without a conference: %v", err)
	}
}

func TestCloseHangsUpConnections(t *testing.T) {
	m, conns, _ := connected(t, "agent")
	m.Close()
	if st := m.State("agent"); st.Connection != Disconnected {
		t.Errorf("after close: %+v", st)
	}
	if by := conns["agent"].hungUpBy(); by == "" {
		t.Error("close did not hang up the connection")
	}
}
