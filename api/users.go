package api

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"pbxd/api/auth"
	"pbxd/store"
)

// userWrite is the body of POST /users and of POST/PUT /users/{id}. Members
// left out are left unchanged; roles, when given, replace the whole set.
type userWrite struct {
	UserName                   *string   `json:"userName"`
	Password                   *string   `json:"password"`
	CurrentPassword            *string   `json:"currentPassword"`
	FirstName                  *string   `json:"firstName"`
	LastName                   *string   `json:"lastName"`
	Roles                      *[]string `json:"roles"`
	DoNotDisturb               *string   `json:"doNotDisturb"`
	ChangePasswordOnFirstLogin *bool     `json:"changePasswordOnFirstLogin"`
	Extension                  *string   `json:"extension"`
	Timezone                   *string   `json:"timezone"`
	Enabled                    *bool     `json:"enabled"`
	AcdAutoLogin               *bool     `json:"acdAutoLogin"`
	DefaultAcdLoginStatus      *string   `json:"defaultAcdLoginStatus"`
	AcdAutoAccept              *bool     `json:"acdAutoAccept"`
	ConnectTo                  *string   `json:"connectTo"`
	ConnectNumber              *string   `json:"connectNumber"`
}

var (
	userNameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)
	extensionRE = regexp.MustCompile(`^[0-9]{2,10}$`)
)

const maxNameLen = 100

// selfFields reports whether w touches only what a user may change about
// themselves: first and last name, password and their ACD preferences
// (acdAutoLogin, acdAutoAccept, defaultAcdLoginStatus). Where
// connectToServer calls them (connectTo, connectNumber) is for admins to
// set: a number there is dialled out through a trunk at the box's cost.
func (w *userWrite) selfFields() bool {
	return w.UserName == nil && w.Roles == nil && w.DoNotDisturb == nil && w.ChangePasswordOnFirstLogin == nil &&
		w.Extension == nil && w.Timezone == nil && w.Enabled == nil && w.ConnectTo == nil && w.ConnectNumber == nil
}

// changedFields names the members present, for the audit log.
func (w *userWrite) changedFields() string {
	var f fieldNames
	f.add(w.UserName != nil, "userName")
	f.add(w.Password != nil, "password")
	f.add(w.FirstName != nil, "firstName")
	f.add(w.LastName != nil, "lastName")
	f.add(w.Roles != nil, "roles")
	f.add(w.DoNotDisturb != nil, "doNotDisturb")
	f.add(w.ChangePasswordOnFirstLogin != nil, "changePasswordOnFirstLogin")
	f.add(w.Extension != nil, "extension")
	f.add(w.Timezone != nil, "timezone")
	f.add(w.Enabled != nil, "enabled")
	f.add(w.AcdAutoLogin != nil, "acdAutoLogin")
	f.add(w.DefaultAcdLoginStatus != nil, "defaultAcdLoginStatus")
	f.add(w.AcdAutoAccept != nil, "acdAutoAccept")
	f.add(w.ConnectTo != nil, "connectTo")
	f.add(w.ConnectNumber != nil, "connectNumber")
	return f.String()
}

// validate checks every present member; create demands userName.
func (w *userWrite) validate(create bool) *Problem {
	if create && w.UserName == nil {
		return invalid("userName", "is required")
	}
	if w.UserName != nil && !userNameRE.MatchString(*w.UserName) {
		return invalid("userName", "1–128 characters: letters, digits and . _ @ + -, starting with a letter or digit")
	}
	if w.Password != nil {
		if err := auth.CheckPasswordPolicy(*w.Password); err != nil {
			return invalid("password", err.Error())
		}
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"firstName", w.FirstName}, {"lastName", w.LastName}} {
		if f.v != nil && (len(*f.v) > maxNameLen || strings.ContainsAny(*f.v, "\x00\r\n")) {
			return invalid(f.name, "at most 100 characters on one line")
		}
	}
	if w.Roles != nil {
		for _, r := range *w.Roles {
			if !slices.Contains(store.Roles, r) {
				return invalid("roles", "each role must be ROLE_ADMIN, ROLE_AGENT or ROLE_SUPERVISOR")
			}
		}
	}
	if w.DoNotDisturb != nil && *w.DoNotDisturb != flagOn && *w.DoNotDisturb != flagOff {
		return invalid("doNotDisturb", `must be "on" or "off"`)
	}
	if w.Extension != nil && *w.Extension != "" && !extensionRE.MatchString(*w.Extension) {
		return invalid("extension", "2–10 digits, or empty for none")
	}
	if w.Timezone != nil {
		if _, err := time.LoadLocation(*w.Timezone); err != nil || *w.Timezone == "" || *w.Timezone == "Local" {
			return invalid("timezone", "must be an IANA time zone such as Europe/Berlin")
		}
	}
	if w.DefaultAcdLoginStatus != nil && *w.DefaultAcdLoginStatus != "" && !store.StatusSlugRE.MatchString(*w.DefaultAcdLoginStatus) {
		return invalid("defaultAcdLoginStatus", "must be the statusId of a status of the catalogue, or empty for available")
	}
	if w.ConnectTo != nil {
		switch *w.ConnectTo {
		case store.ConnectDevice, store.ConnectNumber, store.ConnectBrowser:
		default:
			return invalid("connectTo", `must be "device" (ring the user's phones), "number" (call connectNumber) or "browser"`)
		}
	}
	if w.ConnectNumber != nil && *w.ConnectNumber != "" && !numberRE.MatchString(*w.ConnectNumber) {
		return invalid("connectNumber", "must be a number: digits with an optional leading +, or empty")
	}
	return nil
}

