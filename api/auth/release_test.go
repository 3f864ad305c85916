package auth

import (
	"context"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// burst verifies n passwords at once against h.
func burst(t *testing.T, h *Hasher, encoded string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if err := h.Verify(context.Background(), encoded, "correct horse"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// TestHasherReleasesMemoryAfterABurst: once hashing has been quiet for a
// while, freed memory goes back to the system — once per burst, never
// while hashes are still running, and not again while nothing hashed.
func TestHasherReleasesMemoryAfterABurst(t *testing.T) {
	h := NewHasher(2)
	h.quietFor = 200 * time.Millisecond
	var released atomic.Int32
	h.released = func() { released.Add(1) }
	want := func(n int32, when string) {
		t.Helper()
		if got := released.Load(); got != n {
			t.Fatalf("%s: released %d times, want %d", when, got, n)
		}
	}
	encoded, err := h.Hash(context.Background(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	burst(t, h, encoded, 6)
	want(0, "right after the burst, before the quiet time")
	time.Sleep(500 * time.Millisecond)
	want(1, "after a quiet time")
	time.Sleep(500 * time.Millisecond)
	want(1, "with nothing hashed since")
	// Hashes that keep coming closer than the quiet time hold it off.
	for range 4 {
		burst(t, h, encoded, 1)
		time.Sleep(50 * time.Millisecond)
	}
	want(1, "during a stream of hashes")
	time.Sleep(500 * time.Millisecond)
	want(2, "after the second burst")
}

// TestHasherReturnsFreedMemory: with the real release, the argon2id
// buffers of a burst do not stay with the process.
func TestHasherReturnsFreedMemory(t *testing.T) {
	h := NewHasher(4)
	h.quietFor = 100 * time.Millisecond
	encoded, err := h.Hash(context.Background(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	burst(t, h, encoded, 8) // 8 × 19 MiB allocated
	time.Sleep(400 * time.Millisecond)
	// What the runtime holds from the system: everything it mapped but
	// has not handed back.
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(sample)
	if held := sample[0].Value.Uint64() - sample[1].Value.Uint64(); held > 40<<20 {
		t.Errorf("the process still holds %d MiB after the burst", held>>20)
	} else {
		t.Logf("held after the burst: %d MiB", held>>20)
	}
}
