package registrar

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"pbxd/pbx/digest"
	"pbxd/pbx/sipauth"
	"pbxd/store"
)

type fixture struct {
	t    *testing.T
	reg  *Registrar
	st   *store.Store
	cseq int
}

func newFixture(t *testing.T) *fixture {
	st, err := store.Open(store.Config{Dir: t.TempDir(), GCInterval: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	auth, _ := digest.New(digest.Config{Realm: "pbxd"})
	uid := store.NewID()
	ha1 := digest.ComputeHA1("bob", "pbxd", "bob-pass-1")
	err = st.Update(func(tx *store.Tx) error {
		if err := tx.PutUser(&store.User{ID: uid, UserName: "bob", Enabled: true}); err != nil {
			return err
		}
		return tx.PutDevice(&store.Device{ID: store.NewID(), UserID: uid, Name: "d", Username: "bob", Realm: "pbxd", HA1MD5: ha1.MD5, HA1SHA256: ha1.SHA256})
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, st: st, reg: New(Config{Store: st, Auth: sipauth.New(sipauth.Config{Store: st, Digest: auth, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}), MaxContacts: 3, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})}
}

func (f *fixture) req(auth string, lines ...string) *sip.Request {
	f.t.Helper()
	f.cseq++
	hdr := []string{"REGISTER sip:pbxd SIP/2.0", fmt.Sprintf("Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK%d", f.cseq),
		"From: <sip:bob@pbxd>;tag=1", "To: <sip:bob@pbxd>", "Call-ID: c1", fmt.Sprintf("CSeq: %d REGISTER", f.cseq), "Max-Forwards: 70"}
	if auth != "" {
		hdr = append(hdr, auth)
	}
	msg, err := sip.ParseMessage([]byte(strings.Join(append(hdr, lines...), "\r\n") + "\r\nContent-Length: 0\r\n\r\n"))
	if err != nil {
		f.t.Fatal(err)
	}
	return msg.(*sip.Request)
}

var nonceRE = regexp.MustCompile(`nonce="([^"]+)", algorithm=MD5`)

// do runs a challenge round and then the authenticated request.
func (f *fixture) do(lines ...string) *sip.Response {
	f.t.Helper()
	ch := f.reg.register(f.req("", lines...))
	if ch.StatusCode != 401 {
		f.t.Fatalf("no challenge: %v", ch.StartLine())
	}
	var nonce string
	for _, h := range ch.GetHeaders("WWW-Authenticate") {
		if m := nonceRE.FindStringSubmatch(h.Value()); m != nil {
			nonce = m[1]
		}
	}
	hx := func(s string) string { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
	resp := hx(hx("bob:pbxd:bob-pass-1") + ":" + nonce + ":00000001:cn:auth:" + hx("REGISTER:sip:pbxd"))
	auth := fmt.Sprintf(`Authorization: Digest username="bob", realm="pbxd", nonce="%s", uri="sip:pbxd", response="%s", algorithm=MD5, cnonce="cn", qop=auth, nc=00000001`, nonce, resp)
	return f.reg.register(f.req(auth, lines...))
}

func (f *fixture) bindings() []*store.Binding {
	var bs []*store.Binding
	_ = f.st.View(func(tx *store.Tx) (err error) { bs, err = tx.Bindings("bob"); return err })
	return bs
}

func TestRegisterCases(t *testing.T) {
	f := newFixture(t)
	if res := f.do("Contact: <sip:bob@192.0.2.10:5060>", "Expires: 300"); res.StatusCode != 200 {
		t.Fatalf("first contact: %s", res.StartLine())
	}
	// Two more contacts in one request, one with its own expires.
	res := f.do("Contact: <sip:bob@192.0.2.11:5060>;expires=600, <sip:bob@192.0.2.12:5060>", "Expires: 90000")
	if res.StatusCode != 200 || len(res.GetHeaders("Contact")) != 3 {
		t.Fatalf("three contacts: %s %v", res.StartLine(), res.GetHeaders("Contact"))
	}
	if s := res.String(); !strings.Contains(s, "192.0.2.11:5060>;expires=600") || !strings.Contains(s, "192.0.2.12:5060>;expires=3600") {
		t.Fatalf("expires not honoured or clamped:\n%s", s)
	}
	// A fourth is one too many.
	if res := f.do("Contact: <sip:bob@192.0.2.13:5060>"); res.StatusCode != 403 {
		t.Fatalf("fourth contact: %s", res.StartLine())
	}
	// A query (no Contact) lists the bindings without changing them.
	if res := f.do(); res.StatusCode != 200 || len(res.GetHeaders("Contact")) != 3 {
		t.Fatalf("query: %s", res.StartLine())
	}
	// Remove one with expires=0.
	if res := f.do("Contact: <sip:bob@192.0.2.11:5060>;expires=0"); res.StatusCode != 200 || len(f.bindings()) != 2 {
		t.Fatalf("remove one: %s, %d left", res.StartLine(), len(f.bindings()))
	}
	// Bad cases.
	for _, tc := range []struct {
		lines []string
		code  int
	}{
		{[]string{"Contact: <sip:bob@192.0.2.14>", "Expires: 10"}, 423},
		{[]string{"Contact: <sip:bob@192.0.2.14>", "Expires: soon"}, 400},
		{[]string{"Contact: *"}, 400},
		{[]string{"Contact: *, <sip:bob@192.0.2.14>", "Expires: 0"}, 400},
	} {
		if res := f.do(tc.lines...); res.StatusCode != tc.code {
			t.Errorf("%v: %s, want %d", tc.lines, res.StartLine(), tc.code)
		}
	}
	if res := f.reg.register(f.req(`Authorization: Digest garbage`)); res.StatusCode != 400 {
		t.Errorf("malformed Authorization: %s", res.StartLine())
	}
	if res := f.do("Contact: *", "Expires: 0"); res.StatusCode != 200 || len(f.bindings()) != 0 {
		t.Fatalf("wildcard: %s", res.StartLine())
	}
}

func TestBindingsExpire(t *testing.T) {
	f := newFixture(t)
	f.reg.cfg.MinExpires = time.Second
	if res := f.do("Contact: <sip:bob@192.0.2.10>", "Expires: 1"); res.StatusCode != 200 {
		t.Fatal(res.StartLine())
	}
	if len(f.bindings()) != 1 {
		t.Fatal("not stored")
	}
	time.Sleep(2100 * time.Millisecond)
	if n := len(f.bindings()); n != 0 {
		t.Fatalf("%d bindings after expiry", n)
	}
}

func TestRepeatedFailuresBlockTheSource(t *testing.T) {
	f := newFixture(t)
	for i := 0; i < 10; i++ {
		ch := f.reg.register(f.req(""))
		var nonce string
		for _, h := range ch.GetHeaders("WWW-Authenticate") {
			if m := nonceRE.FindStringSubmatch(h.Value()); m != nil {
				nonce = m[1]
			}
		}
		bad := fmt.Sprintf(`Authorization: Digest username="bob", realm="pbxd", nonce="%s", uri="sip:pbxd", response="00", algorithm=MD5, cnonce="cn", qop=auth, nc=00000001`, nonce)
		if res := f.reg.register(f.req(bad)); res.StatusCode != 401 {
			t.Fatalf("failure %d: %s", i, res.StartLine())
		}
	}
	f.reg.register(f.req(`Authorization: Digest username="bob", realm="pbxd", nonce="x", uri="sip:pbxd", response="00", algorithm=MD5, cnonce="cn", qop=auth, nc=00000001`))
	if res := f.reg.register(f.req("")); res.StatusCode != 403 {
		t.Fatalf("blocked source got %s", res.StartLine())
	}
}
