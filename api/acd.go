package api

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"time"

	"pbxd/pbx/events"
	"pbxd/store"
)

// acdChannelWrite is the seed's LoginToACDChannel; enabled defaults to true.
type acdChannelWrite struct {
	Enabled      *bool `json:"enabled"`
	Limit        int   `json:"limit"`
	Multitasking bool  `json:"multitasking"`
	Priority     int   `json:"priority"`
}

// acdStatusRef names a status of the catalogue; status, when sent, must
// be the class of statusId.
type acdStatusRef struct {
	Status   *int   `json:"status"`
	StatusID string `json:"statusId"`
}

// loginToACDPayload is the seed's LoginToACDPayload. Every member is
// optional: channels and queues left out are those of the previous login
// (voice with a limit of 1 the first time), a status left out is the
// user's defaultAcdLoginStatus (or available) on a new login and the
// current status on a repeated one.
type loginToACDPayload struct {
	Channels *map[string]acdChannelWrite `json:"channels"`
	Queues   *[]string                   `json:"queues"`
	Status   *acdStatusRef               `json:"status"`
}

// acdLoginResponse is what loginToAcd and autoLoginToAcd return.
type acdLoginResponse struct {
	LoginAt int64 `json:"loginAt"`
}

// changeStatusPayload is changeStatus's body; statusId left out means the
// user's default login status.
type changeStatusPayload struct {
	StatusID *string `json:"statusId"`
}

// acdStatusResponse is changeStatus's answer: the spec's {loginAt} and
// the status now in force.
type acdStatusResponse struct {
	LoginAt         int64  `json:"loginAt"`
	Status          int    `json:"status"`
	StatusID        string `json:"statusId"`
	StatusStartedAt int64  `json:"statusStartedAt"`
}

// acdStateView is a user's ACD state as the API shows it.
type acdStateView struct {
	UserID          string                      `json:"userId"`
	URI             string                      `json:"uri"`
	LoggedIn        bool                        `json:"loggedIn"`
	LoginAt         int64                       `json:"loginAt,omitempty"`
	LogoutAt        int64                       `json:"logoutAt,omitempty"`
	Channels        map[string]store.ACDChannel `json:"channels"`
	Queues          []string                    `json:"queues"`
	Status          int                         `json:"status"`
	StatusID        string                      `json:"statusId"`
	StatusName      string                      `json:"statusName,omitempty"`
	StatusStartedAt int64                       `json:"statusStartedAt,omitempty"`
	Routable        bool                        `json:"routable"`
	ChangedBy       string                      `json:"changedBy,omitempty"`
}

func viewACD(a *store.ACDState, names map[string]string) acdStateView {
	v := acdStateView{UserID: a.UserID, URI: userURI(a.UserID) + "/acd", LoggedIn: a.LoggedIn, LoginAt: ms(a.LoginAt),
		LogoutAt: ms(a.LogoutAt), Channels: a.Channels, Queues: a.Queues, Status: a.Status, StatusID: a.StatusID,
		StatusName: names[a.StatusID], StatusStartedAt: ms(a.StatusStartedAt), Routable: a.Routable(), ChangedBy: a.ChangedBy}
	if v.Channels == nil {
		v.Channels = map[string]store.ACDChannel{}
	}
	if v.Queues == nil {
		v.Queues = []string{}
	}
	return v
}

// statusNames maps statusId to name over the catalogue.
func statusNames(tx *store.Tx) (map[string]string, error) {
	all, err := tx.ListStatuses()
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(all))
	for _, st := range all {
		m[st.StatusID] = st.Name
	}
	return m, nil
}

var channelNameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Bounds of an ACD login.
const (
	maxACDChannels = 16
	maxACDQueues   = 100
	maxACDLimit    = 1000
)

