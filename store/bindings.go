package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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

func bindingPrefix(username string) []byte { return []byte("b/" + username + "/") }

func bindingKey(username, contact string) []byte {
	h := sha256.Sum256([]byte(contact))
	return append(bindingPrefix(username), hex.EncodeToString(h[:8])...)
}

var prefixBinding = []byte("b/")

// PutBinding stores or refreshes a binding until b.Expires.
func (tx *Tx) PutBinding(b *Binding) error {
	if b.DeviceUsername == "" || b.Contact == "" {
		return fmt.Errorf("store: bad binding")
	}
	if !b.Expires.After(time.Now()) {
		return fmt.Errorf("store: binding already expired")
	}
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return tx.setTTL(bindingKey(b.DeviceUsername, b.Contact), v, b.Expires)
}

// DeleteBinding removes one contact of a device.
func (tx *Tx) DeleteBinding(username, contact string) error {
	return tx.del(bindingKey(username, contact))
}

// DeleteBindings removes every contact of a device and reports how many.
func (tx *Tx) DeleteBindings(username string) (int, error) {
	bs, err := tx.Bindings(username)
	if err != nil {
		return 0, err
	}
	for _, b := range bs {
		if err := tx.DeleteBinding(username, b.Contact); err != nil {
			return 0, err
		}
	}
	return len(bs), nil
}

// Bindings lists a device's live contacts.
func (tx *Tx) Bindings(username string) ([]*Binding, error) {
	return tx.scanBindings(bindingPrefix(username))
}

// AllBindings lists every live contact on the box.
func (tx *Tx) AllBindings() ([]*Binding, error) { return tx.scanBindings(prefixBinding) }

func (tx *Tx) scanBindings(prefix []byte) ([]*Binding, error) {
	var out []*Binding
	now := time.Now()
	err := tx.each(prefix, func(_, v []byte) (bool, error) {
		b := &Binding{}
		if err := json.Unmarshal(v, b); err != nil {
			return false, err
		}
		if b.Expires.After(now) { // TTL has one-second resolution
			out = append(out, b)
		}
		return true, nil
	})
	return out, err
}
