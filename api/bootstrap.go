package api

import (
	"context"
	"errors"
	"fmt"

	"pbxd/api/auth"
	"pbxd/store"
)

// FirstAdminName is the user created on an empty data directory.
const FirstAdminName = "admin"

// EnsureAdmin creates the first admin when the store has no users. With an
// empty password it generates one, returns it (for the caller to show once)
// and marks the account to change it at first login. It reports whether it
// created the user.
func (s *Server) EnsureAdmin(ctx context.Context, password func() (string, error)) (created bool, generated string, err error) {
	var n int
	if err := s.st.View(func(tx *store.Tx) (err error) { n, err = tx.CountUsers(); return err }); err != nil {
		return false, "", err
	}
	if n > 0 {
		return false, "", nil
	}
	pw, err := password()
	if err != nil {
		return false, "", err
	}
	mustChange := false
	if pw == "" {
		if pw, err = auth.RandomPassword(20); err != nil {
			return false, "", err
		}
		generated, mustChange = pw, true
	} else if perr := auth.CheckPasswordPolicy(pw); perr != nil {
		return false, "", fmt.Errorf("initial admin password %w", perr)
	}
	h, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return false, "", err
	}
	now := s.now()
	u := &store.User{ID: store.NewID(), UserName: FirstAdminName, PasswordHash: h, Roles: []string{store.RoleAdmin},
		Enabled: true, Timezone: "UTC", ChangePasswordOnFirstLogin: mustChange, CreatedAt: now, CreatedBy: "system",
		ModifiedAt: now, ModifiedBy: "system", PasswordModifiedAt: now}
	err = s.st.Update(func(tx *store.Tx) error {
		if _, err := tx.UserByName(FirstAdminName); err == nil {
			return errAdminExists
		}
		if err := tx.PutUser(u); err != nil {
			return err
		}
		return s.audit(tx, nil, nil, "user.create", "user", u.ID, map[string]string{"userName": u.UserName, "reason": "first start"})
	})
	if errors.Is(err, errAdminExists) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	return true, generated, nil
}

var errAdminExists = errors.New("admin exists")
