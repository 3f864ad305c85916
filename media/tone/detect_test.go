package tone

import (
	"math"
	"math/rand/v2"
	"testing"

	"pbxd/media/g711"
)

const rate = 8000

// mix returns one second of the sum of sines at level db dBFS each.
func mix(db float64, freqs ...float64) []int16 {
	s := make([]int16, rate)
	NewOscillator(rate, AmplitudeDBFS(db), freqs...).Next(s)
	return s
}

func ulawRoundTrip(s []int16) []int16 {
	return g711.DecodeUlawTo(nil, g711.EncodeUlawTo(nil, s))
}

func alawRoundTrip(s []int16) []int16 {
	return g711.DecodeAlawTo(nil, g711.EncodeAlawTo(nil, s))
}

// addNoise adds white noise db dB below the signal's own level.
func addNoise(s []int16, db float64, seed uint64) []int16 {
	r := rand.New(rand.NewPCG(seed, 1))
	sigma := RMS(s) * math.Pow(10, db/20)
	out := make([]int16, len(s))
	for i, v := range s {
		out[i] = saturate(float64(v) + r.NormFloat64()*sigma)
	}
	return out
}

// TestDetectThresholds proves the thresholds documented on PresentRatio and
// AbsentRatio: every frequency listed as present must reach PresentRatio,
// every one listed as absent stay below AbsentRatio.
func TestDetectThresholds(t *testing.T) {
	cases := []struct {
		name    string
		signal  []int16
		present []float64
		absent  []float64
	}{
		{"400+1000 Hz through µ-law", ulawRoundTrip(mix(-12, 400, 1000)), []float64{400, 1000}, []float64{700, 1400, 200}},
		{"400+1000 Hz through A-law", alawRoundTrip(mix(-12, 400, 1000)), []float64{400, 1000}, []float64{700, 1400, 200}},
		{"single tone at -20 dBFS", mix(-20, 1000), []float64{1000}, []float64{400, 700, 1300}},
		{"single tone at -20 dBFS through µ-law", ulawRoundTrip(mix(-20, 400)), []float64{400}, []float64{700, 1000}},
		{"tone 5 Hz off nominal", ulawRoundTrip(mix(-20, 405)), []float64{400}, []float64{700}},
		{"tone 10 Hz off nominal", ulawRoundTrip(mix(-20, 390)), []float64{400}, []float64{700}},
		{"with noise 10 dB below", ulawRoundTrip(addNoise(mix(-12, 400, 1000), -10, 1)), []float64{400, 1000}, []float64{700}},
		{"DTMF 5 (770+1336 Hz)", ulawRoundTrip(mix(-10, 770, 1336)), []float64{770, 1336}, []float64{697, 852, 1209, 1477}},
		{"US ringback 440+480 Hz", ulawRoundTrip(mix(-19, 440, 480)), []float64{440, 480}, []float64{350, 620}},
		{"three tones", ulawRoundTrip(mix(-15, 350, 440, 1000)), []float64{350, 440, 1000}, []float64{700, 1400}},
		{"silence", make([]int16, rate), nil, []float64{400, 700, 1000}},
		{"µ-law idle codes", g711.DecodeUlawTo(nil, fill(rate, g711.UlawSilence)), nil, []float64{400, 700, 1000}},
		{"A-law idle codes", g711.DecodeAlawTo(nil, fill(rate, g711.AlawSilence)), nil, []float64{400, 700, 1000}},
		{"tone far below the silence level", mix(-70, 400), nil, []float64{400}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			freqs := append(append([]float64(nil), c.present...), c.absent...)
			got := Detect(c.signal, rate, freqs)
			for _, f := range c.present {
				if got[f] < PresentRatio {
					t.Errorf("%v Hz: ratio %.4f, want ≥ %v", f, got[f], PresentRatio)
				}
			}
			for _, f := range c.absent {
				if got[f] >= AbsentRatio {
					t.Errorf("%v Hz: ratio %.4f, want < %v", f, got[f], AbsentRatio)
				}
			}
			t.Logf("%v", got)
		})
	}
}

