package tone

import (
	"math"
	"testing"
)

func TestSine(t *testing.T) {
	s := Sine(1000, 10000, 8000, 8)
	// 1000 Hz at 8000 Hz is an eighth of a cycle per sample.
	want := []int16{0, 7071, 10000, 7071, 0, -7071, -10000, -7071}
	for i := range want {
		if s[i] != want[i] {
			t.Fatalf("Sine = %v, want %v", s, want)
		}
	}
}

// TestOscillatorIsContinuous checks that 20 ms frames from Next join into
// exactly the signal one long call produces: no phase jump at the seams.
func TestOscillatorIsContinuous(t *testing.T) {
	const rate, frame = 8000, 160
	whole := make([]int16, 50*frame)
	NewOscillator(rate, 8000, 350, 440).Next(whole)

	o := NewOscillator(rate, 8000, 350, 440)
	buf := make([]int16, frame)
	for k := range 50 {
		o.Next(buf)
		for i, s := range buf {
			if d := int(s) - int(whole[k*frame+i]); d < -1 || d > 1 {
				t.Fatalf("frame %d sample %d: %d, continuous signal has %d", k, i, s, whole[k*frame+i])
			}
		}
	}
	// The largest sample-to-sample step of the dual tone stays what the
	// frequencies allow (2π·f·A per sample, summed), seams included.
	maxStep := 2 * math.Pi * (350 + 440) / rate * 8000
	for i := 1; i < len(whole); i++ {
		if d := math.Abs(float64(whole[i]) - float64(whole[i-1])); d > maxStep+2 {
			t.Fatalf("jump of %v at sample %d", d, i)
		}
	}
}

func TestOscillatorSaturates(t *testing.T) {
	s := make([]int16, 800)
	NewOscillator(8000, 30000, 400, 400).Next(s)
	var peak int16
	for _, v := range s {
		peak = max(peak, v)
	}
	if peak != math.MaxInt16 {
		t.Fatalf("peak %d, want clipping at %d", peak, math.MaxInt16)
	}
}

func TestAmplitudeDBFS(t *testing.T) {
	cases := []struct {
		db   float64
		want int16
	}{{0, 32767}, {-6, 16422}, {-20, 3277}, {-40, 328}, {+6, 32767}}
	for _, c := range cases {
		if got := AmplitudeDBFS(c.db); got != c.want {
			t.Errorf("AmplitudeDBFS(%v) = %d, want %d", c.db, got, c.want)
		}
	}
	s := Sine(1000, AmplitudeDBFS(-20), 8000, 8000)
	if got := DBFS(s); math.Abs(got+20) > 0.05 {
		t.Errorf("DBFS of a -20 dBFS sine = %.2f", got)
	}
	if got := DBFS(make([]int16, 10)); !math.IsInf(got, -1) {
		t.Errorf("DBFS of silence = %v", got)
	}
}

func TestNewOscillatorPanicsOnBadRate(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for sample rate 0")
		}
	}()
	NewOscillator(0, 1000, 400)
}

func BenchmarkOscillatorFrame(b *testing.B) {
	o := NewOscillator(8000, 8000, 400, 1000)
	frame := make([]int16, 160)
	for b.Loop() {
		o.Next(frame)
	}
}
