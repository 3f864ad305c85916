package api

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"pbxd/api/auth"
	"pbxd/pbx/digest"
	"pbxd/store"
)

type deviceWrite struct {
	Name     string  `json:"name"`
	Username string  `json:"username"`
	Password *string `json:"password"`
}

var deviceUserRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// generatedDevicePasswordLen gives ~119 bits, well past what an online
// digest guesser could cover.
const generatedDevicePasswordLen = 20

// canSeeUser allows admins, users:read holders and the user themselves.
func canSeeUser(p *Principal, id string) bool {
	return p.Can(store.ScopeUsersRead) || p.IsSelf(id)
}

func (s *Server) handleListDevices(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	if !canSeeUser(p, id) {
		return forbidden("reading devices needs the users:read permission")
	}
	objects := []deviceView{}
	err := s.st.View(func(tx *store.Tx) error {
		if _, err := tx.GetUser(id); err != nil {
			return err
		}
		devs, err := tx.ListDevices(id)
		for _, d := range devs {
			objects = append(objects, viewDevice(d))
		}
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("user " + id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listEnvelope{Count: len(objects), Total: len(objects), Objects: objects})
	return nil
}

func (s *Server) handleGetDevice(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	did, prob := pathID(r, "deviceId")
	if prob != nil {
		return prob
	}
	if !canSeeUser(p, id) {
		return forbidden("reading devices needs the users:read permission")
	}
	var d *store.Device
	err := s.st.View(func(tx *store.Tx) (err error) { d, err = tx.GetDevice(did); return err })
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.UserID != id) {
		return notFound("device " + did)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewDevice(d))
	return nil
}

// handleCreateDevice adds a SIP device to a user. The password is generated
// when absent and returned in this response only.
func (s *Server) handleCreateDevice(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	if !p.Can(store.ScopeUsersWrite) {
		return forbidden("adding devices needs the users:write permission")
	}
	var in deviceWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if in.Name == "" || len(in.Name) > 100 || strings.ContainsAny(in.Name, "\x00\r\n") {
		return invalid("name", "is required: at most 100 characters on one line")
	}
	if !deviceUserRE.MatchString(in.Username) {
		return invalid("username", "is required: 1–64 characters of letters, digits and . _ -")
	}
	var pw string
	if in.Password != nil {
		if err := auth.CheckPasswordPolicy(*in.Password); err != nil {
			return invalid("password", err.Error())
		}
		if strings.ContainsAny(*in.Password, "\"\\") {
			return invalid("password", `must not contain " or \ (phones cannot send them in digest)`)
		}
		pw = *in.Password
	} else {
		var err error
		if pw, err = auth.RandomPassword(generatedDevicePasswordLen); err != nil {
			return err
		}
	}
	now := s.now()
	d := &store.Device{ID: store.NewID(), UserID: id, Name: in.Name, Username: in.Username, Realm: s.cfg.SIPRealm,
		CreatedAt: now, CreatedBy: p.ID}
	ha1 := digest.ComputeHA1(d.Username, d.Realm, pw)
	d.HA1MD5, d.HA1SHA256 = ha1.MD5, ha1.SHA256
	err := s.st.Update(func(tx *store.Tx) error {
		u, err := tx.GetUser(id)
		if err != nil {
			return err
		}
		if u.HasRole(store.RoleAdmin) && !p.IsAdmin() {
			return forbidden("only admins may add devices to an admin")
		}
		if err := tx.PutDevice(d); err != nil {
			return err
		}
		return s.audit(tx, r, p, "device.create", "device", d.ID, map[string]string{"userId": id, "username": d.Username})
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("user " + id)
	}
	if err != nil {
		return err
	}
	v := viewDevice(d)
	v.Password = pw
	w.Header().Set("Location", v.URI)
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) handleDeleteDevice(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	did, prob := pathID(r, "deviceId")
	if prob != nil {
		return prob
	}
	if !p.Can(store.ScopeUsersWrite) {
		return forbidden("removing devices needs the users:write permission")
	}
	err := s.st.Update(func(tx *store.Tx) error {
		d, err := tx.GetDevice(did)
		if err != nil {
			return err
		}
		if d.UserID != id {
			return store.ErrNotFound
		}
		u, err := tx.GetUser(id)
		if err != nil {
			return err
		}
		if u.HasRole(store.RoleAdmin) && !p.IsAdmin() {
			return forbidden("only admins may remove an admin's devices")
		}
		if err := tx.DeleteDevice(did); err != nil {
			return err
		}
		return s.audit(tx, r, p, "device.delete", "device", did, map[string]string{"userId": id, "username": d.Username})
	})
	return respond(w, err, "device "+did, http.StatusNoContent, nil)
}
