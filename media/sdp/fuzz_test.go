package sdp

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. Nothing may panic; a body that
// parses must keep its invariants, survive Negotiate, and yield an answer and
// an offer that Build writes and Parse reads back.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			if s != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse = %v, %v; want nil, ErrMalformed", s, err)
			}
			return
		}
		if len(s.Media) > MaxMedia {
			t.Fatalf("%d m-lines", len(s.Media))
		}
		if Diff(s, s) != 0 {
			t.Fatalf("Diff(s, s) = %v", Diff(s, s))
		}
		_ = s.IsHold()
		if a := s.Audio; a != nil {
			if a.Index < 0 || a.Index >= len(s.Media) || s.Media[a.Index].Kind != "audio" || s.Media[a.Index].Port == 0 {
				t.Fatalf("audio index %d of %+v", a.Index, s.Media)
			}
			if !a.Addr.IsValid() || a.Addr.Port() == 0 {
				t.Fatalf("audio address %v", a.Addr)
			}
			checkOffer(t, a)
		}

		ans, err := Negotiate(s, DefaultCodecs())
		if err != nil {
			if !errors.Is(err, ErrNoAudio) && !errors.Is(err, ErrNoCommonCodec) {
				t.Fatalf("Negotiate: %v", err)
			}
			return
		}
		out := Build(ans.Local(Origin{Username: "pbxd", SessionID: 1, Version: 2}, ap("192.0.2.1:30000")))
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(answer): %v\n%s", err, out)
		}
		if len(back.Media) != len(s.Media) {
			t.Fatalf("answer has %d m-lines, offer %d\n%s", len(back.Media), len(s.Media), out)
		}
		for i, m := range back.Media {
			if m.Kind != s.Media[i].Kind || (m.Port != 0) != (i == s.Audio.Index) {
				t.Fatalf("answer m-line %d %+v for offer's %+v\n%s", i, m, s.Media[i], out)
			}
		}
		ba := back.Audio
		if ba == nil || ba.Index != s.Audio.Index || len(ba.Formats) == 0 ||
			ba.Formats[0] != ans.Format || ba.TelephoneEvent != ans.TelephoneEvent || ba.Direction != ans.Direction {
			t.Fatalf("answer audio %+v, negotiated %+v\n%s", ba, ans, out)
		}
	})
}

// checkOffer builds an offer from whatever formats a parsed stream holds,
// however odd, and checks it parses back.
func checkOffer(t *testing.T, a *Audio) {
	t.Helper()
	out := Build(Local{Origin: NewOrigin(), Addr: a.Addr, Formats: a.Formats, TelephoneEvent: a.TelephoneEvent, Direction: a.Direction, RTCP: true})
	back, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(offer): %v\n%s", err, out)
	}
	if back.Audio == nil && back.Media[0].Port != 0 {
		t.Fatalf("offer lost its audio\n%s", out)
	}
}

// TestFuzzCorpus keeps the FuzzParse seed corpus in step with the test
// bodies: every body is a seed. PBXD_WRITE_FUZZ_CORPUS=1 rewrites the seeds.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	write := os.Getenv("PBXD_WRITE_FUZZ_CORPUS") == "1"
	for _, b := range bodies() {
		path := filepath.Join(dir, b.name)
		want := "go test fuzz v1\n[]byte(" + strconv.Quote(string(b.sdp)) + ")\n"
		if write {
			if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != want {
			t.Errorf("seed %s is missing or stale; run PBXD_WRITE_FUZZ_CORPUS=1 go test -run TestFuzzCorpus ./media/sdp/", path)
		}
	}
}
