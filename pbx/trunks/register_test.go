package trunks

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"pbxd/pbx/digest"
	"pbxd/pbx/registrar"
	"pbxd/pbx/sipauth"
	"pbxd/store"
)

const (
	carrierUser = "bob"
	carrierPass = "bob-carrier-pass-1"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(store.Config{Dir: t.TempDir(), GCInterval: -1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// exchange is one REGISTER the carrier saw and what it answered.
type exchange struct {
	at        time.Time
	algorithm string // of the Authorization header, "" without one
	expires   string
	code      int
	stale     bool
}

// carrier is a real SIP registrar on loopback: pbxd's own registrar,
// sipauth and digest behind a sipgo server, with a user and a device
// "bob" in its own store.
type carrier struct {
	st       *store.Store
	udpAddr  string
	tcpAddr  string
	tlsAddr  string
	mu       sync.Mutex
	seen     []exchange
	ua       *sipgo.UserAgent
	udp      net.PacketConn
	tcp      net.Listener
	tlsLn    net.Listener
	serveWG  sync.WaitGroup
	closeOne sync.Once
}

type carrierOpts struct {
	algorithms []string
	maxExpires time.Duration
	nonceTTL   time.Duration
	// tls, when set, adds a SIP-over-TLS listener; pbxd's side trusts roots.
	tls   *tls.Config
	roots *x509.CertPool
}

func newCarrier(t testing.TB, o carrierOpts) *carrier {
	t.Helper()
	c := &carrier{st: openStore(t)}
	uid := store.NewID()
	ha1 := digest.ComputeHA1(carrierUser, "pbxd", carrierPass)
	err := c.st.Update(func(tx *store.Tx) error {
		if err := tx.PutUser(&store.User{ID: uid, UserName: carrierUser, Enabled: true}); err != nil {
			return err
		}
		return tx.PutDevice(&store.Device{ID: store.NewID(), UserID: uid, Name: "trunk", Username: carrierUser, Realm: "pbxd",
			HA1MD5: ha1.MD5, HA1SHA256: ha1.SHA256})
	})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := digest.New(digest.Config{Realm: "pbxd", Algorithms: o.algorithms, NonceTTL: o.nonceTTL})
	if err != nil {
		t.Fatal(err)
	}
	reg := registrar.New(registrar.Config{Store: c.st, Logger: quiet(), MaxExpires: o.maxExpires,
		Auth: sipauth.New(sipauth.Config{Store: c.st, Digest: auth, Logger: quiet()})})
	if c.ua, err = sipgo.NewUA(sipgo.WithUserAgent("carrier")); err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(c.ua, sipgo.WithServerLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		ex := exchange{at: time.Now()}
		if h := req.GetHeader("Authorization"); h != nil {
			if cr, err := digest.Parse(h.Value()); err == nil {
				ex.algorithm = strings.ToUpper(cr.Algorithm)
				if ex.algorithm == "" {
					ex.algorithm = digest.MD5
				}
			}
		}
		if h := req.GetHeader("Expires"); h != nil {
			ex.expires = h.Value()
		}
		reg.HandleRegister(req, &recordingTx{ServerTransaction: tx, c: c, ex: ex})
	})
	if c.udp, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if c.tcp, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	c.udpAddr, c.tcpAddr = c.udp.LocalAddr().String(), c.tcp.Addr().String()
	c.serveWG.Add(2)
	go func() { defer c.serveWG.Done(); _ = srv.ServeUDP(c.udp) }()
	go func() { defer c.serveWG.Done(); _ = srv.ServeTCP(c.tcp) }()
	if o.tls != nil {
		if c.tlsLn, err = tls.Listen("tcp4", "127.0.0.1:0", o.tls); err != nil {
			t.Fatal(err)
		}
		c.tlsAddr = c.tlsLn.Addr().String()
		c.serveWG.Add(1)
		go func() { defer c.serveWG.Done(); _ = srv.ServeTLS(c.tlsLn) }()
	}
	t.Cleanup(c.close)
	return c
}

func (c *carrier) close() {
	c.closeOne.Do(func() {
		c.udp.Close()
		c.tcp.Close()
		if c.tlsLn != nil {
			c.tlsLn.Close()
		}
		c.serveWG.Wait()
		c.ua.Close()
	})
}

// recordingTx notes the status the registrar answers with.
type recordingTx struct {
	sip.ServerTransaction
	c  *carrier
	ex exchange
}

func (r *recordingTx) Respond(res *sip.Response) error {
	r.ex.code = res.StatusCode
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		r.ex.stale = r.ex.stale || strings.Contains(h.Value(), "stale=true")
	}
	r.c.mu.Lock()
	r.c.seen = append(r.c.seen, r.ex)
	r.c.mu.Unlock()
	return r.ServerTransaction.Respond(res)
}

func (c *carrier) exchanges() []exchange {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]exchange(nil), c.seen...)
}

