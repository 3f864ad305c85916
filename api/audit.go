package api

import (
	"net/http"
	"strings"

	"pbxd/store"
)

// audit appends a record of a change inside the transaction that makes it,
// so a change and its audit record land together or not at all.
func (s *Server) audit(tx *store.Tx, r *http.Request, p *Principal, action, targetKind, targetID string, detail map[string]string) error {
	rec := &store.AuditRecord{At: s.now(), Action: action, TargetKind: targetKind, TargetID: targetID, Detail: detail}
	if p != nil {
		rec.ActorKind, rec.ActorID, rec.ActorName = p.Kind, p.ID, p.Name
	} else {
		rec.ActorKind = "system"
	}
	if r != nil {
		rec.RemoteAddr = remoteIP(r)
	}
	return tx.AppendAudit(rec)
}

// fieldNames collects, for an audit record, the names of the members a
// write carries: never their values (a password is only ever named).
type fieldNames []string

// add names a member if the write carries it.
func (f *fieldNames) add(present bool, name string) {
	if present {
		*f = append(*f, name)
	}
}

// String is the names joined by commas, "" for none.
func (f fieldNames) String() string { return strings.Join(f, ",") }

// deleteNamed deletes the record id in one transaction and audits
// kind+".delete" with the name it had: get loads it (an unknown id is
// store.ErrNotFound), del deletes it, name reads its name.
func deleteNamed[T any](s *Server, r *http.Request, p *Principal, kind, id string,
	get func(*store.Tx, string) (*T, error), del func(*store.Tx, string) error, name func(*T) string) error {
	return s.st.Update(func(tx *store.Tx) error {
		v, err := get(tx, id)
		if err != nil {
			return err
		}
		if err := del(tx, id); err != nil {
			return err
		}
		return s.audit(tx, r, p, kind+".delete", kind, id, map[string]string{"name": name(v)})
	})
}

type auditView struct {
	ID         string            `json:"id"`
	At         int64             `json:"at"`
	ActorKind  string            `json:"actorKind"`
	ActorID    string            `json:"actorId,omitempty"`
	ActorName  string            `json:"actorName,omitempty"`
	Action     string            `json:"action"`
	TargetKind string            `json:"targetKind,omitempty"`
	TargetID   string            `json:"targetId,omitempty"`
	Detail     map[string]string `json:"detail,omitempty"`
	RemoteAddr string            `json:"remoteAddr,omitempty"`
}

// handleAudit lists audit records, newest first.
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if !p.IsAdmin() {
		return forbidden("reading the audit log needs admin rights")
	}
	pg, prob := parsePage(r.URL.Query())
	if prob != nil {
		return prob
	}
	var recs []*store.AuditRecord
	var total int
	err := s.st.View(func(tx *store.Tx) (err error) { recs, total, err = tx.ListAudit(pg.start, pg.rows); return err })
	if err != nil {
		return err
	}
	objects := make([]auditView, 0, len(recs))
	for _, a := range recs {
		objects = append(objects, auditView{ID: a.ID, At: ms(a.At), ActorKind: a.ActorKind, ActorID: a.ActorID,
			ActorName: a.ActorName, Action: a.Action, TargetKind: a.TargetKind, TargetID: a.TargetID,
			Detail: a.Detail, RemoteAddr: a.RemoteAddr})
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/audit", nil, total, objects, len(objects)))
	return nil
}
