package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"pbxd/pbx/events"
	"pbxd/store"
)

// agentRoutes are the contact-center agent operations: ACD login and
// status, the status catalogue, queues, campaigns, contacts, history,
// forced logout and the events WebSocket.
func (s *Server) agentRoutes() []*route {
	pageQ := []string{"start", "rows"}
	userQ := []string{"userId"}
	return []*route{
		{method: "GET", pattern: "/api/v1/statuses", summary: "The agent status catalogue (any logged-in caller)", tag: "acd",
			query: pageQ, resp: listEnvelope{}, h: s.handleListStatuses},
		{method: "POST", pattern: "/api/v1/statuses", summary: "Add a status to the catalogue (admins)", tag: "acd",
			req: statusWrite{}, resp: statusView{}, status: http.StatusCreated, h: s.handleCreateStatus},
		{method: "GET", pattern: "/api/v1/statuses/{id}", summary: "One status of the catalogue", tag: "acd",
			resp: statusView{}, h: s.handleGetStatus},
		{method: "PUT", pattern: "/api/v1/statuses/{id}", summary: "Rename or reclassify a status (admins; statusId is fixed, system statuses keep their class)", tag: "acd",
			req: statusWrite{}, resp: statusView{}, h: s.handleUpdateStatus},
		{method: "DELETE", pattern: "/api/v1/statuses/{id}", summary: "Delete a status (admins; not offline or available, not one in use)", tag: "acd",
			status: http.StatusNoContent, h: s.handleDeleteStatus},

		{method: "POST", pattern: "/api/v1/acd/login", summary: "loginToAcd: start taking routed workitems on channels, from queues, in a status", tag: "acd",
			query: userQ, req: loginToACDPayload{}, resp: acdLoginResponse{}, h: s.handleACDLogin},
		{method: "POST", pattern: "/api/v1/acd/auto-login", summary: "autoLoginToAcd: log in with the user's defaultAcdLoginStatus when acdAutoLogin is on (204 when it is off)", tag: "acd",
			query: userQ, resp: acdLoginResponse{}, h: s.handleACDAutoLogin},
		{method: "POST", pattern: "/api/v1/acd/logout", summary: "Leave the ACD (status offline)", tag: "acd",
			query: userQ, status: http.StatusNoContent, h: s.handleACDLogout},
		{method: "GET", pattern: "/api/v1/acd", summary: "ACD states of every user who ever logged in (supervisors, admins, calls:control)", tag: "acd",
			query: []string{"loggedIn", "queueId", "statusId", "start", "rows"}, resp: listEnvelope{}, h: s.handleListACD},
		{method: "GET", pattern: "/api/v1/users/{id}/acd", summary: "A user's ACD state (the user, supervisors, admins, calls:control)", tag: "acd",
			resp: acdStateView{}, h: s.handleGetACD},
		{method: "POST", pattern: "/api/v1/users/{id}/status", summary: "changeStatus: a logged-in user's ACD status (their own; others' for supervisors, admins, calls:control)", tag: "acd",
			req: changeStatusPayload{}, resp: acdStatusResponse{}, h: s.handleChangeStatus},
		{method: "POST", pattern: "/api/v1/users/{id}/force-logout", summary: "forceLogout: ACD logout, calls hung up, every session revoked (supervisors, admins)", tag: "acd",
			status: http.StatusNoContent, h: s.forceLogoutHandler(false)},
		{method: "POST", pattern: "/api/v1/users/{id}/force-logout-and-disable", summary: "forceLogoutAndDisable: forceLogout, then the user is disabled and their phones' registrations dropped", tag: "acd",
			status: http.StatusNoContent, h: s.forceLogoutHandler(true)},

		{method: "GET", pattern: "/api/v1/queues", summary: "ACD queues", tag: "queues",
			query: pageQ, resp: listEnvelope{}, h: s.handleListQueues},
		{method: "POST", pattern: "/api/v1/queues", summary: "Add a queue (admins)", tag: "queues",
			req: queueWrite{}, resp: queueView{}, status: http.StatusCreated, h: s.handleCreateQueue},
		{method: "GET", pattern: "/api/v1/queues/{id}", summary: "One queue with the users logged in to it", tag: "queues",
			resp: queueView{}, h: s.handleGetQueue},
		{method: "PUT", pattern: "/api/v1/queues/{id}", summary: "Update a queue (admins; members sent are changed, skills replace the set)", tag: "queues",
			req: queueWrite{}, resp: queueView{}, h: s.handleUpdateQueue},
		{method: "DELETE", pattern: "/api/v1/queues/{id}", summary: "Delete a queue; agents logged in to it leave it (admins)", tag: "queues",
			status: http.StatusNoContent, h: s.handleDeleteQueue},

		{method: "GET", pattern: "/api/v1/campaigns", summary: "Outbound campaigns", tag: "campaigns",
			query: pageQ, resp: listEnvelope{}, h: s.handleListCampaigns},
		{method: "POST", pattern: "/api/v1/campaigns", summary: "Add a campaign (admins)", tag: "campaigns",
			req: campaignWrite{}, resp: campaignView{}, status: http.StatusCreated, h: s.handleCreateCampaign},
		{method: "GET", pattern: "/api/v1/campaigns/{id}", summary: "One campaign", tag: "campaigns",
			resp: campaignView{}, h: s.handleGetCampaign},
		{method: "PUT", pattern: "/api/v1/campaigns/{id}", summary: "Update a campaign (admins; callingHours null removes the restriction)", tag: "campaigns",
			req: campaignWrite{}, resp: campaignView{}, h: s.handleUpdateCampaign},
		{method: "DELETE", pattern: "/api/v1/campaigns/{id}", summary: "Delete a campaign (admins)", tag: "campaigns",
			status: http.StatusNoContent, h: s.handleDeleteCampaign},

		{method: "GET", pattern: "/api/v1/contacts", summary: "Contacts; q searches names, company, email and numbers", tag: "contacts",
			query: []string{"q", "start", "rows"}, resp: listEnvelope{}, h: s.handleListContacts},
		{method: "POST", pattern: "/api/v1/contacts", summary: "Add a contact (agents, supervisors, admins, users:write)", tag: "contacts",
			req: contactWrite{}, resp: contactView{}, status: http.StatusCreated, h: s.handleCreateContact},
		{method: "GET", pattern: "/api/v1/contacts/{id}", summary: "One contact", tag: "contacts",
			resp: contactView{}, h: s.handleGetContact},
		{method: "PUT", pattern: "/api/v1/contacts/{id}", summary: "Update a contact (members sent are changed; numbers and properties replace the set)", tag: "contacts",
			req: contactWrite{}, resp: contactView{}, h: s.handleUpdateContact},
		{method: "DELETE", pattern: "/api/v1/contacts/{id}", summary: "Delete a contact (admins); its workitems keep the contact id", tag: "contacts",
			status: http.StatusNoContent, h: s.handleDeleteContact},
		{method: "GET", pattern: "/api/v1/contacts/{id}/history", summary: "getHistoryByContactId: the contact's workitems, newest first", tag: "history",
			query: []string{"rangeType", "dateRange", "q", "start", "rows", "mergeProperties"}, resp: historyEnvelope{}, h: s.handleContactHistory},

		{method: "GET", pattern: "/api/v1/history", summary: "getHistory: the user's workitems in a range of days of their time zone, newest first", tag: "history",
			query: []string{"rangeType", "dateRange", "userId", "start", "rows"}, resp: historyEnvelope{}, h: s.handleHistory},

		{method: "GET", pattern: "/api/v1/events", summary: "WebSocket (RFC 6455) streaming a user's events as JSON text frames {type, userId, at, data}; the token may come as access_token", tag: "events",
			query: []string{"userId", "access_token"}, status: http.StatusSwitchingProtocols, queryToken: true, h: s.handleEvents},
	}
}

