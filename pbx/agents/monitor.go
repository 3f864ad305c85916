package agents

import (
	"fmt"

	"pbxd/media"
)

// Monitoring modes a supervisor can be in.
const (
	// Listen: the supervisor hears the agent and the customer; nobody
	// hears the supervisor.
	Listen = "listen"
	// Coach: only the agent hears the supervisor (whisper).
	Coach = "coach"
	// Join: everyone hears everyone (barge).
	Join = "join"
)

// Monitor puts a connected supervisor's leg into the agent's bridge in
// mode, or switches the mode live when already monitoring that agent. The
// supervisor's own bridge loses its leg meanwhile; a supervisor in a call
// of their own cannot monitor.
func (m *Manager) Monitor(supervisorID, agentID, mode string) error {
	var role media.Role
	switch mode {
	case Listen, Coach, Join:
	default:
		return fmt.Errorf("agents: unknown monitoring mode %q", mode)
	}
	if supervisorID == agentID {
		return ErrSelf
	}
	m.mu.Lock()
	s, a := m.agents[supervisorID], m.agents[agentID]
	if s == nil || s.state != Connected || a == nil || a.state != Connected {
		m.mu.Unlock()
		return ErrNotConnected
	}
	if len(s.calls) > 0 {
		m.mu.Unlock()
		return ErrBusy
	}
	switch mode {
	case Listen:
		role = media.Role{Kind: media.RoleListen}
	case Coach:
		role = media.Role{Kind: media.RoleCoach, Target: a.conn.Media()}
	case Join:
		role = media.Role{Kind: media.RoleFull}
	}
	if a.out && mode == Coach {
		// The agent stepped out of the conference: there is nobody to
		// whisper to in the bridge.
		m.mu.Unlock()
		return ErrNotInConference
	}
	leg := s.conn.Media()
	if s.watching != "" && s.watching != agentID {
		m.stopWatchingLocked(s)
	}
	if s.watching == "" {
		s.bridge.Remove(leg)
	}
	if err := a.bridge.AddWithRole(leg, role); err != nil {
		s.bridge.Add(leg)
		m.mu.Unlock()
		return err
	}
	s.watching, s.mode = agentID, mode
	a.watchers[supervisorID] = mode
	m.mu.Unlock()
	ev := map[string]any{"supervisorId": supervisorID, "agentId": agentID, "mode": mode}
	m.publish(supervisorID, "monitoring", ev)
	m.publish(agentID, "monitoring", ev)
	return nil
}

// StopMonitoring takes the supervisor's leg back out of the agent's
// bridge.
func (m *Manager) StopMonitoring(supervisorID string) error {
	m.mu.Lock()
	s := m.agents[supervisorID]
	if s == nil || s.watching == "" {
		m.mu.Unlock()
		return ErrMonitoring
	}
	agentID := s.watching
	m.stopWatchingLocked(s)
	m.mu.Unlock()
	m.publishMonitoringEnded([]monitoring{{supervisorID, agentID}})
	return nil
}

// monitoring is a supervisor watching an agent.
type monitoring struct{ supervisorID, agentID string }

// publishMonitoringEnded tells both sides that monitoring stopped.
func (m *Manager) publishMonitoringEnded(ended []monitoring) {
	for _, e := range ended {
		ev := map[string]any{"supervisorId": e.supervisorID, "agentId": e.agentID, "mode": "none"}
		m.publish(e.supervisorID, "monitoring", ev)
		m.publish(e.agentID, "monitoring", ev)
	}
}

// stopWatchingLocked moves supervisor s's leg from the watched agent's
// bridge back to its own; m.mu is held.
func (m *Manager) stopWatchingLocked(s *agent) {
	a := m.agents[s.watching]
	if a != nil {
		delete(a.watchers, s.id)
		if a.bridge != nil && s.conn != nil {
			a.bridge.Remove(s.conn.Media())
		}
	}
	if s.bridge != nil && s.conn != nil {
		s.bridge.Add(s.conn.Media())
	}
	s.watching, s.mode = "", ""
}
