package store

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// Workitem types. Calls are typed from the box's point of view: inbound
// from a trunk, outbound to a trunk, or internal between extensions.
const (
	WorkitemInboundCall  = "InboundCall"
	WorkitemOutboundCall = "OutboundCall"
	WorkitemInternalCall = "InternalCall"
)

// Workitem states.
const (
	WorkitemRinging  = "ringing"
	WorkitemAnswered = "answered"
	WorkitemEnded    = "ended"
)

// Workitem is the record of one interaction. Every call leaves one; the
// call history is a query over them.
type Workitem struct {
	ID    string `json:"id"`
	Type  string `json:"type"`
	State string `json:"state"`
	// From and To are the numbers as dialled and presented (extension, DID
	// or external number); the names are display names when known.
	From     string `json:"from"`
	FromName string `json:"fromName,omitempty"`
	To       string `json:"to"`
	ToName   string `json:"toName,omitempty"`
	// OwnedBy is the user the interaction belongs to: the callee of inbound
	// and internal calls once known, the caller of outbound calls.
	OwnedBy string `json:"ownedBy,omitempty"`
	// Users are every user taking part (caller and callee); each sees the
	// workitem in their history.
	Users   []string `json:"users,omitempty"`
	TrunkID string   `json:"trunkId,omitempty"`
	// CallID is the SIP Call-ID of the first leg.
	CallID     string    `json:"callId,omitempty"`
	CreatedAt  time.Time `json:"createdAt"`
	AnsweredAt time.Time `json:"answeredAt,omitzero"`
	EndedAt    time.Time `json:"endedAt,omitzero"`
	// DurationMs is the talk time, answer to end.
	DurationMs int64 `json:"durationMs"`
	// EndReason is a stable word: completed, busy, no-answer, cancelled,
	// rejected, not-found, unavailable, media-timeout, failed, interrupted.
	EndReason string `json:"endReason,omitempty"`
	// EndStatus is the final SIP status of an unanswered call, or 200.
	EndStatus int `json:"endStatus,omitempty"`
	// HangupBy says which side ended an answered call: caller, callee or
	// system.
	HangupBy string      `json:"hangupBy,omitempty"`
	Media    []LegMedia  `json:"media,omitempty"`
	Extra    WorkitemExt `json:"extra,omitzero"`
}

// WorkitemExt holds the contact-center context of a call placed or taken
// through the agent API.
type WorkitemExt struct {
	ContactID  string `json:"contactId,omitempty"`
	CampaignID string `json:"campaignId,omitempty"`
	Context    string `json:"context,omitempty"`
	Name       string `json:"name,omitempty"`
	// ForcedOutsideHours records a dial placed outside the campaign's
	// calling hours with force=true.
	ForcedOutsideHours bool `json:"forcedOutsideHours,omitempty"`
}

// LegMedia is one leg's RTP statistics, saved when the call ends.
type LegMedia struct {
	Leg                string  `json:"leg"`
	Codec              string  `json:"codec,omitempty"`
	PacketsReceived    uint64  `json:"packetsReceived"`
	PacketsSent        uint64  `json:"packetsSent"`
	PacketsLost        int64   `json:"packetsLost"`
	JitterMs           float64 `json:"jitterMs"`
	RemoteFractionLost float64 `json:"remoteFractionLost"`
	RemoteJitterMs     float64 `json:"remoteJitterMs"`
	EventsReceived     uint64  `json:"eventsReceived,omitempty"`
}

func workitemKey(id string) []byte { return []byte("w/" + id) }

// timeKey is a fixed-width, byte-sortable rendering of t.
func timeKey(t time.Time) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixNano()))
	return hex.EncodeToString(b[:])
}

func workitemTimeKey(w *Workitem) []byte {
	return []byte("x/wt/" + timeKey(w.CreatedAt) + "/" + w.ID)
}
func workitemUserKey(uid string, w *Workitem) []byte {
	return []byte("x/wu/" + uid + "/" + timeKey(w.CreatedAt) + "/" + w.ID)
}
func workitemContactKey(cid string, w *Workitem) []byte {
	return []byte("x/wc/" + cid + "/" + timeKey(w.CreatedAt) + "/" + w.ID)
}
func workitemOpenKey(id string) []byte { return []byte("x/wo/" + id) }

var prefixWorkitemOpen = []byte("x/wo/")

