package store

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func newTrunk(name string, dids map[string]string) *Trunk {
	now := time.Now()
	return &Trunk{ID: NewID(), Name: name, Enabled: true, Host: "sip.example.net", Username: "acct",
		Password: "s3cret-trunk-pass", DIDs: dids, CreatedAt: now, ModifiedAt: now}
}

func wantConflict(t *testing.T, err error, field string) {
	t.Helper()
	var ce *ConflictError
	if !errors.Is(err, ErrConflict) || !errors.As(err, &ce) || ce.Kind != "trunk" || ce.Field != field {
		t.Fatalf("want a trunk %s conflict, got %v", field, err)
	}
}

func TestTrunkUniqueName(t *testing.T) {
	s := openTest(t, "")
	a := newTrunk("Carrier-One", nil)
	must(t, s.Update(func(tx *Tx) error { return tx.PutTrunk(a) }))
	if !strings.HasPrefix(a.ContactToken, "t") || len(a.ContactToken) != 17 {
		t.Fatalf("contact token %q", a.ContactToken)
	}
	must(t, s.View(func(tx *Tx) error {
		got, err := tx.TrunkByName("carrier-ONE")
		if err != nil || got.ID != a.ID || got.Password != a.Password {
			return fmt.Errorf("by name: %v %v", got, err)
		}
		return nil
	}))
	wantConflict(t, s.Update(func(tx *Tx) error { return tx.PutTrunk(newTrunk("CARRIER-one", nil)) }), "name")

	// Renaming frees the old name; the contact token stays.
	token := a.ContactToken
	a.Name, a.ContactToken = "Carrier-Two", ""
	must(t, s.Update(func(tx *Tx) error { return tx.PutTrunk(a) }))
	if a.ContactToken != token {
		t.Fatalf("contact token changed on update: %q → %q", token, a.ContactToken)
	}
	must(t, s.Update(func(tx *Tx) error { return tx.PutTrunk(newTrunk("carrier-one", nil)) }))
	must(t, s.View(func(tx *Tx) error {
		if _, err := tx.TrunkByName("Carrier-Two"); err != nil {
			return err
		}
		ts, err := tx.ListTrunks()
		if err != nil || len(ts) != 2 || ts[0].Name != "carrier-one" || ts[1].Name != "Carrier-Two" || tx.CountTrunks() != 2 {
			return fmt.Errorf("list: %v %v", ts, err)
		}
		return nil
	}))
}

func TestTrunkUniqueDID(t *testing.T) {
	s := openTest(t, "")
	a := newTrunk("a", map[string]string{"+4930100": "201", "4930101": "202"})
	must(t, s.Update(func(tx *Tx) error { return tx.PutTrunk(a) }))
	// The same number with or without + belongs to a already.
	for _, did := range []string{"4930100", "+4930101"} {
		b := newTrunk("b-"+did, map[string]string{did: "203"})
		wantConflict(t, s.Update(func(tx *Tx) error { return tx.PutTrunk(b) }), "did")
	}
	must(t, s.View(func(tx *Tx) error {
		for _, did := range []string{"+4930100", "4930100", "4930101", "+4930101"} {
			got, err := tx.TrunkByDID(did)
			if err != nil || got.ID != a.ID {
				return fmt.Errorf("did %s: %v", did, err)
			}
		}
		if _, err := tx.TrunkByDID("+"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("empty did: %v", err)
		}
		return nil
	}))

	// Moving a DID away from a frees it for b; the index follows updates.
	a.DIDs = map[string]string{"+4930100": "201"}
	must(t, s.Update(func(tx *Tx) error { return tx.PutTrunk(a) }))
	b := newTrunk("b", map[string]string{"4930101": "203"})
	must(t, s.Update(func(tx *Tx) error { return tx.PutTrunk(b) }))
	must(t, s.View(func(tx *Tx) error {
		if got, err := tx.TrunkByDID("4930101"); err != nil || got.ID != b.ID {
			return fmt.Errorf("moved did: %v", err)
		}
		return nil
	}))

	// A failed put changes nothing.
	c := newTrunk("c", map[string]string{"4930199": "204", "4930100": "205"})
	wantConflict(t, s.Update(func(tx *Tx) error { return tx.PutTrunk(c) }), "did")
	must(t, s.View(func(tx *Tx) error {
		if _, err := tx.TrunkByDID("4930199"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("half-written trunk: %v", err)
		}
		if _, err := tx.TrunkByName("c"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("half-written trunk name: %v", err)
		}
		return nil
	}))
}

func TestTrunkDeleteFreesIndexes(t *testing.T) {
	s := openTest(t, "")
	a := newTrunk("gone", map[string]string{"4930100": "201"})
	must(t, s.Update(func(tx *Tx) error { return tx.PutTrunk(a) }))
	must(t, s.Update(func(tx *Tx) error { return tx.DeleteTrunk(a.ID) }))
	must(t, s.View(func(tx *Tx) error {
		if _, err := tx.GetTrunk(a.ID); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("get after delete: %v", err)
		}
		if _, err := tx.TrunkByName("gone"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("name after delete: %v", err)
		}
		if _, err := tx.TrunkByDID("4930100"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("did after delete: %v", err)
		}
		return nil
	}))
	if err := s.Update(func(tx *Tx) error { return tx.DeleteTrunk(a.ID) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	b := newTrunk("gone", map[string]string{"+4930100": "202"})
	must(t, s.Update(func(tx *Tx) error { return tx.PutTrunk(b) }))
	if err := s.Update(func(tx *Tx) error { return tx.PutTrunk(&Trunk{ID: "bad", Name: "x", Host: "h"}) }); err == nil {
		t.Fatal("bad id accepted")
	}
}

func TestTrunkNeverPrintsPassword(t *testing.T) {
	tr := newTrunk("printed", nil)
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("x", "trunk", tr, "value", *tr)
	for _, out := range []string{fmt.Sprint(tr), fmt.Sprintf("%v %+v %#v %s", *tr, *tr, *tr, tr), sb.String()} {
		if strings.Contains(out, tr.Password) {
			t.Fatalf("password printed: %s", out)
		}
	}
	if tr.AuthUser() != "acct" || tr.Domain() != "sip.example.net" || tr.Proto() != TrunkUDP || tr.Expires() != TrunkExpiresDefault {
		t.Fatal("defaults")
	}
	tr.AuthUsername, tr.FromDomain, tr.Transport, tr.RegisterExpires = "auth", "dom", TrunkTLS, 90
	if tr.AuthUser() != "auth" || tr.Domain() != "dom" || tr.Proto() != TrunkTLS || tr.Expires() != 90 {
		t.Fatal("overrides")
	}
}