func (c *carrier) bindings(t testing.TB) []*store.Binding {
	t.Helper()
	var bs []*store.Binding
	if err := c.st.View(func(tx *store.Tx) (err error) { bs, err = tx.Bindings(carrierUser); return err }); err != nil {
		t.Fatal(err)
	}
	return bs
}

// local is pbxd's side: a UA serving UDP on loopback, a UDP client sending
// from that socket and a TCP client, as pbx.Start builds them.
type local struct {
	ua        *sipgo.UserAgent
	udp       net.PacketConn
	client    *sipgo.Client
	tcpClient *sipgo.Client
	port      int
	wg        sync.WaitGroup
}

func newLocal(t testing.TB, roots *x509.CertPool) *local {
	t.Helper()
	l := &local{}
	var err error
	if l.ua, err = sipgo.NewUA(sipgo.WithUserAgent("pbxd-test"),
		sipgo.WithUserAgenTLSConfig(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})); err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(l.ua, sipgo.WithServerLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	if l.udp, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	l.port = l.udp.LocalAddr().(*net.UDPAddr).Port
	l.wg.Add(1)
	go func() { defer l.wg.Done(); _ = srv.ServeUDP(l.udp) }()
	if l.client, err = sipgo.NewClient(l.ua, sipgo.WithClientConnectionAddr(l.udp.LocalAddr().String()),
		sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(l.port), sipgo.WithClientLogger(quiet())); err != nil {
		t.Fatal(err)
	}
	if l.tcpClient, err = sipgo.NewClient(l.ua, sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientPort(l.port),
		sipgo.WithClientLogger(quiet())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.udp.Close()
		l.wg.Wait()
		l.ua.Close()
	})
	return l
}

// bed is a carrier, pbxd's SIP side and pbxd's store.
type bed struct {
	c   *carrier
	l   *local
	st  *store.Store
	log *bytes.Buffer
	mu  sync.Mutex
}

func newBed(t testing.TB, o carrierOpts) *bed {
	return &bed{c: newCarrier(t, o), l: newLocal(t, o.roots), st: openStore(t), log: &bytes.Buffer{}}
}

func (b *bed) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.log.Write(p)
}

func (b *bed) logs() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.log.String()
}

