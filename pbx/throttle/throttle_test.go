package throttle

import (
	"strings"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { return now }
	th := New(Config{Free: 3, Base: time.Second, Max: 8 * time.Second, Forget: time.Hour}, clock)
	for i := 0; i < 3; i++ {
		if d := th.Fail("k"); d != 0 {
			t.Fatalf("failure %d: backoff %v within the free allowance", i+1, d)
		}
		if th.Check("k") != 0 {
			t.Fatal("blocked within the free allowance")
		}
	}
	want := []time.Duration{1, 2, 4, 8, 8}
	for i, w := range want {
		d := th.Fail("k")
		if d != w*time.Second {
			t.Fatalf("failure %d: backoff %v, want %v", i+4, d, w*time.Second)
		}
		if got := th.Check("k"); got != d {
			t.Fatalf("Check = %v, want %v", got, d)
		}
		now = now.Add(d)
		if th.Check("k") != 0 {
			t.Fatal("still blocked after the back-off")
		}
	}
	if th.Check("other") != 0 {
		t.Fatal("unrelated key blocked")
	}
	th.Succeed("k")
	if th.Check("k") != 0 || th.Fail("k") != 0 {
		t.Fatal("success did not reset")
	}
	now = now.Add(2 * time.Hour)
	if th.Check("k") != 0 || th.Len() != 0 {
		t.Fatal("old failures not forgotten")
	}
}

func TestThrottleBoundsKeys(t *testing.T) {
	now := time.Unix(0, 0)
	th := New(Config{Free: 1, Base: time.Second, Max: time.Minute, MaxKeys: 100}, func() time.Time { return now })
	for i := 0; i < 1000; i++ {
		now = now.Add(time.Millisecond)
		th.Fail(strings.Repeat("x", i%50) + string(rune('a'+i%26)) + time.Duration(i).String())
	}
	if n := th.Len(); n > 100 {
		t.Fatalf("throttle holds %d keys, bound is 100", n)
	}
}
