package api

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"pbxd/pbx/trunks"
	"pbxd/store"
)

// TrunkRuntime is the live side of the trunks (pbx/trunks.Manager): the
// API asks it to re-read the store after every change, and shows each
// trunk's registration state from it.
type TrunkRuntime interface {
	Reload() error
	Status(id string) trunks.Status
}

// trunkWrite is the body of POST /trunks and of POST/PUT /trunks/{id}.
// Members left out are left unchanged; password is write-only.
type trunkWrite struct {
	Name            *string            `json:"name"`
	Enabled         *bool              `json:"enabled"`
	Host            *string            `json:"host"`
	Transport       *string            `json:"transport"`
	Username        *string            `json:"username"`
	AuthUsername    *string            `json:"authUsername"`
	Password        *string            `json:"password"`
	Realm           *string            `json:"realm"`
	Register        *bool              `json:"register"`
	RegisterExpires *int               `json:"registerExpires"`
	FromDomain      *string            `json:"fromDomain"`
	CallerID        *string            `json:"callerId"`
	CallerName      *string            `json:"callerName"`
	DIDs            *map[string]string `json:"dids"`
	Prefixes        *[]string          `json:"prefixes"`
	Strip           *int               `json:"strip"`
	AddPrefix       *string            `json:"addPrefix"`
	Priority        *int               `json:"priority"`
}

// trunkView is a trunk as the API shows it: never the password, only
// whether one is set, plus the live registration state.
type trunkView struct {
	ID              string             `json:"id"`
	URI             string             `json:"uri"`
	Name            string             `json:"name"`
	Enabled         bool               `json:"enabled"`
	Host            string             `json:"host"`
	Transport       string             `json:"transport"`
	Username        string             `json:"username"`
	AuthUsername    string             `json:"authUsername"`
	PasswordSet     bool               `json:"passwordSet"`
	Realm           string             `json:"realm"`
	Register        bool               `json:"register"`
	RegisterExpires int                `json:"registerExpires"`
	FromDomain      string             `json:"fromDomain"`
	CallerID        string             `json:"callerId"`
	CallerName      string             `json:"callerName"`
	DIDs            map[string]string  `json:"dids"`
	Prefixes        []string           `json:"prefixes"`
	Strip           int                `json:"strip"`
	AddPrefix       string             `json:"addPrefix"`
	Priority        int                `json:"priority"`
	CreatedAt       int64              `json:"createdAt"`
	CreatedBy       string             `json:"createdBy,omitempty"`
	ModifiedAt      int64              `json:"modifiedAt"`
	ModifiedBy      string             `json:"modifiedBy,omitempty"`
	Registration    *trunkRegistration `json:"registration,omitempty"`
}

// trunkRegistration is the live registration state of a trunk.
type trunkRegistration struct {
	// State is disabled, unregistered, registering, registered or failed.
	State       string `json:"state"`
	Since       int64  `json:"since"`
	ExpiresAt   int64  `json:"expiresAt,omitempty"`
	NextAttempt int64  `json:"nextAttempt,omitempty"`
	LastStatus  int    `json:"lastStatus,omitempty"`
	LastError   string `json:"lastError,omitempty"`
}

func trunkURI(id string) string { return "/api/v1/trunks/" + url.PathEscape(id) }

func (s *Server) viewTrunk(t *store.Trunk) trunkView {
	v := trunkView{ID: t.ID, URI: trunkURI(t.ID), Name: t.Name, Enabled: t.Enabled, Host: t.Host, Transport: t.Proto(),
		Username: t.Username, AuthUsername: t.AuthUsername, PasswordSet: t.Password != "", Realm: t.Realm,
		Register: t.Register, RegisterExpires: t.Expires(), FromDomain: t.FromDomain, CallerID: t.CallerID,
		CallerName: t.CallerName, DIDs: t.DIDs, Prefixes: t.Prefixes, Strip: t.Strip, AddPrefix: t.AddPrefix,
		Priority: t.Priority, CreatedAt: ms(t.CreatedAt), CreatedBy: t.CreatedBy, ModifiedAt: ms(t.ModifiedAt),
		ModifiedBy: t.ModifiedBy}
	if v.DIDs == nil {
		v.DIDs = map[string]string{}
	}
	if v.Prefixes == nil {
		v.Prefixes = []string{}
	}
	if s.cfg.Trunks != nil {
		st := s.cfg.Trunks.Status(t.ID)
		v.Registration = &trunkRegistration{State: string(st.State), Since: ms(st.Since), ExpiresAt: ms(st.ExpiresAt),
			NextAttempt: ms(st.NextAttempt), LastStatus: st.LastStatus, LastError: st.LastError}
	}
	return v
}