func (b *bed) manager(t testing.TB, tune func(*Config)) *Manager {
	t.Helper()
	cfg := Config{Store: b.st, Client: b.l.client, TCPClient: b.l.tcpClient, ContactHost: "127.0.0.1", ContactPort: b.l.port,
		ContactTLSPort: b.l.port + 1,
		Logger:         slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if tune != nil {
		tune(&cfg)
	}
	m := New(cfg)
	t.Cleanup(func() { m.Close() })
	return m
}

func (b *bed) putTrunk(t testing.TB, tr *store.Trunk) *store.Trunk {
	t.Helper()
	if tr.ID == "" {
		tr.ID = store.NewID()
	}
	if err := b.st.Update(func(tx *store.Tx) error { return tx.PutTrunk(tr) }); err != nil {
		t.Fatal(err)
	}
	return tr
}

func (b *bed) trunk(password string) *store.Trunk {
	return &store.Trunk{Name: "carrier", Enabled: true, Host: b.c.udpAddr, Username: carrierUser, Password: password,
		Register: true, RegisterExpires: 60}
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitState(t testing.TB, m *Manager, id string, want State, within time.Duration) Status {
	t.Helper()
	var st Status
	waitFor(t, within, "state "+string(want), func() bool { st = m.Status(id); return st.State == want })
	return st
}

func TestRegisterDigestAlgorithms(t *testing.T) {
	for _, tc := range []struct {
		offered []string
		want    string
	}{
		{[]string{digest.MD5}, digest.MD5},
		{[]string{digest.SHA256}, digest.SHA256},
		{[]string{digest.MD5, digest.SHA256}, digest.SHA256}, // pbxd answers the strongest offered
	} {
		t.Run(strings.Join(tc.offered, "+"), func(t *testing.T) {
			b := newBed(t, carrierOpts{algorithms: tc.offered})
			tr := b.putTrunk(t, b.trunk(carrierPass))
			m := b.manager(t, nil)
			start := time.Now()
			if err := m.Start(); err != nil {
				t.Fatal(err)
			}
			st := waitState(t, m, tr.ID, StateRegistered, 5*time.Second)
			t.Logf("registered (challenge + answer) in %v", time.Since(start))
			if st.LastStatus != 200 || st.LastError != "" || time.Until(st.ExpiresAt) < 50*time.Second {
				t.Fatalf("status %+v", st)
			}
			ex := b.c.exchanges()
			if len(ex) != 2 || ex[0].code != 401 || ex[1].code != 200 || ex[1].algorithm != tc.want || ex[1].expires != "60" {
				t.Fatalf("exchanges %+v", ex)
			}
			bs := b.c.bindings(t)
			if len(bs) != 1 || !strings.Contains(bs[0].Contact, "sip:"+tr.ContactToken+"@127.0.0.1:"+strconv.Itoa(b.l.port)) {
				t.Fatalf("carrier bindings %+v", bs)
			}
			if strings.Contains(b.logs(), carrierPass) {
				t.Fatal("password in the log")
			}
		})
	}
}

func TestRefreshBeforeExpiryReusesTheNonce(t *testing.T) {
	// The carrier grants 2 s although 60 were asked for: pbxd must take
	// the granted lifetime from the 200 and refresh at about 80 % of it.
	b := newBed(t, carrierOpts{maxExpires: 2 * time.Second})
	tr := b.putTrunk(t, b.trunk(carrierPass))
	m := b.manager(t, nil)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	first := waitState(t, m, tr.ID, StateRegistered, 5*time.Second)
	if d := first.NextAttempt.Sub(first.ExpiresAt); d > -300*time.Millisecond || d < -500*time.Millisecond {
		t.Fatalf("refresh not at 80 %% of 2 s: next %v, expires %v", first.NextAttempt, first.ExpiresAt)
	}
	waitFor(t, 3*time.Second, "the refresh", func() bool { return len(b.c.exchanges()) >= 3 })
	ex := b.c.exchanges()
	// Challenge, answer, then the refresh answered straight away with the
	// cached nonce (nc=2): one round trip.
	for i, want := range []int{401, 200, 200} {
		if ex[i].code != want {
			t.Fatalf("exchange %d: %+v", i, ex)
		}
	}
	gap := ex[2].at.Sub(ex[1].at)
	if gap < 1400*time.Millisecond || gap > 1900*time.Millisecond {
		t.Fatalf("refresh after %v, want ~1.6 s", gap)
	}
	if bs := b.c.bindings(t); len(bs) != 1 {
		t.Fatalf("binding lost across refreshes: %+v", bs)
	}
	waitFor(t, time.Second, "the refreshed expiry", func() bool { return m.Status(tr.ID).ExpiresAt.After(first.ExpiresAt) })
	if st := m.Status(tr.ID); st.State != StateRegistered || !st.Since.Equal(first.Since) {
		t.Fatalf("after refresh: %+v (first %+v)", st, first)
	}
}

func TestStaleNonceIsAnsweredAgain(t *testing.T) {
	b := newBed(t, carrierOpts{maxExpires: 2 * time.Second, nonceTTL: time.Second})
	tr := b.putTrunk(t, b.trunk(carrierPass))
	m := b.manager(t, nil)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, tr.ID, StateRegistered, 5*time.Second)
	waitFor(t, 4*time.Second, "the refresh", func() bool { return len(b.c.exchanges()) >= 4 })
	ex := b.c.exchanges()
	// The refresh's cached nonce has expired: stale=true, answered at once.
	if ex[2].code != 401 || !ex[2].stale || ex[3].code != 200 {
		t.Fatalf("exchanges %+v", ex)
	}
	if st := m.Status(tr.ID); st.State != StateRegistered {
		t.Fatalf("status %+v", st)
	}
}

func TestWrongPasswordFailsWithBackoff(t *testing.T) {
	b := newBed(t, carrierOpts{})
	tr := b.putTrunk(t, b.trunk("wrong-password-1"))

	// Default back-off: 30 s after the first failure, and nothing meanwhile.
	m := b.manager(t, nil)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, m, tr.ID, StateFailed, 5*time.Second)
	if st.LastStatus != 401 || !strings.Contains(st.LastError, "rejected the credentials") {
		t.Fatalf("status %+v", st)
	}
	if d := st.NextAttempt.Sub(st.Since); d < 29*time.Second || d > 31*time.Second {
		t.Fatalf("first retry in %v, want 30 s", d)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(b.c.exchanges()); n != 2 {
		t.Fatalf("%d REGISTERs, want challenge and one answer only", n)
	}
	if len(b.c.bindings(t)) != 0 {
		t.Fatal("bound with a wrong password")
	}
	m.Close()

	// Shorter back-off to watch it double: 100, 200, 400 ms.
	before := len(b.c.exchanges())
	m2 := b.manager(t, func(c *Config) { c.RetryBase, c.RetryMax = 100*time.Millisecond, 400*time.Millisecond })
	if err := m2.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "four attempts", func() bool { return len(b.c.exchanges()) >= before+8 })
	ex := b.c.exchanges()[before:]
	var gaps []time.Duration
	for i := 2; i+1 < 8; i += 2 {
		gaps = append(gaps, ex[i].at.Sub(ex[i-1].at))
	}
	for i, want := range []time.Duration{100, 200, 400} {
		if g := gaps[i]; g < want*time.Millisecond-20*time.Millisecond || g > want*time.Millisecond+150*time.Millisecond {
			t.Fatalf("back-off gaps %v, want ~100, 200, 400 ms", gaps)
		}
	}
	for _, e := range ex[:8] {
		if e.code != 401 {
			t.Fatalf("exchanges %+v", ex)
		}
	}
	m2.Close()
	if st := m2.Status(tr.ID); st.State != StateUnregistered {
		t.Fatalf("after close: %+v", st)
	}
	if strings.Contains(b.logs(), "wrong-password-1") || strings.Contains(st.LastError, "wrong-password-1") {
		t.Fatal("password leaked")
	}
}

