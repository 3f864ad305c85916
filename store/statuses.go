package store

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Status classes: what an agent's status means to ACD routing. Every entry
// of the status catalogue belongs to one.
const (
	// StatusOffline: not logged in to the ACD.
	StatusOffline = 0
	// StatusAvailable: logged in and routable.
	StatusAvailable = 1
	// StatusNotReady: logged in but taking no workitems (break, lunch,
	// meeting …).
	StatusNotReady = 2
	// StatusAfterCallWork: wrapping up the last workitem.
	StatusAfterCallWork = 3
)

// StatusIDs of the entries seeded on the first start. Offline and
// available are system entries: they cannot be deleted, and their statusId
// and class never change, so code may rely on them.
const (
	StatusIDOffline       = "offline"
	StatusIDAvailable     = "available"
	StatusIDBreak         = "break"
	StatusIDLunch         = "lunch"
	StatusIDAfterCallWork = "after-call-work"
)

// Sentinel errors of the contact-center records.
var (
	// ErrProtected refuses to delete or reclassify a system record.
	ErrProtected = errors.New("store: system record")
	// ErrInUse refuses to delete a record others still refer to.
	ErrInUse = errors.New("store: in use")
)

// InUseError says which kind of record still refers to the one that was
// to be deleted; errors.Is(err, ErrInUse) holds.
type InUseError struct {
	Kind, ID, By string
}

func (e *InUseError) Error() string {
	return "store: " + e.Kind + " " + e.ID + " is still used by " + e.By
}