// checkUserACD validates what the user's ACD and connection settings
// refer to, once w has been applied to u: the default login status must
// be in the catalogue and not offline, and connectTo "number" needs a
// number.
func checkUserACD(tx *store.Tx, w *userWrite, u *store.User) error {
	if w.DefaultAcdLoginStatus != nil && u.DefaultAcdLoginStatus != "" {
		st, err := tx.StatusBySlug(u.DefaultAcdLoginStatus)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("defaultAcdLoginStatus", "no status "+strconv.Quote(u.DefaultAcdLoginStatus)+" in the catalogue (GET /api/v1/statuses)")
		}
		if err != nil {
			return err
		}
		if st.Class == store.StatusOffline {
			return invalid("defaultAcdLoginStatus", "an ACD login cannot start offline")
		}
	}
	if u.ConnectTo == store.ConnectNumber && u.ConnectNumber == "" {
		return invalid("connectNumber", `is required when connectTo is "number"`)
	}
	return nil
}

// apply copies the present members onto u (password handled by the caller).
func (w *userWrite) apply(u *store.User) {
	if w.UserName != nil {
		u.UserName = *w.UserName
	}
	if w.FirstName != nil {
		u.FirstName = *w.FirstName
	}
	if w.LastName != nil {
		u.LastName = *w.LastName
	}
	if w.Roles != nil {
		var roles []string
		for _, r := range *w.Roles {
			if !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
		slices.Sort(roles)
		u.Roles = roles
	}
	if w.DoNotDisturb != nil {
		u.DoNotDisturb = *w.DoNotDisturb == flagOn
	}
	if w.ChangePasswordOnFirstLogin != nil {
		u.ChangePasswordOnFirstLogin = *w.ChangePasswordOnFirstLogin
	}
	if w.Extension != nil {
		u.Extension = *w.Extension
	}
	if w.Timezone != nil {
		u.Timezone = *w.Timezone
	}
	if w.Enabled != nil {
		u.Enabled = *w.Enabled
	}
	if w.AcdAutoLogin != nil {
		u.AcdAutoLogin = *w.AcdAutoLogin
	}
	if w.DefaultAcdLoginStatus != nil {
		u.DefaultAcdLoginStatus = *w.DefaultAcdLoginStatus
	}
	if w.AcdAutoAccept != nil {
		u.AcdAutoAccept = *w.AcdAutoAccept
	}
	if w.ConnectTo != nil {
		u.ConnectTo = *w.ConnectTo
		if u.ConnectTo == store.ConnectDevice {
			u.ConnectTo = ""
		}
	}
	if w.ConnectNumber != nil {
		u.ConnectNumber = *w.ConnectNumber
	}
}

// pathID reads and checks the {name} path segment.
func pathID(r *http.Request, name string) (string, *Problem) {
	id := r.PathValue(name)
	if !store.ValidID(id) {
		return "", invalid(name, "malformed id")
	}
	return id, nil
}

func (s *Server) handleCreateUser(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if !p.Can(store.ScopeUsersWrite) {
		return forbidden("creating users needs the users:write permission")
	}
	var in userWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(true); prob != nil {
		return prob
	}
	if in.CurrentPassword != nil {
		return invalid("currentPassword", "only used when changing your own password")
	}
	if in.Roles != nil && slices.Contains(*in.Roles, store.RoleAdmin) && !p.IsAdmin() {
		return forbidden("only admins may grant ROLE_ADMIN")
	}
	now := s.now()
	u := &store.User{ID: store.NewID(), Enabled: true, Roles: []string{store.RoleAgent}, Timezone: "UTC",
		CreatedAt: now, CreatedBy: p.ID, ModifiedAt: now, ModifiedBy: p.ID}
	in.apply(u)
	if in.Password != nil {
		h, err := s.hasher.Hash(r.Context(), *in.Password)
		if err != nil {
			return err
		}
		u.PasswordHash, u.PasswordModifiedAt = h, now
	}
	err := s.st.Update(func(tx *store.Tx) error {
		if err := checkUserACD(tx, &in, u); err != nil {
			return err
		}
		if err := tx.PutUser(u); err != nil {
			return err
		}
		return s.audit(tx, r, p, "user.create", "user", u.ID, map[string]string{"userName": u.UserName, "fields": in.changedFields()})
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", userURI(u.ID))
	writeJSON(w, http.StatusCreated, viewUser(u))
	return nil
}

func (s *Server) handleGetUser(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	if !p.Can(store.ScopeUsersRead) && !p.IsSelf(id) {
		return forbidden("reading users needs the users:read permission")
	}
	sub, prob := parseExpand(r.URL.Query())
	if prob != nil {
		return prob
	}
	var v userView
	err := s.st.View(func(tx *store.Tx) error {
		u, err := tx.GetUser(id)
		if err != nil {
			return err
		}
		v = viewUser(u)
		if sub.subresources {
			return s.expandUser(tx, u, &v, nil)
		}
		return nil
	})
	return respond(w, err, "user "+id, http.StatusOK, v)
}

// expand is the parsed fields/subresources choice of a read.
type expand struct {
	fields, subresources bool
}

func parseExpand(q url.Values) (expand, *Problem) {
	var e expand
	for _, name := range []string{"fields", "subresources"} {
		v, ok := q[name]
		if !ok {
			continue
		}
		if len(v) != 1 || v[0] != "*" {
			return e, invalid(name, `the only supported value is "*"`)
		}
		if name == "fields" {
			e.fields = true
		} else {
			e.fields, e.subresources = true, true
		}
	}
	return e, nil
}

// expandUser adds skills and devices to v; names caches the skill catalogue.
func (s *Server) expandUser(tx *store.Tx, u *store.User, v *userView, names map[string]string) error {
	skills := []skillAssign{}
	for _, a := range u.Skills {
		name, ok := names[a.SkillID]
		if !ok {
			sk, err := tx.GetSkill(a.SkillID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if sk != nil {
				name = sk.Name
			}
		}
		skills = append(skills, skillAssign{SkillID: a.SkillID, Name: name, Proficiency: a.Proficiency, URI: skillURI(a.SkillID)})
	}
	v.Skills = &skills
	devs, err := tx.ListDevices(u.ID)
	if err != nil {
		return err
	}
	views := []deviceView{}
	for _, d := range devs {
		views = append(views, viewDevice(d))
	}
	v.Devices = &views
	return nil
}

// matchUser is the q search: every word must appear (case-insensitively) in
// the user name, first or last name, or extension.
func matchUser(e *store.DirEntry, words []string) bool {
	for _, w := range words {
		if !containsFold(e.UserName, w) && !containsFold(e.FirstName, w) && !containsFold(e.LastName, w) && !strings.Contains(e.Extension, w) {
			return false
		}
	}
	return true
}

// containsFold reports whether word, already passed through foldCase,
// occurs in s ignoring case, in any script.
func containsFold(s, word string) bool {
	return strings.Contains(foldCase(s), word)
}

// foldCase maps s to one spelling per case class, so that "İBRAHİM" and
// "İbrahim", or "GROẞ" and "Groß", compare equal even where the upper and
// lower forms differ in length. ASCII lower-case strings (most names in a
// directory) are returned without copying.
func foldCase(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return strings.Map(func(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }, s)
		}
	}
	return s
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if !p.Can(store.ScopeUsersRead) {
		return forbidden("listing users needs the users:read permission")
	}
	q := r.URL.Query()
	pg, prob := parsePage(q)
	if prob != nil {
		return prob
	}
	exp, prob := parseExpand(q)
	if prob != nil {
		return prob
	}
	if len(q["q"]) > 1 || len(q.Get("q")) > 200 {
		return invalid("q", "one search string of at most 200 characters")
	}
	for k := range q {
		switch k {
		case "q", "rows", "start", "fields", "subresources":
		default:
			return invalid(k, "unknown query parameter")
		}
	}
	words := strings.Fields(foldCase(q.Get("q")))
	var objects []any
	total := 0
	err := s.st.View(func(tx *store.Tx) error {
		var names map[string]string
		if exp.subresources {
			sks, err := tx.ListSkills()
			if err != nil {
				return err
			}
			names = make(map[string]string, len(sks))
			for _, sk := range sks {
				names[sk.ID] = sk.Name
			}
		}
		var inner error
		err := tx.ScanDirectory(func(e store.DirEntry) bool {
			if !matchUser(&e, words) {
				return true
			}
			total++
			if total <= pg.start || total > pg.start+pg.rows {
				return true
			}
			if !exp.fields {
				objects = append(objects, userURI(e.ID))
				return true
			}
			u, err := tx.GetUser(e.ID)
			if err != nil {
				inner = err
				return false
			}
			v := viewUser(u)
			if exp.subresources {
				if inner = s.expandUser(tx, u, &v, names); inner != nil {
					return false
				}
			}
			objects = append(objects, v)
			return true
		})
		if err != nil {
			return err
		}
		return inner
	})
	if err != nil {
		return err
	}
	if objects == nil {
		objects = []any{}
	}
	base := url.Values{}
	for _, k := range []string{"q", "fields", "subresources"} {
		if v := q.Get(k); v != "" {
			base.Set(k, v)
		}
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/users", base, total, objects, len(objects)))
	return nil
}

func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var in userWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	self := p.IsSelf(id)
	writer := p.Can(store.ScopeUsersWrite)
	switch {
	case p.mustChangePassword() && !(self && in.Password != nil && in.selfFields()):
		return problem(http.StatusForbidden, ProbPasswordChange, "change your password first: send currentPassword and password")
	case !writer && !self:
		return forbidden("changing other users needs the users:write permission")
	case !writer && !in.selfFields():
		return forbidden("you may change only your own first name, last name, password and ACD preferences (acdAutoLogin, acdAutoAccept, defaultAcdLoginStatus)")
	}
	if prob := in.validate(false); prob != nil {
		return prob
	}
	if in.Roles != nil && slices.Contains(*in.Roles, store.RoleAdmin) && !p.IsAdmin() {
		return forbidden("only admins may grant ROLE_ADMIN")
	}
	if in.CurrentPassword != nil && in.Password == nil {
		return invalid("currentPassword", "only used together with password")
	}
	var cur *store.User
	if err := s.st.View(func(tx *store.Tx) (err error) { cur, err = tx.GetUser(id); return err }); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("user " + id)
		}
		return err
	}
	if cur.HasRole(store.RoleAdmin) && !p.IsAdmin() && !self {
		return forbidden("only admins may change an admin")
	}
	if in.UserName != nil && !strings.EqualFold(*in.UserName, cur.UserName) {
		return invalid("userName", "cannot be changed after creation")
	}
	now := s.now()
	var newHash string
	if in.Password != nil {
		if self {
			if in.CurrentPassword == nil {
				return invalid("currentPassword", "required to change your own password")
			}
			if err := s.checkPassword(r, cur, *in.CurrentPassword); err != nil {
				return err
			}
		}
		h, err := s.hasher.Hash(r.Context(), *in.Password)
		if err != nil {
			return err
		}
		newHash = h
	}
	var out *store.User
	var ended []string
	var logout *acdChange
	err := s.st.Update(func(tx *store.Tx) error {
		ended, logout = nil, nil
		u, err := tx.GetUser(id)
		if err != nil {
			return err
		}
		wasAdmin := u.Enabled && u.HasRole(store.RoleAdmin)
		in.apply(u)
		if err := checkUserACD(tx, &in, u); err != nil {
			return err
		}
		if in.UserName != nil {
			u.UserName = cur.UserName // case-only changes are ignored; the name is immutable
		}
		if newHash != "" {
			u.PasswordHash, u.PasswordModifiedAt = newHash, now
			if self {
				u.ChangePasswordOnFirstLogin = false
			}
		}
		if wasAdmin && !(u.Enabled && u.HasRole(store.RoleAdmin)) {
			if err := lastAdminGuard(tx, u.ID); err != nil {
				return err
			}
		}
		u.ModifiedAt, u.ModifiedBy = now, p.ID
		if err := tx.PutUser(u); err != nil {
			return err
		}
		if newHash != "" || !u.Enabled {
			if ended, err = revokeSessions(tx, u.ID, p.SessionID); err != nil {
				return err
			}
		}
		if !u.Enabled {
			// A disabled user's phones lose their registrations at once,
			// and the user leaves the ACD.
			if err := dropRegistrations(tx, u.ID); err != nil {
				return err
			}
			if logout, err = s.acdLogoutTx(tx, u.ID, p); err != nil {
				return err
			}
		}
		out = u
		return s.audit(tx, r, p, "user.update", "user", u.ID, map[string]string{"fields": in.changedFields()})
	})
	if err != nil {
		return err
	}
	reason := "revoked"
	if !out.Enabled {
		reason = "disabled"
		if logout != nil {
			s.publishLogout(out.ID, logout, "disabled", p)
		}
		if cur.Enabled {
			s.disconnect(out.ID)
		}
	}
	s.publishSessionsEnded(out.ID, ended, reason)
	writeJSON(w, http.StatusOK, viewUser(out))
	return nil
}