func (in *loginToACDPayload) validate() *Problem {
	if in.Channels != nil {
		if len(*in.Channels) > maxACDChannels {
			return invalid("channels", "at most 16 channels")
		}
		for name, ch := range *in.Channels {
			if !channelNameRE.MatchString(name) {
				return invalid("channels", "channel name "+strconv.Quote(name)+" must be 1–32 lower-case letters, digits, _ or -, starting with a letter")
			}
			if ch.Limit < 0 || ch.Limit > maxACDLimit {
				return invalid("channels", "the limit of "+name+" must be from 0 (no limit) to 1000")
			}
			if ch.Priority < 0 || ch.Priority > 1000 {
				return invalid("channels", "the priority of "+name+" must be from 0 to 1000")
			}
		}
	}
	if in.Queues != nil {
		if len(*in.Queues) > maxACDQueues {
			return invalid("queues", "at most 100 queues")
		}
		for _, q := range *in.Queues {
			if !store.ValidID(q) {
				return invalid("queues", strconv.Quote(q)+" is not a queue id")
			}
		}
	}
	if in.Status != nil {
		if in.Status.StatusID == "" {
			return invalid("status.statusId", "is required when status is given")
		}
		if !store.StatusSlugRE.MatchString(in.Status.StatusID) {
			return invalid("status.statusId", "is not a statusId of the catalogue")
		}
		if in.Status.Status != nil && !store.ValidStatusClass(*in.Status.Status) {
			return invalid("status.status", "must be 1 (available), 2 (not ready) or 3 (after-call work)")
		}
	}
	return nil
}

// defaultChannels is what a first login without channels gets.
func defaultChannels() map[string]store.ACDChannel {
	return map[string]store.ACDChannel{"voice": {Enabled: true, Limit: 1, Priority: 0}}
}

// loginStatus resolves the status an ACD login or status change asks for:
// statusID when given, else the user's default login status. An unknown
// default (deleted since) falls back to available.
func loginStatus(tx *store.Tx, u *store.User, statusID string, field string) (*store.Status, error) {
	explicit := statusID != ""
	if !explicit {
		statusID = defaultLoginStatus(u)
	}
	st, err := tx.StatusBySlug(statusID)
	if errors.Is(err, store.ErrNotFound) {
		if explicit {
			return nil, invalid(field, "no status "+strconv.Quote(statusID)+" in the catalogue (GET /api/v1/statuses)")
		}
		st, err = tx.StatusBySlug(store.StatusIDAvailable)
	}
	if err != nil {
		return nil, err
	}
	if st.Class == store.StatusOffline {
		return nil, invalid(field, "offline is not a status to work in; leave the ACD with POST /api/v1/acd/logout")
	}
	return st, nil
}

// acdChange is what an ACD operation did, for the events sent after its
// commit.
type acdChange struct {
	state *store.ACDState
	// prev is the statusId before; statusChanged says whether it changed.
	prev          string
	statusChanged bool
	statusName    string
	// loggedIn: the operation started a login (not a repeated one).
	loggedIn bool
	// changed: the state was written.
	changed bool
}

