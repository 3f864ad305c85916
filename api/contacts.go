package api

import (
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"pbxd/store"
)

// contactWrite is the body of POST /contacts and PUT /contacts/{id}.
// Members left out are unchanged; numbers and properties replace the set.
type contactWrite struct {
	FirstName  *string                `json:"firstName"`
	LastName   *string                `json:"lastName"`
	Company    *string                `json:"company"`
	Email      *string                `json:"email"`
	Timezone   *string                `json:"timezone"`
	Numbers    *[]store.ContactNumber `json:"numbers"`
	Properties *map[string]string     `json:"properties"`
}

// contactView is a contact as the API shows it.
type contactView struct {
	ID         string                `json:"id"`
	URI        string                `json:"uri"`
	Name       string                `json:"name"`
	FirstName  string                `json:"firstName"`
	LastName   string                `json:"lastName"`
	Company    string                `json:"company"`
	Email      string                `json:"email"`
	Timezone   string                `json:"timezone"`
	Numbers    []store.ContactNumber `json:"numbers"`
	Properties map[string]string     `json:"properties"`
	CreatedAt  int64                 `json:"createdAt"`
	CreatedBy  string                `json:"createdBy,omitempty"`
	ModifiedAt int64                 `json:"modifiedAt"`
	ModifiedBy string                `json:"modifiedBy,omitempty"`
}

func contactURI(id string) string { return "/api/v1/contacts/" + url.PathEscape(id) }

func viewContact(c *store.Contact) contactView {
	v := contactView{ID: c.ID, URI: contactURI(c.ID), Name: c.Name(), FirstName: c.FirstName, LastName: c.LastName,
		Company: c.Company, Email: c.Email, Timezone: c.Timezone, Numbers: c.Numbers, Properties: c.Properties,
		CreatedAt: ms(c.CreatedAt), CreatedBy: c.CreatedBy, ModifiedAt: ms(c.ModifiedAt), ModifiedBy: c.ModifiedBy}
	if v.Timezone == "" {
		v.Timezone = "UTC"
	}
	if v.Numbers == nil {
		v.Numbers = []store.ContactNumber{}
	}
	if v.Properties == nil {
		v.Properties = map[string]string{}
	}
	return v
}

