package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ContactNumber is one phone number of a contact.
type ContactNumber struct {
	// Type is a short word: work, mobile, home, fax, other …
	Type   string `json:"type"`
	Number string `json:"number"`
}

// Contact is a customer or other outside party the contact center talks
// to. Its numbers are indexed, so an inbound call finds its contact.
type Contact struct {
	ID        string `json:"id"`
	FirstName string `json:"firstName,omitempty"`
	LastName  string `json:"lastName,omitempty"`
	Company   string `json:"company,omitempty"`
	Email     string `json:"email,omitempty"`
	// Timezone is an IANA zone; calling hours are evaluated in it.
	Timezone   string            `json:"timezone,omitempty"`
	Numbers    []ContactNumber   `json:"numbers,omitempty"`
	Properties map[string]string `json:"properties,omitempty"`
	CreatedAt  time.Time         `json:"createdAt"`
	CreatedBy  string            `json:"createdBy,omitempty"`
	ModifiedAt time.Time         `json:"modifiedAt"`
	ModifiedBy string            `json:"modifiedBy,omitempty"`
}

// Name is the contact's display name: first and last name, or the company.
func (c *Contact) Name() string {
	if n := strings.TrimSpace(c.FirstName + " " + c.LastName); n != "" {
		return n
	}
	return c.Company
}

// Location is the contact's time zone; UTC when unset or unknown.
func (c *Contact) Location() *time.Location {
	if c.Timezone == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// NormalizeNumber is the form phone numbers are indexed and compared in:
// the digits alone, so "+49 (30) 123-45" and "493012345" are the same.
func NormalizeNumber(n string) string {
	var b strings.Builder
	for i := 0; i < len(n); i++ {
		if c := n[i]; c >= '0' && c <= '9' {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func contactKey(id string) []byte { return []byte("c/" + id) }
func contactNumberKey(num, id string) []byte {
	return []byte("x/cn/" + NormalizeNumber(num) + "/" + id)
}

var prefixContact = []byte("c/")

// numberSet is the set of normalized numbers of a contact, sorted.
func numberSet(c *Contact) []string {
	var out []string
	for _, n := range c.Numbers {
		if k := NormalizeNumber(n.Number); k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// GetContact loads a contact by id.
func (tx *Tx) GetContact(id string) (*Contact, error) {
	return getRecord[Contact](tx, contactKey(id))
}

// PutContact creates or replaces a contact and keeps its number index in
// step. Several contacts may share a number (a company's switchboard).
func (tx *Tx) PutContact(c *Contact) error {
	if !ValidID(c.ID) {
		return fmt.Errorf("store: bad contact")
	}
	old, err := tx.GetContact(c.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	nums := numberSet(c)
	if old != nil {
		for _, n := range numberSet(old) {
			if !slices.Contains(nums, n) {
				if err := tx.del(contactNumberKey(n, c.ID)); err != nil {
					return err
				}
			}
		}
	}
	for _, n := range nums {
		if err := tx.txn.Set(contactNumberKey(n, c.ID), nil); err != nil {
			return err
		}
	}
	return tx.setJSON(contactKey(c.ID), c)
}

// DeleteContact removes a contact and its number index entries.
// Workitems keep the contact id they were recorded with.
func (tx *Tx) DeleteContact(id string) error {
	c, err := tx.GetContact(id)
	if err != nil {
		return err
	}
	for _, n := range numberSet(c) {
		if err := tx.del(contactNumberKey(n, id)); err != nil {
			return err
		}
	}
	return tx.del(contactKey(id))
}

// ListContacts calls fn for every contact ordered by last name, first
// name, company (ignoring case) and id, until fn returns false.
func (tx *Tx) ListContacts(fn func(c *Contact) bool) error {
	all, err := listRecords[Contact](tx, prefixContact)
	if err != nil {
		return err
	}
	slices.SortFunc(all, compareContacts)
	for _, c := range all {
		if !fn(c) {
			return nil
		}
	}
	return nil
}

func compareContacts(a, b *Contact) int {
	for _, p := range [][2]string{{a.LastName, b.LastName}, {a.FirstName, b.FirstName}, {a.Company, b.Company}} {
		if c := strings.Compare(strings.ToLower(p[0]), strings.ToLower(p[1])); c != 0 {
			return c
		}
	}
	return strings.Compare(a.ID, b.ID)
}

// ContactsByNumber lists the contacts that have a phone number, compared
// digit by digit (NormalizeNumber), oldest first.
func (tx *Tx) ContactsByNumber(number string) ([]*Contact, error) {
	n := NormalizeNumber(number)
	if n == "" {
		return nil, nil
	}
	prefix := []byte("x/cn/" + n + "/")
	var ids []string
	tx.keys(prefix, func(k []byte) bool {
		ids = append(ids, string(k[len(prefix):]))
		return true
	})
	out := make([]*Contact, 0, len(ids))
	for _, id := range ids {
		c, err := tx.GetContact(id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Contact) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// ContactByNumber finds the contact a phone number belongs to (the oldest
// when several share it), or ErrNotFound.
func (tx *Tx) ContactByNumber(number string) (*Contact, error) {
	cs, err := tx.ContactsByNumber(number)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, ErrNotFound
	}
	return cs[0], nil
}

// CountContacts counts contacts without reading them.
func (tx *Tx) CountContacts() int { return tx.count(prefixContact) }
