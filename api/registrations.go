package api

import (
	"net/http"
	"sort"

	"pbxd/store"
)

// registrationView is one live contact binding of a SIP device.
type registrationView struct {
	DeviceUsername string `json:"deviceUsername"`
	DeviceID       string `json:"deviceId"`
	UserID         string `json:"userId"`
	Contact        string `json:"contact"`
	Source         string `json:"source"`
	Transport      string `json:"transport"`
	UserAgent      string `json:"userAgent,omitempty"`
	Expires        int64  `json:"expires"`
	Updated        int64  `json:"updated"`
}

// handleRegistrations lists every live registration, by device.
func (s *Server) handleRegistrations(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if !p.IsAdmin() {
		return forbidden("listing registrations needs admin rights")
	}
	pg, prob := parsePage(r.URL.Query())
	if prob != nil {
		return prob
	}
	var all []*store.Binding
	if err := s.st.View(func(tx *store.Tx) (err error) { all, err = tx.AllBindings(); return err }); err != nil {
		return err
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].DeviceUsername < all[j].DeviceUsername })
	objects := []registrationView{}
	for i := pg.start; i < len(all) && i < pg.start+pg.rows; i++ {
		b := all[i]
		objects = append(objects, registrationView{DeviceUsername: b.DeviceUsername, DeviceID: b.DeviceID, UserID: b.UserID,
			Contact: b.Contact, Source: b.Source, Transport: b.Transport, UserAgent: b.UserAgent,
			Expires: ms(b.Expires), Updated: ms(b.Updated)})
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/registrations", nil, len(all), objects, len(objects)))
	return nil
}
