// Package trunks connects pbxd to SIP carriers: it keeps the trunks' outbound
// registrations alive (digest MD5 or SHA-256, refresh before expiry,
// back-off on failure), recognises requests that come from a carrier, maps
// their DIDs to extensions, and picks the trunk and dial string for
// outbound numbers. The trunk records live in the store; Reload re-reads
// them after every change.
package trunks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"pbxd/store"
)

// Sentinel errors. Status.LastError carries their text; none of them
// includes a credential.
var (
	// ErrBadHost: a trunk's host is not host[:port] with an IPv4 address,
	// a bracketed IPv6 address or a DNS name.
	ErrBadHost = errors.New("trunks: bad host")
	// ErrResolve: the carrier's DNS name has no usable address.
	ErrResolve = errors.New("trunks: cannot resolve the carrier's host")
	// ErrAuthRejected: the carrier challenged the credentials pbxd sent
	// for a fresh nonce again, so they are wrong.
	ErrAuthRejected = errors.New("trunks: the carrier rejected the credentials")
	// ErrChallenge: the carrier's challenge cannot be answered (scheme,
	// algorithm, qop or realm).
	ErrChallenge = errors.New("trunks: unusable authentication challenge")
	// ErrRefused: the carrier answered REGISTER with a failure status.
	ErrRefused = errors.New("trunks: registration refused")
	// ErrNoTransport: no SIP client is configured for the trunk's transport.
	ErrNoTransport = errors.New("trunks: no SIP client for this transport")
	// ErrClosed: the manager is closed.
	ErrClosed = errors.New("trunks: manager closed")
)

// Resolver looks up a carrier's DNS name; *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config wires a Manager.
type Config struct {
	Store *store.Store
	// Client sends UDP from the SIP listening port (so carriers answer and
	// call to the address pbxd registered); TCPClient is used for tcp and
	// tls trunks. Without TCPClient those trunks fail with ErrNoTransport.
	Client    *sipgo.Client
	TCPClient *sipgo.Client
	// ContactHost and ContactPort are pbxd's advertised SIP address, put
	// in the Contact of every registration; tls trunks advertise
	// ContactTLSPort instead when it is set (pbxd's SIP-over-TLS listener).
	ContactHost    string
	ContactPort    int
	ContactTLSPort int
	Logger         *slog.Logger
	// Now is the clock of statuses and expiry times; time.Now when nil.
	Now func() time.Time
	// Resolver resolves DNS hosts (net.DefaultResolver when nil), each
	// lookup bounded by ResolveTimeout (default 2 s).
	Resolver       Resolver
	ResolveTimeout time.Duration
	// RequestTimeout bounds one REGISTER transaction (default 32 s, the
	// SIP transaction timeout).
	RequestTimeout time.Duration
	// RetryBase and RetryMax shape the back-off after a failed
	// registration: RetryBase, doubling up to RetryMax (30 s and 5 min).
	RetryBase, RetryMax time.Duration
	// UnregisterTimeout bounds the Expires: 0 REGISTER sent when a trunk is
	// disabled, removed or the manager closes (default 2 s).
	UnregisterTimeout time.Duration
}

// State is where a trunk's registration stands.
type State string

// Registration states, as the API shows them.
const (
	// StateDisabled: the trunk is disabled (or unknown).
	StateDisabled State = "disabled"
	// StateUnregistered: enabled, but it does not register (Register is
	// false), or the manager has stopped.
	StateUnregistered State = "unregistered"
	// StateRegistering: the first registration is under way.
	StateRegistering State = "registering"
	// StateRegistered: the carrier accepted the registration.
	StateRegistered State = "registered"
	// StateFailed: the last attempt failed; another follows at NextAttempt.
	StateFailed State = "failed"
)

// Status is the live registration state of one trunk.
type Status struct {
	State State
	// Since is when State was entered.
	Since time.Time
	// ExpiresAt is when the carrier's binding lapses (registered only).
	ExpiresAt time.Time
	// NextAttempt is the next refresh or retry.
	NextAttempt time.Time
	// LastStatus is the SIP status of the last final response (0 when
	// none arrived); LastError describes the last failure, without secrets.
	LastStatus int
	LastError  string
}

