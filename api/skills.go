package api

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"pbxd/store"
)

type skillWrite struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

func (s *Server) handleListSkills(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if !p.Can(store.ScopeUsersRead) {
		return forbidden("reading skills needs the users:read permission")
	}
	pg, prob := parsePage(r.URL.Query())
	if prob != nil {
		return prob
	}
	var all []*store.Skill
	if err := s.st.View(func(tx *store.Tx) (err error) { all, err = tx.ListSkills(); return err }); err != nil {
		return err
	}
	objects := []skillView{}
	for i := pg.start; i < len(all) && i < pg.start+pg.rows; i++ {
		objects = append(objects, viewSkill(all[i]))
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/skills", nil, len(all), objects, len(objects)))
	return nil
}

func (s *Server) handleCreateSkill(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if !p.Can(store.ScopeUsersWrite) {
		return forbidden("creating skills needs the users:write permission")
	}
	var in skillWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 64 || strings.ContainsAny(in.Name, "\x00\r\n") {
		return invalid("name", "is required: at most 64 characters on one line")
	}
	if len(in.Description) > 500 || strings.ContainsRune(in.Description, 0) {
		return invalid("description", "at most 500 characters")
	}
	sk := &store.Skill{ID: store.NewID(), Name: in.Name, Description: in.Description, CreatedAt: s.now(), CreatedBy: p.ID}
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutSkill(sk); err != nil {
			return err
		}
		return s.audit(tx, r, p, "skill.create", "skill", sk.ID, map[string]string{"name": sk.Name})
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", skillURI(sk.ID))
	writeJSON(w, http.StatusCreated, viewSkill(sk))
	return nil
}

func (s *Server) handleGetSkill(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if !p.Can(store.ScopeUsersRead) {
		return forbidden("reading skills needs the users:read permission")
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var sk *store.Skill
	err := s.st.View(func(tx *store.Tx) (err error) { sk, err = tx.GetSkill(id); return err })
	if errors.Is(err, store.ErrNotFound) {
		return notFound("skill " + id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSkill(sk))
	return nil
}

func (s *Server) handleDeleteSkill(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if !p.Can(store.ScopeUsersWrite) {
		return forbidden("deleting skills needs the users:write permission")
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	err := deleteNamed(s, r, p, "skill", id, (*store.Tx).GetSkill, (*store.Tx).DeleteSkill, func(sk *store.Skill) string { return sk.Name })
	return respond(w, err, "skill "+id, http.StatusNoContent, nil)
}

type skillAssignWrite struct {
	SkillID     string `json:"skillId"`
	Proficiency *int   `json:"proficiency"`
}

func (s *Server) handleListUserSkills(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	if !canSeeUser(p, id) {
		return forbidden("reading skills needs the users:read permission")
	}
	var v userView
	err := s.st.View(func(tx *store.Tx) error {
		u, err := tx.GetUser(id)
		if err != nil {
			return err
		}
		return s.expandUser(tx, u, &v, nil)
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("user " + id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listEnvelope{Count: len(*v.Skills), Total: len(*v.Skills), Objects: *v.Skills})
	return nil
}

// handleAssignSkill gives a user a skill, or changes its proficiency.
func (s *Server) handleAssignSkill(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	if !p.Can(store.ScopeUsersWrite) {
		return forbidden("assigning skills needs the users:write permission")
	}
	var in skillAssignWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if !store.ValidID(in.SkillID) {
		return invalid("skillId", "is required: the id of a skill")
	}
	prof := 5
	if in.Proficiency != nil {
		prof = *in.Proficiency
	}
	if prof < 1 || prof > 10 {
		return invalid("proficiency", "must be from 1 to 10")
	}
	var out skillAssign
	err := s.st.Update(func(tx *store.Tx) error {
		u, err := tx.GetUser(id)
		if err != nil {
			return err
		}
		sk, err := tx.GetSkill(in.SkillID)
		if errors.Is(err, store.ErrNotFound) {
			return invalid("skillId", "no such skill")
		}
		if err != nil {
			return err
		}
		i := slices.IndexFunc(u.Skills, func(a store.SkillAssignment) bool { return a.SkillID == sk.ID })
		if i >= 0 {
			u.Skills[i].Proficiency = prof
		} else {
			u.Skills = append(u.Skills, store.SkillAssignment{SkillID: sk.ID, Proficiency: prof})
		}
		u.ModifiedAt, u.ModifiedBy = s.now(), p.ID
		if err := tx.PutUser(u); err != nil {
			return err
		}
		out = skillAssign{SkillID: sk.ID, Name: sk.Name, Proficiency: prof, URI: skillURI(sk.ID)}
		return s.audit(tx, r, p, "user.assignSkill", "user", id, map[string]string{"skillId": sk.ID})
	})
	return respond(w, err, "user "+id, http.StatusOK, out)
}

func (s *Server) handleUnassignSkill(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	sid, prob := pathID(r, "skillId")
	if prob != nil {
		return prob
	}
	if !p.Can(store.ScopeUsersWrite) {
		return forbidden("assigning skills needs the users:write permission")
	}
	err := s.st.Update(func(tx *store.Tx) error {
		u, err := tx.GetUser(id)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(u.Skills, func(a store.SkillAssignment) bool { return a.SkillID == sid })
		if i < 0 {
			return store.ErrNotFound
		}
		u.Skills = slices.Delete(u.Skills, i, i+1)
		u.ModifiedAt, u.ModifiedBy = s.now(), p.ID
		if err := tx.PutUser(u); err != nil {
			return err
		}
		return s.audit(tx, r, p, "user.unassignSkill", "user", id, map[string]string{"skillId": sid})
	})
	return respond(w, err, "skill assignment", http.StatusNoContent, nil)
}
