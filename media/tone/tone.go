// Package tone makes and analyses test signals for pbxd's media tests and
// diagnostics: sine oscillators that run frame after frame without phase
// jumps, a Goertzel detector that says which frequencies are present in a
// signal (robustly, after G.711 and mixing), level and silence measures,
// and 16-bit PCM WAV files, which is what softphones such as baresip play
// as their microphone and write as their recording.
//
// Levels are in dBFS with a full-scale sine as 0 dBFS: a sine of peak
// amplitude A is at 20·log10(A/32767) dBFS.
package tone

import (
	"math"
)

// Oscillator generates the sum of one or more sines, continuing each
// frequency's phase from one Next call to the next, so that 20 ms frames
// join into one continuous signal. It is not safe for concurrent use.
type Oscillator struct {
	amplitude float64
	step      []float64 // cycles per sample, per frequency
	phase     []float64 // current phase in cycles [0, 1), per frequency
}

// NewOscillator returns an oscillator for sampleRate samples per second
// that sums a sine of peak amplitude for each of freqs (in Hz), all
// starting at phase zero. The sum saturates at the int16 limits, so keep
// len(freqs)·amplitude within 32767 to avoid clipping. Frequencies at or
// above sampleRate/2 alias, as they would in any sampled system.
// NewOscillator panics if sampleRate is not positive.
func NewOscillator(sampleRate int, amplitude int16, freqs ...float64) *Oscillator {
	if sampleRate <= 0 {
		panic("tone: sample rate must be positive")
	}
	o := &Oscillator{
		amplitude: float64(amplitude),
		step:      make([]float64, len(freqs)),
		phase:     make([]float64, len(freqs)),
	}
	for i, f := range freqs {
		o.step[i] = f / float64(sampleRate)
	}
	return o
}

// Next fills dst with the next len(dst) samples.
func (o *Oscillator) Next(dst []int16) {
	for i := range dst {
		var v float64
		for k, p := range o.phase {
			v += math.Sin(2 * math.Pi * p)
			p += o.step[k]
			o.phase[k] = p - math.Floor(p)
		}
		dst[i] = saturate(o.amplitude * v)
	}
}

// Sine returns n samples of a sine of freq Hz and peak amplitude, sampled
// at sampleRate, starting at phase zero. It panics if sampleRate is not
// positive.
func Sine(freq float64, amplitude int16, sampleRate int, n int) []int16 {
	s := make([]int16, n)
	NewOscillator(sampleRate, amplitude, freq).Next(s)
	return s
}

// AmplitudeDBFS returns the peak amplitude of a sine at level db dBFS:
// 32767 at 0 dBFS, 3277 at -20 dBFS.
func AmplitudeDBFS(db float64) int16 {
	return saturate(math.MaxInt16 * math.Pow(10, db/20))
}

// saturate rounds v to the nearest int16, clipping at the limits.
func saturate(v float64) int16 {
	v = math.Round(v)
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	case v != v: // NaN
		return 0
	}
	return int16(v)
}