// entry is one loaded trunk: an immutable snapshot with its addresses.
type entry struct {
	t     *store.Trunk
	host  string // without brackets or port
	port  int    // explicit or the transport's default
	addrs []netip.AddrPort
}

// Manager runs the trunks. All methods are safe for concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	reloadMu sync.Mutex // one Reload at a time

	mu      sync.RWMutex
	trunks  map[string]*entry // by id, enabled or not
	byToken map[string]*entry // enabled trunks by contact token
	order   []*entry          // enabled trunks by lower-cased name
	workers map[string]*worker
	// last holds the done channel of each trunk's latest worker: a
	// replacement waits on it so it never races its predecessor's
	// unregistration (a worker's done implies its predecessors' done).
	last   map[string]<-chan struct{}
	status map[string]Status
	closed bool

	wg sync.WaitGroup
}

// New returns a Manager; Start loads the trunks.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.ResolveTimeout <= 0 {
		cfg.ResolveTimeout = 2 * time.Second
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 32 * time.Second
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 30 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Minute
	}
	if cfg.UnregisterTimeout <= 0 {
		cfg.UnregisterTimeout = 2 * time.Second
	}
	return &Manager{cfg: cfg, log: cfg.Logger, now: cfg.Now,
		trunks: map[string]*entry{}, byToken: map[string]*entry{}, workers: map[string]*worker{},
		last: map[string]<-chan struct{}{}, status: map[string]Status{}}
}

// Start loads the trunks and begins their registrations. It is the first
// Reload.
func (m *Manager) Start() error { return m.Reload() }

// Reload re-reads the trunks from the store: new trunks start, trunks whose
// registration settings changed re-register, and disabled, removed or
// no-longer-registering trunks unregister (Expires: 0) in the background.
// DNS names are resolved here, each bounded by Config.ResolveTimeout.
func (m *Manager) Reload() error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	var list []*store.Trunk
	if err := m.cfg.Store.View(func(tx *store.Tx) (err error) { list, err = tx.ListTrunks(); return err }); err != nil {
		return fmt.Errorf("trunks: reload: %w", err)
	}
	m.mu.RLock()
	closed, prev := m.closed, m.trunks
	m.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	entries := m.load(list, prev)

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.trunks = map[string]*entry{}
	m.byToken = map[string]*entry{}
	m.order = m.order[:0:0]
	for _, e := range entries {
		m.trunks[e.t.ID] = e
		if e.t.Enabled {
			m.byToken[e.t.ContactToken] = e
			m.order = append(m.order, e) // ListTrunks sorts by name
		}
	}
	// Stop what must stop, then start what must run.
	for id, w := range m.workers {
		e := m.trunks[id]
		if e != nil && wantsWorker(e.t) && !registrationChanged(w.t, e.t) {
			continue
		}
		w.stop()
		delete(m.workers, id)
	}
	for id := range m.status {
		if m.trunks[id] == nil {
			delete(m.status, id)
		}
	}
	for id, done := range m.last {
		select {
		case <-done:
			delete(m.last, id)
		default:
		}
	}
	for id, e := range m.trunks {
		switch {
		case !e.t.Enabled:
			m.setStatusLocked(e.t, Status{State: StateDisabled})
		case !e.t.Register:
			m.setStatusLocked(e.t, Status{State: StateUnregistered})
		case m.workers[id] == nil:
			m.startWorkerLocked(e)
		}
	}
	return nil
}

// sameHost reports whether two versions of a trunk reach the same place.
func sameHost(a, b *store.Trunk) bool { return a.Host == b.Host && a.Proto() == b.Proto() }

// wantsWorker reports whether a trunk keeps a registration.
func wantsWorker(t *store.Trunk) bool { return t.Enabled && t.Register }