// TestDetectRatios pins the ratios themselves, not only the thresholds.
func TestDetectRatios(t *testing.T) {
	got := Detect(ulawRoundTrip(mix(-12, 400, 1000)), rate, []float64{400, 1000, 700})
	for f, want := range map[float64]float64{400: 0.5, 1000: 0.5} {
		if math.Abs(got[f]-want) > 0.02 {
			t.Errorf("%v Hz: ratio %.4f, want %.2f±0.02", f, got[f], want)
		}
	}
	if got[700] > 0.001 {
		t.Errorf("700 Hz: ratio %.5f, want < 0.001", got[700])
	}
	single := Detect(mix(-20, 1000), rate, []float64{1000})[1000]
	if math.Abs(single-1) > 0.02 {
		t.Errorf("single tone ratio %.4f, want 1±0.02", single)
	}
}

func TestDetectShortAndOddInput(t *testing.T) {
	// Shorter than one block: analysed as one block.
	if r := Detect(Sine(1000, 8000, rate, 160), rate, []float64{1000})[1000]; r < PresentRatio {
		t.Errorf("20 ms of 1000 Hz: ratio %.3f", r)
	}
	// Degenerate inputs do not panic and report nothing.
	for _, s := range [][]int16{nil, {30000}} {
		for f, r := range Detect(s, rate, []float64{400}) {
			if math.IsNaN(r) || r < 0 {
				t.Errorf("%v samples: %v Hz ratio %v", len(s), f, r)
			}
		}
	}
	if r := Detect(mix(-10, 400), 0, []float64{400})[400]; r != 0 {
		t.Errorf("sample rate 0: ratio %v", r)
	}
}

func TestPower(t *testing.T) {
	// A sine of amplitude A has power A²/2, wherever it falls between
	// bins.
	for _, f := range []float64{400, 1000, 1234.5} {
		s := Sine(f, 10000, rate, 1600)
		if p := Power(s, f, rate); math.Abs(p/5e7-1) > 0.01 {
			t.Errorf("%v Hz: power %.4g, want 5e7", f, p)
		}
		if p := Power(s, f+300, rate); p > 5e7*1e-4 {
			t.Errorf("%v Hz tone at %v Hz: power %.4g", f, f+300, p)
		}
	}
	if Power(nil, 400, rate) != 0 {
		t.Error("power of nothing")
	}
}

func TestRMSAndSilence(t *testing.T) {
	cases := []struct {
		name   string
		s      []int16
		rms    float64
		silent bool
	}{
		{"empty", nil, 0, true},
		{"zeros", make([]int16, 160), 0, true},
		{"A-law idle", g711.DecodeAlawTo(nil, fill(160, g711.AlawSilence)), 8, true},
		{"square ±100", []int16{100, -100, 100, -100}, 100, false},
		{"sine amplitude 1000", Sine(1000, 1000, rate, 8000), 1000 / math.Sqrt2, false},
		{"just below threshold", []int16{49, -49}, 49, true},
		{"at threshold", []int16{50, -50}, 50, false},
	}
	for _, c := range cases {
		if got := RMS(c.s); math.Abs(got-c.rms) > 0.5 {
			t.Errorf("%s: RMS %.2f, want %.2f", c.name, got, c.rms)
		}
		if got := IsSilent(c.s); got != c.silent {
			t.Errorf("%s: IsSilent %v, want %v", c.name, got, c.silent)
		}
	}
}

func fill(n int, b byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = b
	}
	return p
}

func BenchmarkDetectOneSecond(b *testing.B) {
	s := ulawRoundTrip(mix(-12, 400, 1000))
	freqs := []float64{400, 700, 1000}
	for b.Loop() {
		Detect(s, rate, freqs)
	}
}
