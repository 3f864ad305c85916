package api

import (
	"errors"
	"net/http"
	"strings"

	"pbxd/api/auth"
	"pbxd/store"
)

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// tokenResponse is the seed's TokenResponse: where the user lives and the
// session token, shown this once.
type tokenResponse struct {
	Location  string `json:"location"`
	Token     string `json:"token"`
	ExpiresAt int64  `json:"expiresAt"`
}

// handleLogin checks a username and password and opens a session. Unknown
// users, wrong passwords, disabled users and users without a password all
// get the same 401 after the same argon2id work. Failures are counted per
// source address and per username; past the free allowance the caller gets
// 429 with Retry-After until the back-off has passed.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request, _ *Principal) error {
	var in loginRequest
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if in.Username == "" || len(in.Username) > 128 {
		return invalid("username", "is required (at most 128 characters)")
	}
	if in.Password == "" || len(in.Password) > auth.MaxPasswordLen {
		return invalid("password", "is required")
	}
	ip := remoteIP(r)
	ipKey, userKey := "ip:"+ip, "user:"+strings.ToLower(in.Username)
	wait := max(s.ipLimit.Check(ipKey), s.userLimit.Check(userKey))
	if wait > 0 {
		p := problem(http.StatusTooManyRequests, ProbTooManyRequests, "too many failed logins; try again later")
		p.RetryAfter = wait
		s.log.Warn("login throttled", "remote", ip)
		return p
	}
	var u *store.User
	err := s.st.View(func(tx *store.Tx) (err error) { u, err = tx.UserByName(in.Username); return err })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	ok := false
	if u != nil && u.PasswordHash != "" {
		ok = s.hasher.Verify(r.Context(), u.PasswordHash, in.Password) == nil
	} else {
		s.hasher.Burn(r.Context(), in.Password)
	}
	if !ok || !u.Enabled {
		d1, d2 := s.ipLimit.Fail(ipKey), s.userLimit.Fail(userKey)
		s.log.Warn("login failed", "remote", ip, "backoff_s", max(d1, d2).Seconds())
		return unauthorized()
	}
	s.ipLimit.Succeed(ipKey)
	s.userLimit.Succeed(userKey)

	tok, err := auth.NewToken(auth.PrefixSession)
	if err != nil {
		return err
	}
	now := s.now()
	se := &store.Session{ID: store.NewID(), UserID: u.ID, TokenHash: auth.HashToken(tok), CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.SessionTTL), RemoteAddr: ip, UserAgent: truncate(r.UserAgent(), 200)}
	p := &Principal{Kind: KindUser, ID: u.ID, Name: u.UserName, User: u, SessionID: se.ID}
	err = s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutSession(se); err != nil {
			return err
		}
		return s.audit(tx, r, p, "session.login", "session", se.ID, nil)
	})
	if err != nil {
		return err
	}
	s.log.Info("login", "user_id", u.ID, "session_id", se.ID, "remote", ip)
	writeJSON(w, http.StatusOK, tokenResponse{Location: userURI(u.ID), Token: tok, ExpiresAt: ms(se.ExpiresAt)})
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// handleLogout ends the session whose token was presented.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if p.Kind != KindUser {
		return badRequest("service users have no session; refresh or delete the token instead")
	}
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.DeleteSession(p.SessionID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		return s.audit(tx, r, p, "session.logout", "session", p.SessionID, nil)
	})
	if err != nil {
		return err
	}
	s.publishSessionsEnded(p.ID, []string{p.SessionID}, "logout")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type initSessionRequest struct {
	DeviceToken *string `json:"deviceToken"`
	Platform    string  `json:"platform"`
}

// authority is one granted role, as the UserSession lists them.
type authority struct {
	Authority string `json:"authority"`
}

// multiloginDevice is one of the user's initialised sessions.
type multiloginDevice struct {
	Platform string `json:"platform"`
	LoginAt  int64  `json:"loginAt"`
	Current  bool   `json:"current"`
}

// userSession is the UserSession of the seed, limited to what pbxd has:
// the ACD members come from the user's ACD state, inMute and inConference
// from the call runtime (false without one).
type userSession struct {
	ID                    string                      `json:"_id"`
	UserID                string                      `json:"userId"`
	Username              string                      `json:"username"`
	Name                  string                      `json:"name"`
	FirstName             string                      `json:"firstName"`
	LastName              string                      `json:"lastName"`
	Enabled               bool                        `json:"enabled"`
	Timezone              string                      `json:"timezone"`
	Authorities           []authority                 `json:"authorities"`
	Skills                []store.SkillAssignment     `json:"skills"`
	CredentialsNonExpired bool                        `json:"credentialsNonExpired"`
	PasswordModifiedAt    int64                       `json:"passwordModifiedAt,omitempty"`
	LoginAt               int64                       `json:"loginAt"`
	ExpiresAt             int64                       `json:"expiresAt"`
	Platform              string                      `json:"platform,omitempty"`
	DeviceInfo            string                      `json:"deviceInfo,omitempty"`
	Devices               map[string]multiloginDevice `json:"devices"`
	CreatedAt             int64                       `json:"createdAt"`
	CreatedBy             string                      `json:"createdBy,omitempty"`
	ModifiedAt            int64                       `json:"modifiedAt"`
	ModifiedBy            string                      `json:"modifiedBy,omitempty"`
	ObjectType            string                      `json:"objectType"`
	AcdAutoLogin          bool                        `json:"acdAutoLogin"`
	AcdAutoAccept         bool                        `json:"acdAutoAccept"`
	DefaultAcdLoginStatus string                      `json:"defaultAcdLoginStatus"`
	// AcdLoginAt is when the current ACD login began; 0 when logged out.
	AcdLoginAt      int64                       `json:"acdLoginAt"`
	Status          int                         `json:"status"`
	StatusID        string                      `json:"statusId"`
	StatusStartedAt int64                       `json:"statusStartedAt"`
	Queues          []string                    `json:"queues"`
	ActiveChannels  map[string]store.ACDChannel `json:"activeChannels"`
	InMute          bool                        `json:"inMute"`
	InConference    bool                        `json:"inConference"`
}

