// Package events is pbxd's in-process publish/subscribe bus for what
// happens to a user: ACD login and status changes, the agent's connection,
// workitems ringing and ending, mute, conference and monitoring. The API
// streams a user's events over a WebSocket; the call runtime and the API
// publish them.
//
// Publish never blocks: each subscription has a bounded buffer, and a
// subscriber that falls so far behind that its buffer is full is dropped —
// it receives a final TypeOverflow event and its channel is closed, so it
// can reconnect and re-read the state instead of missing events silently.
// The bus starts no goroutines.
package events

import (
	"sync"
	"time"
)

// Event types. The API publishes the ACD and session ones; the call
// runtime publishes the others.
const (
	// TypeStatus: the user's ACD status changed (StatusData).
	TypeStatus = "status"
	// TypeACDLogin: the user logged in to the ACD (ACDLoginData).
	TypeACDLogin = "acd.login"
	// TypeACDLogout: the user left the ACD (ACDLogoutData).
	TypeACDLogout = "acd.logout"
	// TypeSessionEnded: login sessions of the user ended (logout, revoked,
	// forced out, disabled): SessionEndedData.
	TypeSessionEnded = "session.ended"
	// TypeOverflow is the last event of a subscription dropped because its
	// buffer was full (OverflowData).
	TypeOverflow = "overflow"

	// TypeConnection: the agent's connection to the server changed.
	TypeConnection = "connection"
	// Workitem life cycle of the user's calls.
	TypeWorkitemCreated  = "workitem.created"
	TypeWorkitemRinging  = "workitem.ringing"
	TypeWorkitemAnswered = "workitem.answered"
	TypeWorkitemEnded    = "workitem.ended"
	// TypeMute, TypeConference, TypeMonitoring: call-control state.
	TypeMute       = "mute"
	TypeConference = "conference"
	TypeMonitoring = "monitoring"
)

// AllUsers subscribes to every user's events.
const AllUsers = ""

// DefaultBuffer is how many events a subscription holds before it counts
// as fallen behind.
const DefaultBuffer = 64

// Event is one thing that happened to a user.
type Event struct {
	Type   string    `json:"type"`
	UserID string    `json:"userId"`
	At     time.Time `json:"at"`
	// Data is the payload; it must be safe to encode as JSON and must not
	// be changed after publishing (subscribers share it).
	Data any `json:"data,omitempty"`
}

// StatusData is the payload of TypeStatus.
type StatusData struct {
	// Status is the class (0 offline, 1 available, 2 not ready, 3
	// after-call work); StatusID the catalogue slug.
	Status           int    `json:"status"`
	StatusID         string `json:"statusId"`
	Name             string `json:"name,omitempty"`
	StatusStartedAt  int64  `json:"statusStartedAt"`
	PreviousStatusID string `json:"previousStatusId,omitempty"`
	// ChangedBy is the id of the user or service user who made the change.
	ChangedBy string `json:"changedBy,omitempty"`
}

// ACDLoginData is the payload of TypeACDLogin.
type ACDLoginData struct {
	LoginAt  int64    `json:"loginAt"`
	Status   int      `json:"status"`
	StatusID string   `json:"statusId"`
	Queues   []string `json:"queues"`
	Channels []string `json:"channels"`
	// Auto is true for autoLoginToAcd.
	Auto      bool   `json:"auto,omitempty"`
	ChangedBy string `json:"changedBy,omitempty"`
}

// ACDLogoutData is the payload of TypeACDLogout.
type ACDLogoutData struct {
	LogoutAt int64 `json:"logoutAt"`
	// Reason is "logout", "forced" or "disabled".
	Reason    string `json:"reason"`
	ChangedBy string `json:"changedBy,omitempty"`
}

// SessionEndedData is the payload of TypeSessionEnded.
type SessionEndedData struct {
	SessionIDs []string `json:"sessionIds"`
	// Reason is "logout", "revoked", "forced", "disabled" or "deleted".
	Reason string `json:"reason"`
}

// OverflowData is the payload of TypeOverflow.
type OverflowData struct {
	Buffer int    `json:"buffer"`
	Reason string `json:"reason"`
}

// Options tune a Bus.
type Options struct {
	// Buffer per subscription; DefaultBuffer when 0 or less.
	Buffer int
	// Now stamps events published without At; time.Now when nil.
	Now func() time.Time
}