// registrationChanged reports whether a change needs a new registration.
func registrationChanged(a, b *store.Trunk) bool {
	return a.Host != b.Host || a.Proto() != b.Proto() || a.Username != b.Username || a.AuthUser() != b.AuthUser() ||
		a.Password != b.Password || a.Realm != b.Realm || a.Expires() != b.Expires() || a.Domain() != b.Domain() ||
		a.ContactToken != b.ContactToken
}

// load builds the entries of list, resolving hosts in parallel. A DNS
// failure keeps the addresses the same host had before.
func (m *Manager) load(list []*store.Trunk, prev map[string]*entry) []*entry {
	out := make([]*entry, len(list))
	var wg sync.WaitGroup
	for i, t := range list {
		e := &entry{t: t}
		out[i] = e
		host, port, err := SplitHost(t.Host)
		if err != nil {
			m.log.Warn("trunk host unusable", "trunk", t.Name, "id", t.ID, "err", err)
			continue
		}
		e.host, e.port = host, port
		if e.port == 0 {
			e.port = defaultPort(t.Proto())
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			e.addrs = []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), uint16(e.port))}
			continue
		}
		if !t.Enabled {
			continue // a worker still unregistering looks the name up itself
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			addrs, err := m.resolve(context.Background(), e.host, e.port)
			if err != nil {
				if old := prev[t.ID]; old != nil && old.host == e.host && old.port == e.port {
					addrs = old.addrs
				}
				m.log.Warn("trunk host not resolved", "trunk", t.Name, "id", t.ID, "host", e.host, "err", err,
					"kept_addresses", len(addrs))
			}
			e.addrs = addrs
		}()
	}
	wg.Wait()
	return out
}

// resolve looks a DNS name up, bounded by ResolveTimeout.
func (m *Manager) resolve(ctx context.Context, host string, port int) ([]netip.AddrPort, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ResolveTimeout)
	defer cancel()
	ips, err := m.cfg.Resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrResolve, host, err)
	}
	var out []netip.AddrPort
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip.Unmap(), uint16(port))
		if !slices.Contains(out, ap) {
			out = append(out, ap)
		}
	}
	// IPv4 first: most carriers and appliances still live there.
	slices.SortStableFunc(out, func(a, b netip.AddrPort) int {
		switch {
		case a.Addr().Is4() == b.Addr().Is4():
			return 0
		case a.Addr().Is4():
			return -1
		}
		return 1
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("%w %s: no addresses", ErrResolve, host)
	}
	return out, nil
}

// setAddrs records freshly resolved addresses of a loaded trunk.
func (m *Manager) setAddrs(t *store.Trunk, addrs []netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.trunks[t.ID]
	if old == nil || !sameHost(old.t, t) || slices.Equal(old.addrs, addrs) {
		return
	}
	e := &entry{t: old.t, host: old.host, port: old.port, addrs: addrs}
	m.trunks[t.ID] = e
	if e.t.Enabled {
		m.byToken[e.t.ContactToken] = e
		if i := slices.Index(m.order, old); i >= 0 {
			m.order = slices.Clone(m.order) // readers may hold the old slice
			m.order[i] = e
		}
	}
}

// Close unregisters every trunk (each bounded by UnregisterTimeout) and
// waits for every goroutine of the manager to end. It is idempotent.
func (m *Manager) Close() error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		for id, w := range m.workers {
			w.stop()
			delete(m.workers, id)
			m.setStatusLocked(w.t, Status{State: StateUnregistered})
		}
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// Status reports a trunk's registration state.
func (m *Manager) Status(id string) Status {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if st, ok := m.status[id]; ok {
		return st
	}
	if e := m.trunks[id]; e != nil && e.t.Enabled {
		return Status{State: StateUnregistered}
	}
	return Status{State: StateDisabled}
}

// Trunk returns the loaded trunk with id (enabled or not). The record is
// shared: callers must not modify it.
func (m *Manager) Trunk(id string) (*store.Trunk, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if e := m.trunks[id]; e != nil {
		return e.t, true
	}
	return nil, false
}

// Credentials are what the B2BUA answers a carrier's 401/407 with on
// requests it sends through t. Never log them.
func (m *Manager) Credentials(t *store.Trunk) (username, password string) {
	return t.AuthUser(), t.Password
}

