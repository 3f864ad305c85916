package api

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"pbxd/store"
)

// queueSkillWrite is one skill a queue asks for.
type queueSkillWrite struct {
	SkillID string `json:"skillId"`
	// MinProficiency is 1–10; 1 when left out.
	MinProficiency *int `json:"minProficiency"`
}

// queueWrite is the body of POST /queues and PUT /queues/{id}; members
// left out are unchanged, skills replace the set.
type queueWrite struct {
	Name        *string            `json:"name"`
	Description *string            `json:"description"`
	Skills      *[]queueSkillWrite `json:"skills"`
	Priority    *int               `json:"priority"`
}

type queueSkillView struct {
	SkillID        string `json:"skillId"`
	Name           string `json:"name"`
	MinProficiency int    `json:"minProficiency"`
}

// queueView is a queue as the API shows it; members are the users logged
// in to it (with their routable state), shown on single reads.
type queueView struct {
	ID          string           `json:"id"`
	URI         string           `json:"uri"`
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Skills      []queueSkillView `json:"skills"`
	Priority    int              `json:"priority"`
	CreatedAt   int64            `json:"createdAt"`
	CreatedBy   string           `json:"createdBy,omitempty"`
	ModifiedAt  int64            `json:"modifiedAt"`
	ModifiedBy  string           `json:"modifiedBy,omitempty"`
	Members     *[]queueMember   `json:"members,omitempty"`
}

type queueMember struct {
	UserID   string `json:"userId"`
	StatusID string `json:"statusId"`
	Routable bool   `json:"routable"`
}

func queueURI(id string) string { return "/api/v1/queues/" + url.PathEscape(id) }

func viewQueue(tx *store.Tx, q *store.Queue) (queueView, error) {
	v := queueView{ID: q.ID, URI: queueURI(q.ID), Name: q.Name, Description: q.Description, Skills: []queueSkillView{},
		Priority: q.Priority, CreatedAt: ms(q.CreatedAt), CreatedBy: q.CreatedBy, ModifiedAt: ms(q.ModifiedAt), ModifiedBy: q.ModifiedBy}
	for _, sk := range q.Skills {
		name := ""
		k, err := tx.GetSkill(sk.SkillID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return v, err
		}
		if k != nil {
			name = k.Name
		}
		v.Skills = append(v.Skills, queueSkillView{SkillID: sk.SkillID, Name: name, MinProficiency: sk.MinProficiency})
	}
	return v, nil
}

func (w *queueWrite) validate(create bool) *Problem {
	if create && w.Name == nil {
		return invalid("name", "is required")
	}
	if w.Name != nil {
		n := strings.TrimSpace(*w.Name)
		if n == "" || len(n) > 64 || strings.ContainsAny(n, "\x00\r\n") {
			return invalid("name", "1–64 characters on one line")
		}
	}
	if w.Description != nil && (len(*w.Description) > 500 || strings.ContainsRune(*w.Description, 0)) {
		return invalid("description", "at most 500 characters")
	}
	if w.Skills != nil {
		if len(*w.Skills) > 50 {
			return invalid("skills", "at most 50 skills")
		}
		for _, sk := range *w.Skills {
			if !store.ValidID(sk.SkillID) {
				return invalid("skills", "skillId must be the id of a skill")
			}
			if sk.MinProficiency != nil && (*sk.MinProficiency < 1 || *sk.MinProficiency > 10) {
				return invalid("skills", "minProficiency must be from 1 to 10")
			}
		}
	}
	if w.Priority != nil && (*w.Priority < 0 || *w.Priority > 1000) {
		return invalid("priority", "must be from 0 to 1000")
	}
	return nil
}

// apply copies the members sent onto q, checking that skills exist.
func (w *queueWrite) apply(tx *store.Tx, q *store.Queue) error {
	if w.Name != nil {
		q.Name = strings.TrimSpace(*w.Name)
	}
	if w.Description != nil {
		q.Description = *w.Description
	}
	if w.Priority != nil {
		q.Priority = *w.Priority
	}
	if w.Skills != nil {
		q.Skills = nil
		for _, sk := range *w.Skills {
			if _, err := tx.GetSkill(sk.SkillID); errors.Is(err, store.ErrNotFound) {
				return invalid("skills", "no skill "+sk.SkillID+" (GET /api/v1/skills)")
			} else if err != nil {
				return err
			}
			minProf := 1
			if sk.MinProficiency != nil {
				minProf = *sk.MinProficiency
			}
			i := slices.IndexFunc(q.Skills, func(e store.QueueSkill) bool { return e.SkillID == sk.SkillID })
			if i >= 0 {
				q.Skills[i].MinProficiency = minProf
				continue
			}
			q.Skills = append(q.Skills, store.QueueSkill{SkillID: sk.SkillID, MinProficiency: minProf})
		}
	}
	return nil
}

