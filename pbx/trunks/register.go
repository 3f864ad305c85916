package trunks

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"pbxd/store"
)

// worker keeps one trunk registered: one goroutine from Reload (or Start)
// until the trunk changes, goes away, or the manager closes; then it
// unregisters and ends.
type worker struct {
	m      *Manager
	t      *store.Trunk
	ctx    context.Context
	cancel context.CancelFunc
	prev   <-chan struct{} // the predecessor's done, or nil
	done   chan struct{}

	// Only the worker's goroutine touches the fields below.
	callID     string
	fromTag    string
	cseq       uint32
	auth       *digestAuth // the carrier's last challenge, reused with nc+1
	boundUntil time.Time   // a binding may exist at the carrier until then
	failures   int
}

// startWorkerLocked starts the registration of e; m.mu is held.
func (m *Manager) startWorkerLocked(e *entry) {
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{m: m, t: e.t, ctx: ctx, cancel: cancel, prev: m.last[e.t.ID], done: make(chan struct{}),
		callID: randomHex(12) + "@pbxd", fromTag: randomHex(8)}
	m.workers[e.t.ID] = w
	m.last[e.t.ID] = w.done
	m.setStatusLocked(e.t, Status{State: StateRegistering, NextAttempt: m.now()})
	m.wg.Add(1)
	go w.run()
}

// stop asks the worker to unregister and end; it does not wait.
func (w *worker) stop() { w.cancel() }

func (w *worker) run() {
	defer w.m.wg.Done()
	defer close(w.done)
	if w.prev != nil {
		// Even when cancelled, wait: done must imply the predecessor's done.
		<-w.prev
	}
	for w.ctx.Err() == nil {
		wait := w.attempt()
		if w.ctx.Err() != nil {
			break
		}
		timer := time.NewTimer(wait)
		select {
		case <-w.ctx.Done():
			timer.Stop()
		case <-timer.C:
		}
	}
	w.unregister()
}

// outcome is the result of one REGISTER exchange.
type outcome struct {
	code       int
	granted    time.Duration
	retryAfter time.Duration
	err        error
}

// attempt registers once and says how long to wait before the next one.
func (w *worker) attempt() time.Duration {
	m := w.m
	start := time.Now()
	out := w.register(w.ctx, w.t.Expires())
	if w.ctx.Err() != nil {
		return 0
	}
	now := m.now()
	if out.err == nil {
		w.failures = 0
		refresh := max(out.granted*4/5, time.Second)
		m.log.Debug("trunk registered", "trunk", w.t.Name, "id", w.t.ID, "granted_s", int(out.granted/time.Second),
			"refresh_in_s", int(refresh/time.Second), "rtt_ms", float64(time.Since(start).Microseconds())/1000)
		m.report(w, Status{State: StateRegistered, ExpiresAt: now.Add(out.granted), NextAttempt: now.Add(refresh), LastStatus: out.code})
		return refresh
	}
	w.failures++
	wait := m.cfg.RetryBase
	for i := 1; i < w.failures && wait < m.cfg.RetryMax; i++ {
		wait *= 2
	}
	wait = min(wait, m.cfg.RetryMax)
	if out.retryAfter > wait {
		wait = min(out.retryAfter, time.Hour)
	}
	m.report(w, Status{State: StateFailed, NextAttempt: now.Add(wait), LastStatus: out.code, LastError: out.err.Error()})
	return wait
}

// unregister removes the binding (Expires: 0) when one may exist, bounded
// by UnregisterTimeout.
func (w *worker) unregister() {
	m := w.m
	if !m.now().Before(w.boundUntil) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), m.cfg.UnregisterTimeout)
	defer cancel()
	out := w.register(ctx, 0)
	if out.err != nil {
		m.log.Info("trunk unregistration failed; the carrier's binding lapses on its own", "trunk", w.t.Name, "id", w.t.ID,
			"status", out.code, "err", out.err)
		return
	}
	w.boundUntil = time.Time{}
	m.log.Info("trunk unregistered", "trunk", w.t.Name, "id", w.t.ID, "status", out.code)
}