// Problem types of the contact-center routes.
const (
	ProbACDNotLoggedIn   = probPrefix + "acd-not-logged-in"
	ProbSystemStatus     = probPrefix + "system-status"
	ProbInUse            = probPrefix + "in-use"
	ProbUserDisabled     = probPrefix + "user-disabled"
	ProbWebSocketUpgrade = probPrefix + "websocket-upgrade-required"
)

var agentTitles = map[string]string{
	ProbACDNotLoggedIn:   "Not logged in to the ACD",
	ProbSystemStatus:     "System status",
	ProbInUse:            "Still in use",
	ProbUserDisabled:     "User is disabled",
	ProbWebSocketUpgrade: "WebSocket upgrade required",
}

func agentProblem(status int, typ, detail string) *Problem {
	return &Problem{Type: typ, Title: agentTitles[typ], Status: status, Detail: detail}
}

// storeProblem maps the store's contact-center errors to problems.
func storeProblem(err error) error {
	var iu *store.InUseError
	switch {
	case errors.As(err, &iu):
		return agentProblem(http.StatusConflict, ProbInUse, iu.Kind+" "+iu.ID+" is still used by "+iu.By)
	case errors.Is(err, store.ErrProtected):
		return agentProblem(http.StatusConflict, ProbSystemStatus, "offline and available are system statuses: they cannot be deleted or reclassified")
	}
	return err
}

// decodeOptional is decodeJSON for operations whose body may be left out
// (every member optional): no body at all leaves v as it is.
func decodeOptional(w http.ResponseWriter, r *http.Request, v any) *Problem {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return problem(http.StatusUnsupportedMediaType, ProbUnsupportedMedia, "send the body as application/json")
		}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return problem(http.StatusRequestEntityTooLarge, ProbBodyTooLarge, "the body is too large")
		}
		return badRequest("could not read the request body")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	return decodeBytes(data, v)
}

// noQuery refuses query parameters other than allowed.
func noQuery(r *http.Request, allowed ...string) *Problem {
	for k, v := range r.URL.Query() {
		ok := false
		for _, a := range allowed {
			ok = ok || a == k
		}
		if !ok {
			return invalid(k, "unknown query parameter")
		}
		if len(v) > 1 {
			return invalid(k, "may be given once")
		}
	}
	return nil
}

// publish puts an event for userID on the bus, stamped with the API clock.
func (s *Server) publish(userID, typ string, data any) {
	s.events.Publish(events.Event{Type: typ, UserID: userID, At: s.now(), Data: data})
}

// publishSessionsEnded tells the user's event streams that sessions ended,
// so the WebSockets opened with them close at once.
func (s *Server) publishSessionsEnded(userID string, ids []string, reason string) {
	if len(ids) == 0 {
		return
	}
	s.publish(userID, events.TypeSessionEnded, events.SessionEndedData{SessionIDs: ids, Reason: reason})
}

// disconnect hangs up the user's connection and calls when there is a
// call runtime; a user who is not connected is not an error.
func (s *Server) disconnect(userID string) {
	if s.cfg.Calls == nil {
		return
	}
	if err := s.cfg.Calls.Disconnect(userID); err != nil {
		s.log.Debug("disconnect on logout", "user_id", userID, "err", err)
	}
}
