package pbx

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestSanity(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  string
		code int
	}{
		{"fine", "OPTIONS sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", 0},
		{"version", "OPTIONS sip:pbx SIP/7.0\r\nVia: SIP/7.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", 505},
		{"cseq", "OPTIONS sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", 400},
		{"two To", "OPTIONS sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nTo: <sip:e@f>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", 400},
		{"scheme", "OPTIONS isbn:123 SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", 416},
		{"require", "OPTIONS sip:pbx SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nRequire: foo\r\nContent-Length: 0\r\n\r\n", 420},
	} {
		m, err := sip.NewParser().ParseSIP([]byte(tc.msg))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if code, _, _ := check(m.(*sip.Request)); code != tc.code {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.code)
		}
	}
}

// FuzzSanity feeds bytes through the SIP parser and the sanity stage, the
// path every datagram from the network takes before a handler; the seed
// corpus is the RFC 4475 torture messages.
func FuzzSanity(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "cmd", "pbxd", "testdata", "rfc4475", "*.dat"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := sip.NewParser().ParseSIP(b)
		if err != nil || m == nil {
			return
		}
		if req, ok := m.(*sip.Request); ok {
			check(req)
		}
	})
}