// acdLogin logs uid in to the ACD (or updates a login) in one
// transaction with its audit record. auto is autoLoginToAcd: nothing
// happens when the user has acdAutoLogin off (skipped) or is logged in.
func (s *Server) acdLogin(r *http.Request, p *Principal, uid string, in *loginToACDPayload, auto bool) (ch *acdChange, skipped bool, err error) {
	err = s.st.Update(func(tx *store.Tx) error {
		ch, skipped = nil, false
		u, err := tx.GetUser(uid)
		if errors.Is(err, store.ErrNotFound) {
			return notFound("user " + uid)
		}
		if err != nil {
			return err
		}
		if !u.Enabled {
			return agentProblem(http.StatusConflict, ProbUserDisabled, "a disabled user cannot log in to the ACD")
		}
		if auto && !u.AcdAutoLogin {
			skipped = true
			return nil
		}
		a, err := tx.GetACDState(uid)
		if err != nil {
			return err
		}
		if auto && a.LoggedIn {
			ch = &acdChange{state: a, prev: a.StatusID}
			return nil
		}
		c := &acdChange{prev: a.StatusID, loggedIn: !a.LoggedIn}
		if in.Channels != nil {
			a.Channels = map[string]store.ACDChannel{}
			for name, cw := range *in.Channels {
				a.Channels[name] = store.ACDChannel{Enabled: cw.Enabled == nil || *cw.Enabled, Limit: cw.Limit, Multitasking: cw.Multitasking, Priority: cw.Priority}
			}
		} else if len(a.Channels) == 0 {
			a.Channels = defaultChannels()
		}
		queues := a.Queues
		if in.Queues != nil {
			queues = *in.Queues
		}
		var kept []string
		for _, q := range queues {
			if slices.Contains(kept, q) {
				continue
			}
			_, err := tx.GetQueue(q)
			if errors.Is(err, store.ErrNotFound) {
				if in.Queues != nil {
					return invalid("queues", "no queue "+q+" (GET /api/v1/queues)")
				}
				continue // deleted since the last login
			}
			if err != nil {
				return err
			}
			kept = append(kept, q)
		}
		a.Queues = kept
		var st *store.Status
		switch {
		case in.Status != nil:
			if st, err = loginStatus(tx, u, in.Status.StatusID, "status.statusId"); err != nil {
				return err
			}
			if in.Status.Status != nil && *in.Status.Status != st.Class {
				return invalid("status.status", "status "+st.StatusID+" is of class "+strconv.Itoa(st.Class)+", not "+strconv.Itoa(*in.Status.Status))
			}
		case !a.LoggedIn:
			if st, err = loginStatus(tx, u, "", "defaultAcdLoginStatus"); err != nil {
				return err
			}
		}
		now := s.now()
		if !a.LoggedIn {
			a.LoggedIn, a.LoginAt, a.LogoutAt = true, now, time.Time{}
		}
		if st != nil {
			c.statusName = st.Name
			if st.StatusID != a.StatusID || c.loggedIn {
				c.statusChanged = true
				a.StatusStartedAt = now
			}
			a.Status, a.StatusID = st.Class, st.StatusID
		}
		a.ChangedBy, a.UpdatedAt = p.ID, now
		if err := tx.PutACDState(a); err != nil {
			return err
		}
		c.state, c.changed = a, true
		ch = c
		action := "acd.login"
		if auto {
			action = "acd.autoLogin"
		}
		return s.audit(tx, r, p, action, "user", uid, map[string]string{"statusId": a.StatusID, "queues": strconv.Itoa(len(a.Queues)),
			"channels": strconv.Itoa(len(a.Channels))})
	})
	if err == nil && ch != nil && ch.changed {
		s.publishLogin(uid, ch, auto, p)
	}
	return ch, skipped, err
}

