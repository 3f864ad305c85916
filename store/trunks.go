package store

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Trunk transports.
const (
	TrunkUDP = "udp"
	TrunkTCP = "tcp"
	TrunkTLS = "tls"
)

// Registration lifetimes a trunk may ask its carrier for, in seconds.
const (
	TrunkExpiresDefault = 300
	TrunkExpiresMin     = 60
	TrunkExpiresMax     = 3600
)

// Trunk is a SIP carrier account: where the carrier is, how pbxd
// authenticates to it, which numbers it brings in (DIDs) and which dialled
// numbers it carries out (prefixes).
//
// Password is kept as given because outbound digest needs it; it must never
// be returned by the API or logged. String, GoString and LogValue leave it
// out, so printing or logging a Trunk by mistake does not leak it.
type Trunk struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	// Host is the carrier's SIP server: host or host:port, where host is an
	// IPv4 address, an IPv6 address in brackets or a DNS name.
	Host string `json:"host"`
	// Transport is TrunkUDP (empty means UDP), TrunkTCP or TrunkTLS.
	Transport string `json:"transport"`
	// Username is the account (From/To user of REGISTER); AuthUsername the
	// digest username when the carrier wants a different one.
	Username     string `json:"username"`
	AuthUsername string `json:"authUsername,omitempty"`
	Password     string `json:"password,omitempty"`
	// Realm, when set, is the only digest realm pbxd answers; empty accepts
	// whatever realm the carrier challenges with.
	Realm string `json:"realm,omitempty"`
	// Register makes pbxd keep a registration at the carrier, asking for
	// RegisterExpires seconds (0 means TrunkExpiresDefault).
	Register        bool `json:"register"`
	RegisterExpires int  `json:"registerExpires,omitempty"`
	// FromDomain is the host of From/To URIs; empty means Host.
	FromDomain string `json:"fromDomain,omitempty"`
	// CallerID and CallerName are presented on outbound calls.
	CallerID   string `json:"callerId,omitempty"`
	CallerName string `json:"callerName,omitempty"`
	// DIDs maps the carrier's numbers to pbxd extensions (inbound calls).
	// A DID belongs to one trunk only; "+49…" and "49…" count as the same.
	DIDs map[string]string `json:"dids,omitempty"`
	// Prefixes select this trunk for dialled numbers; none means any
	// number that is not internal.
	Prefixes []string `json:"prefixes,omitempty"`
	// Strip leading digits are removed from a dialled number, then
	// AddPrefix is put in front.
	Strip     int    `json:"strip,omitempty"`
	AddPrefix string `json:"addPrefix,omitempty"`
	// Priority orders trunks whose prefixes match equally long (lower wins).
	Priority int `json:"priority,omitempty"`
	// ContactToken is the random user part of the Contact pbxd registers,
	// so that requests the carrier sends there name the trunk. PutTrunk
	// keeps it stable and creates it when missing.
	ContactToken string    `json:"contactToken"`
	CreatedAt    time.Time `json:"createdAt"`
	CreatedBy    string    `json:"createdBy,omitempty"`
	ModifiedAt   time.Time `json:"modifiedAt"`
	ModifiedBy   string    `json:"modifiedBy,omitempty"`
}

// AuthUser is the digest username: AuthUsername, or Username when unset.
func (t *Trunk) AuthUser() string {
	if t.AuthUsername != "" {
		return t.AuthUsername
	}
	return t.Username
}

// Domain is the host of the trunk's From and To URIs: FromDomain, or Host.
func (t *Trunk) Domain() string {
	if t.FromDomain != "" {
		return t.FromDomain
	}
	return t.Host
}

// Proto is the transport with the default applied: udp, tcp or tls.
func (t *Trunk) Proto() string {
	if t.Transport == "" {
		return TrunkUDP
	}
	return t.Transport
}

// Expires is the registration lifetime to ask for, in seconds.
func (t *Trunk) Expires() int {
	if t.RegisterExpires <= 0 {
		return TrunkExpiresDefault
	}
	return t.RegisterExpires
}

// String describes the trunk without its password.
func (t Trunk) String() string {
	return fmt.Sprintf("trunk %s (%s) %s/%s user %s", t.ID, t.Name, t.Proto(), t.Host, t.Username)
}

// GoString is String, so %#v does not print the password either.
func (t Trunk) GoString() string { return t.String() }

