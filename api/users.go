package api

// The Users API's writes: create, update and delete, with the guards
// they share (the last admin, sessions and registrations ended with a
// password change or a disabled user). The request body is in
// users_write.go, reads and search in users_read.go.

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"pbxd/store"
)

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
