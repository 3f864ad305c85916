package g711

import (
	"math"
	"testing"
)

// frameSize is one 20 ms frame at 8000 Hz.
const frameSize = 160

// speechLike returns a frame that visits all segments, like speech does,
// rather than one value the branch predictor learns.
func speechLike() []int16 {
	pcm := make([]int16, frameSize)
	for i := range pcm {
		v := 12000*math.Sin(float64(i)*0.31) + 3000*math.Sin(float64(i)*2.7)
		pcm[i] = int16(v * math.Exp(-float64(i%40)/15))
	}
	return pcm
}

func BenchmarkDecodeUlawFrame(b *testing.B) {
	src := EncodeUlawTo(nil, speechLike())
	dst := make([]int16, 0, frameSize)
	b.SetBytes(frameSize)
	for b.Loop() {
		dst = DecodeUlawTo(dst[:0], src)
	}
}

func BenchmarkDecodeAlawFrame(b *testing.B) {
	src := EncodeAlawTo(nil, speechLike())
	dst := make([]int16, 0, frameSize)
	b.SetBytes(frameSize)
	for b.Loop() {
		dst = DecodeAlawTo(dst[:0], src)
	}
}

// The encode benchmarks compare the 64 KiB table (what EncodeUlawTo and
// EncodeAlawTo use) with the reference bit formulas.

func BenchmarkEncodeUlawFrame(b *testing.B) {
	src := speechLike()
	dst := make([]byte, 0, frameSize)
	b.SetBytes(frameSize)
	for b.Loop() {
		dst = EncodeUlawTo(dst[:0], src)
	}
}

func BenchmarkEncodeUlawFrameFormula(b *testing.B) {
	src := speechLike()
	dst := make([]byte, frameSize)
	b.SetBytes(frameSize)
	for b.Loop() {
		for i, s := range src {
			dst[i] = linearToUlaw(s)
		}
	}
}

func BenchmarkEncodeAlawFrame(b *testing.B) {
	src := speechLike()
	dst := make([]byte, 0, frameSize)
	b.SetBytes(frameSize)
	for b.Loop() {
		dst = EncodeAlawTo(dst[:0], src)
	}
}

func BenchmarkEncodeAlawFrameFormula(b *testing.B) {
	src := speechLike()
	dst := make([]byte, frameSize)
	b.SetBytes(frameSize)
	for b.Loop() {
		for i, s := range src {
			dst[i] = linearToAlaw(s)
		}
	}
}

// Transcoding rewrites the same frame over and over; the lookups cost the
// same whatever the codes are.

func BenchmarkTranscodeUlawToAlawFrame(b *testing.B) {
	p := EncodeUlawTo(nil, speechLike())
	b.SetBytes(frameSize)
	for b.Loop() {
		TranscodeUlawToAlaw(p)
	}
}

func BenchmarkTranscodeAlawToUlawFrame(b *testing.B) {
	p := EncodeAlawTo(nil, speechLike())
	b.SetBytes(frameSize)
	for b.Loop() {
		TranscodeAlawToUlaw(p)
	}
}