// register runs one REGISTER exchange: it answers digest challenges
// (a stale nonce again, a rejected fresh one never), follows 423 once, and
// reads the lifetime the carrier granted.
func (w *worker) register(parent context.Context, expires int) outcome {
	m, t := w.m, w.t
	ctx, cancel := context.WithTimeout(parent, m.cfg.RequestTimeout)
	defer cancel()
	client := m.cfg.Client
	if t.Proto() != store.TrunkUDP {
		client = m.cfg.TCPClient
	}
	if client == nil {
		return outcome{err: fmt.Errorf("%w %s", ErrNoTransport, t.Proto())}
	}
	dest, err := w.destination(ctx)
	if err != nil {
		return outcome{err: err}
	}
	fresh, stale, brief := false, 0, false
	user, pass := t.AuthUser(), t.Password
	for round := 0; round < 6; round++ {
		req := w.request(expires, dest)
		if w.auth != nil {
			w.auth.apply(req, user, pass)
		}
		if expires > 0 {
			// Whatever happens next, the carrier may now hold a binding.
			w.boundUntil = m.now().Add(time.Duration(expires) * time.Second)
		}
		res, err := client.Do(ctx, req)
		if err != nil {
			return outcome{err: fmt.Errorf("REGISTER to %s: %w", dest, err)}
		}
		code := res.StatusCode
		switch {
		case code == 401 || code == 407:
			ch, err := pickChallenge(res, t.Realm)
			if err != nil {
				return outcome{code: code, err: err}
			}
			if fresh && !ch.stale {
				w.auth = nil
				return outcome{code: code, err: fmt.Errorf("%w (%d %s)", ErrAuthRejected, code, truncate(res.Reason, 60))}
			}
			if ch.stale {
				if stale++; stale > 2 {
					return outcome{code: code, err: fmt.Errorf("%w: stale nonce again and again", ErrAuthRejected)}
				}
			}
			w.auth, fresh = &digestAuth{ch: ch}, true
		case code == 423 && !brief && expires > 0:
			n := headerInt(res, "Min-Expires")
			if n <= expires || n > 24*3600 {
				return outcome{code: code, err: fmt.Errorf("%w: 423 with unusable Min-Expires", ErrRefused)}
			}
			expires, brief = n, true
		case res.IsSuccess():
			out := outcome{code: code}
			if expires > 0 {
				out.granted = w.granted(res, expires)
				if out.granted <= 0 {
					out.err = fmt.Errorf("%w: accepted without a lifetime for our contact", ErrRefused)
				}
			}
			return out
		default:
			return outcome{code: code, retryAfter: time.Duration(headerInt(res, "Retry-After")) * time.Second,
				err: fmt.Errorf("%w: %d %s", ErrRefused, code, truncate(res.Reason, 60))}
		}
	}
	return outcome{err: fmt.Errorf("%w: too many challenges", ErrRefused)}
}

// destination is where requests go: the first address of the trunk's
// host, looked up again for DNS names (the last answer is kept when the
// lookup fails).
func (w *worker) destination(ctx context.Context) (string, error) {
	m := w.m
	m.mu.RLock()
	e := m.trunks[w.t.ID]
	m.mu.RUnlock()
	if e == nil || !sameHost(e.t, w.t) {
		// Removed or moved meanwhile: use this worker's own view.
		e = &entry{t: w.t}
		host, port, err := SplitHost(w.t.Host)
		if err != nil {
			return "", err
		}
		e.host, e.port = host, port
		if e.port == 0 {
			e.port = defaultPort(w.t.Proto())
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			e.addrs = []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), uint16(e.port))}
		}
	}
	if e.host == "" {
		_, _, err := SplitHost(w.t.Host)
		return "", err
	}
	addrs := e.addrs
	if _, err := netip.ParseAddr(e.host); err != nil {
		fresh, err := m.resolve(ctx, e.host, e.port)
		switch {
		case err == nil:
			addrs = fresh
			m.setAddrs(w.t, fresh)
		case len(addrs) == 0:
			return "", err
		}
	}
	if len(addrs) == 0 {
		return "", fmt.Errorf("%w %s", ErrResolve, e.host)
	}
	if w.t.Proto() == store.TrunkTLS {
		// The stack verifies the carrier's certificate against the name it
		// dials: give it the name, not the address.
		return net.JoinHostPort(e.host, strconv.Itoa(e.port)), nil
	}
	return addrs[0].String(), nil
}

