package agents

import (
	"context"
	"errors"
	"strings"
	"time"

	"pbxd/media"
	"pbxd/pbx/b2bua"
	"pbxd/store"
)

// DialRequest is the spec's DialPayload, as far as the runtime needs it.
type DialRequest struct {
	To   string
	Name string
	// ConferenceWorkitemID dials a third party into that call.
	ConferenceWorkitemID string
	// CampaignID gives the caller ID and the calling hours; ContactID the
	// callee's name and time zone. Force places the call outside the
	// campaign's calling hours.
	CampaignID, ContactID string
	Force                 bool
	Context               string
}

// DialResult is what Dial reports at once.
type DialResult struct {
	WorkitemID string
	// ForcedOutsideHours: the call is outside the campaign's calling
	// hours in the callee's time zone, placed because of Force.
	ForcedOutsideHours bool
}

// Errors of dial's checks.
var (
	ErrNoCampaign   = errors.New("agents: no such campaign")
	ErrCampaignOff  = errors.New("agents: the campaign is disabled")
	ErrNoContact    = errors.New("agents: no such contact")
	ErrOutsideHours = errors.New("agents: outside the campaign's calling hours in the callee's time zone")
)

// dialRing bounds how long a customer's phone rings.
const dialRing = 90 * time.Second

// Dial places a call for a connected agent and bridges it to the agent's
// leg (or, with ConferenceWorkitemID, into that call, making a
// conference). It returns the new workitem's id at once; ringing,
// answer and end arrive as events.
func (m *Manager) Dial(userID string, r DialRequest) (DialResult, error) {
	to := strings.TrimSpace(r.To)
	var u *store.User
	var camp *store.Campaign
	var contact *store.Contact
	err := m.cfg.Store.View(func(tx *store.Tx) (err error) {
		if u, err = tx.GetUser(userID); err != nil {
			return err
		}
		if r.CampaignID != "" {
			if camp, err = tx.GetCampaign(r.CampaignID); errors.Is(err, store.ErrNotFound) {
				return ErrNoCampaign
			} else if err != nil {
				return err
			}
		}
		if r.ContactID != "" {
			if contact, err = tx.GetContact(r.ContactID); errors.Is(err, store.ErrNotFound) {
				return ErrNoContact
			} else if err != nil {
				return err
			}
		} else if c, err := tx.ContactByNumber(to); err == nil {
			contact = c // the callee is a known contact: their time zone counts
		}
		return nil
	})
	if err != nil {
		return DialResult{}, err
	}
	var res DialResult
	if camp != nil {
		if !camp.Enabled {
			return DialResult{}, ErrCampaignOff
		}
		loc := time.UTC
		if contact != nil {
			loc = contact.Location()
		}
		if !store.WithinCallingHours(camp, loc, m.cfg.Now()) {
			if !r.Force {
				return DialResult{}, ErrOutsideHours
			}
			res.ForcedOutsideHours = true
		}
	}
	name := r.Name
	if name == "" && contact != nil {
		name = contact.Name()
	}
	extra := store.WorkitemExt{CampaignID: r.CampaignID, Context: r.Context, Name: name, ForcedOutsideHours: res.ForcedOutsideHours}
	if contact != nil {
		extra.ContactID = contact.ID
	}
	m.mu.Lock()
	a := m.agents[userID]
	if a == nil || a.state != Connected {
		m.mu.Unlock()
		return DialResult{}, ErrNotConnected
	}
	if r.ConferenceWorkitemID != "" {
		if c := a.calls[r.ConferenceWorkitemID]; c == nil || c.placed == nil {
			m.mu.Unlock()
			return DialResult{}, ErrNoWorkitem
		}
	} else if len(a.calls) > 0 {
		m.mu.Unlock()
		return DialResult{}, ErrBusy
	}
	id := store.NewID()
	ctx, cancel := context.WithTimeout(context.Background(), dialRing)
	cc := &custCall{id: id, to: to, cancel: cancel}
	a.calls[id] = cc
	m.wg.Add(1)
	m.mu.Unlock()

	from, fromName := u.Extension, strings.TrimSpace(u.FirstName+" "+u.LastName)
	if camp != nil && camp.CallerID != "" {
		from, fromName = camp.CallerID, camp.CallerName
	}
	w := &store.Workitem{ID: id, From: from, FromName: fromName, To: to, ToName: name,
		OwnedBy: userID, Users: []string{userID}, CreatedAt: m.cfg.Now(), Extra: extra}
	m.publish(userID, "workitem.created", map[string]any{"workitemId": id, "to": to, "conferenceWorkitemId": r.ConferenceWorkitemID})
	go func() {
		defer m.wg.Done()
		defer cancel()
		placed, err := m.cfg.Calls.Originate(ctx, b2bua.OriginateRequest{Number: to, FromNumber: from, FromName: fromName,
			Role: "customer", Workitem: w,
			OnProgress: func(code int) {
				m.publish(userID, "workitem.ringing", map[string]any{"workitemId": id, "status": code})
			},
			OnEnd: func(reason string) { m.callEnded(userID, id, reason) },
		})
		m.mu.Lock()
		if err != nil {
			delete(a.calls, id)
			m.mu.Unlock()
			ended := map[string]any{"workitemId": id, "reason": "failed"}
			if ce, ok := err.(*b2bua.CallError); ok {
				ended["reason"], ended["status"] = ce.Reason, ce.Status
			}
			m.publish(userID, "workitem.ended", ended)
			return
		}
		if a.calls[id] != cc || a.bridge == nil {
			// The agent hung up or disconnected while it rang.
			m.mu.Unlock()
			placed.HangupBy("agent")
			return
		}
		cc.placed, cc.cancel = placed, nil
		a.bridge.Add(placed.Media())
		conf := a.inConference()
		m.mu.Unlock()
		m.publish(userID, "workitem.answered", map[string]any{"workitemId": id})
		if conf {
			m.publish(userID, "conference", map[string]any{"inConference": true})
		}
	}()
	res.WorkitemID = id
	return res, nil
}