// Bus delivers events to subscriptions. All methods are safe for
// concurrent use; the zero value is not usable, build one with New.
type Bus struct {
	buffer int
	now    func() time.Time

	mu        sync.Mutex
	byUser    map[string]map[*Subscription]struct{}
	closed    bool
	published uint64
	overflows uint64
}

// New returns a bus with the default options.
func New() *Bus { return NewWith(Options{}) }

// NewWith returns a bus with options o.
func NewWith(o Options) *Bus {
	if o.Buffer <= 0 {
		o.Buffer = DefaultBuffer
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Bus{buffer: o.Buffer, now: o.Now, byUser: map[string]map[*Subscription]struct{}{}}
}

// Subscription receives one user's events (or everyone's, for AllUsers).
type Subscription struct {
	bus    *Bus
	userID string
	ch     chan Event
	// closed and overflowed are guarded by bus.mu.
	closed     bool
	overflowed bool
}

// Subscribe starts receiving userID's events (AllUsers: every user's).
// The caller must Close the subscription when done. On a closed bus the
// subscription's channel is closed at once.
func (b *Bus) Subscribe(userID string) *Subscription {
	// One slot more than the buffer: room for the overflow notice.
	s := &Subscription{bus: b, userID: userID, ch: make(chan Event, b.buffer+1)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.closed = true
		close(s.ch)
		return s
	}
	set := b.byUser[userID]
	if set == nil {
		set = map[*Subscription]struct{}{}
		b.byUser[userID] = set
	}
	set[s] = struct{}{}
	return s
}

// Publish hands e to every subscription of e.UserID and of AllUsers. It
// never blocks; a zero At is set to now.
func (b *Bus) Publish(e Event) {
	if e.At.IsZero() {
		e.At = b.now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.published++
	for s := range b.byUser[e.UserID] {
		b.deliver(s, e)
	}
	if e.UserID != AllUsers {
		for s := range b.byUser[AllUsers] {
			b.deliver(s, e)
		}
	}
}

// Emit publishes an event of type typ with data for userID, stamped now.
// Its shape fits the call runtime's Publish hook.
func (b *Bus) Emit(userID, typ string, data any) {
	b.Publish(Event{Type: typ, UserID: userID, Data: data})
}

// deliver sends e to s, or drops s when its buffer is full. b.mu is held:
// every send happens under it, so the length check cannot race another
// sender, and the reserved last slot always has room for the notice.
func (b *Bus) deliver(s *Subscription, e Event) {
	if len(s.ch) < cap(s.ch)-1 {
		s.ch <- e
		return
	}
	b.overflows++
	s.ch <- Event{Type: TypeOverflow, UserID: e.UserID, At: e.At,
		Data: OverflowData{Buffer: cap(s.ch) - 1, Reason: "the subscriber fell behind; reconnect and re-read the state"}}
	s.overflowed = true
	b.remove(s)
}

// remove unregisters s and closes its channel; b.mu is held.
func (b *Bus) remove(s *Subscription) {
	if s.closed {
		return
	}
	s.closed = true
	if set := b.byUser[s.userID]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(b.byUser, s.userID)
		}
	}
	close(s.ch)
}

// Close closes every subscription; later publishes are dropped and later
// subscriptions come closed. It is idempotent.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for _, set := range b.byUser {
		for s := range set {
			b.remove(s)
		}
	}
}

// Stats are the bus's counters.
type Stats struct {
	Subscribers int
	Published   uint64
	Overflows   uint64
}

// Stats reports how many subscriptions are open and how many events were
// published and subscribers dropped so far.
func (b *Bus) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, set := range b.byUser {
		n += len(set)
	}
	return Stats{Subscribers: n, Published: b.published, Overflows: b.overflows}
}

// Events is the channel events arrive on. It is closed by Close, by the
// bus's Close, and after the overflow notice.
func (s *Subscription) Events() <-chan Event { return s.ch }

// UserID is whose events the subscription receives (AllUsers: everyone's).
func (s *Subscription) UserID() string { return s.userID }

// Overflowed reports whether the subscription was dropped for falling
// behind.
func (s *Subscription) Overflowed() bool {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.overflowed
}

// Close stops the subscription and closes its channel; events still
// buffered can be drained. It is idempotent.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.bus.remove(s)
}
