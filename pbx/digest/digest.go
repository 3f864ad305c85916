// Package digest is pbxd's server side of SIP digest authentication
// (RFC 3261 §22, RFC 8760): challenges with stateless HMAC nonces, MD5 and
// SHA-256, qop=auth, and verification against stored HA1 values with
// nonce-count replay protection. It never sees a password.
package digest

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Algorithms pbxd offers, strongest first in challenges.
const (
	MD5    = "MD5"
	SHA256 = "SHA-256"
)

// Verification errors. None of them carries the presented values.
var (
	ErrMalformed   = errors.New("digest: malformed credentials")
	ErrStale       = errors.New("digest: nonce expired")
	ErrBadNonce    = errors.New("digest: nonce not issued by this server")
	ErrReplay      = errors.New("digest: nonce count reused")
	ErrMismatch    = errors.New("digest: response does not match")
	ErrUnsupported = errors.New("digest: unsupported algorithm or qop")
)

// Config tunes an Authenticator.
type Config struct {
	Realm string
	// NonceTTL is how long a nonce is accepted (default 1 min); older ones
	// get a stale challenge so the phone retries without asking the user.
	NonceTTL time.Duration
	// Algorithms are offered in this order (default MD5, then SHA-256:
	// many deployed phones answer only the first challenge they see and
	// know only MD5; clients that support SHA-256 find it second).
	Algorithms []string
	// MaxNonces bounds the nonce counts remembered (default 400,000,
	// about 3,300 authentications a second for two NonceTTLs); past it,
	// answers get a stale challenge until old counts age out.
	MaxNonces int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Authenticator issues challenges and checks answers. Nonces are
// self-validating (HMAC with a per-process key), so issuing one keeps no
// state; the first use of a nonce records its count to refuse replays.
type Authenticator struct {
	cfg Config
	key [32]byte
	mu  sync.Mutex
	// Nonce counts in two generations, each NonceTTL long: a count
	// recorded now lives at least NonceTTL (as long as its nonce can be
	// valid) and is dropped with its generation, so no scan is ever needed.
	cur, prev map[nonceKey]uint64
	genStart  time.Time
}

// nonceKey is a nonce's MAC: unique per issued nonce, and compact.
type nonceKey [16]byte

// New returns an Authenticator with a fresh random key.
func New(cfg Config) (*Authenticator, error) {
	if cfg.Realm == "" {
		return nil, errors.New("digest: realm required")
	}
	if cfg.NonceTTL <= 0 {
		cfg.NonceTTL = time.Minute
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{MD5, SHA256}
	}
	for _, alg := range cfg.Algorithms {
		if alg != MD5 && alg != SHA256 {
			return nil, fmt.Errorf("digest: unknown algorithm %q (MD5 or SHA-256)", alg)
		}
	}
	if cfg.MaxNonces <= 0 {
		cfg.MaxNonces = 400_000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &Authenticator{cfg: cfg, cur: map[nonceKey]uint64{}, prev: map[nonceKey]uint64{}, genStart: cfg.Now()}
	if _, err := rand.Read(a.key[:]); err != nil {
		return nil, err
	}
	return a, nil
}

// Realm is the realm challenges name.
func (a *Authenticator) Realm() string { return a.cfg.Realm }

const nonceRawLen = 8 + 8 + 16 // time, random, MAC

// nonce builds base64url(unixnano ‖ random ‖ HMAC(key, first 16 bytes)[:16]).
func (a *Authenticator) nonce() string {
	var b [nonceRawLen]byte
	binary.BigEndian.PutUint64(b[:8], uint64(a.cfg.Now().UnixNano()))
	_, _ = rand.Read(b[8:16])
	copy(b[16:], a.mac(b[:16]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (a *Authenticator) mac(b []byte) []byte {
	m := hmac.New(sha256.New, a.key[:])
	m.Write(b)
	return m.Sum(nil)[:16]
}

// checkNonce validates a nonce's MAC and age and returns its key.
func (a *Authenticator) checkNonce(n string) (nonceKey, error) {
	var key nonceKey
	var b [nonceRawLen]byte
	if base64.RawURLEncoding.DecodedLen(len(n)) != nonceRawLen {
		return key, ErrBadNonce
	}
	if m, err := base64.RawURLEncoding.Decode(b[:], []byte(n)); err != nil || m != nonceRawLen {
		return key, ErrBadNonce
	}
	if !hmac.Equal(b[16:], a.mac(b[:16])) {
		return key, ErrBadNonce
	}
	copy(key[:], b[16:])
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	now := a.cfg.Now()
	if issued.After(now.Add(time.Minute)) {
		return key, ErrBadNonce
	}
	if now.Sub(issued) > a.cfg.NonceTTL {
		return key, ErrStale
	}
	return key, nil
}

// Challenges returns the header values to send with 401 (WWW-Authenticate)
// or 407 (Proxy-Authenticate): one per configured algorithm (RFC 8760),
// sharing a fresh nonce. stale tells the phone its credentials were
// right but the nonce was old. With only, just those of the configured
// algorithms are offered (all of them if none is configured).
func (a *Authenticator) Challenges(stale bool, only ...string) []string {
	n := a.nonce()
	algs := a.cfg.Algorithms
	if len(only) > 0 {
		var keep []string
		for _, alg := range algs {
			if slicesContains(only, alg) {
				keep = append(keep, alg)
			}
		}
		if len(keep) > 0 {
			algs = keep
		}
	}
	var out []string
	for _, alg := range algs {
		v := fmt.Sprintf(`Digest realm="%s", nonce="%s", algorithm=%s, qop="auth"`, a.cfg.Realm, n, alg)
		if stale {
			v += ", stale=true"
		}
		out = append(out, v)
	}
	return out
}

// Credentials are the parsed fields of an Authorization or
// Proxy-Authorization header with the Digest scheme.
type Credentials struct {
	Username, Realm, Nonce, URI, Response, Algorithm, Cnonce, Qop, NC, Opaque string
}

// Parse reads a Digest credentials header value.
func Parse(h string) (Credentials, error) {
	var c Credentials
	params, err := ParseParams(h)
	if err != nil {
		return c, err
	}
	for name, val := range params {
		switch name {
		case "username":
			c.Username = val
		case "realm":
			c.Realm = val
		case "nonce":
			c.Nonce = val
		case "uri":
			c.URI = val
		case "response":
			c.Response = strings.ToLower(val)
		case "algorithm":
			c.Algorithm = val
		case "cnonce":
			c.Cnonce = val
		case "qop":
			c.Qop = val
		case "nc":
			c.NC = val
		case "opaque":
			c.Opaque = val
		}
	}
	if c.Username == "" || c.Nonce == "" || c.URI == "" || c.Response == "" {
		return c, ErrMalformed
	}
	return c, nil
}

// ParseParams splits the value of a Digest header (credentials or a
// challenge: `Digest name=token, name="quoted, string"`) into its
// parameters, names in lower case. It refuses another scheme, a repeated
// parameter, CR, LF or NUL in a value, and a list it cannot read, all
// with ErrMalformed; it never reads past the value.
func ParseParams(h string) (map[string]string, error) {
	if len(h) > 4096 {
		return nil, ErrMalformed
	}
	scheme, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Digest") {
		return nil, ErrMalformed
	}
	params := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			return nil, ErrMalformed
		}
		name := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, ErrMalformed
			}
			val, rest = rest[1:1+end], rest[2+end:]
		} else {
			end := strings.IndexAny(rest, ", \t")
			if end < 0 {
				end = len(rest)
			}
			val, rest = rest[:end], rest[end:]
		}
		if _, dup := params[name]; dup || strings.ContainsAny(val, "\r\n\x00") {
			return nil, ErrMalformed
		}
		params[name] = val
		rest = strings.TrimLeft(rest, " \t")
		if rest != "" {
			if rest[0] != ',' {
				return nil, ErrMalformed
			}
			rest = strings.TrimLeft(rest[1:], " \t")
		}
	}
	return params, nil
}