var (
	trunkNameBad = regexp.MustCompile(`[\x00-\x1f\x7f]`)
	sipUserRE    = regexp.MustCompile(`^[A-Za-z0-9+_][A-Za-z0-9._+-]{0,63}$`)
	quotableRE   = regexp.MustCompile(`^[^"\\\x00-\x1f\x7f]*$`)
	numberRE     = regexp.MustCompile(`^\+?[0-9]{1,32}$`)
	addPrefixRE  = regexp.MustCompile(`^\+?[0-9]{0,32}$`)
)

// Bounds of a trunk's DID map and prefix list.
const (
	maxTrunkDIDs  = 1000
	maxTrunkPrefs = 100
)

// validate checks every present member; create demands name and host.
func (w *trunkWrite) validate(create bool) *Problem {
	if create && w.Name == nil {
		return invalid("name", "is required")
	}
	if create && w.Host == nil {
		return invalid("host", "is required: the carrier's SIP server as host or host:port")
	}
	if w.Name != nil {
		n := strings.TrimSpace(*w.Name)
		if n == "" || len(n) > 64 || trunkNameBad.MatchString(n) {
			return invalid("name", "1–64 characters on one line")
		}
	}
	if w.Host != nil {
		if _, _, err := trunks.SplitHost(*w.Host); err != nil {
			return invalid("host", "must be host or host:port: an IPv4 address, an IPv6 address in brackets ([2001:db8::1]:5060) or a DNS name")
		}
	}
	if w.Transport != nil {
		switch strings.ToLower(*w.Transport) {
		case store.TrunkUDP, store.TrunkTCP, store.TrunkTLS:
		default:
			return invalid("transport", `must be "udp", "tcp" or "tls"`)
		}
	}
	if w.Username != nil && *w.Username != "" && !sipUserRE.MatchString(*w.Username) {
		return invalid("username", "1–64 characters: letters, digits and . _ + -")
	}
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"authUsername", w.AuthUsername, 128}, {"password", w.Password, 128}, {"realm", w.Realm, 128}, {"callerName", w.CallerName, 64}} {
		if f.v != nil && (len(*f.v) > f.max || !quotableRE.MatchString(*f.v)) {
			return invalid(f.name, "at most "+strconv.Itoa(f.max)+` characters, without " \ or control characters`)
		}
	}
	if w.RegisterExpires != nil && (*w.RegisterExpires < store.TrunkExpiresMin || *w.RegisterExpires > store.TrunkExpiresMax) {
		return invalid("registerExpires", "must be from 60 to 3600 seconds")
	}
	if w.FromDomain != nil && *w.FromDomain != "" {
		if _, _, err := trunks.SplitHost(*w.FromDomain); err != nil {
			return invalid("fromDomain", "must be empty (the host) or a host name or address with an optional port")
		}
	}
	if w.CallerID != nil && *w.CallerID != "" && !numberRE.MatchString(*w.CallerID) {
		return invalid("callerId", "must be a number: digits with an optional leading +")
	}
	if w.DIDs != nil {
		if len(*w.DIDs) > maxTrunkDIDs {
			return invalid("dids", "at most 1000 DIDs per trunk")
		}
		seen := map[string]string{}
		for did, ext := range *w.DIDs {
			if !numberRE.MatchString(did) {
				return invalid("dids", "DID "+strconv.Quote(did)+" must be digits with an optional leading +")
			}
			if !extensionRE.MatchString(ext) {
				return invalid("dids", "the extension of DID "+did+" must be 2–10 digits")
			}
			n := store.NormalizeDID(did)
			if other, dup := seen[n]; dup {
				return invalid("dids", "DIDs "+other+" and "+did+" are the same number")
			}
			seen[n] = did
		}
	}
	if w.Prefixes != nil {
		if len(*w.Prefixes) > maxTrunkPrefs {
			return invalid("prefixes", "at most 100 prefixes per trunk")
		}
		for _, p := range *w.Prefixes {
			if !numberRE.MatchString(p) {
				return invalid("prefixes", "prefix "+strconv.Quote(p)+" must be digits with an optional leading +")
			}
		}
	}
	if w.Strip != nil && (*w.Strip < 0 || *w.Strip > 32) {
		return invalid("strip", "must be from 0 to 32 digits")
	}
	if w.AddPrefix != nil && !addPrefixRE.MatchString(*w.AddPrefix) {
		return invalid("addPrefix", "must be digits with an optional leading +, at most 32")
	}
	if w.Priority != nil && (*w.Priority < 0 || *w.Priority > 1000) {
		return invalid("priority", "must be from 0 to 1000")
	}
	return nil
}

