package store

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

func serviceKey(id string) []byte       { return []byte("s/" + id) }
func serviceNameKey(name string) []byte { return []byte("x/sn/" + name) }
func tokenKey(hash [32]byte) []byte     { return []byte("x/tok/" + hex.EncodeToString(hash[:])) }

var prefixService = []byte("s/")

// GetServiceUser loads a service user by id.
func (tx *Tx) GetServiceUser(id string) (*ServiceUser, error) {
	return getRecord[ServiceUser](tx, serviceKey(id))
}

// PutServiceUser creates or replaces a service user. Its name is unique and
// cannot change; the token index follows TokenHash, so the old token stops
// resolving in the same commit that installs a new one.
func (tx *Tx) PutServiceUser(su *ServiceUser) error {
	if !ValidID(su.ID) || su.Name == "" {
		return fmt.Errorf("store: bad service user")
	}
	old, err := tx.GetServiceUser(su.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if old != nil && old.Name != su.Name {
		return fmt.Errorf("service user name: %w", ErrImmutable)
	}
	if err := tx.claim(serviceNameKey(su.Name), su.ID, &ConflictError{"serviceUser", "name", su.Name}); err != nil {
		return err
	}
	if old != nil && old.TokenHash != su.TokenHash && old.TokenHash != ([32]byte{}) {
		if err := tx.del(tokenKey(old.TokenHash)); err != nil {
			return err
		}
	}
	if su.TokenHash != ([32]byte{}) {
		owner, _ := json.Marshal(TokenOwner{Kind: TokenService, ID: su.ID})
		if err := tx.txn.Set(tokenKey(su.TokenHash), owner); err != nil {
			return err
		}
	}
	if err := tx.txn.Set(serviceNameKey(su.Name), []byte(su.ID)); err != nil {
		return err
	}
	return tx.setJSON(serviceKey(su.ID), su)
}

// ListServiceUsers lists service users by name.
func (tx *Tx) ListServiceUsers() ([]*ServiceUser, error) {
	out, err := listRecords[ServiceUser](tx, prefixService)
	slices.SortFunc(out, func(a, b *ServiceUser) int { return strings.Compare(a.Name, b.Name) })
	return out, err
}

// DeleteServiceUser removes a service user; its token dies with it.
func (tx *Tx) DeleteServiceUser(id string) error {
	su, err := tx.GetServiceUser(id)
	if err != nil {
		return err
	}
	if su.TokenHash != ([32]byte{}) {
		if err := tx.del(tokenKey(su.TokenHash)); err != nil {
			return err
		}
	}
	if err := tx.del(serviceNameKey(su.Name)); err != nil {
		return err
	}
	return tx.del(serviceKey(id))
}

// CountServiceUsers counts service users.
func (tx *Tx) CountServiceUsers() (int, error) { return tx.count(prefixService), nil }

// LookupToken finds what a token hash belongs to.
func (tx *Tx) LookupToken(hash [32]byte) (TokenOwner, error) {
	var o TokenOwner
	err := tx.getJSON(tokenKey(hash), &o)
	return o, err
}

func sessionKey(id string) []byte          { return []byte("ses/" + id) }
func sessionUserKey(uid, id string) []byte { return []byte("x/su/" + uid + "/" + id) }

var prefixSession = []byte("ses/")

// PutSession stores a session until its ExpiresAt: the record, its token
// index entry and its user index entry all carry that TTL, so Badger drops
// them together.
func (tx *Tx) PutSession(se *Session) error {
	if !ValidID(se.ID) || !ValidID(se.UserID) {
		return fmt.Errorf("store: bad session")
	}
	if !se.ExpiresAt.After(time.Now()) {
		return fmt.Errorf("store: session already expired")
	}
	old, err := tx.GetSession(se.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if old != nil && old.TokenHash != se.TokenHash {
		if err := tx.del(tokenKey(old.TokenHash)); err != nil {
			return err
		}
	}
	b, err := json.Marshal(se)
	if err != nil {
		return err
	}
	owner, _ := json.Marshal(TokenOwner{Kind: TokenSession, ID: se.ID})
	if err := tx.setTTL(tokenKey(se.TokenHash), owner, se.ExpiresAt); err != nil {
		return err
	}
	if err := tx.setTTL(sessionUserKey(se.UserID, se.ID), nil, se.ExpiresAt); err != nil {
		return err
	}
	return tx.setTTL(sessionKey(se.ID), b, se.ExpiresAt)
}

// GetSession loads a live session; expired ones are gone.
func (tx *Tx) GetSession(id string) (*Session, error) {
	return getRecord[Session](tx, sessionKey(id))
}

// DeleteSession ends a session and removes its token.
func (tx *Tx) DeleteSession(id string) error {
	se, err := tx.GetSession(id)
	if err != nil {
		return err
	}
	if err := tx.del(tokenKey(se.TokenHash)); err != nil {
		return err
	}
	if err := tx.del(sessionUserKey(se.UserID, id)); err != nil {
		return err
	}
	return tx.del(sessionKey(id))
}

// ListUserSessions lists a user's live sessions.
func (tx *Tx) ListUserSessions(userID string) ([]*Session, error) {
	prefix := []byte("x/su/" + userID + "/")
	var ids []string
	tx.keys(prefix, func(k []byte) bool {
		ids = append(ids, string(k[len(prefix):]))
		return true
	})
	var out []*Session
	for _, id := range ids {
		se, err := tx.GetSession(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, se)
	}
	return out, nil
}

// DeleteUserSessions ends every session of a user and reports how many.
func (tx *Tx) DeleteUserSessions(userID string) (int, error) {
	ses, err := tx.ListUserSessions(userID)
	if err != nil {
		return 0, err
	}
	for _, se := range ses {
		if err := tx.DeleteSession(se.ID); err != nil {
			return 0, err
		}
	}
	return len(ses), nil
}

// CountSessions counts live sessions.
func (tx *Tx) CountSessions() (int, error) { return tx.count(prefixSession), nil }
