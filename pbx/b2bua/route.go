package b2bua

import (
	"errors"
	"strings"

	"pbxd/store"
)

// caller is who places a call: a device of a user, or a carrier.
type caller struct {
	device *store.Device
	user   *store.User
	trunk  *TrunkInbound
}

// destination is where a call goes: the contacts of a user's devices, or
// a trunk.
type destination struct {
	number   string
	user     *store.User
	contacts []*store.Binding
	trunk    *TrunkOutbound
}

// refusal is a call that cannot be placed: the SIP answer and the reason
// recorded.
type refusal struct {
	code   int
	reason string
	end    string
}

var (
	refuseNotFound    = &refusal{404, "Not Found", endNotFound}
	refuseBusy        = &refusal{486, "Busy Here", endBusy}
	refuseUnavailable = &refusal{480, "Temporarily Unavailable", endUnavailable}
	refuseFailed      = &refusal{500, "Server Internal Error", endFailed}
)

// route decides where number goes. Extensions ring every registered
// contact of the user's devices (but not the calling device's own);
// anything else goes to a trunk when one matches. Calls from carriers only
// reach extensions (their DID map), never back out through a trunk.
func (e *Engine) route(number string, from caller) (destination, *refusal) {
	d := destination{number: number}
	if number == "" {
		return d, refuseNotFound
	}
	err := e.cfg.Store.View(func(tx *store.Tx) error {
		u, err := tx.UserByExtension(number)
		if err != nil {
			return err
		}
		d.user = u
		d.contacts, err = userContacts(tx, u, from.device)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		if from.trunk == nil && e.cfg.Trunks != nil && !strings.ContainsAny(number, "@;") {
			if out, ok := e.cfg.Trunks.Outbound(number); ok {
				d.trunk = &out
				return d, nil
			}
		}
		return d, refuseNotFound
	case err != nil:
		e.log.Error("b2bua: routing lookup", "err", err)
		return d, refuseFailed
	case !d.user.Enabled:
		return d, refuseNotFound
	case d.user.DoNotDisturb:
		return d, refuseBusy
	case len(d.contacts) == 0:
		return d, refuseUnavailable
	}
	return d, nil
}

// userContacts lists the registered contacts of every device of u, but
// not those of the calling device. A disabled user or one on do not
// disturb has none to ring.
func userContacts(tx *store.Tx, u *store.User, calling *store.Device) ([]*store.Binding, error) {
	if !u.Enabled || u.DoNotDisturb {
		return nil, nil
	}
	devs, err := tx.ListDevices(u.ID)
	if err != nil {
		return nil, err
	}
	var out []*store.Binding
	for _, dev := range devs {
		if calling != nil && dev.ID == calling.ID {
			continue
		}
		bs, err := tx.Bindings(dev.Username)
		if err != nil {
			return nil, err
		}
		out = append(out, bs...)
	}
	return out, nil
}

// routeUser rings a user's registered devices whatever their extension:
// the connection pbxd makes to an agent's phone. Do not disturb does not
// apply; the agent asked for the call.
func (e *Engine) routeUser(userID string) (destination, *refusal) {
	var d destination
	err := e.cfg.Store.View(func(tx *store.Tx) error {
		u, err := tx.GetUser(userID)
		if err != nil {
			return err
		}
		d.user, d.number = u, u.Extension
		if !u.Enabled {
			return nil
		}
		dnd := *u
		dnd.DoNotDisturb = false
		d.contacts, err = userContacts(tx, &dnd, nil)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return d, refuseNotFound
	case err != nil:
		e.log.Error("b2bua: routing lookup", "err", err)
		return d, refuseFailed
	case !d.user.Enabled:
		return d, refuseNotFound
	case len(d.contacts) == 0:
		return d, refuseUnavailable
	}
	return d, nil
}

// connected reports whether a browser's WebSocket, the only way to reach
// it, is still open.
func (e *Engine) connected(b *store.Binding) bool {
	c, err := e.cfg.TCP.TransportLayer().GetConnection(strings.ToLower(b.Transport), b.Source)
	return err == nil && c != nil
}
