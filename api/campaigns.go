package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"pbxd/store"
)

// callingHours is when a campaign may call, in the callee's time zone:
// days 0 (Sunday) … 6 (Saturday), start and end as "HH:MM" (end may be
// "24:00"; an end before the start runs past midnight).
type callingHours struct {
	Days  []int  `json:"days"`
	Start string `json:"start"`
	End   string `json:"end"`
}

// campaignWrite is the body of POST /campaigns and PUT /campaigns/{id}.
// Members left out are unchanged; "callingHours": null removes the
// restriction.
type campaignWrite struct {
	Name         *string       `json:"name"`
	CallerID     *string       `json:"callerId"`
	CallerName   *string       `json:"callerName"`
	CallingHours *callingHours `json:"callingHours"`
	Enabled      *bool         `json:"enabled"`
	// hoursSet records that callingHours was present (possibly null).
	hoursSet bool
}

// UnmarshalJSON decodes strictly (no unknown members) and notes whether
// callingHours was sent, so that null can mean "no restriction".
func (w *campaignWrite) UnmarshalJSON(b []byte) error {
	type plain campaignWrite
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(b, &members); err != nil {
		return err
	}
	_, p.hoursSet = members["callingHours"]
	*w = campaignWrite(p)
	return nil
}

// campaignView is a campaign as the API shows it; callingHours is null
// when it may call at any time.
type campaignView struct {
	ID           string        `json:"id"`
	URI          string        `json:"uri"`
	Name         string        `json:"name"`
	CallerID     string        `json:"callerId"`
	CallerName   string        `json:"callerName"`
	CallingHours *callingHours `json:"callingHours"`
	Enabled      bool          `json:"enabled"`
	CreatedAt    int64         `json:"createdAt"`
	CreatedBy    string        `json:"createdBy,omitempty"`
	ModifiedAt   int64         `json:"modifiedAt"`
	ModifiedBy   string        `json:"modifiedBy,omitempty"`
}

func campaignURI(id string) string { return "/api/v1/campaigns/" + url.PathEscape(id) }

func viewCampaign(c *store.Campaign) campaignView {
	v := campaignView{ID: c.ID, URI: campaignURI(c.ID), Name: c.Name, CallerID: c.CallerID, CallerName: c.CallerName,
		Enabled: c.Enabled, CreatedAt: ms(c.CreatedAt), CreatedBy: c.CreatedBy, ModifiedAt: ms(c.ModifiedAt), ModifiedBy: c.ModifiedBy}
	if h := c.CallingHours; h != nil {
		v.CallingHours = &callingHours{Days: h.Days, Start: h.Start, End: h.End}
		if v.CallingHours.Days == nil {
			v.CallingHours.Days = []int{}
		}
	}
	return v
}

func (w *campaignWrite) validate(create bool) *Problem {
	if create && w.Name == nil {
		return invalid("name", "is required")
	}
	if w.Name != nil {
		n := strings.TrimSpace(*w.Name)
		if n == "" || len(n) > 64 || strings.ContainsAny(n, "\x00\r\n") {
			return invalid("name", "1–64 characters on one line")
		}
	}
	if w.CallerID != nil && *w.CallerID != "" && !numberRE.MatchString(*w.CallerID) {
		return invalid("callerId", "must be a number: digits with an optional leading +")
	}
	if w.CallerName != nil && (len(*w.CallerName) > 64 || !quotableRE.MatchString(*w.CallerName)) {
		return invalid("callerName", `at most 64 characters, without " \ or control characters`)
	}
	if h := w.CallingHours; h != nil {
		if len(h.Days) == 0 || len(h.Days) > 7 {
			return invalid("callingHours.days", "one to seven days: 0 (Sunday) … 6 (Saturday)")
		}
		for _, d := range h.Days {
			if d < 0 || d > 6 {
				return invalid("callingHours.days", "days are 0 (Sunday) … 6 (Saturday)")
			}
		}
		start, err := store.ParseClock(h.Start, false)
		if err != nil {
			return invalid("callingHours.start", `must be "HH:MM" from 00:00 to 23:59`)
		}
		end, err := store.ParseClock(h.End, true)
		if err != nil {
			return invalid("callingHours.end", `must be "HH:MM" from 00:00 to 24:00`)
		}
		if start == end {
			return invalid("callingHours.end", `must differ from start; for the whole day use "00:00" to "24:00"`)
		}
	}
	return nil
}