func TestReloadDisableUnregisters(t *testing.T) {
	b := newBed(t, carrierOpts{})
	tr := b.putTrunk(t, b.trunk(carrierPass))
	m := b.manager(t, nil)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, tr.ID, StateRegistered, 5*time.Second)
	if len(b.c.bindings(t)) != 1 {
		t.Fatal("no binding")
	}

	tr.Enabled = false
	b.putTrunk(t, tr)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if st := m.Status(tr.ID); st.State != StateDisabled {
		t.Fatalf("status after disabling: %+v", st)
	}
	// The carrier drops the binding a moment before it records the
	// exchange: wait for both.
	waitFor(t, 3*time.Second, "the binding to disappear and the unregistration to be recorded", func() bool {
		ex := b.c.exchanges()
		return len(b.c.bindings(t)) == 0 && len(ex) > 0 && ex[len(ex)-1].expires == "0"
	})
	if ex := b.c.exchanges(); ex[len(ex)-1].expires != "0" || ex[len(ex)-1].code != 200 {
		t.Fatalf("last exchange %+v", ex[len(ex)-1])
	}

	// Enabled again, with a changed setting: registers afresh.
	tr.Enabled, tr.RegisterExpires = true, 120
	b.putTrunk(t, tr)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, tr.ID, StateRegistered, 5*time.Second)
	if bs := b.c.bindings(t); len(bs) != 1 {
		t.Fatalf("bindings %+v", bs)
	}

	// A change that does not touch registration keeps it as it is.
	n := len(b.c.exchanges())
	tr.DIDs = map[string]string{"4930100": "201"}
	b.putTrunk(t, tr)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if len(b.c.exchanges()) != n || m.Status(tr.ID).State != StateRegistered {
		t.Fatal("a DID change re-registered the trunk")
	}

	// Removed: unregisters too, and the status is gone.
	if err := b.st.Update(func(tx *store.Tx) error { return tx.DeleteTrunk(tr.ID) }); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 3*time.Second, "the binding to disappear", func() bool { return len(b.c.bindings(t)) == 0 })
	if st := m.Status(tr.ID); st.State != StateDisabled {
		t.Fatalf("removed trunk: %+v", st)
	}
}

func TestRegisterOverTCP(t *testing.T) {
	b := newBed(t, carrierOpts{})
	tr := b.trunk(carrierPass)
	tr.Host, tr.Transport = b.c.tcpAddr, store.TrunkTCP
	b.putTrunk(t, tr)
	m := b.manager(t, nil)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, tr.ID, StateRegistered, 5*time.Second)
	bs := b.c.bindings(t)
	if len(bs) != 1 || bs[0].Transport != "TCP" || !strings.Contains(bs[0].Contact, "transport=tcp") {
		t.Fatalf("bindings %+v", bs)
	}
	m.Close()
	if len(b.c.bindings(t)) != 0 {
		t.Fatal("Close left the TCP binding")
	}
}