// publishLogin sends acd.login (and status when it changed).
func (s *Server) publishLogin(uid string, ch *acdChange, auto bool, p *Principal) {
	a := ch.state
	names := make([]string, 0, len(a.Channels))
	for n, c := range a.Channels {
		if c.Enabled {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	queues := a.Queues
	if queues == nil {
		queues = []string{}
	}
	s.publish(uid, events.TypeACDLogin, events.ACDLoginData{LoginAt: ms(a.LoginAt), Status: a.Status, StatusID: a.StatusID,
		Queues: queues, Channels: names, Auto: auto, ChangedBy: p.ID})
	if ch.statusChanged {
		s.publishStatus(uid, ch, p)
	}
}

func (s *Server) publishStatus(uid string, ch *acdChange, p *Principal) {
	a := ch.state
	s.publish(uid, events.TypeStatus, events.StatusData{Status: a.Status, StatusID: a.StatusID, Name: ch.statusName,
		StatusStartedAt: ms(a.StatusStartedAt), PreviousStatusID: ch.prev, ChangedBy: p.ID})
}

// acdLogoutTx takes uid out of the ACD in tx; nil when not logged in.
func (s *Server) acdLogoutTx(tx *store.Tx, uid string, p *Principal) (*acdChange, error) {
	a, err := tx.GetACDState(uid)
	if err != nil || !a.LoggedIn {
		return nil, err
	}
	c := &acdChange{prev: a.StatusID, statusChanged: true, statusName: "Offline"}
	if st, err := tx.StatusBySlug(store.StatusIDOffline); err == nil {
		c.statusName = st.Name
	}
	now := s.now()
	a.LoggedIn, a.LogoutAt = false, now
	a.Status, a.StatusID, a.StatusStartedAt = store.StatusOffline, store.StatusIDOffline, now
	a.ChangedBy, a.UpdatedAt = p.ID, now
	if err := tx.PutACDState(a); err != nil {
		return nil, err
	}
	c.state = a
	return c, nil
}

// publishLogout sends acd.logout and the status change to offline.
func (s *Server) publishLogout(uid string, ch *acdChange, reason string, p *Principal) {
	s.publish(uid, events.TypeACDLogout, events.ACDLogoutData{LogoutAt: ms(ch.state.LogoutAt), Reason: reason, ChangedBy: p.ID})
	s.publishStatus(uid, ch, p)
}

func (s *Server) handleACDLogin(w http.ResponseWriter, r *http.Request, p *Principal) error {
	uid, prob := actingFor(r, p)
	if prob != nil {
		return prob
	}
	var in loginToACDPayload
	if prob := decodeOptional(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(); prob != nil {
		return prob
	}
	ch, _, err := s.acdLogin(r, p, uid, &in, false)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, acdLoginResponse{LoginAt: ms(ch.state.LoginAt)})
	return nil
}

// handleACDAutoLogin is autoLoginToAcd: 204 without a body when the user
// does not log in automatically (the seed's "undefined").
func (s *Server) handleACDAutoLogin(w http.ResponseWriter, r *http.Request, p *Principal) error {
	uid, prob := actingFor(r, p)
	if prob != nil {
		return prob
	}
	ch, skipped, err := s.acdLogin(r, p, uid, &loginToACDPayload{}, true)
	if err != nil {
		return err
	}
	if skipped {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, acdLoginResponse{LoginAt: ms(ch.state.LoginAt)})
	return nil
}

// handleACDLogout leaves the ACD; logging out when not logged in is a
// no-op.
func (s *Server) handleACDLogout(w http.ResponseWriter, r *http.Request, p *Principal) error {
	uid, prob := actingFor(r, p)
	if prob != nil {
		return prob
	}
	var ch *acdChange
	err := s.st.Update(func(tx *store.Tx) error {
		if _, err := tx.GetUser(uid); err != nil {
			return err
		}
		var err error
		if ch, err = s.acdLogoutTx(tx, uid, p); err != nil || ch == nil {
			return err
		}
		return s.audit(tx, r, p, "acd.logout", "user", uid, map[string]string{"previousStatusId": ch.prev})
	})
	if err != nil {
		return respond(w, err, "user "+uid, 0, nil)
	}
	if ch != nil {
		s.publishLogout(uid, ch, "logout", p)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// canActFor: a user acts for themselves; supervisors, admins and service
// users with calls:control for anyone.
func canActFor(p *Principal, uid string) bool {
	if !p.Can(store.ScopeCallsControl) {
		return false
	}
	return p.IsSelf(uid) || isSupervisor(p) || p.Kind == KindService
}

// handleChangeStatus is changeStatus: the status of a user logged in to
// the ACD; the same status again changes nothing.
func (s *Server) handleChangeStatus(w http.ResponseWriter, r *http.Request, p *Principal) error {
	uid, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	if !canActFor(p, uid) {
		return forbidden("changing another user's status needs a supervisor, an admin or the calls:control permission")
	}
	var in changeStatusPayload
	if prob := decodeOptional(w, r, &in); prob != nil {
		return prob
	}
	want := ""
	if in.StatusID != nil {
		if !store.StatusSlugRE.MatchString(*in.StatusID) {
			return invalid("statusId", "is not a statusId of the catalogue")
		}
		want = *in.StatusID
	}
	var ch *acdChange
	err := s.st.Update(func(tx *store.Tx) error {
		ch = nil
		u, err := tx.GetUser(uid)
		if errors.Is(err, store.ErrNotFound) {
			return notFound("user " + uid)
		}
		if err != nil {
			return err
		}
		a, err := tx.GetACDState(uid)
		if err != nil {
			return err
		}
		if !a.LoggedIn {
			return agentProblem(http.StatusConflict, ProbACDNotLoggedIn, "the user is not logged in to the ACD (POST /api/v1/acd/login)")
		}
		st, err := loginStatus(tx, u, want, "statusId")
		if err != nil {
			return err
		}
		c := &acdChange{state: a, prev: a.StatusID, statusName: st.Name}
		ch = c
		if st.StatusID == a.StatusID && st.Class == a.Status {
			return nil
		}
		now := s.now()
		c.statusChanged = st.StatusID != a.StatusID
		if c.statusChanged {
			a.StatusStartedAt = now
		}
		a.Status, a.StatusID, a.ChangedBy, a.UpdatedAt = st.Class, st.StatusID, p.ID, now
		if err := tx.PutACDState(a); err != nil {
			return err
		}
		return s.audit(tx, r, p, "acd.status", "user", uid, map[string]string{"statusId": st.StatusID, "previousStatusId": c.prev})
	})
	if err != nil {
		return err
	}
	if ch.statusChanged {
		s.publishStatus(uid, ch, p)
	}
	a := ch.state
	writeJSON(w, http.StatusOK, acdStatusResponse{LoginAt: ms(a.LoginAt), Status: a.Status, StatusID: a.StatusID, StatusStartedAt: ms(a.StatusStartedAt)})
	return nil
}

// seesACD: supervisors, admins and service users with calls:control read
// everyone's ACD state; users their own.
func seesACD(p *Principal, uid string) bool {
	return p.IsSelf(uid) || isSupervisor(p) || (p.Kind == KindService && p.Can(store.ScopeCallsControl))
}

func (s *Server) handleGetACD(w http.ResponseWriter, r *http.Request, p *Principal) error {
	uid, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	if !seesACD(p, uid) {
		return forbidden("reading another user's ACD state needs a supervisor, an admin or the calls:control permission")
	}
	var v acdStateView
	err := s.st.View(func(tx *store.Tx) error {
		if _, err := tx.GetUser(uid); err != nil {
			return err
		}
		a, err := tx.GetACDState(uid)
		if err != nil {
			return err
		}
		names, err := statusNames(tx)
		v = viewACD(a, names)
		return err
	})
	return respond(w, err, "user "+uid, http.StatusOK, v)
}

// handleListACD lists ACD states for supervisors' boards, filtered by
// loggedIn, queueId and statusId.
func (s *Server) handleListACD(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if !isSupervisor(p) && !(p.Kind == KindService && p.Can(store.ScopeCallsControl)) {
		return forbidden("the ACD board needs a supervisor, an admin or the calls:control permission")
	}
	if prob := noQuery(r, "loggedIn", "queueId", "statusId", "start", "rows"); prob != nil {
		return prob
	}
	q := r.URL.Query()
	pg, prob := parsePage(q)
	if prob != nil {
		return prob
	}
	var loggedIn *bool
	if v, ok := q["loggedIn"]; ok {
		b, err := strconv.ParseBool(v[0])
		if err != nil {
			return invalid("loggedIn", "is true or false")
		}
		loggedIn = &b
	}
	queueID, statusID := q.Get("queueId"), q.Get("statusId")
	if queueID != "" && !store.ValidID(queueID) {
		return invalid("queueId", "is not a queue id")
	}
	if statusID != "" && !store.StatusSlugRE.MatchString(statusID) {
		return invalid("statusId", "is not a statusId")
	}
	base := map[string][]string{}
	for _, k := range []string{"loggedIn", "queueId", "statusId"} {
		if v := q.Get(k); v != "" {
			base[k] = []string{v}
		}
	}
	var objects []acdStateView
	total := 0
	err := s.st.View(func(tx *store.Tx) error {
		all, err := tx.ListACDStates()
		if err != nil {
			return err
		}
		names, err := statusNames(tx)
		if err != nil {
			return err
		}
		for _, a := range all {
			if (loggedIn != nil && a.LoggedIn != *loggedIn) || (queueID != "" && !a.InQueue(queueID)) || (statusID != "" && a.StatusID != statusID) {
				continue
			}
			if total >= pg.start && total < pg.start+pg.rows {
				objects = append(objects, viewACD(a, names))
			}
			total++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if objects == nil {
		objects = []acdStateView{}
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/acd", base, total, objects, len(objects)))
	return nil
}
