package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Binding is one registered contact of a SIP device: where to reach it and
// until when. It is stored with a Badger TTL equal to its expiry, so expired
// bindings vanish by themselves, also across restarts.
type Binding struct {
	// DeviceUsername is the SIP auth username of the device that registered.
	DeviceUsername string `json:"deviceUsername"`
	DeviceID       string `json:"deviceId"`
	UserID         string `json:"userId"`
	// Contact is the Contact URI the device registered.
	Contact string `json:"contact"`
	// Source is the address the REGISTER came from (host:port) and
	// Transport its transport: requests to the device go there (RFC 3581).
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	CallID    string    `json:"callId"`
	CSeq      uint32    `json:"cseq"`
	UserAgent string    `json:"userAgent,omitempty"`
	Expires   time.Time `json:"expires"`
	Updated   time.Time `json:"updated"`
}

// A device's bindings live together under one key, so a registration is
// one read and one write: scanning a prefix would walk every old version of
// frequently refreshed keys still in the memtable.
func bindingKey(username string) []byte { return []byte("b/" + username) }

var prefixBinding = []byte("b/")

// SetBindings replaces a device's contacts; the key expires with the last
// of them. An empty set deletes the key.
func (tx *Tx) SetBindings(username string, bs []*Binding) error {
	if username == "" {
		return fmt.Errorf("store: bad binding")
	}
	var last time.Time
	for _, b := range bs {
		if b.DeviceUsername != username || b.Contact == "" {
			return fmt.Errorf("store: bad binding")
		}
		if b.Expires.After(last) {
			last = b.Expires
		}
	}
	if len(bs) == 0 || !last.After(time.Now()) {
		return tx.del(bindingKey(username))
	}
	v, err := json.Marshal(bs)
	if err != nil {
		return err
	}
	return tx.setTTL(bindingKey(username), v, last)
}

// DeleteBindings removes every contact of a device and reports how many.
func (tx *Tx) DeleteBindings(username string) (int, error) {
	bs, err := tx.Bindings(username)
	if err != nil {
		return 0, err
	}
	if len(bs) > 0 {
		err = tx.del(bindingKey(username))
	}
	return len(bs), err
}

// Bindings lists a device's live contacts.
func (tx *Tx) Bindings(username string) ([]*Binding, error) {
	var bs []*Binding
	err := tx.getJSON(bindingKey(username), &bs)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return live(bs), err
}

// AllBindings lists every live contact on the box.
func (tx *Tx) AllBindings() ([]*Binding, error) {
	var out []*Binding
	err := tx.each(prefixBinding, func(_, v []byte) (bool, error) {
		var bs []*Binding
		if err := json.Unmarshal(v, &bs); err != nil {
			return false, err
		}
		out = append(out, live(bs)...)
		return true, nil
	})
	return out, err
}

// live drops contacts whose own expiry has passed (the key's TTL follows
// the last one, at one-second resolution).
func live(bs []*Binding) []*Binding {
	now := time.Now()
	out := bs[:0]
	for _, b := range bs {
		if b.Expires.After(now) {
			out = append(out, b)
		}
	}
	return out
}