// callEnded takes a call that ended (either side hung up) out of the
// agent's bridge.
func (m *Manager) callEnded(userID, id, reason string) {
	m.mu.Lock()
	a := m.agents[userID]
	var wasConf, conf bool
	if a != nil {
		if c := a.calls[id]; c != nil {
			wasConf = a.inConference()
			if c.placed != nil && a.bridge != nil {
				a.bridge.Remove(c.placed.Media())
			}
			delete(a.calls, id)
			conf = a.inConference()
			if a.out && a.answeredCalls() < 2 {
				// The conference the agent stepped out of is over: the
				// agent is back with whoever is left.
				a.out = false
				if a.conn != nil && a.bridge != nil {
					a.bridge.Add(a.conn.Media())
					a.bridge.SetMuted(a.conn.Media(), a.muted)
				}
			}
		}
	}
	m.mu.Unlock()
	m.publish(userID, "workitem.ended", map[string]any{"workitemId": id, "reason": reason})
	if wasConf && !conf {
		m.publish(userID, "conference", map[string]any{"inConference": false})
	}
}

// Mute stops (or resumes) the agent's audio reaching the other parties;
// the agent keeps hearing them. It is idempotent.
func (m *Manager) Mute(userID string, on bool) error {
	m.mu.Lock()
	a := m.agents[userID]
	if a == nil || a.state != Connected {
		m.mu.Unlock()
		return ErrNotConnected
	}
	a.muted = on
	if !a.out {
		a.bridge.SetMuted(a.conn.Media(), on)
	}
	m.mu.Unlock()
	m.publish(userID, "mute", map[string]any{"inMute": on})
	return nil
}

// ExitConference takes the agent out of a conference; the others stay
// connected and go on talking. EnterConference brings the agent back.
func (m *Manager) ExitConference(userID string) error {
	m.mu.Lock()
	a := m.agents[userID]
	if a == nil || a.state != Connected {
		m.mu.Unlock()
		return ErrNotConnected
	}
	if !a.inConference() {
		m.mu.Unlock()
		return ErrNotInConference
	}
	a.bridge.Remove(a.conn.Media())
	a.out = true
	m.mu.Unlock()
	m.publish(userID, "conference", map[string]any{"inConference": false})
	return nil
}

// EnterConference puts the agent back into the call they stepped out of.
func (m *Manager) EnterConference(userID string) error {
	m.mu.Lock()
	a := m.agents[userID]
	if a == nil || a.state != Connected {
		m.mu.Unlock()
		return ErrNotConnected
	}
	if !a.out || a.answeredCalls() < 2 {
		m.mu.Unlock()
		return ErrNotInConference
	}
	a.out = false
	_ = a.bridge.AddWithRole(a.conn.Media(), media.Role{Kind: media.RoleFull})
	a.bridge.SetMuted(a.conn.Media(), a.muted)
	m.mu.Unlock()
	m.publish(userID, "conference", map[string]any{"inConference": true})
	return nil
}

// Owner is the agent whose call workitemID is, or "".
func (m *Manager) Owner(workitemID string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, a := range m.agents {
		if a.calls[workitemID] != nil {
			return id
		}
	}
	return ""
}

// Terminate ends a call (terminateWorkitem): a ringing one is cancelled,
// an answered one hung up. by is recorded ("agent", "supervisor").
func (m *Manager) Terminate(workitemID, by string) error {
	m.mu.Lock()
	var found *custCall
	for _, a := range m.agents {
		if c := a.calls[workitemID]; c != nil {
			found = c
			break
		}
	}
	if found == nil {
		m.mu.Unlock()
		return ErrNoWorkitem
	}
	placed, cancel := found.placed, found.cancel
	m.mu.Unlock()
	if placed != nil {
		placed.HangupBy(by)
	} else if cancel != nil {
		cancel()
	}
	return nil
}
