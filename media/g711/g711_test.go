package g711

import (
	"math"
	"testing"
)

// Published fixed points of G.711 (Tables 1a and 2a, scaled to 16 bits):
// the codes of zero and of full scale, and the decoded values of the
// extreme codes and of the first steps.
func TestFixedPoints(t *testing.T) {
	encodes := []struct {
		name string
		enc  func(int16) byte
		in   int16
		want byte
	}{
		{"ulaw 0", EncodeUlaw, 0, 0xFF},
		{"ulaw -1", EncodeUlaw, -1, 0x7F},
		{"ulaw max", EncodeUlaw, math.MaxInt16, 0x80},
		{"ulaw min", EncodeUlaw, math.MinInt16, 0x00},
		{"alaw 0", EncodeAlaw, 0, 0xD5},
		{"alaw -1", EncodeAlaw, -1, 0x55},
		{"alaw max", EncodeAlaw, math.MaxInt16, 0xAA},
		{"alaw min", EncodeAlaw, math.MinInt16, 0x2A},
	}
	for _, c := range encodes {
		if got := c.enc(c.in); got != c.want {
			t.Errorf("%s: encode(%d) = %#02x, want %#02x", c.name, c.in, got, c.want)
		}
	}
	decodes := []struct {
		name string
		dec  func(byte) int16
		in   byte
		want int16
	}{
		{"ulaw +0", DecodeUlaw, 0xFF, 0},
		{"ulaw -0", DecodeUlaw, 0x7F, 0},
		{"ulaw first step", DecodeUlaw, 0xFE, 8},           // 14-bit 2
		{"ulaw segment 1", DecodeUlaw, 0xEF, 132},          // 14-bit 33
		{"ulaw max", DecodeUlaw, 0x80, 32124},              // 14-bit 8031
		{"ulaw min", DecodeUlaw, 0x00, -32124},             // 14-bit -8031
		{"alaw first step", DecodeAlaw, 0xD5, 8},           // 13-bit 1
		{"alaw negative first step", DecodeAlaw, 0x55, -8}, // 13-bit -1
		{"alaw segment 1", DecodeAlaw, 0xC5, 264},          // 13-bit 33
		{"alaw max", DecodeAlaw, 0xAA, 32256},              // 13-bit 4032
		{"alaw min", DecodeAlaw, 0x2A, -32256},             // 13-bit -4032
	}
	for _, c := range decodes {
		if got := c.dec(c.in); got != c.want {
			t.Errorf("%s: decode(%#02x) = %d, want %d", c.name, c.in, got, c.want)
		}
	}
	if EncodeUlaw(0) != UlawSilence || EncodeAlaw(0) != AlawSilence {
		t.Errorf("silence constants do not match the codes of 0")
	}
}

// TestTablesMatchFormulas checks every 16-bit input against the reference
// formulas, so the table fast path cannot drift from them.
func TestTablesMatchFormulas(t *testing.T) {
	for i := math.MinInt16; i <= math.MaxInt16; i++ {
		s := int16(i)
		if got, want := EncodeUlaw(s), linearToUlaw(s); got != want {
			t.Fatalf("EncodeUlaw(%d) = %#02x, formula %#02x", s, got, want)
		}
		if got, want := EncodeAlaw(s), linearToAlaw(s); got != want {
			t.Fatalf("EncodeAlaw(%d) = %#02x, formula %#02x", s, got, want)
		}
	}
	for i := range 256 {
		b := byte(i)
		if DecodeUlaw(b) != ulawToLinear(b) || DecodeAlaw(b) != alawToLinear(b) {
			t.Fatalf("decode tables differ from the formulas at %#02x", b)
		}
	}
}

// TestRoundTripCodes decodes every code and encodes it again. Every code
// comes back except µ-law's negative zero 0x7F, which decodes to 0 and so
// re-encodes as positive zero 0xFF.
func TestRoundTripCodes(t *testing.T) {
	for i := range 256 {
		b := byte(i)
		want := b
		if b == 0x7F {
			want = UlawSilence
		}
		if got := EncodeUlaw(DecodeUlaw(b)); got != want {
			t.Errorf("µ-law %#02x -> %d -> %#02x", b, DecodeUlaw(b), got)
		}
		if got := EncodeAlaw(DecodeAlaw(b)); got != b {
			t.Errorf("A-law %#02x -> %d -> %#02x", b, DecodeAlaw(b), got)
		}
	}
}