func (s *Server) sessionView(tx *store.Tx, u *store.User, se *store.Session) (userSession, error) {
	v := userSession{ID: se.ID, UserID: u.ID, Username: u.UserName, Name: strings.TrimSpace(u.FirstName + " " + u.LastName),
		FirstName: u.FirstName, LastName: u.LastName, Enabled: u.Enabled, Timezone: u.Timezone,
		Skills: u.Skills, CredentialsNonExpired: !u.ChangePasswordOnFirstLogin, PasswordModifiedAt: ms(u.PasswordModifiedAt),
		LoginAt: ms(se.CreatedAt), ExpiresAt: ms(se.ExpiresAt), Platform: se.Platform, DeviceInfo: se.UserAgent,
		CreatedAt: ms(u.CreatedAt), CreatedBy: u.CreatedBy, ModifiedAt: ms(u.ModifiedAt), ModifiedBy: u.ModifiedBy,
		ObjectType: "UserSession", Authorities: []authority{}, Devices: map[string]multiloginDevice{}}
	if v.Timezone == "" {
		v.Timezone = "UTC"
	}
	if v.Skills == nil {
		v.Skills = []store.SkillAssignment{}
	}
	for _, r := range u.Roles {
		v.Authorities = append(v.Authorities, authority{r})
	}
	v.AcdAutoLogin, v.AcdAutoAccept, v.DefaultAcdLoginStatus = u.AcdAutoLogin, u.AcdAutoAccept, defaultLoginStatus(u)
	a, err := tx.GetACDState(u.ID)
	if err != nil {
		return v, err
	}
	v.Status, v.StatusID, v.StatusStartedAt, v.Queues = a.Status, a.StatusID, ms(a.StatusStartedAt), []string{}
	v.ActiveChannels = map[string]store.ACDChannel{}
	if a.LoggedIn {
		v.AcdLoginAt = ms(a.LoginAt)
		if a.Queues != nil {
			v.Queues = a.Queues
		}
		for name, ch := range a.Channels {
			if ch.Enabled {
				v.ActiveChannels[name] = ch
			}
		}
	}
	if s.cfg.Calls != nil {
		cs := s.cfg.Calls.AgentState(u.ID)
		v.InMute, v.InConference = cs.InMute, cs.InConference
	}
	all, err := tx.ListUserSessions(u.ID)
	if err != nil {
		return v, err
	}
	for _, o := range all {
		if o.Platform != "" {
			v.Devices[o.ID] = multiloginDevice{Platform: o.Platform, LoginAt: ms(o.CreatedAt), Current: o.ID == se.ID}
		}
	}
	return v, nil
}

// handleInitSession records the platform (and a hash of the client's device
// token) on the caller's session and returns the UserSession.
func (s *Server) handleInitSession(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if p.Kind != KindUser {
		return badRequest("sessions belong to users who logged in; service users have none")
	}
	var in initSessionRequest
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	switch in.Platform {
	case store.PlatformWeb, store.PlatformAndroid, store.PlatformIOS:
	default:
		return invalid("platform", "must be web, android or ios")
	}
	if in.DeviceToken != nil && (len(*in.DeviceToken) == 0 || len(*in.DeviceToken) > 4096) {
		return invalid("deviceToken", "1–4096 characters when given")
	}
	var out userSession
	err := s.st.Update(func(tx *store.Tx) error {
		se, err := tx.GetSession(p.SessionID)
		if err != nil {
			return err
		}
		se.Platform, se.InitializedAt = in.Platform, s.now()
		if in.DeviceToken != nil {
			se.DeviceTokenHash = auth.HashToken(*in.DeviceToken)
		}
		if err := tx.PutSession(se); err != nil {
			return err
		}
		out, err = s.sessionView(tx, p.User, se)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return unauthorized()
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// serviceSession is what isLoggedIn shows a service user.
type serviceSession struct {
	Kind        string   `json:"kind"`
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Permissions []string `json:"permissions"`
}

// handleCurrentSession is isLoggedIn: 200 with the session while the token
// is valid, 401 otherwise.
func (s *Server) handleCurrentSession(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if p.Kind == KindService {
		writeJSON(w, http.StatusOK, serviceSession{Kind: KindService, ID: p.ID, Name: p.Name, Permissions: p.Service.Permissions})
		return nil
	}
	var out userSession
	err := s.st.View(func(tx *store.Tx) error {
		se, err := tx.GetSession(p.SessionID)
		if err != nil {
			return err
		}
		out, err = s.sessionView(tx, p.User, se)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return unauthorized()
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
