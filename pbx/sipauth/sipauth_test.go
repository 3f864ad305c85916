package sipauth

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"pbxd/pbx/digest"
	"pbxd/pbx/throttle"
	"pbxd/store"
)

func TestCheck(t *testing.T) {
	st, err := store.Open(store.Config{Dir: t.TempDir(), GCInterval: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	uid := store.NewID()
	ha1 := digest.ComputeHA1("desk", "pbxd", "secret-1")
	err = st.Update(func(tx *store.Tx) error {
		if err := tx.PutUser(&store.User{ID: uid, UserName: "u", Enabled: true}); err != nil {
			return err
		}
		return tx.PutDevice(&store.Device{ID: store.NewID(), UserID: uid, Name: "d", Username: "desk", Realm: "pbxd", HA1MD5: ha1.MD5, HA1SHA256: ha1.SHA256})
	})
	if err != nil {
		t.Fatal(err)
	}
	auth, _ := digest.New(digest.Config{Realm: "pbxd", Algorithms: []string{"MD5"}})
	d := New(Config{Store: st, Digest: auth, Guard: throttle.New(throttle.Config{Free: 3, Base: time.Minute, Max: time.Hour}, time.Now),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	req := func(hdr string) *sip.Request {
		r := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "201", Host: "pbx"})
		r.SetSource("192.0.2.9:5060")
		if hdr != "" {
			r.AppendHeader(sip.NewHeader("Proxy-Authorization", hdr))
		}
		return r
	}
	if r := d.Check(req(""), true); r.Outcome != Challenge {
		t.Fatalf("no credentials: %v", r.Outcome)
	}
	if res := d.Respond(req(""), Result{Outcome: Challenge}, true); res.StatusCode != 407 || res.GetHeader("Proxy-Authenticate") == nil {
		t.Fatalf("challenge response: %v", res.StartLine())
	}
	if r := d.Check(req("Basic Zm9vOmJhcg=="), true); r.Outcome != Challenge {
		t.Fatalf("another scheme: %v", r.Outcome)
	}
	if r := d.Check(req(`Digest username=`), true); r.Outcome != Malformed {
		t.Fatalf("malformed: %v", r.Outcome)
	}
	// A wrong password and an unknown device look alike; after the free
	// failures the source is blocked.
	bad := `Digest username="%s", realm="pbxd", nonce="x", uri="sip:201@pbx", response="00", qop=auth, nc=00000001, cnonce="c"`
	for i, user := range []string{"desk", "ghost", "desk", "ghost"} {
		if r := d.Check(req(fmt.Sprintf(bad, user)), true); r.Outcome != Challenge {
			t.Fatalf("failure %d (%s): %v", i, user, r.Outcome)
		}
	}
	if r := d.Check(req(fmt.Sprintf(bad, "desk")), true); r.Outcome != Blocked {
		t.Fatalf("after repeated failures: %v", r.Outcome)
	}
}