// LogValue is what slog records for a trunk: never the password.
func (t Trunk) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", t.ID), slog.String("name", t.Name),
		slog.String("host", t.Host), slog.String("transport", t.Proto()))
}

// NormalizeDID is the form a DID is compared and indexed in: without a
// leading "+", so that "+4930123" and "4930123" are the same number.
func NormalizeDID(did string) string { return strings.TrimPrefix(did, "+") }

func trunkKey(id string) []byte       { return []byte("tr/" + id) }
func trunkNameKey(name string) []byte { return []byte("x/trn/" + strings.ToLower(name)) }
func trunkDIDKey(did string) []byte   { return []byte("x/trd/" + NormalizeDID(did)) }

var prefixTrunk = []byte("tr/")

// GetTrunk loads a trunk by id.
func (tx *Tx) GetTrunk(id string) (*Trunk, error) {
	return getRecord[Trunk](tx, trunkKey(id))
}

// TrunkByName finds a trunk by name, ignoring case.
func (tx *Tx) TrunkByName(name string) (*Trunk, error) {
	id, err := tx.lookup(trunkNameKey(name))
	if err != nil {
		return nil, err
	}
	return tx.GetTrunk(id)
}

// TrunkByDID finds the trunk that brings in a DID (with or without "+").
func (tx *Tx) TrunkByDID(did string) (*Trunk, error) {
	if NormalizeDID(did) == "" {
		return nil, ErrNotFound
	}
	id, err := tx.lookup(trunkDIDKey(did))
	if err != nil {
		return nil, err
	}
	return tx.GetTrunk(id)
}

// didSet is the set of normalized DIDs of a trunk, sorted.
func didSet(t *Trunk) []string {
	var out []string
	for did := range t.DIDs {
		if n := NormalizeDID(did); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// PutTrunk creates or replaces a trunk. Its name (ignoring case) and each
// of its DIDs are unique on the box: a clash is a *ConflictError. The
// contact token of an existing trunk is kept; a new one gets a random one.
func (tx *Tx) PutTrunk(t *Trunk) error {
	if !ValidID(t.ID) || strings.TrimSpace(t.Name) == "" || t.Host == "" {
		return fmt.Errorf("store: bad trunk")
	}
	old, err := tx.GetTrunk(t.ID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	switch {
	case old != nil && old.ContactToken != "":
		t.ContactToken = old.ContactToken
	case t.ContactToken == "":
		t.ContactToken = "t" + NewID()
	}
	if err := tx.claim(trunkNameKey(t.Name), t.ID, &ConflictError{"trunk", "name", t.Name}); err != nil {
		return err
	}
	dids := didSet(t)
	for _, did := range dids {
		if err := tx.claim(trunkDIDKey(did), t.ID, &ConflictError{"trunk", "did", did}); err != nil {
			return err
		}
	}
	if old != nil {
		if !strings.EqualFold(old.Name, t.Name) {
			if err := tx.del(trunkNameKey(old.Name)); err != nil {
				return err
			}
		}
		for _, did := range didSet(old) {
			if !slices.Contains(dids, did) {
				if err := tx.del(trunkDIDKey(did)); err != nil {
					return err
				}
			}
		}
	}
	if err := tx.txn.Set(trunkNameKey(t.Name), []byte(t.ID)); err != nil {
		return err
	}
	for _, did := range dids {
		if err := tx.txn.Set(trunkDIDKey(did), []byte(t.ID)); err != nil {
			return err
		}
	}
	return tx.setJSON(trunkKey(t.ID), t)
}

// ListTrunks lists every trunk by lower-cased name.
func (tx *Tx) ListTrunks() ([]*Trunk, error) {
	out, err := listRecords[Trunk](tx, prefixTrunk)
	slices.SortFunc(out, func(a, b *Trunk) int { return compareByName(a.Name, a.ID, b.Name, b.ID) })
	return out, err
}

// CountTrunks counts trunks without reading them.
func (tx *Tx) CountTrunks() int { return tx.count(prefixTrunk) }

// DeleteTrunk removes a trunk and its name and DID indexes.
func (tx *Tx) DeleteTrunk(id string) error {
	t, err := tx.GetTrunk(id)
	if err != nil {
		return err
	}
	for _, did := range didSet(t) {
		if err := tx.del(trunkDIDKey(did)); err != nil {
			return err
		}
	}
	if err := tx.del(trunkNameKey(t.Name)); err != nil {
		return err
	}
	return tx.del(trunkKey(id))
}
