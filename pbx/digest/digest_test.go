package digest

import (
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The worked example of RFC 7616 §3.9.1 (HTTP, but the computation is the
// same): both algorithms must give the published responses.
func TestRFC7616Example(t *testing.T) {
	ha1 := ComputeHA1("Mufasa", "http-auth@example.org", "Circle of Life")
	const nonce, cnonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
	if got := expectedResponse(md5.New, ha1.MD5, nonce, "00000001", cnonce, "auth", "GET", "/dir/index.html"); got != "8ca523f5e9506fed4657c9700eebdbec" {
		t.Errorf("MD5 response %s", got)
	}
	if got := expectedResponse(sha256.New, ha1.SHA256, nonce, "00000001", cnonce, "auth", "GET", "/dir/index.html"); got != "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1" {
		t.Errorf("SHA-256 response %s", got)
	}
}

// phone answers a challenge the way a SIP phone does.
func phone(t *testing.T, challenge, alg, user, pass, method, uri string, nc int) string {
	t.Helper()
	i := strings.Index(challenge, `nonce="`) + 7
	nonce := challenge[i : i+strings.IndexByte(challenge[i:], '"')]
	realm := "pbxd-test"
	ha1 := ComputeHA1(user, realm, pass)
	h, stored := md5.New, ha1.MD5
	if alg == SHA256 {
		h, stored = sha256.New, ha1.SHA256
	}
	ncs := fmt.Sprintf("%08x", nc)
	resp := expectedResponse(h, stored, nonce, ncs, "c0ffee", "auth", method, uri)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, cnonce="c0ffee", qop=auth, nc=%s`,
		user, realm, nonce, uri, resp, alg, ncs)
}

func TestChallengeAndVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a, err := New(Config{Realm: "pbxd-test", Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	stored := ComputeHA1("alice", "pbxd-test", "s3cret-pass")
	for _, alg := range []string{MD5, SHA256} {
		ch := a.Challenges(false)
		if len(ch) != 2 || !strings.Contains(ch[0], "algorithm=MD5") || !strings.Contains(ch[1], "algorithm=SHA-256") || !strings.Contains(ch[0], `qop="auth"`) {
			t.Fatalf("challenges %q", ch)
		}
		hdr := phone(t, ch[0], alg, "alice", "s3cret-pass", "REGISTER", "sip:pbxd.local", 1)
		c, err := Parse(hdr)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Verify(c, "REGISTER", stored); err != nil {
			t.Fatalf("%s: good answer refused: %v", alg, err)
		}
		if err := a.Verify(c, "REGISTER", stored); !errors.Is(err, ErrReplay) {
			t.Fatalf("%s: replay accepted: %v", alg, err)
		}
		c2, _ := Parse(phone(t, ch[0], alg, "alice", "s3cret-pass", "REGISTER", "sip:pbxd.local", 2))
		if err := a.Verify(c2, "REGISTER", stored); err != nil {
			t.Fatalf("%s: next nonce count refused: %v", alg, err)
		}
		bad, _ := Parse(phone(t, ch[0], alg, "alice", "wrong-pass", "REGISTER", "sip:pbxd.local", 3))
		if err := a.Verify(bad, "REGISTER", stored); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s: wrong password: %v", alg, err)
		}
		other, _ := Parse(phone(t, ch[0], alg, "alice", "s3cret-pass", "INVITE", "sip:pbxd.local", 4))
		if err := a.Verify(other, "REGISTER", stored); !errors.Is(err, ErrMismatch) {
			t.Fatalf("%s: answer for another method accepted: %v", alg, err)
		}
	}
	// A nonce we never issued, and an expired one.
	c, _ := Parse(phone(t, `nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"`, MD5, "alice", "s3cret-pass", "REGISTER", "sip:x", 1))
	if err := a.Verify(c, "REGISTER", stored); !errors.Is(err, ErrBadNonce) {
		t.Fatalf("forged nonce: %v", err)
	}
	ch := a.Challenges(false)[0]
	now = now.Add(6 * time.Minute)
	c, _ = Parse(phone(t, ch, MD5, "alice", "s3cret-pass", "REGISTER", "sip:x", 1))
	if err := a.Verify(c, "REGISTER", stored); !errors.Is(err, ErrStale) {
		t.Fatalf("old nonce: %v", err)
	}
	if !strings.HasSuffix(a.Challenges(true)[0], "stale=true") {
		t.Fatal("stale challenge lacks stale=true")
	}
}

func TestAlgorithmChoice(t *testing.T) {
	a, err := New(Config{Realm: "pbxd-test", Algorithms: []string{SHA256}})
	if err != nil {
		t.Fatal(err)
	}
	ch := a.Challenges(false)
	if len(ch) != 1 || !strings.Contains(ch[0], "SHA-256") {
		t.Fatalf("challenges %q", ch)
	}
	c, _ := Parse(phone(t, ch[0], MD5, "alice", "pw-pw-pw-1", "REGISTER", "sip:x", 1))
	if err := a.Verify(c, "REGISTER", ComputeHA1("alice", "pbxd-test", "pw-pw-pw-1")); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("MD5 answer to a SHA-256-only box: %v", err)
	}
	if _, err := New(Config{Realm: "r", Algorithms: []string{"SHA-1"}}); err == nil {
		t.Fatal("unknown algorithm accepted")
	}
}

func TestParse(t *testing.T) {
	good := `Digest username="bob", realm="r", nonce="n", uri="sip:a@b;transport=tcp", response="ABCDEF", algorithm=MD5, cnonce="c", qop=auth, nc=00000001, opaque=""`
	c, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	want := Credentials{Username: "bob", Realm: "r", Nonce: "n", URI: "sip:a@b;transport=tcp", Response: "abcdef", Algorithm: "MD5", Cnonce: "c", Qop: "auth", NC: "00000001"}
	if c != want {
		t.Fatalf("got %+v", c)
	}
	for _, bad := range []string{"", "Basic abc", `Digest username="bob"`, `Digest username="bob, nonce="n"`,
		`Digest username="a", username="b", nonce="n", uri="u", response="r"`, `Digest =x`, `Digest username="a" nonce="n"`,
		"Digest username=\"a\r\nX: y\", nonce=\"n\", uri=\"u\", response=\"r\"", "Digest " + strings.Repeat("a=b,", 2000)} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestNonceTableIsBounded(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a, _ := New(Config{Realm: "pbxd-test", MaxNonces: 10, Now: func() time.Time { return now }})
	stored := ComputeHA1("alice", "pbxd-test", "pw")
	for i := 0; i < 30; i++ {
		c, _ := Parse(phone(t, a.Challenges(false)[0], SHA256, "alice", "pw", "REGISTER", "sip:x", 1))
		err := a.Verify(c, "REGISTER", stored)
		if i < 10 && err != nil || i >= 10 && !errors.Is(err, ErrStale) {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
	now = now.Add(10 * time.Minute) // all recorded nonces expire
	c, _ := Parse(phone(t, a.Challenges(false)[0], SHA256, "alice", "pw", "REGISTER", "sip:x", 1))
	if err := a.Verify(c, "REGISTER", stored); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if n := len(a.cur) + len(a.prev); n > 10 {
		t.Fatalf("table holds %d nonces", n)
	}
}

func TestReplayRefusedAcrossGenerations(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a, _ := New(Config{Realm: "pbxd-test", NonceTTL: time.Minute, Now: func() time.Time { return now }})
	stored := ComputeHA1("alice", "pbxd-test", "pw")
	ch := a.Challenges(false)[0]
	answer := func(nc int) error {
		c, _ := Parse(phone(t, ch, SHA256, "alice", "pw", "REGISTER", "sip:x", nc))
		return a.Verify(c, "REGISTER", stored)
	}
	if err := answer(1); err != nil {
		t.Fatal(err)
	}
	now = now.Add(59 * time.Second) // next answer rotates generations
	if err := answer(1); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay within TTL: %v", err)
	}
	other, _ := Parse(phone(t, a.Challenges(false)[0], SHA256, "alice", "pw", "REGISTER", "sip:x", 1))
	now = now.Add(2 * time.Second) // 61 s: rotation; first count now in prev
	if err := a.Verify(other, "REGISTER", stored); err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(other, "REGISTER", stored); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay after rotation: %v", err)
	}
	if err := answer(1); !errors.Is(err, ErrStale) {
		t.Fatalf("expired nonce: %v", err)
	}
}

func TestManyAuthenticationsWithinTTL(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	a, _ := New(Config{Realm: "pbxd-test", Now: func() time.Time { return now }})
	stored := ComputeHA1("alice", "pbxd-test", "pw")
	for i := 0; i < 5000; i++ {
		now = now.Add(time.Millisecond)
		c, _ := Parse(phone(t, a.Challenges(false)[0], MD5, "alice", "pw", "INVITE", "sip:x", 1))
		if err := a.Verify(c, "INVITE", stored); err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`Digest username="bob", realm="r", nonce="n", uri="sip:a@b", response="ab", algorithm=SHA-256, cnonce="c", qop=auth, nc=00000001`)
	f.Add(`Digest username=bob,nonce=n,uri=u,response=r`)
	f.Add(`digest   a="",b=c`)
	a, _ := New(Config{Realm: "r"})
	f.Fuzz(func(t *testing.T, h string) {
		c, err := Parse(h)
		if err != nil {
			return
		}
		if c.Username == "" || c.Nonce == "" || c.URI == "" || c.Response == "" {
			t.Fatalf("incomplete credentials accepted: %+v", c)
		}
		if err := a.Verify(c, "REGISTER", HA1{MD5: "x", SHA256: "y"}); err == nil {
			t.Fatalf("fuzzed credentials verified: %+v", c)
		}
	})
}
