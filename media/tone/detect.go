package tone

import "math"

// Thresholds for the ratios Detect returns, proven by the tests: a tone at
// -20 dBFS alone scores about 1, each of two equal tones about 0.5 (each of
// three about 0.33), a tone 10 Hz off the asked frequency still about 0.7,
// and a frequency 300 Hz away from every tone below 0.001 — also after a
// G.711 round trip and with white noise 10 dB below the tones. Neighbouring
// DTMF frequencies (70 Hz apart) stay below 0.0001.
const (
	// PresentRatio is the ratio at or above which a frequency counts as
	// present: it carries at least a tenth of the signal's power.
	PresentRatio = 0.1
	// AbsentRatio is the ratio below which a frequency counts as absent.
	// Ratios in between are neither: a test should fail on them rather
	// than guess.
	AbsentRatio = 0.01
	// SilenceRMS is the RMS level below which IsSilent reports silence:
	// about -53 dBFS, well under any speech or tone and above G.711's idle
	// codes (A-law's idle code decodes to ±8).
	SilenceRMS = 50
)

// detectBlockPerSecond sets Detect's analysis block to 1/20 s (50 ms):
// fine enough to separate call-progress and DTMF tones, coarse enough to
// forgive a tone a few Hz off its nominal frequency.
const detectBlockPerSecond = 20

// RMS returns the root-mean-square level of samples, 0 for none.
func RMS(samples []int16) float64 {
	if len(samples) == 0 {
		return 0
	}
	var sum float64
	for _, s := range samples {
		x := float64(s)
		sum += x * x
	}
	return math.Sqrt(sum / float64(len(samples)))
}

// IsSilent reports whether the RMS level of samples is below SilenceRMS.
// An empty slice is silent.
func IsSilent(samples []int16) bool { return RMS(samples) < SilenceRMS }

// DBFS returns the level of samples in dBFS (a full-scale sine is 0 dBFS),
// or -Inf for digital silence.
func DBFS(samples []int16) float64 {
	return 20 * math.Log10(RMS(samples)*math.Sqrt2/math.MaxInt16)
}

// Power returns the power of the freq component of samples (sampled at
// sampleRate), measured by the Goertzel algorithm over the whole slice with
// a Hann window. It is in the units of a mean square: a sine of peak
// amplitude A at freq gives about A²/2, its share of RMS(samples)².
func Power(samples []int16, freq float64, sampleRate int) float64 {
	if len(samples) == 0 || sampleRate <= 0 {
		return 0
	}
	w := hann(len(samples))
	return goertzel(samples, w, sum(w), freq, sampleRate)
}

// Detect returns, for each of freqs, the ratio of that frequency's power
// to the total power of samples: about 1 for a pure tone, 0 for a
// frequency the signal does not contain. Compare the ratios with
// PresentRatio and AbsentRatio.
//
// The signal is cut into 50 ms blocks (one block if it is shorter). In each
// block the power of every frequency is measured with a Hann window (a
// 20 Hz bin: tones 40 Hz or more apart are kept apart, and a tone a few Hz
// off its nominal frequency still counts), and the total power as the
// plain mean square. Both are summed over the blocks, so a long recording
// is judged as a whole; a trailing partial block is left out. If the
// signal IsSilent, every ratio is 0: nothing is present in silence, and
// the noise floor's spectrum would say nothing useful.
func Detect(samples []int16, sampleRate int, freqs []float64) map[float64]float64 {
	ratios := make(map[float64]float64, len(freqs))
	for _, f := range freqs {
		ratios[f] = 0
	}
	if IsSilent(samples) || sampleRate <= 0 {
		return ratios
	}
	block := min(max(sampleRate/detectBlockPerSecond, 1), len(samples))
	w := hann(block)
	wsum := sum(w)
	powers := make([]float64, len(freqs))
	var total float64
	for b := samples; len(b) >= block; b = b[block:] {
		b := b[:block]
		var e float64
		for _, s := range b {
			x := float64(s)
			e += x * x
		}
		total += e / float64(block)
		for k, f := range freqs {
			powers[k] += goertzel(b, w, wsum, f, sampleRate)
		}
	}
	if total == 0 {
		return ratios
	}
	for k, f := range freqs {
		ratios[f] = powers[k] / total
	}
	return ratios
}

// goertzel returns the power at freq of the windowed samples, normalised
// so that a sine of amplitude A gives A²/2 whatever the window.
func goertzel(samples []int16, w []float64, wsum float64, freq float64, sampleRate int) float64 {
	coeff := 2 * math.Cos(2*math.Pi*freq/float64(sampleRate))
	var s1, s2 float64
	for i, s := range samples {
		s1, s2 = w[i]*float64(s)+coeff*s1-s2, s1
	}
	mag2 := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * mag2 / (wsum * wsum)
}

// hann returns an n-point Hann window sampled at the centres of n equal
// intervals, so that no weight is zero.
func hann(n int) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 0.5 - 0.5*math.Cos(2*math.Pi*(float64(i)+0.5)/float64(n))
	}
	return w
}

func sum(w []float64) (s float64) {
	for _, v := range w {
		s += v
	}
	return s
}