// dropRegistrations removes every SIP registration of the user's devices.
func dropRegistrations(tx *store.Tx, userID string) error {
	devs, err := tx.ListDevices(userID)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if _, err := tx.DeleteBindings(d.Username); err != nil {
			return err
		}
	}
	return nil
}

// checkPassword verifies a user's current password, throttled like a login.
func (s *Server) checkPassword(r *http.Request, u *store.User, pw string) error {
	key := "user:" + strings.ToLower(u.UserName)
	if wait := s.userLimit.Check(key); wait > 0 {
		p := problem(http.StatusTooManyRequests, ProbTooManyRequests, "too many failed attempts; try again later")
		p.RetryAfter = wait
		return p
	}
	if u.PasswordHash == "" || s.hasher.Verify(r.Context(), u.PasswordHash, pw) != nil {
		s.userLimit.Fail(key)
		return forbidden("currentPassword is wrong")
	}
	return nil
}

// revokeSessions ends a user's sessions except keep (the caller's own)
// and returns the ids of those it ended.
func revokeSessions(tx *store.Tx, userID, keep string) ([]string, error) {
	ses, err := tx.ListUserSessions(userID)
	if err != nil {
		return nil, err
	}
	var ended []string
	for _, se := range ses {
		if se.ID == keep {
			continue
		}
		if err := tx.DeleteSession(se.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		ended = append(ended, se.ID)
	}
	return ended, nil
}

// errLastAdmin keeps the box from being locked out of administration.
var errLastAdmin = conflict("this is the last enabled admin; make another user an admin first")

// lastAdminGuard fails unless an enabled admin other than id remains.
func lastAdminGuard(tx *store.Tx, id string) error {
	found := false
	err := tx.ListUsers(func(u *store.User) bool {
		if u.ID != id && u.Enabled && u.HasRole(store.RoleAdmin) {
			found = true
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	if !found {
		return errLastAdmin
	}
	return nil
}

func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	if !p.Can(store.ScopeUsersWrite) {
		return forbidden("deleting users needs the users:write permission")
	}
	var ended []string
	err := s.st.Update(func(tx *store.Tx) error {
		u, err := tx.GetUser(id)
		if err != nil {
			return err
		}
		ses, err := tx.ListUserSessions(id)
		if err != nil {
			return err
		}
		ended = nil
		for _, se := range ses {
			ended = append(ended, se.ID)
		}
		if u.HasRole(store.RoleAdmin) {
			if !p.IsAdmin() {
				return forbidden("only admins may delete an admin")
			}
			if u.Enabled {
				if err := lastAdminGuard(tx, u.ID); err != nil {
					return err
				}
			}
		}
		if err := tx.DeleteUser(id); err != nil {
			return err
		}
		return s.audit(tx, r, p, "user.delete", "user", id, map[string]string{"userName": u.UserName})
	})
	if err == nil {
		s.disconnect(id)
		s.publishSessionsEnded(id, ended, "deleted")
	}
	return respond(w, err, "user "+id, http.StatusNoContent, nil)
}