// Match finds the enabled trunk a request comes from: its Request-URI user
// is the trunk's contact token, or its source IP:port is one of the
// trunk's addresses, or — for tcp and tls trunks, whose carriers connect
// from any port — its source IP is. Among several trunks on one address,
// the one that knows the request's DID wins, then the first by name.
// The record is shared: callers must not modify it.
func (m *Manager) Match(req *sip.Request) (*store.Trunk, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if e := m.byToken[req.Recipient.User]; e != nil && req.Recipient.User != "" {
		return e.t, true
	}
	src, err := netip.ParseAddrPort(req.Source())
	if err != nil {
		return nil, false
	}
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	var exact, byIP []*store.Trunk
	for _, e := range m.order {
		stream := e.t.Proto() != store.TrunkUDP
		for _, a := range e.addrs {
			if a == src {
				exact = append(exact, e.t)
				break
			}
			if stream && a.Addr() == src.Addr() {
				byIP = append(byIP, e.t)
				break
			}
		}
	}
	for _, cands := range [][]*store.Trunk{exact, byIP} {
		if len(cands) == 0 {
			continue
		}
		for _, t := range cands {
			if _, ok := InboundTarget(t, req); ok {
				return t, true
			}
		}
		return cands[0], true
	}
	return nil, false
}

// InboundTarget maps a request from trunk t to the extension its DID
// belongs to. The DID is the Request-URI user, or the To user when the
// Request-URI names pbxd's contact (carriers that call the registered
// Contact); "+49…" and "49…" are the same DID.
func InboundTarget(t *store.Trunk, req *sip.Request) (extension string, ok bool) {
	did := DID(t, req)
	if did == "" {
		return "", false
	}
	if ext, ok := t.DIDs[did]; ok {
		return ext, true
	}
	n := store.NormalizeDID(did)
	for k, ext := range t.DIDs {
		if store.NormalizeDID(k) == n {
			return ext, true
		}
	}
	return "", false
}

// DID is the number a request from trunk t was sent to (see InboundTarget).
func DID(t *store.Trunk, req *sip.Request) string {
	did := req.Recipient.User
	if did == "" || did == t.ContactToken {
		did = ""
		if to := req.To(); to != nil {
			did = to.Address.User
		}
	}
	return did
}

// InboundTarget is the package function InboundTarget, for callers that
// hold the Manager behind an interface.
func (m *Manager) InboundTarget(t *store.Trunk, req *sip.Request) (string, bool) {
	return InboundTarget(t, req)
}

// Route is how to send an outbound call through a trunk.
type Route struct {
	// Trunk is the chosen trunk (shared: do not modify).
	Trunk *store.Trunk
	// Number is the dial string after Strip and AddPrefix.
	Number string
	// Target is the Request-URI: sip:<Number>@<host>[:port][;transport=].
	Target sip.Uri
	// Transport is UDP, TCP or TLS.
	Transport string
	// Destination is where to send: a resolved address of the carrier
	// (ip:port), the host name and port for tls trunks (whose certificate
	// is checked against the name), or empty when nothing resolved and the
	// SIP stack has to resolve Target.
	Destination string
	// FromUser, FromHost and FromName make the From header: the trunk's
	// caller ID (its username when none is set) at its domain.
	FromUser, FromHost, FromName string
}

