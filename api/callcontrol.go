package api

import (
	"errors"
	"net/http"
	"strings"

	"pbxd/pbx/agents"
	"pbxd/store"
)

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
	// Monitoring is the agent a supervisor is monitoring, and how.
	Monitoring     string `json:"monitoring,omitempty"`
	MonitoringMode string `json:"monitoringMode,omitempty"`
}

// AgentCalls adapts the pbx agents manager to CallControl and serves the
// call-control routes.
type AgentCalls struct{ M *agents.Manager }

// AgentState implements CallControl.
func (c AgentCalls) AgentState(userID string) AgentCallState {
	st := c.M.State(userID)
	out := AgentCallState{Connection: st.Connection, InMute: st.InMute, InConference: st.InConference, Workitems: st.Workitems,
		Monitoring: st.Watching, MonitoringMode: st.Mode}
	if out.Workitems == nil {
		out.Workitems = []string{}
	}
	return out
}

// Disconnect implements CallControl.
func (c AgentCalls) Disconnect(userID string) error { return c.M.Disconnect(userID) }

// Problem types of call control.
const (
	ProbNotConnected     = probPrefix + "not-connected"
	ProbAlreadyConnected = probPrefix + "already-connected"
	ProbInCall           = probPrefix + "in-call"
	ProbNotInConference  = probPrefix + "not-in-conference"
	ProbNotMonitoring    = probPrefix + "not-monitoring"
	ProbCallControlOff   = probPrefix + "call-control-unavailable"
	ProbCallingHours     = probPrefix + "outside-calling-hours"
	ProbCampaignDisabled = probPrefix + "campaign-disabled"
)

var callTitles = map[string]string{
	ProbNotConnected:     "Not connected to the server",
	ProbAlreadyConnected: "Already connected",
	ProbInCall:           "Already in a call",
	ProbNotInConference:  "Not in a conference",
	ProbNotMonitoring:    "Not monitoring",
	ProbCallControlOff:   "Call control is not running",
	ProbCallingHours:     "Outside the allowed calling hours",
	ProbCampaignDisabled: "Campaign disabled",
}

func callProblem(status int, typ, detail string) *Problem {
	return &Problem{Type: typ, Title: callTitles[typ], Status: status, Detail: detail}
}

// callError maps the runtime's errors to problems.
func callError(err error) error {
	switch {
	case errors.Is(err, agents.ErrNotConnected):
		return callProblem(http.StatusConflict, ProbNotConnected, "connect to the server first (POST /api/v1/connection)")
	case errors.Is(err, agents.ErrAlreadyConnected):
		return callProblem(http.StatusConflict, ProbAlreadyConnected, "the connection is up or being set up")
	case errors.Is(err, agents.ErrBusy):
		return callProblem(http.StatusConflict, ProbInCall, "already in a call: give conferenceWorkitemId to add a party")
	case errors.Is(err, agents.ErrNotInConference):
		return callProblem(http.StatusConflict, ProbNotInConference, "there is no conference to leave or enter")
	case errors.Is(err, agents.ErrMonitoring):
		return callProblem(http.StatusConflict, ProbNotMonitoring, "not monitoring anyone")
	case errors.Is(err, agents.ErrSelf):
		return invalid("id", "a supervisor cannot monitor themselves")
	case errors.Is(err, agents.ErrNoWorkitem):
		return notFound("live call")
	case errors.Is(err, agents.ErrOutsideHours):
		return callProblem(http.StatusConflict, ProbCallingHours, "outside the campaign's calling hours in the callee's time zone; dial with force to call anyway")
	case errors.Is(err, agents.ErrNoCampaign):
		return invalid("campaignId", "no such campaign")
	case errors.Is(err, agents.ErrCampaignOff):
		return callProblem(http.StatusConflict, ProbCampaignDisabled, "the campaign is disabled")
	case errors.Is(err, agents.ErrNoContact):
		return invalid("contactId", "no such contact")
	case errors.Is(err, agents.ErrNoBrowser):
		return callProblem(http.StatusConflict, ProbCallControlOff, "browsers cannot connect: WebRTC is off on this server")
	case errors.Is(err, agents.ErrNoOffer):
		return callProblem(http.StatusConflict, ProbNotConnected, "no connection offer is waiting for an answer")
	case errors.Is(err, agents.ErrClosed):
		return problem(http.StatusServiceUnavailable, ProbServiceUnavailable, "shutting down")
	}
	return err
}

