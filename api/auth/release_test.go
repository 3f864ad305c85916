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
	encoded, err := h.Hash(context.Background(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	burst(t, h, encoded, 6)
	if n := released.Load(); n != 0 {
		t.Fatalf("released %d times right after the burst, before the quiet time", n)
	}
	time.Sleep(500 * time.Millisecond)
	if n := released.Load(); n != 1 {
		t.Fatalf("released %d times after a quiet time, want 1", n)
	}
	time.Sleep(500 * time.Millisecond)
	if n := released.Load(); n != 1 {
		t.Fatalf("released %d times with nothing hashed since, want still 1", n)
	}
	// Hashes that keep coming closer than the quiet time hold it off.
	for range 4 {
		burst(t, h, encoded, 1)
		time.Sleep(50 * time.Millisecond)
	}
	if n := released.Load(); n != 1 {
		t.Fatalf("released during a stream of hashes: %d", n)
	}
	time.Sleep(500 * time.Millisecond)
	if n := released.Load(); n != 2 {
		t.Fatalf("released %d times after the second burst, want 2", n)
	}
}

// TestHasherReturnsFreedMemory: with the real release, the argon2id
// buffers of a burst do not stay with the process as free heap.
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
