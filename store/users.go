package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

func userKey(id string) []byte           { return []byte("u/" + id) }
func userNameKey(name string) []byte     { return []byte("x/un/" + strings.ToLower(name)) }
func userExtKey(ext string) []byte       { return []byte("x/ue/" + ext) }
func skillUserKey(sk, uid string) []byte { return []byte("x/us/" + sk + "/" + uid) }

var (
	prefixUser     = []byte("u/")
	prefixUserName = []byte("x/un/")
)

// GetUser loads a user by id.
func (tx *Tx) GetUser(id string) (*User, error) {
	return getRecord[User](tx, userKey(id))
}

// lookup follows an index entry to the id it holds (the part of the value
// before any NUL: the userName index carries directory fields after it).
func (tx *Tx) lookup(key []byte) (string, error) {
	v, err := tx.getString(key)
	if i := strings.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	return v, err
}

// DirEntry is a user's directory line: what listing and searching need,
// kept in the userName index so that a search never decodes user records.
type DirEntry struct {
	ID, UserName, FirstName, LastName, Extension string
}

func dirValue(u *User) []byte {
	return []byte(u.ID + "\x00" + u.UserName + "\x00" + u.FirstName + "\x00" + u.LastName + "\x00" + u.Extension)
}

// ScanDirectory calls fn for every user's directory entry in the order of
// lower-cased userName, until fn returns false.
func (tx *Tx) ScanDirectory(fn func(e DirEntry) bool) error {
	return tx.each(prefixUserName, func(_, v []byte) (bool, error) {
		f := strings.Split(string(v), "\x00")
		if len(f) != 5 {
			return false, fmt.Errorf("store: malformed directory entry")
		}
		return fn(DirEntry{ID: f[0], UserName: f[1], FirstName: f[2], LastName: f[3], Extension: f[4]}), nil
	})
}

// UserByName finds a user by userName, ignoring case.
func (tx *Tx) UserByName(userName string) (*User, error) {
	id, err := tx.lookup(userNameKey(userName))
	if err != nil {
		return nil, err
	}
	return tx.GetUser(id)
}

// UserByExtension finds the user who owns an extension.
func (tx *Tx) UserByExtension(ext string) (*User, error) {
	if ext == "" {
		return nil, ErrNotFound
	}
	id, err := tx.lookup(userExtKey(ext))
	if err != nil {
		return nil, err
	}
	return tx.GetUser(id)
}

// claim makes sure key is free or already points at id.
func (tx *Tx) claim(key []byte, id string, conflict *ConflictError) error {
	owner, err := tx.lookup(key)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	case owner != id:
		return conflict
	}
	return nil
}

// PutUser creates or replaces a user and keeps the userName, extension and
// skill indexes in step, in this transaction.
func (tx *Tx) PutUser(u *User) error {
	if !ValidID(u.ID) {
		return fmt.Errorf("store: bad user id %q", u.ID)
	}
	if u.UserName == "" {
		return errors.New("store: user without userName")
	}
	old, err := tx.GetUser(u.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := tx.claim(userNameKey(u.UserName), u.ID, &ConflictError{"user", "userName", u.UserName}); err != nil {
		return err
	}
	if u.Extension != "" {
		if err := tx.claim(userExtKey(u.Extension), u.ID, &ConflictError{"user", "extension", u.Extension}); err != nil {
			return err
		}
	}
	var oldSkills []string
	if old != nil {
		if !strings.EqualFold(old.UserName, u.UserName) {
			if err := tx.del(userNameKey(old.UserName)); err != nil {
				return err
			}
		}
		if old.Extension != "" && old.Extension != u.Extension {
			if err := tx.del(userExtKey(old.Extension)); err != nil {
				return err
			}
		}
		for _, a := range old.Skills {
			oldSkills = append(oldSkills, a.SkillID)
		}
	}
	var newSkills []string
	for _, a := range u.Skills {
		newSkills = append(newSkills, a.SkillID)
	}
	for _, sk := range oldSkills {
		if !slices.Contains(newSkills, sk) {
			if err := tx.del(skillUserKey(sk, u.ID)); err != nil {
				return err
			}
		}
	}
	for _, sk := range newSkills {
		if err := tx.txn.Set(skillUserKey(sk, u.ID), nil); err != nil {
			return err
		}
	}
	if err := tx.txn.Set(userNameKey(u.UserName), dirValue(u)); err != nil {
		return err
	}
	if u.Extension != "" {
		if err := tx.txn.Set(userExtKey(u.Extension), []byte(u.ID)); err != nil {
			return err
		}
	}
	return tx.setJSON(userKey(u.ID), u)
}

// DeleteUser removes a user with their indexes, devices, sessions and ACD
// state.
func (tx *Tx) DeleteUser(id string) error {
	u, err := tx.GetUser(id)
	if err != nil {
		return err
	}
	devs, err := tx.ListDevices(id)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if err := tx.DeleteDevice(d.ID); err != nil {
			return err
		}
	}
	if _, err := tx.DeleteUserSessions(id); err != nil {
		return err
	}
	if err := tx.DeleteACDState(id); err != nil {
		return err
	}
	for _, a := range u.Skills {
		if err := tx.del(skillUserKey(a.SkillID, id)); err != nil {
			return err
		}
	}
	if err := tx.del(userNameKey(u.UserName)); err != nil {
		return err
	}
	if u.Extension != "" {
		if err := tx.del(userExtKey(u.Extension)); err != nil {
			return err
		}
	}
	return tx.del(userKey(id))
}

// ListUsers calls fn for every user in the order of their lower-cased
// userName, until fn returns false. It reads the user records in one
// sequential scan and sorts them, which is much cheaper than following the
// name index with a point lookup per user.
func (tx *Tx) ListUsers(fn func(u *User) bool) error {
	users, err := listRecords[User](tx, prefixUser)
	if err != nil {
		return err
	}
	slices.SortFunc(users, func(a, b *User) int {
		return strings.Compare(strings.ToLower(a.UserName), strings.ToLower(b.UserName))
	})
	for _, u := range users {
		if !fn(u) {
			return nil
		}
	}
	return nil
}

// CountUsers counts users without reading them.
func (tx *Tx) CountUsers() (int, error) { return tx.count(prefixUser), nil }

// UsersWithSkill lists the ids of users who hold a skill.
func (tx *Tx) UsersWithSkill(skillID string) ([]string, error) {
	prefix := []byte("x/us/" + skillID + "/")
	var ids []string
	tx.keys(prefix, func(k []byte) bool {
		ids = append(ids, string(k[len(prefix):]))
		return true
	})
	return ids, nil
}
