package api

// callControlRoutes are the operations that act on live calls: the agent's
// connection, dial, mute, conference, supervisor monitoring and
// terminating workitems.
func (s *Server) callControlRoutes() []*route { return nil }