// apply copies the present members onto t.
func (w *trunkWrite) apply(t *store.Trunk) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	if w.Name != nil {
		t.Name = strings.TrimSpace(*w.Name)
	}
	if w.Enabled != nil {
		t.Enabled = *w.Enabled
	}
	set(&t.Host, w.Host)
	if w.Transport != nil {
		t.Transport = strings.ToLower(*w.Transport)
	}
	set(&t.Username, w.Username)
	set(&t.AuthUsername, w.AuthUsername)
	set(&t.Password, w.Password)
	set(&t.Realm, w.Realm)
	if w.Register != nil {
		t.Register = *w.Register
	}
	if w.RegisterExpires != nil {
		t.RegisterExpires = *w.RegisterExpires
	}
	set(&t.FromDomain, w.FromDomain)
	set(&t.CallerID, w.CallerID)
	set(&t.CallerName, w.CallerName)
	if w.DIDs != nil {
		t.DIDs = map[string]string{}
		for did, ext := range *w.DIDs {
			t.DIDs[did] = ext
		}
		if len(t.DIDs) == 0 {
			t.DIDs = nil
		}
	}
	if w.Prefixes != nil {
		var ps []string
		for _, p := range *w.Prefixes {
			if !slices.Contains(ps, p) {
				ps = append(ps, p)
			}
		}
		t.Prefixes = ps
	}
	if w.Strip != nil {
		t.Strip = *w.Strip
	}
	set(&t.AddPrefix, w.AddPrefix)
	if w.Priority != nil {
		t.Priority = *w.Priority
	}
}

// checkTrunk validates what only the whole record can tell.
func checkTrunk(t *store.Trunk) *Problem {
	if t.Register && t.Username == "" {
		return invalid("username", "is required when the trunk registers")
	}
	return nil
}

// changedFields names the members present, for the audit log (never a
// value: the password is only ever named).
func (w *trunkWrite) changedFields() string {
	var f fieldNames
	f.add(w.Name != nil, "name")
	f.add(w.Enabled != nil, "enabled")
	f.add(w.Host != nil, "host")
	f.add(w.Transport != nil, "transport")
	f.add(w.Username != nil, "username")
	f.add(w.AuthUsername != nil, "authUsername")
	f.add(w.Password != nil, "password")
	f.add(w.Realm != nil, "realm")
	f.add(w.Register != nil, "register")
	f.add(w.RegisterExpires != nil, "registerExpires")
	f.add(w.FromDomain != nil, "fromDomain")
	f.add(w.CallerID != nil, "callerId")
	f.add(w.CallerName != nil, "callerName")
	f.add(w.DIDs != nil, "dids")
	f.add(w.Prefixes != nil, "prefixes")
	f.add(w.Strip != nil, "strip")
	f.add(w.AddPrefix != nil, "addPrefix")
	f.add(w.Priority != nil, "priority")
	return f.String()
}

