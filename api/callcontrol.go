package api

// CallControl is the live call runtime behind the agent operations (the
// agents manager in pbx). The API holds it in Config.Calls; nil means the
// box runs without it (tests of the identity API).
type CallControl interface {
	// AgentState is a user's live call state for session views.
	AgentState(userID string) AgentCallState
	// Disconnect hangs up the user's connection to the server and every
	// call they are in (disconnectFromServer, forced logout).
	Disconnect(userID string) error
}

// AgentCallState is what the runtime knows about a user right now.
type AgentCallState struct {
	// Connection is "disconnected", "connecting" or "connected".
	Connection   string `json:"connection"`
	InMute       bool   `json:"inMute"`
	InConference bool   `json:"inConference"`
	// Workitems are the calls the user is in.
	Workitems []string `json:"workitems"`
}

// callControlRoutes are the operations that act on live calls: the agent's
// connection, dial, mute, conference, supervisor monitoring and
// terminating workitems.
func (s *Server) callControlRoutes() []*route { return nil }
