package api

import (
	"net/http"

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
