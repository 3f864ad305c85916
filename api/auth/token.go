package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash/crc32"
	"math/big"
	"strings"
)

// Token prefixes. A recognisable prefix plus a checksum lets secret scanners
// find leaked pbxd tokens with few false positives.
const (
	PrefixServiceUser = "pbxd_su_"
	PrefixSession     = "pbxd_ses_"
)

const (
	tokenEntropyBytes = 32 // 256 random bits
	tokenBodyLen      = 43 // base62 digits needed for 256 bits
	tokenCRCLen       = 6  // base62 digits of a CRC-32
	// MaxTokenLen bounds what the header parser accepts.
	MaxTokenLen = 128
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewToken returns a fresh token: prefix, 256 random bits in base62, and a
// base62 CRC-32 of the random part.
func NewToken(prefix string) (string, error) {
	b := make([]byte, tokenEntropyBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	body := encodeBase62(b, tokenBodyLen)
	sum := crc32.ChecksumIEEE([]byte(body))
	return prefix + body + encodeBase62(big.NewInt(int64(sum)).Bytes(), tokenCRCLen), nil
}

// WellFormedToken reports whether tok has one of pbxd's prefixes and a valid
// checksum. It lets the API reject garbage without a store lookup.
func WellFormedToken(tok string) bool {
	var rest string
	switch {
	case strings.HasPrefix(tok, PrefixServiceUser):
		rest = tok[len(PrefixServiceUser):]
	case strings.HasPrefix(tok, PrefixSession):
		rest = tok[len(PrefixSession):]
	default:
		return false
	}
	if len(rest) != tokenBodyLen+tokenCRCLen {
		return false
	}
	for i := 0; i < len(rest); i++ {
		if strings.IndexByte(base62, rest[i]) < 0 {
			return false
		}
	}
	body, crc := rest[:tokenBodyLen], rest[tokenBodyLen:]
	sum := crc32.ChecksumIEEE([]byte(body))
	return encodeBase62(big.NewInt(int64(sum)).Bytes(), tokenCRCLen) == crc
}

// HashToken is the only form in which tokens are stored.
func HashToken(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

// RandomPassword returns a random password of n base62 characters, used for
// the first admin and for generated SIP device passwords.
func RandomPassword(n int) (string, error) {
	out := make([]byte, n)
	max := big.NewInt(int64(len(base62)))
	for i := range out {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", err
		}
		out[i] = base62[v.Int64()]
	}
	return string(out), nil
}

func encodeBase62(b []byte, width int) string {
	n := new(big.Int).SetBytes(b)
	out := make([]byte, width)
	base := big.NewInt(62)
	mod := new(big.Int)
	for i := width - 1; i >= 0; i-- {
		n.DivMod(n, base, mod)
		out[i] = base62[mod.Int64()]
	}
	return string(out)
}

// Credentials are what an Authorization header carries.
type Credentials struct {
	// Scheme is "Bearer" or "Basic".
	Scheme string
	// ID is the service-user id of Basic credentials; empty for Bearer.
	ID string
	// Token is the presented secret.
	Token string
}

// Errors of ParseAuthorization. Neither includes the presented value.
var (
	ErrNoCredentials  = errors.New("auth: no credentials")
	ErrBadCredentials = errors.New("auth: malformed Authorization header")
)

// ParseAuthorization parses "Bearer <token>" or "Basic base64(<id>:<token>)".
// The scheme is case-insensitive; anything else is ErrBadCredentials.
func ParseAuthorization(h string) (Credentials, error) {
	if h == "" {
		return Credentials{}, ErrNoCredentials
	}
	if len(h) > 512 {
		return Credentials{}, ErrBadCredentials
	}
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok {
		return Credentials{}, ErrBadCredentials
	}
	rest = strings.TrimLeft(rest, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		if !validTokenChars(rest) {
			return Credentials{}, ErrBadCredentials
		}
		return Credentials{Scheme: "Bearer", Token: rest}, nil
	case strings.EqualFold(scheme, "Basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return Credentials{}, ErrBadCredentials
		}
		id, tok, ok := strings.Cut(string(raw), ":")
		if !ok || id == "" || !validTokenChars(tok) || !validTokenChars(id) {
			return Credentials{}, ErrBadCredentials
		}
		return Credentials{Scheme: "Basic", ID: id, Token: tok}, nil
	}
	return Credentials{}, ErrBadCredentials
}

// validTokenChars accepts the RFC 6750 b64token alphabet, bounded in length.
func validTokenChars(s string) bool {
	if s == "" || len(s) > MaxTokenLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=':
		default:
			return false
		}
	}
	return true
}