var (
	numberTypeRE  = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,19}$`)
	phoneRE       = regexp.MustCompile(`^\+?[0-9 ()./-]{1,40}$`)
	propertyKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// Bounds of a contact.
const (
	maxContactNumbers = 20
	maxContactProps   = 50
)

func (w *contactWrite) validate() *Problem {
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"firstName", w.FirstName, 100}, {"lastName", w.LastName, 100}, {"company", w.Company, 200}} {
		if f.v != nil && (len(*f.v) > f.max || strings.ContainsAny(*f.v, "\x00\r\n")) {
			return invalid(f.name, "at most "+strconv.Itoa(f.max)+" characters on one line")
		}
	}
	if w.Email != nil && *w.Email != "" {
		a, err := mail.ParseAddress(*w.Email)
		if err != nil || a.Name != "" || a.Address != *w.Email || len(*w.Email) > 254 {
			return invalid("email", "must be a plain address such as ann@example.com, or empty")
		}
	}
	if w.Timezone != nil && *w.Timezone != "" {
		if _, err := time.LoadLocation(*w.Timezone); err != nil || *w.Timezone == "Local" {
			return invalid("timezone", "must be an IANA time zone such as America/New_York, or empty for UTC")
		}
	}
	if w.Numbers != nil {
		if len(*w.Numbers) > maxContactNumbers {
			return invalid("numbers", "at most 20 numbers")
		}
		for _, n := range *w.Numbers {
			if !numberTypeRE.MatchString(n.Type) {
				return invalid("numbers", "type must be a short lower-case word such as work, mobile, home or fax")
			}
			if !phoneRE.MatchString(n.Number) || store.NormalizeNumber(n.Number) == "" {
				return invalid("numbers", "number "+strconv.Quote(n.Number)+" must be digits, with an optional leading + and spaces ( ) . / -")
			}
		}
	}
	if w.Properties != nil {
		if len(*w.Properties) > maxContactProps {
			return invalid("properties", "at most 50 properties")
		}
		for k, v := range *w.Properties {
			if !propertyKeyRE.MatchString(k) {
				return invalid("properties", "name "+strconv.Quote(k)+" must be 1–64 letters, digits, _ . or -")
			}
			if len(v) > 1000 || strings.ContainsRune(v, 0) {
				return invalid("properties", "the value of "+k+" is at most 1000 characters")
			}
		}
	}
	return nil
}

func (w *contactWrite) apply(c *store.Contact) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = strings.TrimSpace(*src)
		}
	}
	set(&c.FirstName, w.FirstName)
	set(&c.LastName, w.LastName)
	set(&c.Company, w.Company)
	set(&c.Email, w.Email)
	set(&c.Timezone, w.Timezone)
	if w.Numbers != nil {
		c.Numbers = append([]store.ContactNumber{}, (*w.Numbers)...)
	}
	if w.Properties != nil {
		c.Properties = map[string]string{}
		for k, v := range *w.Properties {
			c.Properties[k] = v
		}
	}
}

func (w *contactWrite) fields() string {
	var f fieldNames
	f.add(w.FirstName != nil, "firstName")
	f.add(w.LastName != nil, "lastName")
	f.add(w.Company != nil, "company")
	f.add(w.Email != nil, "email")
	f.add(w.Timezone != nil, "timezone")
	f.add(w.Numbers != nil, "numbers")
	f.add(w.Properties != nil, "properties")
	return f.String()
}

// Contacts are customer data: users with users:read (agents,
// supervisors, admins, directory integrations) read them; agents and
// supervisors (calls:control) and users:write holders create and update
// them; only admins delete them.
func canReadContacts(p *Principal) *Problem {
	if !p.Can(store.ScopeUsersRead) && !p.Can(store.ScopeCallsControl) {
		return forbidden("reading contacts needs the users:read or calls:control permission")
	}
	return nil
}

func canWriteContacts(p *Principal) *Problem {
	if !p.Can(store.ScopeCallsControl) && !p.Can(store.ScopeUsersWrite) {
		return forbidden("changing contacts needs the calls:control or users:write permission")
	}
	return nil
}

// matchContact is the q search: every word must appear, ignoring case, in
// the first or last name, company or email, or — digits only — in one of
// the numbers.
func matchContact(c *store.Contact, words []string) bool {
	for _, w := range words {
		hit := containsFold(c.FirstName, w) || containsFold(c.LastName, w) || containsFold(c.Company, w) || containsFold(c.Email, w)
		if d := store.NormalizeNumber(w); !hit && d != "" && strings.Trim(w, "0123456789+()./-") == "" {
			for _, n := range c.Numbers {
				if strings.Contains(store.NormalizeNumber(n.Number), d) {
					hit = true
					break
				}
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func (s *Server) handleListContacts(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := canReadContacts(p); prob != nil {
		return prob
	}
	if prob := noQuery(r, "q", "start", "rows"); prob != nil {
		return prob
	}
	q := r.URL.Query()
	pg, prob := parsePage(q)
	if prob != nil {
		return prob
	}
	if len(q.Get("q")) > 200 {
		return invalid("q", "at most 200 characters")
	}
	words := strings.Fields(foldCase(q.Get("q")))
	objects := []contactView{}
	total := 0
	err := s.st.View(func(tx *store.Tx) error {
		return tx.ListContacts(func(c *store.Contact) bool {
			if !matchContact(c, words) {
				return true
			}
			if total >= pg.start && total < pg.start+pg.rows {
				objects = append(objects, viewContact(c))
			}
			total++
			return true
		})
	})
	if err != nil {
		return err
	}
	base := url.Values{}
	if v := q.Get("q"); v != "" {
		base.Set("q", v)
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/contacts", base, total, objects, len(objects)))
	return nil
}

func (s *Server) handleCreateContact(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := canWriteContacts(p); prob != nil {
		return prob
	}
	var in contactWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(); prob != nil {
		return prob
	}
	now := s.now()
	c := &store.Contact{ID: store.NewID(), CreatedAt: now, CreatedBy: p.ID, ModifiedAt: now, ModifiedBy: p.ID}
	in.apply(c)
	if c.Name() == "" && c.Email == "" && len(c.Numbers) == 0 {
		return invalid("lastName", "a contact needs a name, a company, an email or a number")
	}
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.PutContact(c); err != nil {
			return err
		}
		return s.audit(tx, r, p, "contact.create", "contact", c.ID, map[string]string{"fields": in.fields()})
	})
	if err != nil {
		return err
	}
	w.Header().Set("Location", contactURI(c.ID))
	writeJSON(w, http.StatusCreated, viewContact(c))
	return nil
}

func (s *Server) handleGetContact(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := canReadContacts(p); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var c *store.Contact
	err := s.st.View(func(tx *store.Tx) (err error) { c, err = tx.GetContact(id); return err })
	if err != nil {
		return respond(w, err, "contact "+id, 0, nil)
	}
	writeJSON(w, http.StatusOK, viewContact(c))
	return nil
}

func (s *Server) handleUpdateContact(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := canWriteContacts(p); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	var in contactWrite
	if prob := decodeJSON(w, r, &in); prob != nil {
		return prob
	}
	if prob := in.validate(); prob != nil {
		return prob
	}
	var out *store.Contact
	err := s.st.Update(func(tx *store.Tx) error {
		c, err := tx.GetContact(id)
		if err != nil {
			return err
		}
		in.apply(c)
		if c.Name() == "" && c.Email == "" && len(c.Numbers) == 0 {
			return invalid("lastName", "a contact needs a name, a company, an email or a number")
		}
		c.ModifiedAt, c.ModifiedBy = s.now(), p.ID
		if err := tx.PutContact(c); err != nil {
			return err
		}
		out = c
		return s.audit(tx, r, p, "contact.update", "contact", id, map[string]string{"fields": in.fields()})
	})
	if err != nil {
		return respond(w, err, "contact "+id, 0, nil)
	}
	writeJSON(w, http.StatusOK, viewContact(out))
	return nil
}

func (s *Server) handleDeleteContact(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if prob := adminOnly(p, "deleting contacts"); prob != nil {
		return prob
	}
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	err := s.st.Update(func(tx *store.Tx) error {
		if err := tx.DeleteContact(id); err != nil {
			return err
		}
		return s.audit(tx, r, p, "contact.delete", "contact", id, nil)
	})
	return respond(w, err, "contact "+id, http.StatusNoContent, nil)
}
