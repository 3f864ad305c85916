package media

import (
	"testing"
	"time"
)

func TestSequencerContinuesAcrossSources(t *testing.T) {
	s := NewSequencer(8000)
	t0 := time.Unix(1000, 0)
	var prevSeq uint16
	var prevTS uint32
	// Source A: 10 packets.
	for i := 0; i < 10; i++ {
		seq, ts, m := s.Next(&Frame{Source: 1, Seq: uint16(500 + i), Timestamp: uint32(9000 + 160*i)}, t0.Add(time.Duration(i)*FrameDuration))
		if i == 0 && !m {
			t.Fatal("first packet without marker")
		}
		if i > 0 {
			if m || seq != prevSeq+1 || ts != prevTS+160 {
				t.Fatalf("packet %d: seq %d ts %d marker %v after %d/%d", i, seq, ts, m, prevSeq, prevTS)
			}
		}
		prevSeq, prevTS = seq, ts
	}
	// Source B starts 100 ms later with unrelated numbers.
	at := t0.Add(9*FrameDuration + 100*time.Millisecond)
	seq, ts, m := s.Next(&Frame{Source: 2, Seq: 7, Timestamp: 123}, at)
	if !m || seq != prevSeq+1 || ts != prevTS+800 {
		t.Fatalf("switch: seq %d (want %d) ts %d (want %d) marker %v", seq, prevSeq+1, ts, prevTS+800, m)
	}
	// B keeps its own spacing, including a wrap of its sequence number.
	seq2, ts2, _ := s.Next(&Frame{Source: 2, Seq: 8, Timestamp: 283}, at.Add(FrameDuration))
	if seq2 != seq+1 || ts2 != ts+160 {
		t.Fatalf("after switch: %d %d", seq2, ts2)
	}
	// A late packet of B keeps its place and does not move the stream back.
	late, _, _ := s.Next(&Frame{Source: 2, Seq: 6, Timestamp: 0}, at.Add(FrameDuration))
	if late != seq-1 {
		t.Fatalf("late packet mapped to %d, want %d", late, seq-1)
	}
	next, _, _ := s.Next(&Frame{Source: 2, Seq: 9, Timestamp: 443}, at.Add(2*FrameDuration))
	if next != seq2+1 {
		t.Fatalf("after late packet: %d, want %d", next, seq2+1)
	}
}

func TestSequencerWraps(t *testing.T) {
	s := NewSequencer(8000)
	now := time.Now()
	first, _, _ := s.Next(&Frame{Source: 9, Seq: 65534, Timestamp: 1<<32 - 160}, now)
	a, ta, _ := s.Next(&Frame{Source: 9, Seq: 65535, Timestamp: 0}, now)
	b, tb, _ := s.Next(&Frame{Source: 9, Seq: 0, Timestamp: 160}, now)
	if a != first+1 || b != first+2 || tb-ta != 160 {
		t.Fatalf("wrap: %d %d %d ts %d %d", first, a, b, ta, tb)
	}
}

func BenchmarkSequencerNext(b *testing.B) {
	s := NewSequencer(8000)
	f := &Frame{Source: 1}
	now := time.Now()
	for i := 0; i < b.N; i++ {
		f.Seq++
		f.Timestamp += 160
		s.Next(f, now)
	}
}
