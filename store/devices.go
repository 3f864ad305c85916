package store

import (
	"errors"
	"fmt"
	"slices"
)

func deviceKey(id string) []byte          { return []byte("d/" + id) }
func deviceNameKey(user string) []byte    { return []byte("x/dn/" + user) }
func deviceUserKey(uid, id string) []byte { return []byte("x/du/" + uid + "/" + id) }

// GetDevice loads a device by id.
func (tx *Tx) GetDevice(id string) (*Device, error) {
	return getRecord[Device](tx, deviceKey(id))
}

// DeviceByUsername finds a device by its SIP auth username (case-sensitive).
func (tx *Tx) DeviceByUsername(username string) (*Device, error) {
	id, err := tx.lookup(deviceNameKey(username))
	if err != nil {
		return nil, err
	}
	return tx.GetDevice(id)
}

// PutDevice creates or replaces a device; its SIP username is unique.
func (tx *Tx) PutDevice(d *Device) error {
	if !ValidID(d.ID) || !ValidID(d.UserID) {
		return fmt.Errorf("store: bad device or user id")
	}
	old, err := tx.GetDevice(d.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := tx.claim(deviceNameKey(d.Username), d.ID, &ConflictError{"device", "username", d.Username}); err != nil {
		return err
	}
	if old != nil {
		if old.Username != d.Username {
			if err := tx.del(deviceNameKey(old.Username)); err != nil {
				return err
			}
		}
		if old.UserID != d.UserID {
			if err := tx.del(deviceUserKey(old.UserID, d.ID)); err != nil {
				return err
			}
		}
	}
	if err := tx.txn.Set(deviceNameKey(d.Username), []byte(d.ID)); err != nil {
		return err
	}
	if err := tx.txn.Set(deviceUserKey(d.UserID, d.ID), nil); err != nil {
		return err
	}
	return tx.setJSON(deviceKey(d.ID), d)
}

// ListDevices lists a user's devices, oldest first.
func (tx *Tx) ListDevices(userID string) ([]*Device, error) {
	prefix := []byte("x/du/" + userID + "/")
	var ids []string
	tx.keys(prefix, func(k []byte) bool {
		ids = append(ids, string(k[len(prefix):]))
		return true
	})
	out := make([]*Device, 0, len(ids))
	for _, id := range ids {
		d, err := tx.GetDevice(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b *Device) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out, nil
}

// DeleteDevice removes a device and its indexes.
func (tx *Tx) DeleteDevice(id string) error {
	d, err := tx.GetDevice(id)
	if err != nil {
		return err
	}
	if _, err := tx.DeleteBindings(d.Username); err != nil {
		return err
	}
	if err := tx.del(deviceNameKey(d.Username)); err != nil {
		return err
	}
	if err := tx.del(deviceUserKey(d.UserID, id)); err != nil {
		return err
	}
	return tx.del(deviceKey(id))
}
