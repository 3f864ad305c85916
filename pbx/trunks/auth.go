package trunks

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"

	"github.com/emiago/sipgo/sip"

	"pbxd/pbx/digest"
)

// The client side of SIP digest (RFC 3261 §22, RFC 8760): pbxd answering a
// carrier's 401/407. The password only ever enters the hashes below; no
// error or log line carries it.

// challenge is one parsed WWW-Authenticate or Proxy-Authenticate value.
type challenge struct {
	proxy     bool // from a 407: answer in Proxy-Authorization
	realm     string
	nonce     string
	opaque    string
	algorithm string // upper case; "" means MD5
	qopAuth   bool   // qop offered and it includes "auth"
	qopOnly   bool   // qop offered but without "auth" (auth-int only)
	stale     bool
}

// algorithms pbxd can answer, strongest first. When a carrier offers
// several (RFC 8760), pbxd answers the strongest it knows: that is local
// policy the RFC allows, and it keeps MD5 for carriers that offer nothing
// else.
var algorithms = []string{"SHA-256", "SHA-256-SESS", "MD5", "MD5-SESS"}

func algorithmRank(alg string) int {
	if alg == "" {
		alg = "MD5"
	}
	for i, a := range algorithms {
		if a == alg {
			return i
		}
	}
	return -1
}

// parseChallenge reads a Digest challenge; it is lenient about spacing and
// case, strict about the scheme and the nonce.
func parseChallenge(v string) (challenge, error) {
	var c challenge
	scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, "Digest") {
		return c, fmt.Errorf("%w: scheme %q", ErrChallenge, truncate(scheme, 20))
	}
	params, err := digest.ParseParams(v)
	if err != nil {
		return c, fmt.Errorf("%w: malformed parameters", ErrChallenge)
	}
	c.realm, c.nonce, c.opaque = params["realm"], params["nonce"], params["opaque"]
	c.algorithm = strings.ToUpper(params["algorithm"])
	c.stale = strings.EqualFold(params["stale"], "true")
	if qop, ok := params["qop"]; ok {
		for _, q := range strings.Split(qop, ",") {
			if strings.EqualFold(strings.TrimSpace(q), "auth") {
				c.qopAuth = true
			}
		}
		c.qopOnly = !c.qopAuth
	}
	if c.nonce == "" || strings.ContainsAny(c.nonce+c.realm+c.opaque, "\"\\\r\n") {
		return c, fmt.Errorf("%w: missing or unusable nonce", ErrChallenge)
	}
	return c, nil
}

// pickChallenge chooses the challenge of res to answer: the strongest
// supported algorithm, in the configured realm when one is set.
func pickChallenge(res *sip.Response, realm string) (challenge, error) {
	name, proxy := "WWW-Authenticate", false
	if res.StatusCode == 407 {
		name, proxy = "Proxy-Authenticate", true
	}
	best, found := challenge{}, false
	var lastErr error
	for _, h := range res.GetHeaders(name) {
		c, err := parseChallenge(h.Value())
		if err != nil {
			lastErr = err
			continue
		}
		c.proxy = proxy
		switch {
		case realm != "" && c.realm != realm:
			lastErr = fmt.Errorf("%w: realm %q is not the configured one", ErrChallenge, truncate(c.realm, 64))
			continue
		case algorithmRank(c.algorithm) < 0 || c.qopOnly:
			lastErr = fmt.Errorf("%w: unsupported algorithm %q or qop", ErrChallenge, truncate(c.algorithm, 20))
			continue
		}
		if !found || algorithmRank(c.algorithm) < algorithmRank(best.algorithm) {
			best, found = c, true
		}
	}
	if !found {
		if lastErr == nil {
			lastErr = fmt.Errorf("%w: no %s header", ErrChallenge, name)
		}
		return best, lastErr
	}
	return best, nil
}

// digestAuth answers one challenge, possibly several times: each use
// raises the nonce count, so a refresh can reuse the carrier's nonce
// without a new round trip.
type digestAuth struct {
	ch challenge
	nc uint32
}

// apply puts the credentials for req into its Authorization (or
// Proxy-Authorization) header.
func (a *digestAuth) apply(req *sip.Request, username, password string) {
	a.nc++
	name := "Authorization"
	if a.ch.proxy {
		name = "Proxy-Authorization"
	}
	req.RemoveHeader(name)
	req.AppendHeader(sip.NewHeader(name, a.value(req.Method.String(), req.Recipient.String(), username, password, randomHex(8))))
}

// value computes the credentials header value (RFC 2617 §3.2.2 with the
// RFC 7616 algorithms).
func (a *digestAuth) value(method, uri, username, password, cnonce string) string {
	c := a.ch
	var h func() hash.Hash = md5.New
	alg := c.algorithm
	if strings.HasPrefix(alg, "SHA-256") {
		h = sha256.New
	}
	ha1 := hexHash(h, username+":"+c.realm+":"+password)
	if strings.HasSuffix(alg, "-SESS") {
		ha1 = hexHash(h, ha1+":"+c.nonce+":"+cnonce)
	}
	ha2 := hexHash(h, method+":"+uri)
	nc := fmt.Sprintf("%08x", a.nc)
	var resp string
	if c.qopAuth {
		resp = hexHash(h, ha1+":"+c.nonce+":"+nc+":"+cnonce+":auth:"+ha2)
	} else {
		resp = hexHash(h, ha1+":"+c.nonce+":"+ha2)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s"`,
		quoteSafe(username), c.realm, c.nonce, uri, resp)
	if alg != "" {
		fmt.Fprintf(&b, ", algorithm=%s", alg)
	}
	if c.qopAuth {
		fmt.Fprintf(&b, `, qop=auth, nc=%s, cnonce="%s"`, nc, cnonce)
	}
	if c.opaque != "" {
		fmt.Fprintf(&b, `, opaque="%s"`, c.opaque)
	}
	return b.String()
}

func hexHash(h func() hash.Hash, s string) string {
	x := h()
	x.Write([]byte(s))
	return hex.EncodeToString(x.Sum(nil))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// quoteSafe drops the characters that would break a quoted-string; the
// API refuses them in usernames anyway.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 {
			return -1
		}
		return r
	}, s)
}

// truncate bounds text that came from the network before it is kept in a
// status or an error, and replaces control characters.
func truncate(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n]
	}
	return s
}
