// Package throttle slows down and then blocks repeated failures per key (a
// source address, a username): used for API logins and SIP digest failures.
package throttle

import (
	"sync"
	"time"
)

// Config sets how failed logins are slowed down. After Free failures
// for a key, further attempts are refused until a back-off has passed; the
// back-off starts at Base and doubles with each further failure up to Max.
type Config struct {
	Free int
	Base time.Duration
	Max  time.Duration
	// Forget drops a key's history after this long without failures.
	Forget time.Duration
	// MaxKeys bounds memory under a spray of distinct keys.
	MaxKeys int
}

// Throttle tracks failures per key (a source address or a username).
// It is safe for concurrent use.
type Throttle struct {
	cfg  Config
	now  func() time.Time
	mu   sync.Mutex
	keys map[string]*throttleEntry
}

type throttleEntry struct {
	failures int
	last     time.Time
	until    time.Time
}

// New returns a throttle; now is the clock (time.Now when nil).
func New(cfg Config, now func() time.Time) *Throttle {
	if now == nil {
		now = time.Now
	}
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 100_000
	}
	if cfg.Forget <= 0 {
		cfg.Forget = time.Hour
	}
	return &Throttle{cfg: cfg, now: now, keys: make(map[string]*throttleEntry)}
}

// Check returns how long the caller must wait before key may try again;
// zero means go ahead.
func (t *Throttle) Check(key string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.keys[key]
	if e == nil {
		return 0
	}
	now := t.now()
	if now.Sub(e.last) > t.cfg.Forget {
		delete(t.keys, key)
		return 0
	}
	if wait := e.until.Sub(now); wait > 0 {
		return wait
	}
	return 0
}

// Fail records a failed attempt for key and returns the back-off it now has.
func (t *Throttle) Fail(key string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	e := t.keys[key]
	if e == nil || now.Sub(e.last) > t.cfg.Forget {
		if len(t.keys) >= t.cfg.MaxKeys {
			t.evictLocked(now)
		}
		e = &throttleEntry{}
		t.keys[key] = e
	}
	e.failures++
	e.last = now
	if e.failures <= t.cfg.Free {
		return 0
	}
	d := t.cfg.Base
	for i := t.cfg.Free + 1; i < e.failures && d < t.cfg.Max; i++ {
		d *= 2
	}
	if d > t.cfg.Max {
		d = t.cfg.Max
	}
	e.until = now.Add(d)
	return d
}

// Succeed forgets key's failures.
func (t *Throttle) Succeed(key string) {
	t.mu.Lock()
	delete(t.keys, key)
	t.mu.Unlock()
}

// Len reports how many keys are tracked.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.keys)
}

// evictLocked drops forgotten keys, and if none were, the oldest half.
func (t *Throttle) evictLocked(now time.Time) {
	for k, e := range t.keys {
		if now.Sub(e.last) > t.cfg.Forget {
			delete(t.keys, k)
		}
	}
	if len(t.keys) < t.cfg.MaxKeys {
		return
	}
	cut := now.Add(-t.cfg.Forget / 2)
	for k, e := range t.keys {
		if e.last.Before(cut) || len(t.keys) >= t.cfg.MaxKeys {
			delete(t.keys, k)
		}
	}
}
