package api

import (
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"pbxd/api/auth"
	"pbxd/store"
)

// serviceUserView never carries a token; tokenView is only in the responses
// that create or refresh one.
type serviceUserView struct {
	ID             string   `json:"id"`
	URI            string   `json:"uri"`
	Name           string   `json:"name"`
	DisplayName    string   `json:"displayName"`
	Permissions    []string `json:"permissions"`
	TokenCreatedAt int64    `json:"tokenCreatedAt,omitempty"`
	HasToken       bool     `json:"hasToken"`
	LastUsedAt     int64    `json:"lastUsedAt,omitempty"`
	CreatedAt      int64    `json:"createdAt"`
	CreatedBy      string   `json:"createdBy,omitempty"`
	ModifiedAt     int64    `json:"modifiedAt"`
	ModifiedBy     string   `json:"modifiedBy,omitempty"`
	Token          string   `json:"token,omitempty"`
}

func serviceUserURI(id string) string { return "/api/v1/service-users/" + url.PathEscape(id) }

func (s *Server) viewServiceUser(su *store.ServiceUser) serviceUserView {
	last := su.LastUsedAt
	if t, ok := s.lastUsed.get(su.ID); ok && t.After(last) {
		last = t
	}
	perms := su.Permissions
	if perms == nil {
		perms = []string{}
	}
	return serviceUserView{ID: su.ID, URI: serviceUserURI(su.ID), Name: su.Name, DisplayName: su.DisplayName,
		Permissions: perms, TokenCreatedAt: ms(su.TokenCreatedAt), HasToken: su.TokenHash != [32]byte{},
		LastUsedAt: ms(last), CreatedAt: ms(su.CreatedAt), CreatedBy: su.CreatedBy, ModifiedAt: ms(su.ModifiedAt),
		ModifiedBy: su.ModifiedBy}
}

type serviceUserWrite struct {
	Name        *string   `json:"name"`
	DisplayName *string   `json:"displayName"`
	Permissions *[]string `json:"permissions"`
}

