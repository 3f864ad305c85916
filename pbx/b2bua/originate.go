package b2bua

import (
	"context"
	"errors"
	"fmt"

	"pbxd/media"
	"pbxd/store"
)

// OriginateRequest is a call pbxd places itself: the connection to an
// agent's phone, or an agent's outbound call. There is no caller leg; the
// answered leg's media is for the requester to bridge.
type OriginateRequest struct {
	// Number is dialled as a phone would: an extension rings its user's
	// phones, anything else goes out through a trunk.
	Number string
	// UserID, when set, rings that user's registered devices instead.
	UserID string
	// FromNumber and FromName are the caller ID the callee sees.
	FromNumber, FromName string
	// Role names the leg in statistics and logs ("agent", "customer").
	Role string
	// Workitem, when not nil, is the record kept for the call (type,
	// users, owner, contact-center fields); its id becomes the call's.
	// Nil keeps no record.
	Workitem *store.Workitem
	// AutoAnswer asks the phone to pick up by itself.
	AutoAnswer bool
	// OnProgress hears the first ringing (180) or progress (183).
	OnProgress func(code int)
	// OnEnd is told once, with the recorded end reason, when the answered
	// call ends (the far end hung up, its media stopped, Hangup).
	OnEnd func(reason string)
}

// CallError is a call that could not be placed: the final SIP status and
// the recorded end reason.
type CallError struct {
	Status int
	Reason string
}

func (e *CallError) Error() string {
	return fmt.Sprintf("b2bua: call failed: %d %s", e.Status, e.Reason)
}

// ErrClosed is returned once the engine is shutting down.
var ErrClosed = errors.New("b2bua: engine closed")

// Placed is an answered call pbxd placed.
type Placed struct{ c *Call }

// Originate places a call and waits until it is answered (or fails, or ctx
// ends, which cancels it). Once answered, the call lives on until Hangup
// or the far end hangs up; ctx no longer matters.
func (e *Engine) Originate(ctx context.Context, r OriginateRequest) (*Placed, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	var dest destination
	var refused *refusal
	if r.UserID != "" {
		dest, refused = e.routeUser(r.UserID)
	} else {
		dest, refused = e.route(r.Number, caller{})
	}
	c := e.newCallShell()
	if r.Role != "" {
		c.calleeRole = r.Role
	}
	c.autoAnswer, c.onProgress, c.onEnd, c.cancelled = r.AutoAnswer, r.OnProgress, r.OnEnd, ctx.Done()
	if r.Workitem != nil {
		c.w = *r.Workitem
		if c.w.ID != "" {
			c.id = c.w.ID
		}
	} else {
		c.noRecord = true
	}
	w := &c.w
	w.ID = c.id
	if w.CreatedAt.IsZero() {
		w.CreatedAt = e.cfg.Now()
	}
	w.State = store.WorkitemRinging
	if w.To == "" {
		w.To = dest.number
	}
	if w.From == "" {
		w.From, w.FromName = r.FromNumber, r.FromName
	}
	if w.Type == "" {
		w.Type = store.WorkitemInternalCall
		if dest.trunk != nil {
			w.Type = store.WorkitemOutboundCall
		}
	}
	if dest.trunk != nil {
		w.TrunkID = dest.trunk.TrunkID
	}
	if dest.user != nil {
		if w.ToName == "" {
			w.ToName = displayName(dest.user)
		}
		if !contains(w.Users, dest.user.ID) {
			w.Users = append(w.Users, dest.user.ID)
		}
	}
	c.log = e.log.With("workitem", c.id, "originated", true)
	if refused != nil {
		c.refuse(refused)
		return nil, &CallError{Status: refused.code, Reason: refused.end}
	}
	if !e.addCall(c) {
		return nil, ErrClosed
	}
	c.run(dest)
	c.mu.Lock()
	answered, ended := c.answered, c.ended
	status, reason := c.w.EndStatus, c.w.EndReason
	c.mu.Unlock()
	if !answered || ended {
		if status == 0 {
			status = 480
		}
		return nil, &CallError{Status: status, Reason: reason}
	}
	return &Placed{c: c}, nil
}

// WorkitemID is the call's id (its record's, when it keeps one).
func (p *Placed) WorkitemID() string { return p.c.id }

// Media is the answered leg's RTP endpoint, to bridge.
func (p *Placed) Media() media.Leg {
	p.c.mu.Lock()
	defer p.c.mu.Unlock()
	return p.c.b.media()
}

// Hangup ends the call (BYE); it is idempotent.
func (p *Placed) Hangup() { p.c.hangup(endCompleted, "system", nil) }

// HangupBy ends the call recording who ended it ("agent", "supervisor").
func (p *Placed) HangupBy(by string) { p.c.hangup(endCompleted, by, nil) }

// Done is closed when the call has ended.
func (p *Placed) Done() <-chan struct{} { return p.c.endCh }

// Stats reports the leg's RTP counters.
func (p *Placed) Stats() media.Stats { return p.Media().Stats() }
