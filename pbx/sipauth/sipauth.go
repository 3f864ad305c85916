// Package sipauth authenticates SIP requests from pbxd's devices: digest
// against each device's stored HA1, the same answer for an unknown device
// and a wrong password, and a per-source back-off after repeated failures.
// The registrar uses it for REGISTER (401) and the call engine for INVITE
// and other requests (407).
package sipauth

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"pbxd/pbx/digest"
	"pbxd/pbx/throttle"
	"pbxd/store"
)

// Config wires a Devices authenticator.
type Config struct {
	Store  *store.Store
	Digest *digest.Authenticator
	// Guard counts failures per source address; past its allowance the
	// source is refused without a challenge until its back-off ends. Nil
	// means 10 free failures, then 1 s doubling to 15 min.
	Guard  *throttle.Throttle
	Logger *slog.Logger
	Now    func() time.Time
}

// Devices checks device credentials on SIP requests.
type Devices struct {
	cfg Config
	log *slog.Logger
}

// New returns a Devices authenticator.
func New(cfg Config) *Devices {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Guard == nil {
		cfg.Guard = throttle.New(throttle.Config{Free: 10, Base: time.Second, Max: 15 * time.Minute}, cfg.Now)
	}
	return &Devices{cfg: cfg, log: cfg.Logger}
}

// Outcome is what to answer.
type Outcome int

// Outcomes of Check.
const (
	// OK: the device is authenticated and its user enabled.
	OK Outcome = iota
	// Challenge: answer 401/407 with Challenges(stale).
	Challenge
	// Blocked: the source failed too often; answer 403 without a challenge.
	Blocked
	// Malformed: the credentials header cannot be read; answer 400.
	Malformed
	// Disabled: right credentials, but the user is disabled; answer 403.
	Disabled
	// Failed: the store could not be read; answer 500.
	Failed
)

// Result is the outcome of one check.
type Result struct {
	Outcome Outcome
	// Stale asks for a challenge with stale=true (right password, old nonce).
	Stale  bool
	Device *store.Device
	User   *store.User
}

// Proxy selects the header pair: Proxy-Authorization/Proxy-Authenticate
// with 407 (requests routed through pbxd) or Authorization /
// WWW-Authenticate with 401 (REGISTER).
type Proxy bool

// Check authenticates req.
func (d *Devices) Check(req *sip.Request, proxy Proxy) Result {
	src := SourceHost(req)
	if wait := d.cfg.Guard.Check(src); wait > 0 {
		return Result{Outcome: Blocked}
	}
	name := "Authorization"
	if proxy {
		name = "Proxy-Authorization"
	}
	h := req.GetHeader(name)
	if h == nil || !isDigest(h.Value()) {
		// No credentials, or a scheme pbxd does not speak: challenge with
		// one it does (RFC 3261 §22.4).
		return Result{Outcome: Challenge}
	}
	creds, err := digest.Parse(h.Value())
	if err != nil {
		return Result{Outcome: Malformed}
	}
	var dev *store.Device
	var user *store.User
	err = d.cfg.Store.View(func(tx *store.Tx) (err error) {
		if dev, err = tx.DeviceByUsername(creds.Username); err != nil {
			return err
		}
		user, err = tx.GetUser(dev.UserID)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		d.log.Error("sip auth: device lookup", "err", err)
		return Result{Outcome: Failed}
	}
	if user == nil {
		dev = nil
	}
	// Unknown device and wrong password look the same from outside.
	ha1 := digest.HA1{}
	if dev != nil && dev.Realm == d.cfg.Digest.Realm() {
		ha1 = digest.HA1{MD5: dev.HA1MD5, SHA256: dev.HA1SHA256}
	}
	if err := d.cfg.Digest.Verify(creds, req.Method.String(), ha1); err != nil || dev == nil {
		if errors.Is(err, digest.ErrStale) && dev != nil {
			return Result{Outcome: Challenge, Stale: true}
		}
		if backoff := d.cfg.Guard.Fail(src); backoff > 0 {
			d.log.Warn("sip auth: blocking SIP source after repeated authentication failures",
				"source", src, "for", backoff.String(), "method", req.Method.String())
		} else {
			d.log.Info("sip auth: authentication failed", "source", src, "method", req.Method.String(), "call_id", CallID(req))
		}
		return Result{Outcome: Challenge}
	}
	d.cfg.Guard.Succeed(src)
	if !user.Enabled {
		return Result{Outcome: Disabled, Device: dev, User: user}
	}
	return Result{Outcome: OK, Device: dev, User: user}
}

// Respond builds the response for a result that is not OK.
func (d *Devices) Respond(req *sip.Request, r Result, proxy Proxy) *sip.Response {
	switch r.Outcome {
	case Challenge:
		code, reason, hdr := 401, "Unauthorized", "WWW-Authenticate"
		if proxy {
			code, reason, hdr = 407, "Proxy Authentication Required", "Proxy-Authenticate"
		}
		res := sip.NewResponseFromRequest(req, code, reason, nil)
		// Browser SIP stacks (JsSIP, SIP.js) keep only the last challenge
		// and know only MD5: over WebSocket they are offered just that.
		var only []string
		if t := req.Transport(); t == "WS" || t == "WSS" {
			only = []string{digest.MD5}
		}
		for _, c := range d.cfg.Digest.Challenges(r.Stale, only...) {
			res.AppendHeader(sip.NewHeader(hdr, c))
		}
		return res
	case Blocked, Disabled:
		return sip.NewResponseFromRequest(req, 403, "Forbidden", nil)
	case Malformed:
		return sip.NewResponseFromRequest(req, 400, "Malformed Authorization", nil)
	}
	return sip.NewResponseFromRequest(req, 500, "Server Internal Error", nil)
}

func isDigest(v string) bool {
	v = strings.TrimSpace(v)
	return len(v) >= 7 && strings.EqualFold(v[:6], "Digest") && (v[6] == ' ' || v[6] == '\t')
}

// SourceHost is the address a request came from, without the port: a
// phone that retries from new ports is still one source.
func SourceHost(req *sip.Request) string {
	src := req.Source()
	if host, _, err := net.SplitHostPort(src); err == nil {
		return host
	}
	return src
}

// CallID is the request's Call-ID value, or "".
func CallID(req *sip.Request) string {
	if h := req.CallID(); h != nil {
		return h.Value()
	}
	return ""
}
