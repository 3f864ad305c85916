package store

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// ACDChannel is how an agent takes one kind of workitem (voice, chat,
// email …) while logged in to the ACD.
type ACDChannel struct {
	Enabled bool `json:"enabled"`
	// Limit is how many workitems of the channel the agent holds at once
	// (0: no limit).
	Limit        int  `json:"limit"`
	Multitasking bool `json:"multitasking"`
	// Priority orders the channels when several offer work (lower first).
	Priority int `json:"priority"`
}

// ACDState is a user's ACD login: whether they take routed workitems, on
// which channels, from which queues, and their status. It is kept in the
// store, so a restart of the box does not log agents out.
type ACDState struct {
	UserID   string    `json:"userId"`
	LoggedIn bool      `json:"loggedIn"`
	LoginAt  time.Time `json:"loginAt,omitzero"`
	LogoutAt time.Time `json:"logoutAt,omitzero"`
	// Channels and Queues stay after a logout: they are what the next
	// login (and autoLoginToAcd) starts from.
	Channels map[string]ACDChannel `json:"channels,omitempty"`
	Queues   []string              `json:"queues,omitempty"`
	// Status is the class of StatusID (StatusOffline … StatusAfterCallWork).
	Status          int       `json:"status"`
	StatusID        string    `json:"statusId"`
	StatusStartedAt time.Time `json:"statusStartedAt,omitzero"`
	// ChangedBy is the id of whoever made the last change (the user,
	// a supervisor, a service user).
	ChangedBy string    `json:"changedBy,omitempty"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}

// Routable reports whether the ACD may offer the user workitems now.
func (a *ACDState) Routable() bool { return a.LoggedIn && a.Status == StatusAvailable }

// InQueue reports whether the user is logged in to queueID.
func (a *ACDState) InQueue(queueID string) bool {
	return a.LoggedIn && slices.Contains(a.Queues, queueID)
}

func acdKey(uid string) []byte           { return []byte("acd/" + uid) }
func acdQueueKey(qid, uid string) []byte { return []byte("x/aq/" + qid + "/" + uid) }

var prefixACD = []byte("acd/")

// GetACDState loads a user's ACD state. A user who never logged in gets
// an offline state (not ErrNotFound).
func (tx *Tx) GetACDState(userID string) (*ACDState, error) {
	a := &ACDState{}
	err := tx.getJSON(acdKey(userID), a)
	if errors.Is(err, ErrNotFound) {
		return &ACDState{UserID: userID, Status: StatusOffline, StatusID: StatusIDOffline}, nil
	}
	if err != nil {
		return nil, err
	}
	return a, nil
}

// PutACDState stores a user's ACD state and keeps the queue index (which
// logged-in users each queue has) in step.
func (tx *Tx) PutACDState(a *ACDState) error {
	if !ValidID(a.UserID) || !ValidStatusClass(a.Status) || a.StatusID == "" {
		return fmt.Errorf("store: bad ACD state")
	}
	old, err := tx.GetACDState(a.UserID)
	if err != nil {
		return err
	}
	var now []string
	if a.LoggedIn {
		now = a.Queues
	}
	if old.LoggedIn {
		for _, q := range old.Queues {
			if !slices.Contains(now, q) {
				if err := tx.del(acdQueueKey(q, a.UserID)); err != nil {
					return err
				}
			}
		}
	}
	for _, q := range now {
		if err := tx.txn.Set(acdQueueKey(q, a.UserID), nil); err != nil {
			return err
		}
	}
	return tx.setJSON(acdKey(a.UserID), a)
}

// DeleteACDState forgets a user's ACD state (when the user is deleted).
func (tx *Tx) DeleteACDState(userID string) error {
	old, err := tx.GetACDState(userID)
	if err != nil {
		return err
	}
	for _, q := range old.Queues {
		if err := tx.del(acdQueueKey(q, userID)); err != nil {
			return err
		}
	}
	return tx.del(acdKey(userID))
}

// ListACDStates lists the stored ACD states (users who never logged in
// have none), in user-id order.
func (tx *Tx) ListACDStates() ([]*ACDState, error) {
	return listRecords[ACDState](tx, prefixACD)
}

// ACDQueueMembers lists the ids of the users logged in to a queue, whatever
// their status; Routable tells which of them may take work now.
func (tx *Tx) ACDQueueMembers(queueID string) []string {
	prefix := []byte("x/aq/" + queueID + "/")
	var ids []string
	tx.keys(prefix, func(k []byte) bool {
		ids = append(ids, string(k[len(prefix):]))
		return true
	})
	return ids
}