var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$`)

func (in *serviceUserWrite) validate(create bool) *Problem {
	if create && in.Name == nil {
		return invalid("name", "is required")
	}
	if in.Name != nil && !serviceNameRE.MatchString(*in.Name) {
		return invalid("name", "1–64 characters: letters, digits, space and . _ -, starting with a letter or digit")
	}
	if in.DisplayName != nil && (len(*in.DisplayName) > 100 || strings.ContainsAny(*in.DisplayName, "\x00\r\n")) {
		return invalid("displayName", "at most 100 characters on one line")
	}
	if in.Permissions != nil {
		for _, p := range *in.Permissions {
			if !slices.Contains(store.Scopes, p) {
				return invalid("permissions", "unknown permission "+quoteShort(p)+"; known: "+strings.Join(store.Scopes, ", "))
			}
		}
	}
	return nil
}

func quoteShort(s string) string { return `"` + truncate(s, 40) + `"` }

func normPerms(in []string) []string {
	out := []string{}
	for _, p := range in {
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func needAdmin(p *Principal) error {
	if !p.IsAdmin() {
		return forbidden("managing service users needs admin rights")
	}
	return nil
}

func (s *Server) handleListServiceUsers(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if err := needAdmin(p); err != nil {
		return err
	}
	q := r.URL.Query()
	pg, prob := parsePage(q)
	if prob != nil {
		return prob
	}
	var all []*store.ServiceUser
	if err := s.st.View(func(tx *store.Tx) (err error) { all, err = tx.ListServiceUsers(); return err }); err != nil {
		return err
	}
	objects := []serviceUserView{}
	for i := pg.start; i < len(all) && i < pg.start+pg.rows; i++ {
		objects = append(objects, s.viewServiceUser(all[i]))
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/service-users", nil, len(all), objects, len(objects)))
	return nil
}

func (s *Server) handleCreateServiceUser(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if err := needAdmin(p); err != nil {
		return err
	}
	var in serviceUserWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(true); prob != nil {
		return prob
	}
	tok, err := auth.NewToken(auth.PrefixServiceUser)
	if err != nil {
		return err
	}
	now := s.now()
	su := &store.ServiceUser{ID: store.NewID(), Name: *in.Name, DisplayName: *in.Name, Permissions: []string{},
		TokenHash: auth.HashToken(tok), TokenCreatedAt: now, CreatedAt: now, CreatedBy: p.ID, ModifiedAt: now, ModifiedBy: p.ID}
	if in.DisplayName != nil {
		su.DisplayName = *in.DisplayName
	}
	if in.Permissions != nil {
		su.Permissions = normPerms(*in.Permissions)
	}
	err = s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutServiceUser(su); err != nil {
			return err
		}
		return s.audit(tx, r, p, "serviceUser.create", "serviceUser", su.ID,
			map[string]string{"name": su.Name, "permissions": strings.Join(su.Permissions, ",")})
	})
	if err != nil {
		return err
	}
	v := s.viewServiceUser(su)
	v.Token = tok
	w.Header().Set("Location", serviceUserURI(su.ID))
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) loadServiceUser(r *http.Request) (*store.ServiceUser, error) {
	id, prob := pathID(r, "id")
	if prob != nil {
		return nil, prob
	}
	var su *store.ServiceUser
	err := s.st.View(func(tx *store.Tx) (err error) { su, err = tx.GetServiceUser(id); return err })
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("service user " + id)
	}
	return su, err
}

func (s *Server) handleGetServiceUser(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if err := needAdmin(p); err != nil {
		return err
	}
	su, err := s.loadServiceUser(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.viewServiceUser(su))
	return nil
}

// handleUpdateServiceUser changes displayName and permissions; the name is
// fixed at creation.
func (s *Server) handleUpdateServiceUser(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if err := needAdmin(p); err != nil {
		return err
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var in serviceUserWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(false); prob != nil {
		return prob
	}
	var out *store.ServiceUser
	err := s.st.Update(func(tx *store.Tx) error {
		su, err := tx.GetServiceUser(id)
		if err != nil {
			return err
		}
		if in.Name != nil && *in.Name != su.Name {
			return invalid("name", "cannot be changed after creation; create a new service user instead")
		}
		if in.DisplayName != nil {
			su.DisplayName = *in.DisplayName
		}
		if in.Permissions != nil {
			su.Permissions = normPerms(*in.Permissions)
		}
		su.ModifiedAt, su.ModifiedBy = s.now(), p.ID
		if err := tx.PutServiceUser(su); err != nil {
			return err
		}
		out = su
		return s.audit(tx, r, p, "serviceUser.update", "serviceUser", su.ID,
			map[string]string{"permissions": strings.Join(su.Permissions, ",")})
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("service user " + id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.viewServiceUser(out))
	return nil
}

// handleRefreshToken issues a new token; the old one fails from the moment
// this commits because its hash leaves the index in the same transaction.
func (s *Server) handleRefreshToken(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if err := needAdmin(p); err != nil {
		return err
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	tok, err := auth.NewToken(auth.PrefixServiceUser)
	if err != nil {
		return err
	}
	var out *store.ServiceUser
	err = s.st.Update(func(tx *store.Tx) error {
		su, err := tx.GetServiceUser(id)
		if err != nil {
			return err
		}
		now := s.now()
		su.TokenHash, su.TokenCreatedAt, su.ModifiedAt, su.ModifiedBy = auth.HashToken(tok), now, now, p.ID
		if err := tx.PutServiceUser(su); err != nil {
			return err
		}
		out = su
		return s.audit(tx, r, p, "serviceUser.refreshToken", "serviceUser", su.ID, nil)
	})
	if errors.Is(err, store.ErrNotFound) {
		return notFound("service user " + id)
	}
	if err != nil {
		return err
	}
	v := s.viewServiceUser(out)
	v.Token = tok
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) handleDeleteServiceUser(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if err := needAdmin(p); err != nil {
		return err
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	err := deleteNamed(s, r, p, "serviceUser", id, (*store.Tx).GetServiceUser, (*store.Tx).DeleteServiceUser, func(su *store.ServiceUser) string { return su.Name })
	return respond(w, err, "service user "+id, http.StatusNoContent, nil)
}
