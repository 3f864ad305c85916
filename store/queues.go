package store

import (
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
	return getRecord[Queue](tx, queueKey(id))
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
	return putNamed(tx, "queue", queueKey, queueNameKey, q.ID, q, func(q *Queue) string { return q.Name })
}

// ListQueues lists every queue by lower-cased name.
func (tx *Tx) ListQueues() ([]*Queue, error) {
	out, err := listRecords[Queue](tx, prefixQueue)
	slices.SortFunc(out, func(a, b *Queue) int { return compareByName(a.Name, a.ID, b.Name, b.ID) })
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