// Route picks the trunk for a dialled number that is not an internal
// extension: among enabled trunks, the longest matching prefix wins (a
// trunk without prefixes matches every number at length 0), then the lower
// Priority, then the name. A trunk whose Strip would leave nothing of the
// number is skipped.
func (m *Manager) Route(number string) (Route, bool) {
	if number == "" {
		return Route{}, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var best *entry
	bestLen := -1
	for _, e := range m.order {
		n := matchLen(e.t.Prefixes, number)
		if n < 0 || e.t.Strip >= len(number) || e.host == "" {
			continue
		}
		if n > bestLen || (n == bestLen && e.t.Priority < best.t.Priority) {
			best, bestLen = e, n
		}
		// equal length and priority: m.order is by name, the first stays
	}
	if best == nil {
		return Route{}, false
	}
	return best.route(best.t.AddPrefix + number[best.t.Strip:]), true
}

// matchLen is the length of the longest prefix of number in prefixes, 0
// when there are none, and -1 when none matches.
func matchLen(prefixes []string, number string) int {
	if len(prefixes) == 0 {
		return 0
	}
	best := -1
	for _, p := range prefixes {
		if strings.HasPrefix(number, p) && len(p) > best {
			best = len(p)
		}
	}
	return best
}

func (e *entry) route(dial string) Route {
	t := e.t
	r := Route{Trunk: t, Number: dial, Transport: strings.ToUpper(t.Proto()), Target: e.uri(dial),
		FromUser: t.CallerID, FromName: t.CallerName}
	if r.FromUser == "" {
		r.FromUser = t.Username
	}
	r.FromHost = t.Domain()
	if h, p, err := SplitHost(t.Domain()); err == nil {
		r.FromHost = uriHost(h)
		if p != 0 {
			r.FromHost += ":" + strconv.Itoa(p)
		}
	}
	switch {
	case t.Proto() == store.TrunkTLS:
		// Certificates name the host: let the stack dial it by name.
		r.Destination = net.JoinHostPort(e.host, strconv.Itoa(e.port))
	case len(e.addrs) > 0:
		r.Destination = e.addrs[0].String()
	}
	return r
}

// uri is sip:user@host[:port] with the transport parameter for tcp/tls.
func (e *entry) uri(user string) sip.Uri {
	u := sip.Uri{Scheme: "sip", User: user, Host: uriHost(e.host)}
	if _, p, err := SplitHost(e.t.Host); err == nil && p != 0 {
		u.Port = p
	}
	if proto := e.t.Proto(); proto != store.TrunkUDP {
		u.UriParams = sip.NewParams()
		u.UriParams.Add("transport", proto)
	}
	return u
}

// uriHost brackets IPv6 addresses for URIs.
func uriHost(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}

func defaultPort(proto string) int {
	if proto == store.TrunkTLS {
		return 5061
	}
	return 5060
}

// SplitHost checks a trunk host — host or host:port, where host is an IPv4
// address, an IPv6 address in brackets or a DNS name — and splits it. The
// IPv6 address comes back without brackets; port is 0 when absent.
func SplitHost(s string) (host string, port int, err error) {
	bad := func(why string) (string, int, error) {
		return "", 0, fmt.Errorf("%w %q: %s", ErrBadHost, truncate(s, 80), why)
	}
	if s == "" || len(s) > 260 {
		return bad("empty or too long")
	}
	rest := ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return bad("missing ]")
		}
		host, rest = s[1:end], s[end+1:]
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return bad("not an IPv6 address in brackets")
		}
		if rest != "" && !strings.HasPrefix(rest, ":") {
			return bad("junk after ]")
		}
	} else {
		var found bool
		host, rest, found = strings.Cut(s, ":")
		if found {
			rest = ":" + rest
		}
		if strings.Contains(rest[min(1, len(rest)):], ":") {
			return bad("IPv6 addresses need brackets: [2001:db8::1]:5060")
		}
		if !validName(host) {
			return bad("not an IPv4 address or DNS name")
		}
	}
	if rest != "" {
		n, err := strconv.Atoi(rest[1:])
		if err != nil || n < 1 || n > 65535 || rest[1:] != strconv.Itoa(n) {
			return bad("port must be 1–65535")
		}
		port = n
	}
	return host, port, nil
}

// validName accepts an IPv4 address or a DNS name (RFC 1123 labels).
func validName(h string) bool {
	if ip, err := netip.ParseAddr(h); err == nil {
		return ip.Is4()
	}
	if h == "" || len(h) > 253 {
		return false
	}
	labels := strings.Split(strings.TrimSuffix(h, "."), ".")
	numeric := true
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
			if c < '0' || c > '9' {
				numeric = false
			}
		}
	}
	// "10.0.0" or "999.1.1.1" look like addresses, not names.
	return !numeric
}