// HA1 is what a device stores: H(username:realm:password) per algorithm.
type HA1 struct {
	MD5, SHA256 string
}

// Verify checks c for a request with method against the stored HA1. On
// ErrStale the caller sends a fresh challenge with stale=true.
func (a *Authenticator) Verify(c Credentials, method string, ha1 HA1) error {
	if c.Realm != a.cfg.Realm {
		return ErrMismatch
	}
	var h func() hash.Hash
	var stored string
	alg := strings.ToUpper(c.Algorithm)
	if alg == "" {
		alg = MD5
	}
	switch {
	case !slicesContains(a.cfg.Algorithms, alg):
		return ErrUnsupported
	case alg == MD5:
		h, stored = md5.New, ha1.MD5
	default:
		h, stored = sha256.New, ha1.SHA256
	}
	if c.Qop != "auth" {
		return ErrUnsupported
	}
	count, err := strconv.ParseUint(c.NC, 16, 64)
	if err != nil || len(c.NC) != 8 || c.Cnonce == "" {
		return ErrMalformed
	}
	key, err := a.checkNonce(c.Nonce)
	if err != nil {
		return err
	}
	want := expectedResponse(h, stored, c.Nonce, c.NC, c.Cnonce, c.Qop, method, c.URI)
	if stored == "" || subtle.ConstantTimeCompare([]byte(want), []byte(c.Response)) != 1 {
		return ErrMismatch
	}
	return a.useCount(key, count)
}

// useCount accepts a nonce count only if it is higher than any seen for
// that nonce, so a captured request cannot be replayed.
func (a *Authenticator) useCount(key nonceKey, count uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if age := a.cfg.Now().Sub(a.genStart); age >= 2*a.cfg.NonceTTL {
		clear(a.cur)
		clear(a.prev)
		a.genStart = a.cfg.Now()
	} else if age >= a.cfg.NonceTTL {
		// Everything in prev was recorded over NonceTTL ago, so its
		// nonces have expired; cur becomes prev.
		a.prev, a.cur = a.cur, a.prev
		clear(a.cur)
		a.genStart = a.cfg.Now()
	}
	seen, ok := a.cur[key]
	if p, okp := a.prev[key]; okp && (!ok || p > seen) {
		seen, ok = p, true
	}
	if ok && count <= seen {
		return ErrReplay
	}
	if !ok && len(a.cur)+len(a.prev) >= a.cfg.MaxNonces {
		// Full of live nonces: refuse rather than forget counts; the
		// phone gets a fresh challenge.
		return ErrStale
	}
	a.cur[key] = count
	return nil
}

// expectedResponse is KD(HA1, nonce:nc:cnonce:qop:H(method:uri)).
func expectedResponse(h func() hash.Hash, ha1, nonce, nc, cnonce, qop, method, uri string) string {
	return hexHash(h, ha1+":"+nonce+":"+nc+":"+cnonce+":"+qop+":"+hexHash(h, method+":"+uri))
}

func slicesContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func hexHash(h func() hash.Hash, s string) string {
	x := h()
	x.Write([]byte(s))
	return hex.EncodeToString(x.Sum(nil))
}

// ComputeHA1 returns the stored form of a password for a username and
// realm, in both algorithms.
func ComputeHA1(username, realm, password string) HA1 {
	a := username + ":" + realm + ":" + password
	return HA1{MD5: hexHash(md5.New, a), SHA256: hexHash(sha256.New, a)}
}
