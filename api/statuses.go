package api

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"pbxd/store"
)

// statusWrite is the body of POST /statuses and PUT /statuses/{id}.
type statusWrite struct {
	// StatusID is the slug (a–z, 0–9, -); set at creation, fixed after.
	StatusID *string `json:"statusId"`
	Name     *string `json:"name"`
	// Status is the class: 1 available, 2 not ready, 3 after-call work
	// (0, offline, is the system status offline's alone).
	Status *int `json:"status"`
}

// statusView is a catalogue entry as the API shows it.
type statusView struct {
	ID         string `json:"id"`
	URI        string `json:"uri"`
	StatusID   string `json:"statusId"`
	Name       string `json:"name"`
	Status     int    `json:"status"`
	System     bool   `json:"system"`
	CreatedAt  int64  `json:"createdAt"`
	CreatedBy  string `json:"createdBy,omitempty"`
	ModifiedAt int64  `json:"modifiedAt"`
	ModifiedBy string `json:"modifiedBy,omitempty"`
}

func statusURI(id string) string { return "/api/v1/statuses/" + url.PathEscape(id) }

func viewStatus(st *store.Status) statusView {
	return statusView{ID: st.ID, URI: statusURI(st.ID), StatusID: st.StatusID, Name: st.Name, Status: st.Class, System: st.System,
		CreatedAt: ms(st.CreatedAt), CreatedBy: st.CreatedBy, ModifiedAt: ms(st.ModifiedAt), ModifiedBy: st.ModifiedBy}
}

func (w *statusWrite) validate(create bool) *Problem {
	if create && w.StatusID == nil {
		return invalid("statusId", "is required: a slug such as \"meeting\"")
	}
	if create && w.Name == nil {
		return invalid("name", "is required")
	}
	if create && w.Status == nil {
		return invalid("status", "is required: 1 available, 2 not ready, 3 after-call work")
	}
	if w.StatusID != nil && !store.StatusSlugRE.MatchString(*w.StatusID) {
		return invalid("statusId", "1–40 characters: lower-case letters, digits and -, starting with a letter or digit")
	}
	if w.Name != nil {
		n := strings.TrimSpace(*w.Name)
		if n == "" || len(n) > 64 || strings.ContainsAny(n, "\x00\r\n") {
			return invalid("name", "1–64 characters on one line")
		}
	}
	if w.Status != nil && !store.ValidStatusClass(*w.Status) {
		return invalid("status", "must be 1 (available), 2 (not ready) or 3 (after-call work)")
	}
	if create && *w.Status == store.StatusOffline {
		// Offline is the logged-out state; a second offline status would
		// be an ACD login that takes nothing, which not ready already is.
		return invalid("status", "0 (offline) belongs to the system status offline alone; use 2 (not ready)")
	}
	return nil
}

func adminOnly(p *Principal, what string) *Problem {
	if !p.IsAdmin() {
		return forbidden(what + " needs admin rights")
	}
	return nil
}

func (s *Server) handleListStatuses(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := noQuery(r, "start", "rows"); prob != nil {
		return prob
	}
	pg, prob := parsePage(r.URL.Query())
	if prob != nil {
		return prob
	}
	var all []*store.Status
	if err := s.st.View(func(tx *store.Tx) (err error) { all, err = tx.ListStatuses(); return err }); err != nil {
		return err
	}
	objects := []statusView{}
	for i := pg.start; i < len(all) && i < pg.start+pg.rows; i++ {
		objects = append(objects, viewStatus(all[i]))
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/statuses", nil, len(all), objects, len(objects)))
	return nil
}

func (s *Server) handleCreateStatus(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnly(p, "changing the status catalogue"); prob != nil {
		return prob
	}
	var in statusWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(true); prob != nil {
		return prob
	}
	now := s.now()
	st := &store.Status{ID: store.NewID(), StatusID: *in.StatusID, Name: strings.TrimSpace(*in.Name), Class: *in.Status,
		CreatedAt: now, CreatedBy: p.ID, ModifiedAt: now, ModifiedBy: p.ID}
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutStatus(st); err != nil {
			return err
		}
		return s.audit(tx, r, p, "status.create", "status", st.ID, map[string]string{"statusId": st.StatusID})
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", statusURI(st.ID))
	writeJSON(w, http.StatusCreated, viewStatus(st))
	return nil
}

func (s *Server) handleGetStatus(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var st *store.Status
	err := s.st.View(func(tx *store.Tx) (err error) { st, err = tx.GetStatus(id); return err })
	if err != nil {
		return respond(w, err, "status "+id, 0, nil)
	}
	writeJSON(w, http.StatusOK, viewStatus(st))
	return nil
}

// handleUpdateStatus renames or reclassifies an entry. Agents who are in
// the status now get the new class with it, so routing follows at once.
func (s *Server) handleUpdateStatus(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnly(p, "changing the status catalogue"); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var in statusWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(false); prob != nil {
		return prob
	}
	var out *store.Status
	err := s.st.Update(func(tx *store.Tx) error {
		st, err := tx.GetStatus(id)
		if err != nil {
			return err
		}
		if in.StatusID != nil && *in.StatusID != st.StatusID {
			return invalid("statusId", "is fixed after creation; add a new status instead")
		}
		if in.Name != nil {
			st.Name = strings.TrimSpace(*in.Name)
		}
		reclassed := in.Status != nil && *in.Status != st.Class
		if reclassed {
			if st.System {
				return storeProblem(store.ErrProtected)
			}
			if *in.Status == store.StatusOffline {
				return invalid("status", "0 (offline) belongs to the system status offline alone; use 2 (not ready)")
			}
			st.Class = *in.Status
		}
		st.ModifiedAt, st.ModifiedBy = s.now(), p.ID
		if err := tx.PutStatus(st); err != nil {
			return storeProblem(err)
		}
		if reclassed {
			states, err := tx.ListACDStates()
			if err != nil {
				return err
			}
			for _, a := range states {
				if a.LoggedIn && a.StatusID == st.StatusID {
					a.Status = st.Class
					if err := tx.PutACDState(a); err != nil {
						return err
					}
				}
			}
		}
		out = st
		return s.audit(tx, r, p, "status.update", "status", id, map[string]string{"statusId": st.StatusID})
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("status " + id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewStatus(out))
	return nil
}

func (s *Server) handleDeleteStatus(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnly(p, "changing the status catalogue"); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	err := s.st.Update(func(tx *store.Tx) error {
		st, err := tx.GetStatus(id)
		if err != nil {
			return err
		}
		if err := tx.DeleteStatus(id); err != nil {
			return storeProblem(err)
		}
		return s.audit(tx, r, p, "status.delete", "status", id, map[string]string{"statusId": st.StatusID})
	})
	return respond(w, err, "status "+id, http.StatusNoContent, nil)
}
