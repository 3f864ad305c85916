package api

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"pbxd/api/auth"
	"pbxd/store"
)

// Principal is who is calling: a logged-in user (through a session token)
// or a service user (through its token, as Bearer or Basic).
type Principal struct {
	// Kind is "user" or "service".
	Kind string
	ID   string
	Name string
	// User is set for Kind "user"; SessionID is the session in use.
	User      *store.User
	SessionID string
	// Service is set for Kind "service".
	Service *store.ServiceUser
	scopes  []string
}

// Principal kinds.
const (
	KindUser    = "user"
	KindService = "service"
)

// Can reports whether the principal holds scope (admin holds every scope).
func (p *Principal) Can(scope string) bool {
	return slices.Contains(p.scopes, store.ScopeAdmin) || slices.Contains(p.scopes, scope)
}

// IsAdmin reports whether the principal may do everything.
func (p *Principal) IsAdmin() bool { return slices.Contains(p.scopes, store.ScopeAdmin) }

// IsSelf reports whether the principal is the user with id.
func (p *Principal) IsSelf(id string) bool { return p.Kind == KindUser && p.ID == id }

func (p *Principal) mustChangePassword() bool {
	return p.Kind == KindUser && p.User.ChangePasswordOnFirstLogin
}

// userScopes derives a user's scopes from their roles. Agents read the
// directory and control their own calls; supervisors also read every call
// record (they act on other agents through isSupervisor); admins hold
// every scope.
func userScopes(u *store.User) []string {
	if u.HasRole(store.RoleAdmin) {
		return []string{store.ScopeAdmin}
	}
	var scopes []string
	if u.HasRole(store.RoleAgent) || u.HasRole(store.RoleSupervisor) {
		scopes = append(scopes, store.ScopeUsersRead, store.ScopeCallsControl)
	}
	if u.HasRole(store.RoleSupervisor) {
		scopes = append(scopes, store.ScopeHistoryRead)
	}
	return scopes
}

// authenticate resolves the Authorization header. Every failure gives the
// same 401, whatever was wrong, so nothing can be learned by probing.
func (s *Server) authenticate(r *http.Request) (*Principal, *Problem) {
	creds, err := auth.ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return nil, unauthorized()
	}
	return s.resolve(creds)
}

// authenticateQuery is authenticate for routes browsers open as
// WebSockets, which cannot carry headers: without an Authorization header
// the token may come as the access_token query parameter (a Bearer token).
// The parameter is never logged: request logs carry the route pattern, not
// the URL.
func (s *Server) authenticateQuery(r *http.Request) (*Principal, *Problem) {
	if r.Header.Get("Authorization") != "" {
		return s.authenticate(r)
	}
	toks, ok := r.URL.Query()["access_token"]
	if !ok || len(toks) != 1 {
		return nil, unauthorized()
	}
	return s.resolve(auth.Credentials{Scheme: "Bearer", Token: toks[0]})
}

// resolve finds the principal that presented creds.
func (s *Server) resolve(creds auth.Credentials) (*Principal, *Problem) {
	if !auth.WellFormedToken(creds.Token) {
		return nil, unauthorized()
	}
	hash := auth.HashToken(creds.Token)
	var p *Principal
	err := s.st.View(func(tx *store.Tx) error {
		owner, err := tx.LookupToken(hash)
		if err != nil {
			return err
		}
		switch owner.Kind {
		case store.TokenService:
			su, err := tx.GetServiceUser(owner.ID)
			if err != nil {
				return err
			}
			if subtle.ConstantTimeCompare(su.TokenHash[:], hash[:]) != 1 {
				return store.ErrNotFound
			}
			if creds.Scheme == "Basic" && subtle.ConstantTimeCompare([]byte(creds.ID), []byte(su.ID)) != 1 {
				return store.ErrNotFound
			}
			p = &Principal{Kind: KindService, ID: su.ID, Name: su.Name, Service: su, scopes: su.Permissions}
		case store.TokenSession:
			if creds.Scheme != "Bearer" {
				return store.ErrNotFound
			}
			se, err := tx.GetSession(owner.ID)
			if err != nil {
				return err
			}
			if subtle.ConstantTimeCompare(se.TokenHash[:], hash[:]) != 1 || !se.ExpiresAt.After(s.now()) {
				return store.ErrNotFound
			}
			u, err := tx.GetUser(se.UserID)
			if err != nil {
				return err
			}
			if !u.Enabled {
				return store.ErrNotFound
			}
			p = &Principal{Kind: KindUser, ID: u.ID, Name: u.UserName, User: u, SessionID: se.ID, scopes: userScopes(u)}
		default:
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("authentication lookup failed", "err", err)
			return nil, errorProblem(err)
		}
		return nil, unauthorized()
	}
	if p.Kind == KindService {
		s.lastUsed.touch(p.ID, s.now())
	}
	return p, nil
}

// lastUsed batches service-user last-used times in memory so that token
// authentication never writes to disk on the request path.
type lastUsed struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func newLastUsed() *lastUsed { return &lastUsed{m: map[string]time.Time{}} }

func (l *lastUsed) touch(id string, t time.Time) {
	l.mu.Lock()
	l.m[id] = t
	l.mu.Unlock()
}

func (l *lastUsed) get(id string) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t, ok := l.m[id]
	return t, ok
}

func (l *lastUsed) drain() map[string]time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.m
	l.m = map[string]time.Time{}
	return m
}

func (s *Server) flushLastUsed() {
	pending := s.lastUsed.drain()
	if len(pending) == 0 {
		return
	}
	err := s.st.Update(func(tx *store.Tx) error {
		for id, t := range pending {
			su, err := tx.GetServiceUser(id)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if t.After(su.LastUsedAt) {
				su.LastUsedAt = t
				if err := tx.PutServiceUser(su); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("could not record service-user last use", "err", err)
	}
}