func (w *campaignWrite) apply(c *store.Campaign) {
	if w.Name != nil {
		c.Name = strings.TrimSpace(*w.Name)
	}
	if w.CallerID != nil {
		c.CallerID = *w.CallerID
	}
	if w.CallerName != nil {
		c.CallerName = *w.CallerName
	}
	if w.Enabled != nil {
		c.Enabled = *w.Enabled
	}
	if w.hoursSet || w.CallingHours != nil {
		c.CallingHours = nil
		if h := w.CallingHours; h != nil {
			days := slices.Clone(h.Days)
			slices.Sort(days)
			c.CallingHours = &store.CallingHours{Days: slices.Compact(days), Start: h.Start, End: h.End}
		}
	}
}

func (w *campaignWrite) fields() string {
	var f fieldNames
	f.add(w.Name != nil, "name")
	f.add(w.CallerID != nil, "callerId")
	f.add(w.CallerName != nil, "callerName")
	f.add(w.hoursSet || w.CallingHours != nil, "callingHours")
	f.add(w.Enabled != nil, "enabled")
	return f.String()
}

func (s *Server) handleListCampaigns(w http.ResponseWriter, r *http.Request, p *Principal) error {
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
	var all []*store.Campaign
	if err := s.st.View(func(tx *store.Tx) (err error) { all, err = tx.ListCampaigns(); return err }); err != nil {
		return err
	}
	objects := []campaignView{}
	for i := pg.start; i < len(all) && i < pg.start+pg.rows; i++ {
		objects = append(objects, viewCampaign(all[i]))
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/campaigns", nil, len(all), objects, len(objects)))
	return nil
}

func (s *Server) handleCreateCampaign(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnly(p, "changing campaigns"); prob != nil {
		return prob
	}
	var in campaignWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(true); prob != nil {
		return prob
	}
	now := s.now()
	c := &store.Campaign{ID: store.NewID(), Enabled: true, CreatedAt: now, CreatedBy: p.ID, ModifiedAt: now, ModifiedBy: p.ID}
	in.apply(c)
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutCampaign(c); err != nil {
			return err
		}
		return s.audit(tx, r, p, "campaign.create", "campaign", c.ID, map[string]string{"name": c.Name, "fields": in.fields()})
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", campaignURI(c.ID))
	writeJSON(w, http.StatusCreated, viewCampaign(c))
	return nil
}

func (s *Server) handleGetCampaign(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := canReadCatalogue(p); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var c *store.Campaign
	err := s.st.View(func(tx *store.Tx) (err error) { c, err = tx.GetCampaign(id); return err })
	if err != nil {
		return respond(w, err, "campaign "+id, 0, nil)
	}
	writeJSON(w, http.StatusOK, viewCampaign(c))
	return nil
}

func (s *Server) handleUpdateCampaign(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnly(p, "changing campaigns"); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var in campaignWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(false); prob != nil {
		return prob
	}
	var out *store.Campaign
	err := s.st.Update(func(tx *store.Tx) error {
		c, err := tx.GetCampaign(id)
		if err != nil {
			return err
		}
		in.apply(c)
		c.ModifiedAt, c.ModifiedBy = s.now(), p.ID
		if err := tx.PutCampaign(c); err != nil {
			return err
		}
		out = c
		return s.audit(tx, r, p, "campaign.update", "campaign", id, map[string]string{"name": c.Name, "fields": in.fields()})
	})
	if err != nil {
		return respond(w, err, "campaign "+id, 0, nil)
	}
	writeJSON(w, http.StatusOK, viewCampaign(out))
	return nil
}

func (s *Server) handleDeleteCampaign(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnly(p, "changing campaigns"); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	err := deleteNamed(s, r, p, "campaign", id, (*store.Tx).GetCampaign, (*store.Tx).DeleteCampaign, func(c *store.Campaign) string { return c.Name })
	return respond(w, err, "campaign "+id, http.StatusNoContent, nil)
}
