package trunks

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"

	"pbxd/store"
)

// fakeDNS resolves names from a table (loopback addresses only).
type fakeDNS map[string][]netip.Addr

func (f fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

// routingBed loads trunks that do not register, so no SIP is needed.
func routingBed(t *testing.T) (*Manager, map[string]*store.Trunk) {
	t.Helper()
	st := openStore(t)
	trunks := map[string]*store.Trunk{
		"alpha": {Name: "alpha", Enabled: true, Host: "127.0.0.1", Username: "acct-a", CallerID: "+4930100", CallerName: "Front desk",
			DIDs: map[string]string{"+4930100": "201"}, Prefixes: []string{"0049", "00"}, Priority: 5, Strip: 2, AddPrefix: "+"},
		"beta": {Name: "beta", Enabled: true, Host: "sip.carrier.test:5070", Transport: store.TrunkTCP, Username: "acct-b",
			FromDomain: "carrier.test", DIDs: map[string]string{"4930200": "202"}, Prefixes: []string{"0049"}, Priority: 1},
		"gamma": {Name: "gamma", Enabled: true, Host: "[::1]", Transport: store.TrunkTLS, Username: "acct-g",
			DIDs: map[string]string{"4930300": "203"}, Priority: 9},
		"delta": {Name: "delta", Enabled: false, Host: "127.0.0.1", Username: "acct-d", Prefixes: []string{"0049301"}},
		"epsilon": {Name: "epsilon", Enabled: true, Host: "127.0.0.1:5060", Username: "acct-e",
			DIDs: map[string]string{"4930500": "205"}, Prefixes: []string{"00"}, Priority: 5},
	}
	err := st.Update(func(tx *store.Tx) error {
		for _, tr := range trunks {
			tr.ID = store.NewID()
			if err := tx.PutTrunk(tr); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	m := New(Config{Store: st, Logger: quiet(),
		Resolver: fakeDNS{"sip.carrier.test": {netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("::ffff:127.0.0.3")}}})
	t.Cleanup(func() { m.Close() })
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	return m, trunks
}

func request(t *testing.T, ruri, to, source string) *sip.Request {
	t.Helper()
	msg := strings.Join([]string{"INVITE " + ruri + " SIP/2.0", "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1",
		"From: <sip:caller@192.0.2.1>;tag=1", "To: <" + to + ">", "Call-ID: c1", "CSeq: 1 INVITE", "Max-Forwards: 70",
		"Content-Length: 0", "", ""}, "\r\n")
	m, err := sip.ParseMessage([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	req.SetSource(source)
	return req
}

func TestMatch(t *testing.T) {
	m, tr := routingBed(t)
	tok := func(name string) string { return "sip:" + tr[name].ContactToken + "@127.0.0.1:5060" }
	for _, tc := range []struct {
		name, ruri, to, source, want string
	}{
		{"contact token from anywhere", tok("alpha"), "sip:+4930100@pbx", "198.51.100.9:7000", "alpha"},
		{"token of a disabled trunk", tok("delta"), "sip:x@pbx", "198.51.100.9:7000", ""},
		{"udp source ip:port, DID of epsilon", "sip:4930500@pbx", "sip:4930500@pbx", "127.0.0.1:5060", "epsilon"},
		{"udp source ip:port, DID of alpha", "sip:4930100@pbx", "sip:4930100@pbx", "127.0.0.1:5060", "alpha"},
		{"udp source ip:port, unknown DID: first by name", "sip:999@pbx", "sip:999@pbx", "127.0.0.1:5060", "alpha"},
		{"udp trunk from another port", "sip:4930100@pbx", "sip:4930100@pbx", "127.0.0.1:40000", ""},
		{"tcp trunk resolved by name, exact", "sip:4930200@pbx", "sip:4930200@pbx", "127.0.0.2:5070", "beta"},
		{"tcp trunk from any port", "sip:4930200@pbx", "sip:4930200@pbx", "127.0.0.2:41234", "beta"},
		{"tcp trunk, second address (v4-mapped)", "sip:4930200@pbx", "sip:4930200@pbx", "[::ffff:127.0.0.3]:41234", "beta"},
		{"tls trunk on ::1 default port", "sip:4930300@pbx", "sip:4930300@pbx", "[::1]:5061", "gamma"},
		{"tls trunk from any port", "sip:4930300@pbx", "sip:4930300@pbx", "[::1]:50000", "gamma"},
		{"stranger", "sip:4930100@pbx", "sip:4930100@pbx", "10.0.0.1:5060", ""},
		{"unparsable source", "sip:4930100@pbx", "sip:4930100@pbx", "nonsense", ""},
	} {
		got, ok := m.Match(request(t, tc.ruri, tc.to, tc.source))
		name := ""
		if ok {
			name = got.Name
		}
		if name != tc.want {
			t.Errorf("%s: matched %q, want %q", tc.name, name, tc.want)
		}
	}
}

func TestInboundTarget(t *testing.T) {
	m, tr := routingBed(t)
	alpha := tr["alpha"]
	for _, tc := range []struct {
		ruri, to, ext string
		ok            bool
	}{
		{"sip:4930100@pbx", "sip:4930100@pbx", "201", true},                               // stored with +, dialled without
		{"sip:+4930100@pbx", "sip:other@pbx", "201", true},                                // exact
		{"sip:" + alpha.ContactToken + "@127.0.0.1", "sip:+4930100@carrier", "201", true}, // to our contact: the To user
		{"sip:" + alpha.ContactToken + "@127.0.0.1", "sip:4930999@carrier", "", false},
		{"sip:4930200@pbx", "sip:4930200@pbx", "", false}, // beta's DID
		{"sip:pbx", "sip:4930100@pbx", "201", true},       // no user: the To user
	} {
		ext, ok := m.InboundTarget(alpha, request(t, tc.ruri, tc.to, "127.0.0.1:5060"))
		if ext != tc.ext || ok != tc.ok {
			t.Errorf("%s / %s: %q %v, want %q %v", tc.ruri, tc.to, ext, ok, tc.ext, tc.ok)
		}
	}
}

func TestRoute(t *testing.T) {
	m, _ := routingBed(t)
	for _, tc := range []struct {
		number, trunk, dial, target, transport, dest, from string
	}{
		// beta and alpha match 0049 equally long; beta's priority wins; the
		// disabled delta's longer prefix does not count.
		{"004930123", "beta", "004930123", "sip:004930123@sip.carrier.test:5070;transport=tcp", "TCP", "127.0.0.2:5070", "acct-b@carrier.test"},
		// alpha and epsilon on 00 with equal priority: the name decides;
		// alpha strips 2 and adds +.
		{"0033123", "alpha", "+33123", "sip:+33123@127.0.0.1", "UDP", "127.0.0.1:5060", "+4930100@127.0.0.1"},
		// alpha cannot strip 2 from "00": epsilon takes it.
		{"00", "epsilon", "00", "sip:00@127.0.0.1:5060", "UDP", "127.0.0.1:5060", "acct-e@127.0.0.1:5060"},
		// no prefix matches: the catch-all trunk.
		{"5551234", "gamma", "5551234", "sip:5551234@[::1];transport=tls", "TLS", "[::1]:5061", "acct-g@[::1]"},
		{"0", "gamma", "0", "sip:0@[::1];transport=tls", "TLS", "[::1]:5061", "acct-g@[::1]"},
		{"", "", "", "", "", "", ""},
	} {
		r, ok := m.Route(tc.number)
		if tc.trunk == "" {
			if ok {
				t.Errorf("%q routed to %s", tc.number, r.Trunk.Name)
			}
			continue
		}
		if !ok {
			t.Errorf("%q: no route", tc.number)
			continue
		}
		got := fmt.Sprintf("%s %s %s %s %s %s@%s", r.Trunk.Name, r.Number, r.Target.String(), r.Transport, r.Destination, r.FromUser, r.FromHost)
		want := fmt.Sprintf("%s %s %s %s %s %s", tc.trunk, tc.dial, tc.target, tc.transport, tc.dest, tc.from)
		if got != want {
			t.Errorf("%q:\n got %s\nwant %s", tc.number, got, want)
		}
	}
	if r, _ := m.Route("0033123"); r.FromName != "Front desk" {
		t.Errorf("caller name %q", r.FromName)
	}
}

func TestCredentialsAndStatusWithoutRegistration(t *testing.T) {
	m, tr := routingBed(t)
	b := tr["beta"]
	b.AuthUsername, b.Password = "", "pw-1"
	if u, p := m.Credentials(b); u != "acct-b" || p != "pw-1" {
		t.Fatal("credentials default")
	}
	b.AuthUsername = "auth-b"
	if u, _ := m.Credentials(b); u != "auth-b" {
		t.Fatal("auth username")
	}
	if st := m.Status(tr["alpha"].ID); st.State != StateUnregistered {
		t.Fatalf("enabled, not registering: %+v", st)
	}
	if st := m.Status(tr["delta"].ID); st.State != StateDisabled {
		t.Fatalf("disabled: %+v", st)
	}
	if st := m.Status(store.NewID()); st.State != StateDisabled {
		t.Fatalf("unknown: %+v", st)
	}
	if got, ok := m.Trunk(tr["delta"].ID); !ok || got.Name != "delta" {
		t.Fatal("Trunk lookup")
	}
}

func TestSplitHost(t *testing.T) {
	for _, tc := range []struct {
		in   string
		host string
		port int
		ok   bool
	}{
		{"sip.example.net", "sip.example.net", 0, true},
		{"sip.example.net.", "sip.example.net.", 0, true},
		{"sip-1.example.net:5080", "sip-1.example.net", 5080, true},
		{"192.0.2.1", "192.0.2.1", 0, true},
		{"192.0.2.1:5060", "192.0.2.1", 5060, true},
		{"[2001:db8::1]", "2001:db8::1", 0, true},
		{"[2001:db8::1]:5061", "2001:db8::1", 5061, true},
		{"carrier", "carrier", 0, true},
		{"", "", 0, false},
		{"2001:db8::1", "", 0, false},
		{"[2001:db8::1", "", 0, false},
		{"[192.0.2.1]", "", 0, false},
		{"[fe80::1%eth0]", "", 0, false},
		{"[2001:db8::1]x", "", 0, false},
		{"host:0", "", 0, false},
		{"host:65536", "", 0, false},
		{"host:05060", "", 0, false},
		{"host:", "", 0, false},
		{"-bad.example", "", 0, false},
		{"bad-.example", "", 0, false},
		{"ex ample.net", "", 0, false},
		{"a..b", "", 0, false},
		{"999.1.1.1", "", 0, false},
		{"10.0.0", "", 0, false},
		{"sip:host", "", 0, false},
		{"user@host", "", 0, false},
		{strings.Repeat("a", 64) + ".net", "", 0, false},
	} {
		host, port, err := SplitHost(tc.in)
		if (err == nil) != tc.ok || host != tc.host || port != tc.port {
			t.Errorf("SplitHost(%q) = %q %d %v", tc.in, host, port, err)
		}
		if err != nil && !errors.Is(err, ErrBadHost) {
			t.Errorf("SplitHost(%q): %v is not ErrBadHost", tc.in, err)
		}
	}
}

func TestDigestVectors(t *testing.T) {
	// RFC 2617 §3.5 (MD5, qop=auth) and RFC 7616 §3.9.1 (SHA-256).
	for _, tc := range []struct {
		chal, method, uri, user, pass, cnonce, want string
	}{
		{`Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
			"GET", "/dir/index.html", "Mufasa", "Circle Of Life", "0a4f113b", "6629fae49393a05397450978507c4ef1"},
		{`Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
			"GET", "/dir/index.html", "Mufasa", "Circle of Life", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
			"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	} {
		ch, err := parseChallenge(tc.chal)
		if err != nil {
			t.Fatal(err)
		}
		a := &digestAuth{ch: ch, nc: 1}
		v := a.value(tc.method, tc.uri, tc.user, tc.pass, tc.cnonce)
		if !strings.Contains(v, `response="`+tc.want+`"`) || !strings.Contains(v, "nc=00000001") || !strings.Contains(v, "opaque=") {
			t.Errorf("%s: %s", ch.algorithm, v)
		}
		if strings.Contains(v, tc.pass) {
			t.Error("password in the header")
		}
	}
}

func TestPickChallenge(t *testing.T) {
	res := func(code int, hdrs ...string) *sip.Response {
		r := sip.NewResponse(code, "x")
		name := "WWW-Authenticate"
		if code == 407 {
			name = "Proxy-Authenticate"
		}
		for _, h := range hdrs {
			r.AppendHeader(sip.NewHeader(name, h))
		}
		return r
	}
	md5 := `Digest realm="a", nonce="n1", algorithm=MD5, qop="auth"`
	sha := `Digest realm="a", nonce="n2", algorithm=SHA-256, qop="auth"`
	other := `Digest realm="b", nonce="n3", qop="auth"`
	for _, tc := range []struct {
		name  string
		res   *sip.Response
		realm string
		nonce string
		proxy bool
	}{
		{"strongest wins", res(401, md5, sha), "", "n2", false},
		{"proxy", res(407, md5), "", "n1", true},
		{"configured realm", res(401, sha, other), "b", "n3", false},
		{"realm not offered", res(401, md5), "b", "", false},
		{"unsupported algorithm", res(401, `Digest realm="a", nonce="n", algorithm=SHA-512-256`), "", "", false},
		{"auth-int only", res(401, `Digest realm="a", nonce="n", qop="auth-int"`), "", "", false},
		{"no qop (RFC 2069)", res(401, `Digest realm="a", nonce="n4"`), "", "n4", false},
		{"basic", res(401, `Basic realm="a"`), "", "", false},
		{"none", res(401), "", "", false},
		{"junk", res(401, `Digest realm="a, nonce=`), "", "", false},
	} {
		ch, err := pickChallenge(tc.res, tc.realm)
		if tc.nonce == "" {
			if err == nil || !errors.Is(err, ErrChallenge) {
				t.Errorf("%s: %v %+v", tc.name, err, ch)
			}
			continue
		}
		if err != nil || ch.nonce != tc.nonce || ch.proxy != tc.proxy {
			t.Errorf("%s: %v %+v", tc.name, err, ch)
		}
	}
	ch, _ := parseChallenge(`Digest realm="a", nonce="n", stale=TRUE, algorithm=md5`)
	if !ch.stale || ch.algorithm != "MD5" || ch.qopAuth {
		t.Errorf("parse: %+v", ch)
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Digest realm="a", nonce="n", algorithm=SHA-256, qop="auth,auth-int", opaque="o", stale=true`)
	f.Add(`Digest nonce=n`)
	f.Add(`Digest realm="unterminated`)
	f.Fuzz(func(t *testing.T, s string) {
		ch, err := parseChallenge(s)
		if err == nil && ch.nonce == "" {
			t.Fatal("accepted a challenge without nonce")
		}
		if err == nil {
			a := &digestAuth{ch: ch}
			_ = a.value("REGISTER", "sip:x", "u", "p", "c")
		}
	})
}

func TestConcurrentReloadAndLookups(t *testing.T) {
	m, tr := routingBed(t)
	req := request(t, "sip:4930200@pbx", "sip:4930200@pbx", "127.0.0.2:5070")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got, ok := m.Match(req); !ok || got.Name != "beta" {
					t.Error("match lost during reload")
					return
				}
				if r, ok := m.Route("004930"); !ok || r.Trunk.Name != "beta" {
					t.Error("route lost during reload")
					return
				}
				_ = m.Status(tr["alpha"].ID)
			}
		}()
	}
	for i := 0; i < 50; i++ {
		if err := m.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}

func FuzzSplitHost(f *testing.F) {
	for _, s := range []string{"sip.example.net:5060", "[2001:db8::1]:5061", "192.0.2.1", "a..b", "[::1", "h:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		host, port, err := SplitHost(s)
		if err != nil {
			return
		}
		if host == "" || port < 0 || port > 65535 {
			t.Fatalf("SplitHost(%q) = %q %d", s, host, port)
		}
		// What SplitHost accepts survives a round trip through a SIP URI.
		var u sip.Uri
		if err := sip.ParseUri("sip:x@"+uriHost(host)+portSuffix(port), &u); err != nil {
			t.Fatalf("%q does not parse back: %v", s, err)
		}
	})
}

func portSuffix(p int) string {
	if p == 0 {
		return ""
	}
	return ":" + strconv.Itoa(p)
}