// callControlRoutes are the operations that act on live calls: the agent's
// connection, dial, mute, conference, supervisor monitoring and
// terminating workitems.
func (s *Server) callControlRoutes() []*route {
	userQ := []string{"userId"}
	return []*route{
		{method: "GET", pattern: "/api/v1/connection", summary: "The connection to the server: disconnected, connecting or connected, with mute and conference state", tag: "call control",
			query: userQ, resp: AgentCallState{}, h: s.agentOp(nil)},
		{method: "POST", pattern: "/api/v1/connection", summary: "connectToServer: pbxd calls the agent's phone (or browser) and keeps that leg up (202; progress as events)", tag: "call control",
			query: userQ, req: connectRequest{}, resp: AgentCallState{}, status: http.StatusAccepted, h: s.handleConnect},
		{method: "POST", pattern: "/api/v1/connection/answer", summary: "The browser's SDP answer to pbxd's connection offer (target browser)", tag: "call control",
			query: userQ, req: answerRequest{}, status: http.StatusNoContent, h: s.handleConnectionAnswer},
		{method: "DELETE", pattern: "/api/v1/connection", summary: "disconnectFromServer: hang up the connection and every call in progress", tag: "call control",
			query: userQ, status: http.StatusNoContent, h: s.handleDisconnect},
		{method: "POST", pattern: "/api/v1/dial", summary: "dial: place a call bridged to the agent's connection (or into a call with conferenceWorkitemId); the workitem id comes back at once", tag: "call control",
			query: userQ, req: dialPayload{}, resp: dialResponse{}, h: s.handleDial},
		{method: "POST", pattern: "/api/v1/mute", summary: "mute: the agent's audio stops reaching the others; the agent still hears them", tag: "call control",
			query: userQ, resp: AgentCallState{}, h: s.agentOp(func(m *agents.Manager, uid string) error { return m.Mute(uid, true) })},
		{method: "DELETE", pattern: "/api/v1/mute", summary: "unMute", tag: "call control",
			query: userQ, resp: AgentCallState{}, h: s.agentOp(func(m *agents.Manager, uid string) error { return m.Mute(uid, false) })},
		{method: "POST", pattern: "/api/v1/conference", summary: "enterConference: go back into the conference the agent stepped out of", tag: "call control",
			query: userQ, resp: AgentCallState{}, h: s.agentOp((*agents.Manager).EnterConference)},
		{method: "DELETE", pattern: "/api/v1/conference", summary: "exitConference: step out; the other parties stay connected", tag: "call control",
			query: userQ, resp: AgentCallState{}, h: s.agentOp((*agents.Manager).ExitConference)},
		{method: "POST", pattern: "/api/v1/users/{id}/listen", summary: "listen: a connected supervisor hears the agent and the customer, unheard", tag: "monitoring",
			resp: AgentCallState{}, h: s.monitorHandler(agents.Listen)},
		{method: "POST", pattern: "/api/v1/users/{id}/coach", summary: "coach: only the agent hears the supervisor", tag: "monitoring",
			resp: AgentCallState{}, h: s.monitorHandler(agents.Coach)},
		{method: "POST", pattern: "/api/v1/users/{id}/join", summary: "join: the supervisor barges in; everyone hears everyone", tag: "monitoring",
			resp: AgentCallState{}, h: s.monitorHandler(agents.Join)},
		{method: "DELETE", pattern: "/api/v1/users/{id}/monitoring", summary: "Stop monitoring the agent", tag: "monitoring",
			status: http.StatusNoContent, h: s.handleStopMonitoring},
		{method: "DELETE", pattern: "/api/v1/workitems/{id}", summary: "terminateWorkitem: end a live call (its owner, a supervisor or an admin)", tag: "workitems",
			status: http.StatusNoContent, h: s.handleTerminateWorkitem},
	}
}

// calls returns the runtime or a 503 problem.
func (s *Server) calls() (AgentCalls, *Problem) {
	ac, ok := s.cfg.Calls.(AgentCalls)
	if !ok || ac.M == nil {
		return AgentCalls{}, callProblem(http.StatusServiceUnavailable, ProbCallControlOff, "this server runs without call control")
	}
	return ac, nil
}

// isSupervisor: admins and supervisors may act on other agents.
func isSupervisor(p *Principal) bool {
	return p.IsAdmin() || (p.Kind == KindUser && p.User.HasRole(store.RoleSupervisor))
}