// Is makes errors.Is(err, ErrInUse) true.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// Status is an entry of the admin-defined agent status catalogue.
type Status struct {
	ID string `json:"id"`
	// StatusID is the stable slug clients send ("available", "break" …);
	// unique and fixed after creation.
	StatusID string `json:"statusId"`
	Name     string `json:"name"`
	// Class is StatusOffline, StatusAvailable, StatusNotReady or
	// StatusAfterCallWork.
	Class int `json:"status"`
	// System entries (offline, available) cannot be deleted or
	// reclassified.
	System     bool      `json:"system,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	CreatedBy  string    `json:"createdBy,omitempty"`
	ModifiedAt time.Time `json:"modifiedAt"`
	ModifiedBy string    `json:"modifiedBy,omitempty"`
}

// StatusSlugRE is the shape of a StatusID.
var StatusSlugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// ValidStatusClass reports whether c is one of the four classes.
func ValidStatusClass(c int) bool { return c >= StatusOffline && c <= StatusAfterCallWork }

func statusKey(id string) []byte       { return []byte("st/" + id) }
func statusSlugKey(slug string) []byte { return []byte("x/sts/" + slug) }

var (
	prefixStatus    = []byte("st/")
	keyStatusSeed   = []byte("meta/seed/statuses")
	defaultStatuses = []Status{
		{StatusID: StatusIDOffline, Name: "Offline", Class: StatusOffline, System: true},
		{StatusID: StatusIDAvailable, Name: "Available", Class: StatusAvailable, System: true},
		{StatusID: StatusIDBreak, Name: "Break", Class: StatusNotReady},
		{StatusID: StatusIDLunch, Name: "Lunch", Class: StatusNotReady},
		{StatusID: StatusIDAfterCallWork, Name: "After-call work", Class: StatusAfterCallWork},
	}
)

// seedStatuses fills the status catalogue once, on the first start: a
// marker remembers it was done, so entries an admin deleted stay deleted.
// System entries missing for any reason are put back on every start.
func (tx *Tx) seedStatuses(now time.Time) error {
	_, err := tx.getString(keyStatusSeed)
	seeded := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	for _, d := range defaultStatuses {
		if seeded && !d.System {
			continue
		}
		if _, err := tx.StatusBySlug(d.StatusID); err == nil {
			continue
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		st := d
		st.ID, st.CreatedAt, st.CreatedBy, st.ModifiedAt, st.ModifiedBy = NewID(), now, "system", now, "system"
		if err := tx.PutStatus(&st); err != nil {
			return err
		}
	}
	if seeded {
		return nil
	}
	return tx.txn.Set(keyStatusSeed, []byte(now.UTC().Format(time.RFC3339)))
}

// GetStatus loads a catalogue entry by id.
func (tx *Tx) GetStatus(id string) (*Status, error) {
	return getRecord[Status](tx, statusKey(id))
}

// StatusBySlug finds a catalogue entry by its StatusID.
func (tx *Tx) StatusBySlug(statusID string) (*Status, error) {
	if !StatusSlugRE.MatchString(statusID) {
		return nil, ErrNotFound
	}
	id, err := tx.lookup(statusSlugKey(statusID))
	if err != nil {
		return nil, err
	}
	return tx.GetStatus(id)
}

// PutStatus creates or replaces a catalogue entry. The StatusID is unique
// (a clash is a *ConflictError) and cannot change (ErrImmutable); a system
// entry keeps its class and system flag (ErrProtected).
func (tx *Tx) PutStatus(st *Status) error {
	if !ValidID(st.ID) || !StatusSlugRE.MatchString(st.StatusID) || strings.TrimSpace(st.Name) == "" || !ValidStatusClass(st.Class) {
		return fmt.Errorf("store: bad status")
	}
	old, err := tx.GetStatus(st.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if old != nil {
		if old.StatusID != st.StatusID {
			return fmt.Errorf("status statusId: %w", ErrImmutable)
		}
		if old.System && (st.Class != old.Class || !st.System) {
			return fmt.Errorf("status %s: %w", old.StatusID, ErrProtected)
		}
	}
	if err := tx.claim(statusSlugKey(st.StatusID), st.ID, &ConflictError{"status", "statusId", st.StatusID}); err != nil {
		return err
	}
	if err := tx.txn.Set(statusSlugKey(st.StatusID), []byte(st.ID)); err != nil {
		return err
	}
	return tx.setJSON(statusKey(st.ID), st)
}

// ListStatuses lists the catalogue by class, then name.
func (tx *Tx) ListStatuses() ([]*Status, error) {
	out, err := listRecords[Status](tx, prefixStatus)
	slices.SortFunc(out, func(a, b *Status) int {
		if a.Class != b.Class {
			return a.Class - b.Class
		}
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.StatusID, b.StatusID)
	})
	return out, err
}

// DeleteStatus removes a catalogue entry. System entries are refused
// (ErrProtected); so is an entry that an agent is in right now or that a
// user has as defaultAcdLoginStatus (*InUseError).
func (tx *Tx) DeleteStatus(id string) error {
	st, err := tx.GetStatus(id)
	if err != nil {
		return err
	}
	if st.System {
		return fmt.Errorf("status %s: %w", st.StatusID, ErrProtected)
	}
	var inUse error
	err = tx.ListUsers(func(u *User) bool {
		if u.DefaultAcdLoginStatus == st.StatusID {
			inUse = &InUseError{Kind: "status", ID: st.StatusID, By: "the defaultAcdLoginStatus of user " + u.UserName}
			return false
		}
		return true
	})
	if err != nil {
		return err
	}
	if inUse != nil {
		return inUse
	}
	states, err := tx.ListACDStates()
	if err != nil {
		return err
	}
	for _, a := range states {
		if a.LoggedIn && a.StatusID == st.StatusID {
			return &InUseError{Kind: "status", ID: st.StatusID, By: "the current ACD status of user " + a.UserID}
		}
	}
	if err := tx.del(statusSlugKey(st.StatusID)); err != nil {
		return err
	}
	return tx.del(statusKey(id))
}

// SeedStatuses puts the default status catalogue in place on the first
// start, and the system entries back whenever they are missing. Open calls
// it; it is idempotent.
func (s *Store) SeedStatuses() error {
	return s.Update(func(tx *Tx) error { return tx.seedStatuses(time.Now()) })
}