// queue reads (listing queues to pick at ACD login) need users:read;
// writes are for admins.
func canReadCatalogue(p *Principal) *Problem {
	if !p.Can(store.ScopeUsersRead) && !p.Can(store.ScopeCallsControl) {
		return forbidden("reading this needs the users:read or calls:control permission")
	}
	return nil
}

func (s *Server) handleListQueues(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := canReadCatalogue(p); prob != nil {
		return prob
	}
	if prob := noQuery(r, "start", "rows"); prob != nil {
		return prob
	}
	pg, prob := parsePage(r.URL.Query())
	if prob != nil {
		return prob
	}
	objects := []queueView{}
	total := 0
	err := s.st.View(func(tx *store.Tx) error {
		all, err := tx.ListQueues()
		if err != nil {
			return err
		}
		total = len(all)
		for i := pg.start; i < len(all) && i < pg.start+pg.rows; i++ {
			v, err := viewQueue(tx, all[i])
			if err != nil {
				return err
			}
			objects = append(objects, v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/queues", nil, total, objects, len(objects)))
	return nil
}

func (s *Server) handleCreateQueue(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnly(p, "changing queues"); prob != nil {
		return prob
	}
	var in queueWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(true); prob != nil {
		return prob
	}
	now := s.now()
	q := &store.Queue{ID: store.NewID(), CreatedAt: now, CreatedBy: p.ID, ModifiedAt: now, ModifiedBy: p.ID}
	var v queueView
	err := s.st.Update(func(tx *store.Tx) error {
		if err := in.apply(tx, q); err != nil {
			return err
		}
		if err := tx.PutQueue(q); err != nil {
			return err
		}
		var err error
		if v, err = viewQueue(tx, q); err != nil {
			return err
		}
		return s.audit(tx, r, p, "queue.create", "queue", q.ID, map[string]string{"name": q.Name})
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", queueURI(q.ID))
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) handleGetQueue(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := canReadCatalogue(p); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var v queueView
	err := s.st.View(func(tx *store.Tx) error {
		q, err := tx.GetQueue(id)
		if err != nil {
			return err
		}
		if v, err = viewQueue(tx, q); err != nil {
			return err
		}
		members := []queueMember{}
		for _, uid := range tx.ACDQueueMembers(id) {
			a, err := tx.GetACDState(uid)
			if err != nil {
				return err
			}
			members = append(members, queueMember{UserID: uid, StatusID: a.StatusID, Routable: a.Routable()})
		}
		v.Members = &members
		return nil
	})
	return respond(w, err, "queue "+id, http.StatusOK, v)
}

func (s *Server) handleUpdateQueue(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnly(p, "changing queues"); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var in queueWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(false); prob != nil {
		return prob
	}
	var v queueView
	err := s.st.Update(func(tx *store.Tx) error {
		q, err := tx.GetQueue(id)
		if err != nil {
			return err
		}
		if err := in.apply(tx, q); err != nil {
			return err
		}
		q.ModifiedAt, q.ModifiedBy = s.now(), p.ID
		if err := tx.PutQueue(q); err != nil {
			return err
		}
		if v, err = viewQueue(tx, q); err != nil {
			return err
		}
		return s.audit(tx, r, p, "queue.update", "queue", id, map[string]string{"name": q.Name})
	})
	return respond(w, err, "queue "+id, http.StatusOK, v)
}

func (s *Server) handleDeleteQueue(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnly(p, "changing queues"); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	err := deleteNamed(s, r, p, "queue", id, (*store.Tx).GetQueue, (*store.Tx).DeleteQueue, func(q *store.Queue) string { return q.Name })
	return respond(w, err, "queue "+id, http.StatusNoContent, nil)
}
