package api

// agentRoutes are the contact-center agent operations: ACD login and
// status, the status catalogue, queues, campaigns, contacts and history.
func (s *Server) agentRoutes() []*route { return nil }
