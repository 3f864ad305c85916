package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"pbxd/store"
)

func workitemURI(id string) string { return "/api/v1/workitems/" + url.PathEscape(id) }

// workitemView is a call record as the API shows it (times in epoch ms).
type workitemView struct {
	ID         string           `json:"id"`
	URI        string           `json:"uri"`
	Type       string           `json:"type"`
	State      string           `json:"state"`
	From       string           `json:"from"`
	FromName   string           `json:"fromName,omitempty"`
	To         string           `json:"to"`
	ToName     string           `json:"toName,omitempty"`
	OwnedBy    string           `json:"ownedBy,omitempty"`
	Users      []string         `json:"users"`
	TrunkID    string           `json:"trunkId,omitempty"`
	CallID     string           `json:"callId,omitempty"`
	CreatedAt  int64            `json:"createdAt"`
	AnsweredAt int64            `json:"answeredAt,omitempty"`
	EndedAt    int64            `json:"endedAt,omitempty"`
	DurationMs int64            `json:"duration"`
	EndReason  string           `json:"endReason,omitempty"`
	EndStatus  int              `json:"endStatus,omitempty"`
	HangupBy   string           `json:"hangupBy,omitempty"`
	Media      []store.LegMedia `json:"media"`
	// The contact-center context of calls placed or taken through the
	// agent API.
	ContactID          string `json:"contactId,omitempty"`
	CampaignID         string `json:"campaignId,omitempty"`
	Context            string `json:"context,omitempty"`
	Name               string `json:"name,omitempty"`
	ForcedOutsideHours bool   `json:"forcedOutsideHours,omitempty"`
}

func viewWorkitem(w *store.Workitem) workitemView {
	v := workitemView{ID: w.ID, URI: workitemURI(w.ID), Type: w.Type, State: w.State, From: w.From, FromName: w.FromName,
		To: w.To, ToName: w.ToName, OwnedBy: w.OwnedBy, Users: w.Users, TrunkID: w.TrunkID, CallID: w.CallID,
		CreatedAt: ms(w.CreatedAt), AnsweredAt: ms(w.AnsweredAt), EndedAt: ms(w.EndedAt), DurationMs: w.DurationMs,
		EndReason: w.EndReason, EndStatus: w.EndStatus, HangupBy: w.HangupBy, Media: w.Media,
		ContactID: w.Extra.ContactID, CampaignID: w.Extra.CampaignID, Context: w.Extra.Context, Name: w.Extra.Name,
		ForcedOutsideHours: w.Extra.ForcedOutsideHours}
	if v.Users == nil {
		v.Users = []string{}
	}
	if v.Media == nil {
		v.Media = []store.LegMedia{}
	}
	return v
}

// seesAllWorkitems: admins and service users with history:read read every
// record; others only the calls they took part in.
func seesAllWorkitems(p *Principal) bool { return p.Can(store.ScopeHistoryRead) }

func takesPart(p *Principal, w *store.Workitem) bool {
	for _, u := range w.Users {
		if p.IsSelf(u) {
			return true
		}
	}
	return false
}

// handleListWorkitems lists call records newest first, filtered by
// userId, type, state and a creation-time window (since/until, epoch ms).
func (s *Server) handleListWorkitems(w http.ResponseWriter, r *http.Request, p *Principal) error {
	q := r.URL.Query()
	pg, prob := parsePage(q)
	if prob != nil {
		return prob
	}
	wq := store.WorkitemQuery{Start: pg.start, Rows: pg.rows}
	base := url.Values{}
	for k, v := range q {
		if len(v) > 1 {
			return invalid(k, "may be given once")
		}
		switch k {
		case "start", "rows":
		case "userId":
			if !store.ValidID(v[0]) {
				return invalid(k, "is not a user id")
			}
			wq.UserID = v[0]
		case "type":
			switch v[0] {
			case store.WorkitemInboundCall, store.WorkitemOutboundCall, store.WorkitemInternalCall:
			default:
				return invalid(k, "is InboundCall, OutboundCall or InternalCall")
			}
			wq.Type = v[0]
		case "state":
			switch v[0] {
			case store.WorkitemRinging, store.WorkitemAnswered, store.WorkitemEnded:
			default:
				return invalid(k, "is ringing, answered or ended")
			}
			wq.State = v[0]
		case "since", "until":
			n, err := strconv.ParseInt(v[0], 10, 64)
			if err != nil || n < 0 || n > 1<<50 {
				return invalid(k, "is a time in epoch milliseconds")
			}
			if k == "since" {
				wq.Since = time.UnixMilli(n)
			} else {
				wq.Until = time.UnixMilli(n)
			}
		default:
			return invalid(k, "unknown query parameter")
		}
		if k != "start" && k != "rows" {
			base.Set(k, v[0])
		}
	}
	if !seesAllWorkitems(p) {
		if p.Kind != KindUser {
			return forbidden("reading call records needs the history:read permission")
		}
		if wq.UserID != "" && wq.UserID != p.ID {
			return forbidden("agents read only their own call records")
		}
		wq.UserID = p.ID
	}
	var items []*store.Workitem
	var total int
	if err := s.st.View(func(tx *store.Tx) (err error) { items, total, err = tx.ListWorkitems(wq); return err }); err != nil {
		return err
	}
	objects := make([]workitemView, 0, len(items))
	for _, it := range items {
		objects = append(objects, viewWorkitem(it))
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/workitems", base, total, objects, len(objects)))
	return nil
}

func (s *Server) handleGetWorkitem(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var it *store.Workitem
	err := s.st.View(func(tx *store.Tx) (err error) { it, err = tx.GetWorkitem(id); return err })
	if errors.Is(err, store.ErrNotFound) || (err == nil && !seesAllWorkitems(p) && !takesPart(p, it)) {
		return notFound("workitem " + id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewWorkitem(it))
	return nil
}
