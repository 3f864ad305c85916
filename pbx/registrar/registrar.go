// Package registrar is pbxd's SIP registrar: it authenticates REGISTER
// requests with digest against the devices' stored HA1 values and keeps
// their contact bindings in the store, where they expire on time and survive
// restarts.
package registrar

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"pbxd/pbx/sipauth"
	"pbxd/store"
)

// Config tunes the registrar.
type Config struct {
	Store *store.Store
	// Auth checks the devices' digest credentials (401 challenges).
	Auth   *sipauth.Devices
	Logger *slog.Logger
	// MinExpires, MaxExpires and DefaultExpires bound registrations
	// (60 s, 3600 s and 3600 s when zero). Shorter requests get 423.
	MinExpires, MaxExpires, DefaultExpires time.Duration
	// MaxContacts per device (default 10).
	MaxContacts int
	Now         func() time.Time
}

// Registrar handles REGISTER.
type Registrar struct {
	cfg Config
	log *slog.Logger
}

// New returns a registrar.
func New(cfg Config) *Registrar {
	if cfg.MinExpires <= 0 {
		cfg.MinExpires = 60 * time.Second
	}
	if cfg.MaxExpires <= 0 {
		cfg.MaxExpires = time.Hour
	}
	if cfg.DefaultExpires <= 0 {
		cfg.DefaultExpires = time.Hour
	}
	if cfg.MaxContacts <= 0 {
		cfg.MaxContacts = 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Registrar{cfg: cfg, log: cfg.Logger}
}

// HandleRegister answers one REGISTER transaction.
func (r *Registrar) HandleRegister(req *sip.Request, tx sip.ServerTransaction) {
	res := r.register(req)
	if err := tx.Respond(res); err != nil {
		r.log.Debug("REGISTER response not sent", "call_id", sipauth.CallID(req), "err", err)
	}
}

// register decides the response; it never panics on odd input because the
// parser already rejected what it could not read, and every header access
// here is nil-checked.
func (r *Registrar) register(req *sip.Request) *sip.Response {
	to := req.To()
	if to == nil || req.CallID() == nil || req.CSeq() == nil {
		return sip.NewResponseFromRequest(req, 400, "Bad Request", nil)
	}
	res := r.cfg.Auth.Check(req, false)
	if res.Outcome != sipauth.OK {
		return r.cfg.Auth.Respond(req, res, false)
	}
	if to.Address.User != res.Device.Username {
		return sip.NewResponseFromRequest(req, 403, "Forbidden", nil)
	}
	return r.update(req, res.Device)
}

// expiresOf is the lifetime a contact asks for.
func (r *Registrar) expiresOf(req *sip.Request, c *sip.ContactHeader) (time.Duration, error) {
	if v, ok := c.Params.Get("expires"); ok {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * time.Second, nil
	}
	if h := req.GetHeader("Expires"); h != nil {
		n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			return 0, err
		}
		return time.Duration(n) * time.Second, nil
	}
	return r.cfg.DefaultExpires, nil
}

func (r *Registrar) update(req *sip.Request, dev *store.Device) *sip.Response {
	now := r.cfg.Now()
	var contacts []*sip.ContactHeader
	wildcard := false
	for _, h := range req.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok {
			return sip.NewResponseFromRequest(req, 400, "Bad Contact", nil)
		}
		if c.Address.Wildcard {
			wildcard = true
		}
		contacts = append(contacts, c)
	}
	type change struct {
		contact string
		expires time.Duration
	}
	var changes []change
	for _, c := range contacts {
		if c.Address.Wildcard {
			continue
		}
		exp, err := r.expiresOf(req, c)
		if err != nil {
			return sip.NewResponseFromRequest(req, 400, "Bad Expires", nil)
		}
		if exp > 0 && exp < r.cfg.MinExpires {
			res := sip.NewResponseFromRequest(req, 423, "Interval Too Brief", nil)
			res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(int(r.cfg.MinExpires/time.Second))))
			return res
		}
		if exp > r.cfg.MaxExpires {
			exp = r.cfg.MaxExpires
		}
		changes = append(changes, change{contact: c.Address.String(), expires: exp})
	}
	if wildcard {
		exp := req.GetHeader("Expires")
		if len(contacts) != 1 || exp == nil || strings.TrimSpace(exp.Value()) != "0" {
			return sip.NewResponseFromRequest(req, 400, "Wildcard Contact needs Expires: 0", nil)
		}
	}
	cseq := req.CSeq().SeqNo
	var current []*store.Binding
	// Bindings are soft state: phones refresh them, so they skip the fsync.
	err := r.cfg.Store.UpdateSoft(func(tx *store.Tx) error {
		existing, err := tx.Bindings(dev.Username)
		if err != nil {
			return err
		}
		if wildcard {
			existing = nil
		}
		next := make([]*store.Binding, 0, len(existing)+len(changes))
		index := map[string]int{}
		for _, b := range existing {
			index[b.Contact] = len(next)
			next = append(next, b)
		}
		for _, ch := range changes {
			i, known := index[ch.contact]
			if known && next[i] != nil && next[i].CallID == sipauth.CallID(req) && cseq <= next[i].CSeq {
				return errOutOfOrder
			}
			if ch.expires == 0 {
				if known {
					next[i] = nil
				}
				continue
			}
			b := &store.Binding{DeviceUsername: dev.Username, DeviceID: dev.ID, UserID: dev.UserID, Contact: ch.contact,
				Source: req.Source(), Transport: req.Transport(), CallID: sipauth.CallID(req), CSeq: cseq,
				Expires: now.Add(ch.expires), Updated: now}
			if ua := req.GetHeader("User-Agent"); ua != nil {
				b.UserAgent = truncate(ua.Value(), 128)
			}
			if known && next[i] != nil {
				next[i] = b
				continue
			}
			index[ch.contact] = len(next)
			next = append(next, b)
		}
		current = current[:0]
		for _, b := range next {
			if b != nil {
				current = append(current, b)
			}
		}
		if len(current) > r.cfg.MaxContacts {
			return errTooMany
		}
		if !wildcard && len(changes) == 0 {
			return nil // a query changes nothing
		}
		return tx.SetBindings(dev.Username, current)
	})
	switch {
	case errors.Is(err, errOutOfOrder):
		return sip.NewResponseFromRequest(req, 500, "Out of Order CSeq", nil)
	case errors.Is(err, errTooMany):
		return sip.NewResponseFromRequest(req, 403, "Too Many Contacts", nil)
	case err != nil:
		r.log.Error("registrar: store update", "err", err)
		return sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil)
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range current {
		secs := int(b.Expires.Sub(now).Round(time.Second) / time.Second)
		res.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<%s>;expires=%d", b.Contact, secs)))
	}
	res.AppendHeader(sip.NewHeader("Date", now.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")))
	r.log.Debug("registered", "device", dev.Username, "contacts", len(current), "source", req.Source())
	return res
}

var (
	errOutOfOrder = errors.New("registrar: out-of-order CSeq")
	errTooMany    = errors.New("registrar: too many contacts")
)

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