// actingFor is the user a call-control request is for: the caller, or
// with ?userId= a user a supervisor, an admin or a service user with
// calls:control acts for.
func actingFor(r *http.Request, p *Principal) (string, *Problem) {
	q := r.URL.Query()
	for k, v := range q {
		if k != "userId" || len(v) > 1 {
			return "", invalid(k, "unknown query parameter")
		}
	}
	if !p.Can(store.ScopeCallsControl) {
		return "", forbidden("call control needs the calls:control permission")
	}
	uid := q.Get("userId")
	switch {
	case uid == "" && p.Kind == KindUser:
		return p.ID, nil
	case uid == "":
		return "", invalid("userId", "a service user must say which user it acts for")
	case !store.ValidID(uid):
		return "", invalid("userId", "is not a user id")
	case p.IsSelf(uid) || isSupervisor(p) || p.Kind == KindService:
		return uid, nil
	}
	return "", forbidden("only supervisors and admins act for other users")
}

// actingCalls is the user a call-control request acts for (actingFor)
// and the runtime that serves it (calls), or the first problem.
func (s *Server) actingCalls(r *http.Request, p *Principal) (string, AgentCalls, *Problem) {
	uid, prob := actingFor(r, p)
	if prob != nil {
		return "", AgentCalls{}, prob
	}
	ac, prob := s.calls()
	if prob != nil {
		return "", AgentCalls{}, prob
	}
	return uid, ac, nil
}

// agentOp serves a call-control operation on the calls of the user the
// request acts for, answering with their call state afterwards; a nil op
// only reads the state.
func (s *Server) agentOp(op func(m *agents.Manager, uid string) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) error {
		uid, ac, prob := s.actingCalls(r, p)
		if prob != nil {
			return prob
		}
		if op != nil {
			if err := op(ac.M, uid); err != nil {
				return callError(err)
			}
		}
		writeJSON(w, http.StatusOK, ac.AgentState(uid))
		return nil
	}
}

// auditLive records an operation on live calls, which changes no stored
// record, in a transaction of its own.
func (s *Server) auditLive(r *http.Request, p *Principal, action, targetKind, targetID string, detail map[string]string) error {
	return s.st.Update(func(tx *store.Tx) error {
		return s.audit(tx, r, p, action, targetKind, targetID, detail)
	})
}

// connectRequest optionally picks the connection target for this
// connection: "device" (the user's SIP phones), "number" (their
// connectNumber through a trunk) or "browser" (this browser: the offer
// comes as a connection.offer event, the page answers at
// /api/v1/connection/answer). Without it the user's connectTo applies.
type connectRequest struct {
	Target string `json:"target"`
}

// answerRequest is a browser's SDP answer to the connection offer.
type answerRequest struct {
	SDP string `json:"sdp"`
}

func (s *Server) handleConnect(w http.ResponseWriter, r *http.Request, p *Principal) error {
	uid, prob := actingFor(r, p)
	if prob != nil {
		return prob
	}
	var in connectRequest
	if r.ContentLength != 0 {
		if prob := decodeJSON(w, r, &in); prob != nil {
			return prob
		}
	}
	switch in.Target {
	case "", store.ConnectDevice, store.ConnectNumber, store.ConnectBrowser:
	default:
		return invalid("target", "is device, number or browser")
	}
	ac, prob := s.calls()
	if prob != nil {
		return prob
	}
	if err := ac.M.Connect(uid, in.Target); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("user " + uid)
		}
		return callError(err)
	}
	writeJSON(w, http.StatusAccepted, ac.AgentState(uid))
	return nil
}