// TestQuantisationError checks, for every 16-bit input, that the decoded
// value is within half a step of the input, the step being that of the
// segment the input falls in, and that the quantiser is monotonic: a larger
// input never decodes to a smaller value. (Nearest-value is not a property
// of G.711: at µ-law segment boundaries the standard's decision level sits
// half a step off the midpoint, e.g. 14-bit 31 maps to 33, not 30.) µ-law
// clips magnitudes above 32635: those decode to ±32124.
func TestQuantisationError(t *testing.T) {
	laws := []struct {
		name string
		enc  func(int16) byte
		dec  func(byte) int16
		// halfStep returns the bound for input s and whether s is clipped.
		halfStep func(s int32) (int32, bool)
	}{
		{"µ-law", EncodeUlaw, DecodeUlaw, func(s int32) (int32, bool) {
			m := abs(s)
			if m > ulawClip {
				return 0, true
			}
			// Segment e spans biased magnitudes [128<<e, 256<<e) in steps
			// of 8<<e.
			e := int32(0)
			for (m+ulawBias)>>(8+e) != 0 {
				e++
			}
			return 4 << e, false
		}},
		{"A-law", EncodeAlaw, DecodeAlaw, func(s int32) (int32, bool) {
			m := s >> 3
			if m < 0 {
				m = ^m
			}
			// Segments 0 and 1 have steps of 16 (16-bit terms), segment
			// k>1 steps of 16<<(k-1).
			seg := int32(0)
			for m >= 32<<seg {
				seg++
			}
			if seg == 0 {
				return 8, false
			}
			return 8 << (seg - 1), false
		}},
	}
	for _, law := range laws {
		prev := int32(math.MinInt32)
		for i := math.MinInt16; i <= math.MaxInt16; i++ {
			s := int16(i)
			got := int32(law.dec(law.enc(s)))
			if got < prev {
				t.Fatalf("%s: not monotonic: %d decodes to %d, %d to %d", law.name, s-1, prev, s, got)
			}
			prev = got
			bound, clipped := law.halfStep(int32(s))
			if clipped {
				if abs(got) != 32124 || (got < 0) != (s < 0) {
					t.Fatalf("%s: clipped %d decodes to %d", law.name, s, got)
				}
				continue
			}
			e := abs(int32(s) - got)
			if e > bound {
				t.Fatalf("%s: %d decodes to %d, error %d > %d", law.name, s, got, e, bound)
			}
		}
	}
}

func TestTranscodeTables(t *testing.T) {
	for i := range 256 {
		b := byte(i)
		if got, want := UlawToAlaw(b), EncodeAlaw(DecodeUlaw(b)); got != want {
			t.Errorf("UlawToAlaw(%#02x) = %#02x, want %#02x", b, got, want)
		}
		if got, want := AlawToUlaw(b), EncodeUlaw(DecodeAlaw(b)); got != want {
			t.Errorf("AlawToUlaw(%#02x) = %#02x, want %#02x", b, got, want)
		}
	}
	p := make([]byte, 256)
	for i := range p {
		p[i] = byte(i)
	}
	TranscodeUlawToAlaw(p)
	for i, b := range p {
		if b != UlawToAlaw(byte(i)) {
			t.Fatalf("TranscodeUlawToAlaw at %d: %#02x", i, b)
		}
	}
	for i := range p {
		p[i] = byte(i)
	}
	TranscodeAlawToUlaw(p)
	for i, b := range p {
		if b != AlawToUlaw(byte(i)) {
			t.Fatalf("TranscodeAlawToUlaw at %d: %#02x", i, b)
		}
	}
	// Silence stays silence across the bridge.
	if UlawToAlaw(UlawSilence) != AlawSilence || AlawToUlaw(AlawSilence) != EncodeUlaw(8) {
		t.Errorf("silence: µ→A %#02x, A→µ %#02x", UlawToAlaw(UlawSilence), AlawToUlaw(AlawSilence))
	}
}

func TestSliceHelpers(t *testing.T) {
	pcm := []int16{0, 1, -1, 1000, -1000, math.MaxInt16, math.MinInt16}
	u := EncodeUlawTo([]byte{0xAB}, pcm)
	a := EncodeAlawTo(nil, pcm)
	if len(u) != 1+len(pcm) || u[0] != 0xAB || len(a) != len(pcm) {
		t.Fatalf("lengths: ulaw %d alaw %d", len(u), len(a))
	}
	du := DecodeUlawTo([]int16{42}, u[1:])
	da := DecodeAlawTo(nil, a)
	if du[0] != 42 {
		t.Fatalf("DecodeUlawTo overwrote dst")
	}
	for i, s := range pcm {
		if u[1+i] != EncodeUlaw(s) || a[i] != EncodeAlaw(s) {
			t.Errorf("encode %d: ulaw %#02x alaw %#02x", s, u[1+i], a[i])
		}
		if du[1+i] != DecodeUlaw(u[1+i]) || da[i] != DecodeAlaw(a[i]) {
			t.Errorf("decode %d: ulaw %d alaw %d", s, du[1+i], da[i])
		}
	}
}

func TestSliceHelpersDoNotAllocate(t *testing.T) {
	frame := make([]byte, 160)
	pcm := make([]int16, 160)
	for i := range pcm {
		pcm[i] = int16(i * 200)
	}
	pbuf := make([]int16, 0, 160)
	bbuf := make([]byte, 0, 160)
	checks := map[string]func(){
		"DecodeUlawTo":        func() { pbuf = DecodeUlawTo(pbuf[:0], frame) },
		"DecodeAlawTo":        func() { pbuf = DecodeAlawTo(pbuf[:0], frame) },
		"EncodeUlawTo":        func() { bbuf = EncodeUlawTo(bbuf[:0], pcm) },
		"EncodeAlawTo":        func() { bbuf = EncodeAlawTo(bbuf[:0], pcm) },
		"TranscodeUlawToAlaw": func() { TranscodeUlawToAlaw(frame) },
		"TranscodeAlawToUlaw": func() { TranscodeAlawToUlaw(frame) },
	}
	for name, f := range checks {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations per frame", name, n)
		}
	}
}

func abs(x int32) int32 {
	if x < 0 {
		return -x
	}
	return x
}
