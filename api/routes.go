package api

import "net/http"

// buildRoutes is the single table of every HTTP operation pbxd serves. The
// mux, the authentication check, the metrics labels and the OpenAPI
// document are all derived from it.
func (s *Server) buildRoutes() []*route {
	routes := s.identityRoutes()
	routes = append(routes, s.agentRoutes()...)
	routes = append(routes, s.phoneRoutes()...)
	return append(routes, s.callControlRoutes()...)
}

// identityRoutes are users, sessions, service users, devices, skills,
// trunks, registrations, call records and the audit log.
func (s *Server) identityRoutes() []*route {
	pageQ := []string{"start", "rows"}
	return []*route{
		{method: "GET", pattern: "/healthz", summary: "Liveness and store health", tag: "system", public: true, raw: s.handleHealth},
		{method: "GET", pattern: "/metrics", summary: "Prometheus metrics (text format)", tag: "system", public: true, raw: s.handleMetrics},
		{method: "GET", pattern: "/api/v1/openapi.json", summary: "This OpenAPI document", tag: "system", public: true, raw: s.handleOpenAPI},

		{method: "POST", pattern: "/api/v1/login", summary: "login: exchange username and password for a session token", tag: "sessions",
			public: true, req: loginRequest{}, resp: tokenResponse{}, h: s.handleLogin},
		{method: "POST", pattern: "/api/v1/logout", summary: "logout: end the current session", tag: "sessions",
			pendingOK: true, status: http.StatusNoContent, h: s.handleLogout},
		{method: "POST", pattern: "/api/v1/sessions", summary: "initSession: record the platform and return the UserSession", tag: "sessions",
			pendingOK: true, req: initSessionRequest{}, resp: userSession{}, h: s.handleInitSession},
		{method: "GET", pattern: "/api/v1/sessions/current", summary: "isLoggedIn: 200 with the session while the token is valid, 401 otherwise", tag: "sessions",
			pendingOK: true, resp: userSession{}, h: s.handleCurrentSession},

		{method: "GET", pattern: "/api/v1/users", summary: "fetchUsers: list or search users (URIs, or full users with fields=*)", tag: "users",
			query: []string{"q", "start", "rows", "fields", "subresources"}, resp: listEnvelope{}, h: s.handleListUsers},
		{method: "POST", pattern: "/api/v1/users", summary: "Create a user", tag: "users",
			req: userWrite{}, resp: userView{}, status: http.StatusCreated, h: s.handleCreateUser},
		{method: "GET", pattern: "/api/v1/users/{id}", summary: "fetchUser: one user (skills and devices with subresources=*)", tag: "users",
			pendingOK: true, query: []string{"fields", "subresources"}, resp: userView{}, h: s.handleGetUser},
		{method: "POST", pattern: "/api/v1/users/{id}", summary: "Update a user (members sent are changed; roles replace the set)", tag: "users",
			pendingOK: true, req: userWrite{}, resp: userView{}, h: s.handleUpdateUser},
		{method: "PUT", pattern: "/api/v1/users/{id}", summary: "Update a user (same as POST)", tag: "users",
			pendingOK: true, req: userWrite{}, resp: userView{}, h: s.handleUpdateUser},
		{method: "DELETE", pattern: "/api/v1/users/{id}", summary: "Delete a user with their devices and sessions", tag: "users",
			status: http.StatusNoContent, h: s.handleDeleteUser},

		{method: "GET", pattern: "/api/v1/users/{id}/devices", summary: "A user's SIP devices", tag: "devices",
			resp: listEnvelope{}, h: s.handleListDevices},
		{method: "POST", pattern: "/api/v1/users/{id}/devices", summary: "Add a SIP device; the password (generated when absent) is returned once", tag: "devices",
			req: deviceWrite{}, resp: deviceView{}, status: http.StatusCreated, h: s.handleCreateDevice},
		{method: "GET", pattern: "/api/v1/users/{id}/devices/{deviceId}", summary: "One SIP device", tag: "devices",
			resp: deviceView{}, h: s.handleGetDevice},
		{method: "DELETE", pattern: "/api/v1/users/{id}/devices/{deviceId}", summary: "Remove a SIP device", tag: "devices",
			status: http.StatusNoContent, h: s.handleDeleteDevice},

		{method: "GET", pattern: "/api/v1/users/{id}/skills", summary: "A user's skills", tag: "skills",
			resp: listEnvelope{}, h: s.handleListUserSkills},
		{method: "POST", pattern: "/api/v1/users/{id}/skills", summary: "Assign a skill to a user or change its proficiency", tag: "skills",
			req: skillAssignWrite{}, resp: skillAssign{}, h: s.handleAssignSkill},
		{method: "DELETE", pattern: "/api/v1/users/{id}/skills/{skillId}", summary: "Take a skill away from a user", tag: "skills",
			status: http.StatusNoContent, h: s.handleUnassignSkill},
		{method: "GET", pattern: "/api/v1/skills", summary: "The skill catalogue", tag: "skills",
			query: pageQ, resp: listEnvelope{}, h: s.handleListSkills},
		{method: "POST", pattern: "/api/v1/skills", summary: "Add a skill to the catalogue", tag: "skills",
			req: skillWrite{}, resp: skillView{}, status: http.StatusCreated, h: s.handleCreateSkill},
		{method: "GET", pattern: "/api/v1/skills/{id}", summary: "One skill", tag: "skills",
			resp: skillView{}, h: s.handleGetSkill},
		{method: "DELETE", pattern: "/api/v1/skills/{id}", summary: "Delete a skill and every assignment of it", tag: "skills",
			status: http.StatusNoContent, h: s.handleDeleteSkill},

		{method: "GET", pattern: "/api/v1/service-users", summary: "List service users (tokens are never shown)", tag: "service users",
			query: pageQ, resp: listEnvelope{}, h: s.handleListServiceUsers},
		{method: "POST", pattern: "/api/v1/service-users", summary: "Create a service user; the response carries its token, once", tag: "service users",
			req: serviceUserWrite{}, resp: serviceUserView{}, status: http.StatusCreated, h: s.handleCreateServiceUser},
		{method: "GET", pattern: "/api/v1/service-users/{id}", summary: "One service user (no token)", tag: "service users",
			resp: serviceUserView{}, h: s.handleGetServiceUser},
		{method: "POST", pattern: "/api/v1/service-users/{id}", summary: "Change display name or permissions (the name is fixed)", tag: "service users",
			req: serviceUserWrite{}, resp: serviceUserView{}, h: s.handleUpdateServiceUser},
		{method: "PUT", pattern: "/api/v1/service-users/{id}", summary: "Change display name or permissions (same as POST)", tag: "service users",
			req: serviceUserWrite{}, resp: serviceUserView{}, h: s.handleUpdateServiceUser},
		{method: "DELETE", pattern: "/api/v1/service-users/{id}", summary: "Delete a service user; its token dies with it", tag: "service users",
			status: http.StatusNoContent, h: s.handleDeleteServiceUser},
		{method: "POST", pattern: "/api/v1/service-users/{id}/token", summary: "Refresh the token: the new one is returned once, the old one fails at once", tag: "service users",
			resp: serviceUserView{}, h: s.handleRefreshToken},

		{method: "GET", pattern: "/api/v1/trunks", summary: "SIP trunks (carrier accounts) with their live registration state; passwords are never shown", tag: "trunks",
			query: pageQ, resp: listEnvelope{}, h: s.handleListTrunks},
		{method: "POST", pattern: "/api/v1/trunks", summary: "Add a SIP trunk; the password is write-only (the view says passwordSet)", tag: "trunks",
			req: trunkWrite{}, resp: trunkView{}, status: http.StatusCreated, h: s.handleCreateTrunk},
		{method: "GET", pattern: "/api/v1/trunks/{id}", summary: "One SIP trunk with its registration state", tag: "trunks",
			resp: trunkView{}, h: s.handleGetTrunk},
		{method: "POST", pattern: "/api/v1/trunks/{id}", summary: "Update a trunk (members sent are changed; dids and prefixes replace the set)", tag: "trunks",
			req: trunkWrite{}, resp: trunkView{}, h: s.handleUpdateTrunk},
		{method: "PUT", pattern: "/api/v1/trunks/{id}", summary: "Update a trunk (same as POST)", tag: "trunks",
			req: trunkWrite{}, resp: trunkView{}, h: s.handleUpdateTrunk},
		{method: "DELETE", pattern: "/api/v1/trunks/{id}", summary: "Delete a trunk; pbxd unregisters it from the carrier", tag: "trunks",
			status: http.StatusNoContent, h: s.handleDeleteTrunk},

		{method: "GET", pattern: "/api/v1/registrations", summary: "Live SIP registrations (contact bindings) of every device", tag: "sip",
			query: pageQ, resp: listEnvelope{}, h: s.handleRegistrations},
		{method: "GET", pattern: "/api/v1/workitems", summary: "Call records, newest first (admins and history:read see all, others their own)", tag: "workitems",
			query: []string{"userId", "type", "state", "since", "until", "start", "rows"}, resp: listEnvelope{}, h: s.handleListWorkitems},
		{method: "GET", pattern: "/api/v1/workitems/{id}", summary: "One call record with its per-leg media statistics", tag: "workitems",
			resp: workitemView{}, h: s.handleGetWorkitem},
		{method: "GET", pattern: "/api/v1/audit", summary: "Audit log of changes, newest first", tag: "audit",
			query: pageQ, resp: listEnvelope{}, h: s.handleAudit},
	}
}
