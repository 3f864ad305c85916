package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestHashVerify(t *testing.T) {
	h := NewHasher(2)
	ctx := context.Background()
	enc, err := h.Hash(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("unexpected encoding %q", enc)
	}
	if err := h.Verify(ctx, enc, "correct horse"); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := h.Verify(ctx, enc, "correct horsE"); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong password: got %v", err)
	}
	enc2, _ := h.Hash(ctx, "correct horse")
	if enc == enc2 {
		t.Fatal("two hashes of one password share a salt")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=0,t=2,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", enc[:len(enc)-10] + "!!!"} {
		if err := h.Verify(ctx, bad, "x"); !errors.Is(err, ErrBadHash) {
			t.Errorf("Verify(%q) = %v, want ErrBadHash", bad, err)
		}
	}
}

func TestHasherRespectsContext(t *testing.T) {
	h := NewHasher(1)
	h.sem <- struct{}{} // occupy the only slot
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, "password1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

func TestTokens(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		tok, err := NewToken(PrefixServiceUser)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != len(PrefixServiceUser)+tokenBodyLen+tokenCRCLen {
			t.Fatalf("length %d", len(tok))
		}
		if !WellFormedToken(tok) {
			t.Fatalf("own token %q not well formed", tok)
		}
		if seen[tok] {
			t.Fatal("duplicate token")
		}
		seen[tok] = true
		// One changed character breaks the checksum.
		b := []byte(tok)
		i := len(PrefixServiceUser) + 5
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		if WellFormedToken(string(b)) {
			t.Fatalf("corrupted token accepted")
		}
	}
	for _, bad := range []string{"", "pbxd_su_", "ghp_abc", "pbxd_ses_" + strings.Repeat("0", 49), "pbxd_su_" + strings.Repeat("!", 49)} {
		if WellFormedToken(bad) {
			t.Errorf("WellFormedToken(%q) = true", bad)
		}
	}
}

func TestParseAuthorization(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	tests := []struct {
		in      string
		want    Credentials
		wantErr error
	}{
		{"", Credentials{}, ErrNoCredentials},
		{"Bearer abc.DEF-1_2~", Credentials{Scheme: "Bearer", Token: "abc.DEF-1_2~"}, nil},
		{"bearer   tok", Credentials{Scheme: "Bearer", Token: "tok"}, nil},
		{basic("0123456789abcdef:tok"), Credentials{Scheme: "Basic", ID: "0123456789abcdef", Token: "tok"}, nil},
		{"BASIC " + base64.StdEncoding.EncodeToString([]byte("id:t")), Credentials{Scheme: "Basic", ID: "id", Token: "t"}, nil},
		{"Bearer", Credentials{}, ErrBadCredentials},
		{"Bearer ", Credentials{}, ErrBadCredentials},
		{"Bearer a b", Credentials{}, ErrBadCredentials},
		{"Token abc", Credentials{}, ErrBadCredentials},
		{"Basic !!!", Credentials{}, ErrBadCredentials},
		{basic("nocolon"), Credentials{}, ErrBadCredentials},
		{basic(":tok"), Credentials{}, ErrBadCredentials},
		{basic("id:"), Credentials{}, ErrBadCredentials},
		{basic("id:t\x00k"), Credentials{}, ErrBadCredentials},
		{"Bearer " + strings.Repeat("a", 600), Credentials{}, ErrBadCredentials},
	}
	for _, tc := range tests {
		got, err := ParseAuthorization(tc.in)
		if !errors.Is(err, tc.wantErr) || got != tc.want {
			t.Errorf("ParseAuthorization(%q) = %+v, %v; want %+v, %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// FuzzParseAuthorization checks the header parser never panics, never
// accepts what it should not, and never returns a token it did not see.
func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{"", "Bearer x", "Basic " + base64.StdEncoding.EncodeToString([]byte("a:b")), "Basic ====", "bearer\tx", "Basic Og=="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		c, err := ParseAuthorization(h)
		if err != nil {
			if c != (Credentials{}) {
				t.Fatalf("error with credentials %+v", c)
			}
			return
		}
		if c.Scheme != "Bearer" && c.Scheme != "Basic" {
			t.Fatalf("scheme %q", c.Scheme)
		}
		if !validTokenChars(c.Token) || len(c.Token) > MaxTokenLen {
			t.Fatalf("bad token accepted: %q", c.Token)
		}
		if c.Scheme == "Bearer" && !strings.HasSuffix(h, c.Token) {
			t.Fatalf("token %q not from header %q", c.Token, h)
		}
		if c.Scheme == "Basic" && c.ID == "" {
			t.Fatal("Basic without id")
		}
		WellFormedToken(c.Token)
	})
}

func TestPasswordPolicy(t *testing.T) {
	for pw, ok := range map[string]bool{"short": false, "longenough": true, strings.Repeat("x", 257): false, "has\x00nul!": false} {
		if (CheckPasswordPolicy(pw) == nil) != ok {
			t.Errorf("CheckPasswordPolicy(%q) ok=%v", pw, !ok)
		}
	}
}
