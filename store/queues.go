package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// QueueSkill is a skill a queue asks of the agents it routes to.
type QueueSkill struct {
	SkillID string `json:"skillId"`
	// MinProficiency is the lowest proficiency (1–10) that qualifies.
	MinProficiency int `json:"minProficiency"`
}

// Queue is an ACD queue: agents log in to queues, and the ACD offers a
// queue's workitems to the routable agents who hold its skills.
type Queue struct {
	ID          string       `json:"id"`
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Skills      []QueueSkill `json:"skills,omitempty"`
	// Priority orders queues competing for one agent (lower first).
	Priority   int       `json:"priority"`
	CreatedAt  time.Time `json:"createdAt"`
	CreatedBy  string    `json:"createdBy,omitempty"`
	ModifiedAt time.Time `json:"modifiedAt"`
	ModifiedBy string    `json:"modifiedBy,omitempty"`
}

// Qualifies reports whether a user with skills meets every skill of q.
func (q *Queue) Qualifies(skills []SkillAssignment) bool {
	for _, need := range q.Skills {
		i := slices.IndexFunc(skills, func(a SkillAssignment) bool { return a.SkillID == need.SkillID })
		if i < 0 || skills[i].Proficiency < need.MinProficiency {
			return false
		}
	}
	return true
}

func queueKey(id string) []byte       { return []byte("q/" + id) }
func queueNameKey(name string) []byte { return []byte("x/qn/" + strings.ToLower(name)) }

var prefixQueue = []byte("q/")

// GetQueue loads a queue by id.
func (tx *Tx) GetQueue(id string) (*Queue, error) {
	q := &Queue{}
	if err := tx.getJSON(queueKey(id), q); err != nil {
		return nil, err
	}
	return q, nil
}

// QueueByName finds a queue by name, ignoring case.
func (tx *Tx) QueueByName(name string) (*Queue, error) {
	id, err := tx.lookup(queueNameKey(name))
	if err != nil {
		return nil, err
	}
	return tx.GetQueue(id)
}

// PutQueue creates or replaces a queue; names are unique ignoring case.
func (tx *Tx) PutQueue(q *Queue) error {
	if !ValidID(q.ID) || strings.TrimSpace(q.Name) == "" {
		return fmt.Errorf("store: bad queue")
	}
	old, err := tx.GetQueue(q.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := tx.claim(queueNameKey(q.Name), q.ID, &ConflictError{"queue", "name", q.Name}); err != nil {
		return err
	}
	if old != nil && !strings.EqualFold(old.Name, q.Name) {
		if err := tx.del(queueNameKey(old.Name)); err != nil {
			return err
		}
	}
	if err := tx.txn.Set(queueNameKey(q.Name), []byte(q.ID)); err != nil {
		return err
	}
	return tx.setJSON(queueKey(q.ID), q)
}

// ListQueues lists every queue by lower-cased name.
func (tx *Tx) ListQueues() ([]*Queue, error) {
	var out []*Queue
	err := tx.each(prefixQueue, func(_, v []byte) (bool, error) {
		q := &Queue{}
		if err := json.Unmarshal(v, q); err != nil {
			return false, err
		}
		out = append(out, q)
		return true, nil
	})
	slices.SortFunc(out, func(a, b *Queue) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, err
}

// DeleteQueue removes a queue and takes it out of every agent's ACD
// login, so no agent stays logged in to a queue that is gone.
func (tx *Tx) DeleteQueue(id string) error {
	q, err := tx.GetQueue(id)
	if err != nil {
		return err
	}
	states, err := tx.ListACDStates()
	if err != nil {
		return err
	}
	for _, a := range states {
		if !slices.Contains(a.Queues, id) {
			continue
		}
		a.Queues = slices.DeleteFunc(a.Queues, func(s string) bool { return s == id })
		if err := tx.PutACDState(a); err != nil {
			return err
		}
		if err := tx.del(acdQueueKey(id, a.UserID)); err != nil {
			return err
		}
	}
	if err := tx.del(queueNameKey(q.Name)); err != nil {
		return err
	}
	return tx.del(queueKey(id))
}
