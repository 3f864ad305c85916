package api

import (
	"net/http"
	"strconv"

	"pbxd/store"
)

// forceLogoutHandler is forceLogout and, with disable, forceLogoutAndDisable:
// the user leaves the ACD, every session of theirs is revoked, their
// calls are hung up; disabling also refuses their logins and drops their
// phones' registrations. Supervisors may do it to anyone but admins;
// admins to anyone (the last enabled admin cannot be disabled).
func (s *Server) forceLogoutHandler(disable bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, p *Principal) error {
		uid, prob := pathID(r, "id")
		if prob != nil {
			return prob
		}
		if !isSupervisor(p) {
			return forbidden("forcing a user out needs a supervisor or an admin")
		}
		if disable && p.IsSelf(uid) {
			return badRequest("you cannot disable yourself; ask another supervisor or admin")
		}
		var ch *acdChange
		var ended []string
		err := s.st.Update(func(tx *store.Tx) error {
			ch, ended = nil, nil
			u, err := tx.GetUser(uid)
			if err != nil {
				return err
			}
			if u.HasRole(store.RoleAdmin) && !p.IsAdmin() {
				return forbidden("only admins may force an admin out")
			}
			if ch, err = s.acdLogoutTx(tx, uid, p); err != nil {
				return err
			}
			if ended, err = revokeSessions(tx, uid, ""); err != nil {
				return err
			}
			action := "user.forceLogout"
			if disable {
				action = "user.forceLogoutAndDisable"
				if u.Enabled && u.HasRole(store.RoleAdmin) {
					if err := lastAdminGuard(tx, uid); err != nil {
						return err
					}
				}
				u.Enabled = false
				u.ModifiedAt, u.ModifiedBy = s.now(), p.ID
				if err := tx.PutUser(u); err != nil {
					return err
				}
				if err := dropRegistrations(tx, uid); err != nil {
					return err
				}
			}
			return s.audit(tx, r, p, action, "user", uid, map[string]string{"userName": u.UserName,
				"sessions": strconv.Itoa(len(ended)), "acdLoggedOut": strconv.FormatBool(ch != nil)})
		})
		if err != nil {
			return respond(w, err, "user "+uid, 0, nil)
		}
		s.disconnect(uid)
		reason := "forced"
		if disable {
			reason = "disabled"
		}
		if ch != nil {
			s.publishLogout(uid, ch, reason, p)
		}
		s.publishSessionsEnded(uid, ended, reason)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