func (s *Server) handleConnectionAnswer(w http.ResponseWriter, r *http.Request, p *Principal) error {
	uid, prob := actingFor(r, p)
	if prob != nil {
		return prob
	}
	var in answerRequest
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if in.SDP == "" || len(in.SDP) > 64<<10 {
		return invalid("sdp", "is required: the page's SDP answer")
	}
	ac, prob := s.calls()
	if prob != nil {
		return prob
	}
	if err := ac.M.AnswerBrowser(uid, []byte(in.SDP)); err != nil {
		return callError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) handleDisconnect(w http.ResponseWriter, r *http.Request, p *Principal) error {
	uid, ac, prob := s.actingCalls(r, p)
	if prob != nil {
		return prob
	}
	if err := ac.M.Disconnect(uid); err != nil {
		return callError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// dialPayload is the spec's DialPayload.
type dialPayload struct {
	CampaignID           string `json:"campaignId"`
	ConferenceWorkitemID string `json:"conferenceWorkitemId"`
	ContactID            string `json:"contactId"`
	Context              string `json:"context"`
	ConversationID       string `json:"conversationId"`
	Force                bool   `json:"force"`
	Name                 string `json:"name"`
	Option               string `json:"option"`
	SpoofWorkitemID      string `json:"spoofWorkitemId"`
	TicketID             string `json:"ticketId"`
	To                   string `json:"to"`
	WorkitemID           string `json:"workitemId"`
}

// dialResponse is the spec's DialResponse.
type dialResponse struct {
	WorkitemID         string `json:"workitemId"`
	URI                string `json:"uri"`
	State              string `json:"state"`
	ForcedOutsideHours bool   `json:"forcedOutsideHours,omitempty"`
}

func validNumber(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i, c := range s {
		if !(c >= '0' && c <= '9' || c == '*' || c == '#' || (c == '+' && i == 0)) {
			return false
		}
	}
	return true
}

func (s *Server) handleDial(w http.ResponseWriter, r *http.Request, p *Principal) error {
	uid, prob := actingFor(r, p)
	if prob != nil {
		return prob
	}
	var in dialPayload
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	in.To = strings.TrimSpace(in.To)
	if !validNumber(in.To) {
		return invalid("to", "is required: a number of digits, * and #, with an optional leading +")
	}
	if in.ConferenceWorkitemID != "" && !store.ValidID(in.ConferenceWorkitemID) {
		return invalid("conferenceWorkitemId", "is not a workitem id")
	}
	if len(in.Context) > 2000 || len(in.Name) > 200 {
		return invalid("context", "context at most 2000 and name at most 200 characters")
	}
	ac, prob := s.calls()
	if prob != nil {
		return prob
	}
	for field, id := range map[string]string{"campaignId": in.CampaignID, "contactId": in.ContactID} {
		if id != "" && !store.ValidID(id) {
			return invalid(field, "is not an id")
		}
	}
	req := agents.DialRequest{To: in.To, Name: in.Name, ConferenceWorkitemID: in.ConferenceWorkitemID,
		CampaignID: in.CampaignID, ContactID: in.ContactID, Force: in.Force, Context: in.Context}
	res, err := ac.M.Dial(uid, req)
	if err != nil {
		return callError(err)
	}
	if res.ForcedOutsideHours {
		// A deliberate override of the calling hours is kept in the audit
		// log as well as on the workitem.
		err := s.auditLive(r, p, "dial.forceOutsideHours", "workitem", res.WorkitemID,
			map[string]string{"campaignId": in.CampaignID, "contactId": in.ContactID, "to": in.To, "userId": uid})
		if err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, dialResponse{WorkitemID: res.WorkitemID, URI: workitemURI(res.WorkitemID), State: "ringing",
		ForcedOutsideHours: res.ForcedOutsideHours})
	return nil
}

// monitorHandler starts or switches supervisor monitoring of the agent in
// the path; every start and switch is audited.
func (s *Server) monitorHandler(mode string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) error {
		agentID, prob := pathID(r, "id")
		if prob != nil {
			return prob
		}
		if p.Kind != KindUser || !isSupervisor(p) {
			return forbidden("monitoring needs a supervisor or an admin, on their own connection")
		}
		ac, prob := s.calls()
		if prob != nil {
			return prob
		}
		before := ac.M.State(p.ID)
		if err := ac.M.Monitor(p.ID, agentID, mode); err != nil {
			return callError(err)
		}
		action := "monitoring.start"
		if before.Watching == agentID {
			action = "monitoring.switch"
		}
		if err := s.auditLive(r, p, action, "user", agentID, map[string]string{"mode": mode, "previous": before.Mode}); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, ac.AgentState(p.ID))
		return nil
	}
}

func (s *Server) handleStopMonitoring(w http.ResponseWriter, r *http.Request, p *Principal) error {
	agentID, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	if p.Kind != KindUser || !isSupervisor(p) {
		return forbidden("monitoring needs a supervisor or an admin")
	}
	ac, prob := s.calls()
	if prob != nil {
		return prob
	}
	if st := ac.M.State(p.ID); st.Watching != agentID {
		return callProblem(http.StatusConflict, ProbNotMonitoring, "not monitoring this agent")
	}
	if err := ac.M.StopMonitoring(p.ID); err != nil {
		return callError(err)
	}
	if err := s.auditLive(r, p, "monitoring.stop", "user", agentID, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// handleTerminateWorkitem ends a live call: its owner may, and so may
// supervisors and admins.
func (s *Server) handleTerminateWorkitem(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	if !p.Can(store.ScopeCallsControl) {
		return forbidden("ending calls needs the calls:control permission")
	}
	ac, prob := s.calls()
	if prob != nil {
		return prob
	}
	owner := ac.M.Owner(id)
	if owner == "" {
		return notFound("live call " + id)
	}
	by := "agent"
	if !p.IsSelf(owner) {
		if !isSupervisor(p) && p.Kind != KindService {
			return notFound("live call " + id)
		}
		by = "supervisor"
	}
	if err := ac.M.Terminate(id, by); err != nil {
		return callError(err)
	}
	if err := s.auditLive(r, p, "workitem.terminate", "workitem", id, map[string]string{"owner": owner}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