// PutWorkitem creates or replaces a workitem and keeps its indexes: by
// time, by every user taking part, by contact (Extra.ContactID), and the
// set of unfinished ones.
func (tx *Tx) PutWorkitem(w *Workitem) error {
	if !ValidID(w.ID) || w.CreatedAt.IsZero() {
		return fmt.Errorf("store: bad workitem")
	}
	old, err := tx.GetWorkitem(w.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if old != nil {
		if !old.CreatedAt.Equal(w.CreatedAt) {
			return fmt.Errorf("store: workitem creation time is fixed")
		}
		for _, uid := range old.Users {
			if !contains(w.Users, uid) {
				if err := tx.del(workitemUserKey(uid, old)); err != nil {
					return err
				}
			}
		}
		if ValidID(old.Extra.ContactID) && old.Extra.ContactID != w.Extra.ContactID {
			if err := tx.del(workitemContactKey(old.Extra.ContactID, old)); err != nil {
				return err
			}
		}
	}
	if ValidID(w.Extra.ContactID) {
		if err := tx.txn.Set(workitemContactKey(w.Extra.ContactID, w), nil); err != nil {
			return err
		}
	}
	if err := tx.txn.Set(workitemTimeKey(w), nil); err != nil {
		return err
	}
	for _, uid := range w.Users {
		if err := tx.txn.Set(workitemUserKey(uid, w), nil); err != nil {
			return err
		}
	}
	if w.State == WorkitemEnded {
		err = tx.del(workitemOpenKey(w.ID))
	} else {
		err = tx.txn.Set(workitemOpenKey(w.ID), nil)
	}
	if err != nil {
		return err
	}
	return tx.setJSON(workitemKey(w.ID), w)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// GetWorkitem loads one workitem.
func (tx *Tx) GetWorkitem(id string) (*Workitem, error) {
	return getRecord[Workitem](tx, workitemKey(id))
}

// WorkitemsByContact returns a page of the workitems recorded with a
// contact, newest first, and how many there are.
func (tx *Tx) WorkitemsByContact(contactID string, start, rows int) ([]*Workitem, int, error) {
	if !ValidID(contactID) {
		return nil, 0, nil
	}
	return tx.ListWorkitems(WorkitemQuery{ContactID: contactID, Start: start, Rows: rows})
}

// OpenWorkitems lists workitems that have not ended (after a crash these
// are calls that were cut off).
func (tx *Tx) OpenWorkitems() ([]*Workitem, error) {
	var ids []string
	tx.keys(prefixWorkitemOpen, func(k []byte) bool {
		ids = append(ids, string(k[len(prefixWorkitemOpen):]))
		return true
	})
	out := make([]*Workitem, 0, len(ids))
	for _, id := range ids {
		w, err := tx.GetWorkitem(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// WorkitemQuery selects workitems, newest first.
type WorkitemQuery struct {
	// UserID restricts to workitems the user took part in.
	UserID string
	// ContactID restricts to workitems with that contact (Extra.ContactID,
	// indexed when it is a well-formed id); it combines with UserID.
	ContactID string
	// Since and Until bound the creation time: Since <= created < Until.
	// Zero values leave that side open.
	Since, Until time.Time
	// Type and State filter when set.
	Type, State string
	// Match, when set, filters further (for searches over fields).
	Match       func(w *Workitem) bool
	Start, Rows int
}

// ListWorkitems returns the page of matching workitems and how many match.
func (tx *Tx) ListWorkitems(q WorkitemQuery) ([]*Workitem, int, error) {
	prefix := []byte("x/wt/")
	switch {
	case q.ContactID != "":
		prefix = []byte("x/wc/" + q.ContactID + "/")
	case q.UserID != "":
		prefix = []byte("x/wu/" + q.UserID + "/")
	}
	byUser := q.ContactID != "" && q.UserID != ""
	opt := badger.DefaultIteratorOptions
	opt.Reverse = true
	opt.PrefetchValues = false
	opt.Prefix = prefix
	it := tx.txn.NewIterator(opt)
	defer it.Close()
	seek := append([]byte{}, prefix...)
	if !q.Until.IsZero() {
		seek = append(seek, timeKey(q.Until)...)
	} else {
		seek = append(seek, 0xff)
	}
	var sinceKey string
	if !q.Since.IsZero() {
		sinceKey = timeKey(q.Since)
	}
	var out []*Workitem
	total := 0
	for it.Seek(seek); it.ValidForPrefix(prefix); it.Next() {
		rest := string(it.Item().Key()[len(prefix):])
		if len(rest) < 18 {
			continue
		}
		tk, id := rest[:16], rest[17:]
		if !q.Until.IsZero() && tk >= timeKey(q.Until) {
			continue
		}
		if sinceKey != "" && tk < sinceKey {
			break
		}
		filtered := q.Type != "" || q.State != "" || q.Match != nil || byUser
		inPage := total >= q.Start && total < q.Start+q.Rows
		if !filtered && !inPage {
			total++
			continue
		}
		w, err := tx.GetWorkitem(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if (q.Type != "" && w.Type != q.Type) || (q.State != "" && w.State != q.State) || (byUser && !contains(w.Users, q.UserID)) ||
			(q.Match != nil && !q.Match(w)) {
			continue
		}
		if total >= q.Start && total < q.Start+q.Rows {
			out = append(out, w)
		}
		total++
	}
	return out, total, nil
}