func TestRegisterOverTLS(t *testing.T) {
	serverConf, roots := testCertificate(t)
	b := newBed(t, carrierOpts{tls: serverConf, roots: roots})
	tr := b.trunk(carrierPass)
	tr.Host, tr.Transport = b.c.tlsAddr, store.TrunkTLS
	b.putTrunk(t, tr)
	m := b.manager(t, nil)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, tr.ID, StateRegistered, 5*time.Second)
	bs := b.c.bindings(t)
	want := "sip:" + tr.ContactToken + "@127.0.0.1:" + strconv.Itoa(b.l.port+1) + ";transport=tls"
	if len(bs) != 1 || bs[0].Transport != "TLS" || bs[0].Contact != want {
		t.Fatalf("bindings %+v, want contact %s", bs, want)
	}
	m.Close()
	if len(b.c.bindings(t)) != 0 {
		t.Fatal("Close left the TLS binding")
	}

	// A carrier whose certificate pbxd does not trust: failed, with the
	// transport error and no binding.
	b2 := newBed(t, carrierOpts{tls: serverConf})
	tr2 := b2.trunk(carrierPass)
	tr2.Host, tr2.Transport = b2.c.tlsAddr, store.TrunkTLS
	b2.putTrunk(t, tr2)
	m2 := b2.manager(t, nil)
	if err := m2.Start(); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, m2, tr2.ID, StateFailed, 5*time.Second)
	if st.LastStatus != 0 || !strings.Contains(st.LastError, "certificate") {
		t.Fatalf("untrusted carrier: %+v", st)
	}
}

// testCertificate makes a self-signed certificate for 127.0.0.1.
func testCertificate(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "carrier.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"carrier.test"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}

func TestCloseUnregistersAndLeaksNothing(t *testing.T) {
	b := newBed(t, carrierOpts{})
	tr := b.putTrunk(t, b.trunk(carrierPass))
	other := b.putTrunk(t, &store.Trunk{Name: "wrong", Enabled: true, Host: b.c.udpAddr, Username: carrierUser,
		Password: "wrong-password-2", Register: true})
	idle := b.putTrunk(t, &store.Trunk{Name: "ip-auth", Enabled: true, Host: "192.0.2.7"})
	before := settledGoroutines(0)

	m := b.manager(t, nil)
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, tr.ID, StateRegistered, 5*time.Second)
	waitState(t, m, other.ID, StateFailed, 5*time.Second)
	if st := m.Status(idle.ID); st.State != StateUnregistered {
		t.Fatalf("idle trunk %+v", st)
	}
	start := time.Now()
	m.Close()
	t.Logf("Close took %v", time.Since(start))
	if time.Since(start) > 3*time.Second {
		t.Fatal("Close not bounded")
	}
	if bs := b.c.bindings(t); len(bs) != 0 {
		t.Fatalf("Close left bindings %+v", bs)
	}
	if err := m.Reload(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reload after Close: %v", err)
	}
	m.Close()
	t0 := time.Now()
	after := settledGoroutines(before)
	t.Logf("goroutines: %d before, %d after (settled in %v)", before, after, time.Since(t0))
	if after > before {
		t.Fatalf("%d goroutines before, %d after Close:\n%s", before, after, stacks())
	}
	if s := stacks(); strings.Contains(s, "trunks.(*worker)") || strings.Contains(s, "trunks.(*Manager)") {
		t.Fatalf("trunks goroutines remain:\n%s", s)
	}
}

func TestCloseWhileAnAttemptIsPending(t *testing.T) {
	// A carrier that never answers: Close must still return promptly.
	b := newBed(t, carrierOpts{})
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	tr := b.trunk(carrierPass)
	tr.Host = silent.LocalAddr().String()
	b.putTrunk(t, tr)
	m := b.manager(t, func(c *Config) { c.UnregisterTimeout = 300 * time.Millisecond })
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	_ = silent.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, _, err := silent.ReadFrom(buf); err != nil {
		t.Fatal("no REGISTER reached the silent carrier")
	}
	start := time.Now()
	m.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
}

// settledGoroutines waits (up to 3 s) for the goroutine count to fall to
// target and returns it; target 0 lets things settle for 200 ms.
func settledGoroutines(target int) int {
	if target == 0 {
		time.Sleep(200 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	n := runtime.NumGoroutine()
	for i := 0; i < 300 && n > target; i++ {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

func stacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
