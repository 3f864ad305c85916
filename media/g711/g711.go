// Package g711 converts between 16-bit linear PCM and ITU-T G.711 µ-law
// (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8), and transcodes
// directly between the two laws.
//
// Every function here is a table lookup on the hot path: decoding uses
// 256-entry tables, encoding a 65536-entry table indexed by the sample, and
// transcoding 256-entry tables. The tables are built once at start-up from
// the reference formulas in ulaw.go and alaw.go and never written afterwards,
// so all functions are safe for concurrent use and never allocate.
package g711

import "slices"

// Silence values: the code each law uses for a linear 0, to fill a frame
// with silence (comfort, hold, a muted leg).
const (
	// UlawSilence is the µ-law code of 0 (positive zero).
	UlawSilence byte = 0xFF
	// AlawSilence is the A-law code of 0 (the smallest positive step,
	// decoding to +8).
	AlawSilence byte = 0xD5
)

// EncodeUlaw returns the µ-law code of the 16-bit linear sample s.
func EncodeUlaw(s int16) byte { return ulawEncode[uint16(s)] }

// DecodeUlaw returns the 16-bit linear value of the µ-law code b.
func DecodeUlaw(b byte) int16 { return ulawDecode[b] }

// EncodeAlaw returns the A-law code of the 16-bit linear sample s.
func EncodeAlaw(s int16) byte { return alawEncode[uint16(s)] }

// DecodeAlaw returns the 16-bit linear value of the A-law code b.
func DecodeAlaw(b byte) int16 { return alawDecode[b] }

// DecodeUlawTo appends the linear samples of the µ-law payload src to dst
// and returns the extended slice. It allocates only when dst lacks the
// capacity; pass buf[:0] to reuse a buffer frame after frame.
func DecodeUlawTo(dst []int16, src []byte) []int16 {
	return decodeTo(dst, src, &ulawDecode)
}

// DecodeAlawTo appends the linear samples of the A-law payload src to dst
// and returns the extended slice, allocating only when dst lacks the
// capacity.
func DecodeAlawTo(dst []int16, src []byte) []int16 {
	return decodeTo(dst, src, &alawDecode)
}

// EncodeUlawTo appends the µ-law codes of the linear samples src to dst and
// returns the extended slice, allocating only when dst lacks the capacity.
func EncodeUlawTo(dst []byte, src []int16) []byte {
	return encodeTo(dst, src, &ulawEncode)
}

// EncodeAlawTo appends the A-law codes of the linear samples src to dst and
// returns the extended slice, allocating only when dst lacks the capacity.
func EncodeAlawTo(dst []byte, src []int16) []byte {
	return encodeTo(dst, src, &alawEncode)
}

func decodeTo(dst []int16, src []byte, table *[256]int16) []int16 {
	n := len(dst)
	dst = slices.Grow(dst, len(src))[:n+len(src)]
	out := dst[n:]
	out = out[:len(src)]
	for i, b := range src {
		out[i] = table[b]
	}
	return dst
}

func encodeTo(dst []byte, src []int16, table *[65536]byte) []byte {
	n := len(dst)
	dst = slices.Grow(dst, len(src))[:n+len(src)]
	out := dst[n:]
	out = out[:len(src)]
	for i, s := range src {
		out[i] = table[uint16(s)]
	}
	return dst
}

// Lookup tables, built once and read-only afterwards.
var (
	ulawDecode = buildDecode(ulawToLinear)
	alawDecode = buildDecode(alawToLinear)
	ulawEncode = buildEncode(linearToUlaw)
	alawEncode = buildEncode(linearToAlaw)
	ulawToAlaw = buildTranscode(ulawToLinear, linearToAlaw)
	alawToUlaw = buildTranscode(alawToLinear, linearToUlaw)
)

func buildDecode(dec func(byte) int16) (t [256]int16) {
	for i := range t {
		t[i] = dec(byte(i))
	}
	return t
}

func buildEncode(enc func(int16) byte) (t [65536]byte) {
	for i := range t {
		t[i] = enc(int16(uint16(i)))
	}
	return t
}

func buildTranscode(dec func(byte) int16, enc func(int16) byte) (t [256]byte) {
	for i := range t {
		t[i] = enc(dec(byte(i)))
	}
	return t
}
