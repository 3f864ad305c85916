package g711

import (
	"bytes"
	"encoding/binary"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The golden files hold a sweep of 16-bit PCM with its µ-law and A-law
// encodings, and the decoded value of every code of both laws, so any
// change to the codec shows up sample by sample. Regenerate them only for
// a deliberate change, and review the diff:
//
//	go test ./media/g711 -run TestGolden -update
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	goldenPCM        = "sweep.s16le"    // little-endian int16 sweep
	goldenUlaw       = "sweep.ulaw"     // its µ-law codes, one byte a sample
	goldenAlaw       = "sweep.alaw"     // its A-law codes
	goldenUlawDecode = "ulaw-all.s16le" // decoded values of codes 0x00..0xFF
	goldenAlawDecode = "alaw-all.s16le"
)

// sweep returns every seventh value from -32768 up, plus 32767.
func sweep() []int16 {
	var s []int16
	for v := math.MinInt16; v <= math.MaxInt16; v += 7 {
		s = append(s, int16(v))
	}
	if s[len(s)-1] != math.MaxInt16 {
		s = append(s, math.MaxInt16)
	}
	return s
}

func allCodes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func pcmBytes(s []int16) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, v := range s {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

func TestGolden(t *testing.T) {
	pcm := sweep()
	files := map[string][]byte{
		goldenPCM:        pcmBytes(pcm),
		goldenUlaw:       EncodeUlawTo(nil, pcm),
		goldenAlaw:       EncodeAlawTo(nil, pcm),
		goldenUlawDecode: pcmBytes(DecodeUlawTo(nil, allCodes())),
		goldenAlawDecode: pcmBytes(DecodeAlawTo(nil, allCodes())),
	}
	if *update {
		for name, data := range files {
			if err := os.WriteFile(filepath.Join("testdata", name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Log("golden files rewritten")
	}
	golden := map[string][]byte{}
	for name := range files {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatalf("%v (generate with -update)", err)
		}
		golden[name] = data
	}

	// The stored sweep is the input: check each sample's codes.
	in := golden[goldenPCM]
	if !bytes.Equal(in, files[goldenPCM]) {
		t.Fatalf("%s does not hold the expected sweep", goldenPCM)
	}
	n := len(in) / 2
	if len(golden[goldenUlaw]) != n || len(golden[goldenAlaw]) != n {
		t.Fatalf("golden lengths: pcm %d, ulaw %d, alaw %d", n, len(golden[goldenUlaw]), len(golden[goldenAlaw]))
	}
	for i := range n {
		s := int16(binary.LittleEndian.Uint16(in[2*i:]))
		if got, want := EncodeUlaw(s), golden[goldenUlaw][i]; got != want {
			t.Errorf("sample %d (%d): µ-law %#02x, golden %#02x", i, s, got, want)
		}
		if got, want := EncodeAlaw(s), golden[goldenAlaw][i]; got != want {
			t.Errorf("sample %d (%d): A-law %#02x, golden %#02x", i, s, got, want)
		}
	}
	for _, law := range []struct {
		file string
		dec  func(byte) int16
	}{{goldenUlawDecode, DecodeUlaw}, {goldenAlawDecode, DecodeAlaw}} {
		data := golden[law.file]
		if len(data) != 512 {
			t.Fatalf("%s: %d bytes, want 512", law.file, len(data))
		}
		for c := range 256 {
			want := int16(binary.LittleEndian.Uint16(data[2*c:]))
			if got := law.dec(byte(c)); got != want {
				t.Errorf("%s: code %#02x decodes to %d, golden %d", law.file, c, got, want)
			}
		}
	}
}