// request builds the next REGISTER of this worker's registration (same
// Call-ID, next CSeq).
func (w *worker) request(expires int, dest string) *sip.Request {
	m, t := w.m, w.t
	w.cseq++
	host, port, _ := SplitHost(t.Host)
	recipient := sip.Uri{Scheme: "sip", Host: uriHost(host), Port: port}
	proto := t.Proto()
	if proto != store.TrunkUDP {
		recipient.UriParams = sip.NewParams()
		recipient.UriParams.Add("transport", proto)
	}
	aor := sip.Uri{Scheme: "sip", User: t.Username, Host: t.Domain()}
	if h, p, err := SplitHost(t.Domain()); err == nil {
		aor.Host, aor.Port = uriHost(h), p
	}
	req := sip.NewRequest(sip.REGISTER, recipient)
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", w.fromTag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	callID := sip.CallIDHeader(w.callID)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: w.cseq, MethodName: sip.REGISTER})
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	contactPort := m.cfg.ContactPort
	if proto == store.TrunkTLS && m.cfg.ContactTLSPort != 0 {
		contactPort = m.cfg.ContactTLSPort
	}
	contact := sip.Uri{Scheme: "sip", User: t.ContactToken, Host: uriHost(m.cfg.ContactHost), Port: contactPort,
		UriParams: sip.NewParams()}
	contact.UriParams.Add("transport", proto)
	req.AppendHeader(&sip.ContactHeader{Address: contact})
	exp := sip.ExpiresHeader(expires)
	req.AppendHeader(&exp)
	req.SetTransport(strings.ToUpper(proto))
	req.SetDestination(dest)
	req.SetBody(nil)
	return req
}

// granted is the lifetime the carrier gave our contact: its expires
// parameter in the 200, else the Expires header, else what we asked for.
func (w *worker) granted(res *sip.Response, asked int) time.Duration {
	for _, h := range res.GetHeaders("Contact") {
		c, ok := h.(*sip.ContactHeader)
		if !ok || c.Address.User != w.t.ContactToken {
			continue
		}
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
				return time.Duration(n) * time.Second
			}
		}
	}
	if n := headerInt(res, "Expires"); n >= 0 {
		return time.Duration(n) * time.Second
	}
	return time.Duration(asked) * time.Second
}

// headerInt reads a header holding a number of seconds ("120" or
// "120;duration=…"), or -1.
func headerInt(res *sip.Response, name string) int {
	h := res.GetHeader(name)
	if h == nil {
		return -1
	}
	v, _, _ := strings.Cut(strings.TrimSpace(h.Value()), ";")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// report records a worker's status if it is still the trunk's worker.
func (m *Manager) report(w *worker, st Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.workers[w.t.ID] == w {
		m.setStatusLocked(w.t, st)
	}
}

// setStatusLocked stores st (keeping Since while the state holds) and logs
// changes of state or error; m.mu is held.
func (m *Manager) setStatusLocked(t *store.Trunk, st Status) {
	old, had := m.status[t.ID]
	st.Since = m.now()
	if had && old.State == st.State {
		st.Since = old.Since
	}
	m.status[t.ID] = st
	if had && old.State == st.State && old.LastError == st.LastError {
		return
	}
	attrs := []any{"trunk", t.Name, "id", t.ID, "state", string(st.State)}
	if st.LastStatus != 0 {
		attrs = append(attrs, "status", st.LastStatus)
	}
	if !st.ExpiresAt.IsZero() {
		attrs = append(attrs, "expires_at", st.ExpiresAt)
	}
	if st.State == StateFailed {
		attrs = append(attrs, "err", st.LastError, "retry_at", st.NextAttempt)
		m.log.Warn("trunk registration", attrs...)
		return
	}
	m.log.Info("trunk registration", attrs...)
}