// reloadTrunks tells the SIP side about a committed change.
func (s *Server) reloadTrunks() {
	if s.cfg.Trunks == nil {
		return
	}
	if err := s.cfg.Trunks.Reload(); err != nil {
		s.log.Warn("trunks: reload after a change failed; it applies at the next reload", "err", err)
	}
}

func adminOnlyTrunks(p *Principal) *Problem {
	if !p.IsAdmin() {
		return forbidden("managing trunks needs admin rights")
	}
	return nil
}

func (s *Server) handleListTrunks(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnlyTrunks(p); prob != nil {
		return prob
	}
	pg, prob := parsePage(r.URL.Query())
	if prob != nil {
		return prob
	}
	var all []*store.Trunk
	if err := s.st.View(func(tx *store.Tx) (err error) { all, err = tx.ListTrunks(); return err }); err != nil {
		return err
	}
	objects := []trunkView{}
	for i := pg.start; i < len(all) && i < pg.start+pg.rows; i++ {
		objects = append(objects, s.viewTrunk(all[i]))
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/trunks", nil, len(all), objects, len(objects)))
	return nil
}

func (s *Server) handleCreateTrunk(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnlyTrunks(p); prob != nil {
		return prob
	}
	var in trunkWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(true); prob != nil {
		return prob
	}
	now := s.now()
	t := &store.Trunk{ID: store.NewID(), Enabled: true, Transport: store.TrunkUDP, RegisterExpires: store.TrunkExpiresDefault,
		CreatedAt: now, CreatedBy: p.ID, ModifiedAt: now, ModifiedBy: p.ID}
	in.apply(t)
	if prob := checkTrunk(t); prob != nil {
		return prob
	}
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutTrunk(t); err != nil {
			return err
		}
		return s.audit(tx, r, p, "trunk.create", "trunk", t.ID, map[string]string{"name": t.Name, "fields": in.changedFields()})
	})
	if err != nil {
		return err
	}
	s.reloadTrunks()
	w.Header().Set("Location", trunkURI(t.ID))
	writeJSON(w, http.StatusCreated, s.viewTrunk(t))
	return nil
}

func (s *Server) handleGetTrunk(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnlyTrunks(p); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var t *store.Trunk
	err := s.st.View(func(tx *store.Tx) (err error) { t, err = tx.GetTrunk(id); return err })
	if errors.Is(err, store.ErrNotFound) {
		return notFound("trunk " + id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.viewTrunk(t))
	return nil
}

func (s *Server) handleUpdateTrunk(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnlyTrunks(p); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var in trunkWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(false); prob != nil {
		return prob
	}
	var out *store.Trunk
	err := s.st.Update(func(tx *store.Tx) error {
		t, err := tx.GetTrunk(id)
		if err != nil {
			return err
		}
		in.apply(t)
		if prob := checkTrunk(t); prob != nil {
			return prob
		}
		t.ModifiedAt, t.ModifiedBy = s.now(), p.ID
		if err := tx.PutTrunk(t); err != nil {
			return err
		}
		out = t
		return s.audit(tx, r, p, "trunk.update", "trunk", id, map[string]string{"name": t.Name, "fields": in.changedFields()})
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("trunk " + id)
	}
	if err != nil {
		return err
	}
	s.reloadTrunks()
	writeJSON(w, http.StatusOK, s.viewTrunk(out))
	return nil
}

func (s *Server) handleDeleteTrunk(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnlyTrunks(p); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	err := deleteNamed(s, r, p, "trunk", id, (*store.Tx).GetTrunk, (*store.Tx).DeleteTrunk, func(t *store.Trunk) string { return t.Name })
	if err == nil {
		s.reloadTrunks()
	}
	return respond(w, err, "trunk "+id, http.StatusNoContent, nil)
}
