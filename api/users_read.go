package api

// The Users API's reads: one user, the directory listing with its q
// search, paging and fields/subresources expansion.

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"pbxd/store"
)

func (s *Server) handleGetUser(w http.ResponseWriter, r *http.Request, p *Principal) error {
	id, prob := pathID(r, "id")
	if prob != nil {
		return prob
	}
	if !p.Can(store.ScopeUsersRead) && !p.IsSelf(id) {
		return forbidden("reading users needs the users:read permission")
	}
	sub, prob := parseExpand(r.URL.Query())
	if prob != nil {
		return prob
	}
	var v userView
	err := s.st.View(func(tx *store.Tx) error {
		u, err := tx.GetUser(id)
		if err != nil {
			return err
		}
		v = viewUser(u)
		if sub.subresources {
			return s.expandUser(tx, u, &v, nil)
		}
		return nil
	})
	return respond(w, err, "user "+id, http.StatusOK, v)
}

// expand is the parsed fields/subresources choice of a read.
type expand struct {
	fields, subresources bool
}

func parseExpand(q url.Values) (expand, *Problem) {
	var e expand
	for _, name := range []string{"fields", "subresources"} {
		v, ok := q[name]
		if !ok {
			continue
		}
		if len(v) != 1 || v[0] != "*" {
			return e, invalid(name, `the only supported value is "*"`)
		}
		if name == "fields" {
			e.fields = true
		} else {
			e.fields, e.subresources = true, true
		}
	}
	return e, nil
}

// expandUser adds skills and devices to v; names caches the skill catalogue.
func (s *Server) expandUser(tx *store.Tx, u *store.User, v *userView, names map[string]string) error {
	skills := []skillAssign{}
	for _, a := range u.Skills {
		name, ok := names[a.SkillID]
		if !ok {
			sk, err := tx.GetSkill(a.SkillID)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if sk != nil {
				name = sk.Name
			}
		}
		skills = append(skills, skillAssign{SkillID: a.SkillID, Name: name, Proficiency: a.Proficiency, URI: skillURI(a.SkillID)})
	}
	v.Skills = &skills
	devs, err := tx.ListDevices(u.ID)
	if err != nil {
		return err
	}
	views := []deviceView{}
	for _, d := range devs {
		views = append(views, viewDevice(d))
	}
	v.Devices = &views
	return nil
}

// matchUser is the q search: every word must appear (case-insensitively) in
// the user name, first or last name, or extension.
func matchUser(e *store.DirEntry, words []string) bool {
	for _, w := range words {
		if !containsFold(e.UserName, w) && !containsFold(e.FirstName, w) && !containsFold(e.LastName, w) && !strings.Contains(e.Extension, w) {
			return false
		}
	}
	return true
}

// containsFold reports whether word, already passed through foldCase,
// occurs in s ignoring case, in any script.
func containsFold(s, word string) bool {
	return strings.Contains(foldCase(s), word)
}

// foldCase maps s to one spelling per case class, so that "İBRAHİM" and
// "İbrahim", or "GROẞ" and "Groß", compare equal even where the upper and
// lower forms differ in length. ASCII lower-case strings (most names in a
// directory) are returned without copying.
func foldCase(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
			return strings.Map(func(r rune) rune { return unicode.ToLower(unicode.ToUpper(r)) }, s)
		}
	}
	return s
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, p *Principal) error {
	if !p.Can(store.ScopeUsersRead) {
		return forbidden("listing users needs the users:read permission")
	}
	q := r.URL.Query()
	pg, prob := parsePage(q)
	if prob != nil {
		return prob
	}
	exp, prob := parseExpand(q)
	if prob != nil {
		return prob
	}
	if len(q["q"]) > 1 || len(q.Get("q")) > 200 {
		return invalid("q", "one search string of at most 200 characters")
	}
	for k := range q {
		switch k {
		case "q", "rows", "start", "fields", "subresources":
		default:
			return invalid(k, "unknown query parameter")
		}
	}
	words := strings.Fields(foldCase(q.Get("q")))
	var objects []any
	total := 0
	err := s.st.View(func(tx *store.Tx) error {
		var names map[string]string
		if exp.subresources {
			sks, err := tx.ListSkills()
			if err != nil {
				return err
			}
			names = make(map[string]string, len(sks))
			for _, sk := range sks {
				names[sk.ID] = sk.Name
			}
		}
		var inner error
		err := tx.ScanDirectory(func(e store.DirEntry) bool {
			if !matchUser(&e, words) {
				return true
			}
			total++
			if total <= pg.start || total > pg.start+pg.rows {
				return true
			}
			if !exp.fields {
				objects = append(objects, userURI(e.ID))
				return true
			}
			u, err := tx.GetUser(e.ID)
			if err != nil {
				inner = err
				return false
			}
			v := viewUser(u)
			if exp.subresources {
				if inner = s.expandUser(tx, u, &v, names); inner != nil {
					return false
				}
			}
			objects = append(objects, v)
			return true
		})
		if err != nil {
			return err
		}
		return inner
	})
	if err != nil {
		return err
	}
	if objects == nil {
		objects = []any{}
	}
	base := url.Values{}
	for _, k := range []string{"q", "fields", "subresources"} {
		if v := q.Get(k); v != "" {
			base.Set(k, v)
		}
	}
	writeJSON(w, http.StatusOK, pg.envelope("/api/v1/users", base, total, objects, len(objects)))
	return nil
}
