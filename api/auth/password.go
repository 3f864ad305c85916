// Package auth holds pbxd's credential primitives: argon2id password hashes,
// recognisable random tokens stored only as SHA-256 hashes, parsing of the
// Authorization header, and the login throttle.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters for user passwords. They follow the OWASP password
// storage recommendation for argon2id (19 MiB, 2 passes, 1 lane), which costs
// about 30 ms on one core of a small x86 box and stays affordable on an ARM
// appliance. Every hash records its own parameters, so they can be raised
// later without invalidating stored passwords.
const (
	ArgonTime    uint32 = 2
	ArgonMemory  uint32 = 19 * 1024 // KiB
	ArgonThreads uint8  = 1
	ArgonKeyLen  uint32 = 32
	ArgonSaltLen        = 16
)

// Password length bounds accepted by the API.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 256
)

// ErrMismatch means a password did not match its hash.
var ErrMismatch = errors.New("auth: password mismatch")

// ErrBadHash means a stored hash string could not be parsed.
var ErrBadHash = errors.New("auth: malformed password hash")

// Hasher computes and verifies argon2id hashes while bounding how many run at
// once: each takes ArgonMemory of RAM, and a burst of logins must not push a
// small appliance into swap.
//
// The memory of those hashes is garbage as soon as they finish, but the Go
// runtime hands it back to the system only minutes later: after a burst of
// logins (a shift starting) the process would sit at a hundred MiB or more.
// So once hashing has been quiet for releaseAfter, the Hasher returns
// freed memory to the system at once.
type Hasher struct {
	sem chan struct{}
	// released is what runs once a burst is over (tests count it).
	released func()

	quietFor time.Duration // releaseAfter; shorter in tests

	mu     sync.Mutex
	busy   int
	hashed bool // a hash ran since the last release
	quiet  *time.Timer
}

// releaseAfter is how long hashing must have stopped before freed memory
// goes back to the system.
const releaseAfter = 2 * time.Second

// NewHasher returns a Hasher that runs at most parallel hashes at a time.
func NewHasher(parallel int) *Hasher {
	if parallel < 1 {
		parallel = 1
	}
	h := &Hasher{sem: make(chan struct{}, parallel), released: debug.FreeOSMemory, quietFor: releaseAfter}
	h.quiet = time.AfterFunc(time.Hour, h.release)
	h.quiet.Stop()
	return h
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	h.mu.Lock()
	h.busy++
	h.hashed = true
	h.quiet.Stop()
	h.mu.Unlock()
	return nil
}

func (h *Hasher) done() {
	h.mu.Lock()
	h.busy--
	if h.busy == 0 {
		h.quiet.Reset(h.quietFor)
	}
	h.mu.Unlock()
	<-h.sem
}

// release returns freed memory to the system unless hashing resumed.
func (h *Hasher) release() {
	h.mu.Lock()
	run := h.busy == 0 && h.hashed
	if run {
		h.hashed = false
	}
	h.mu.Unlock()
	if run {
		h.released()
	}
}

// Hash returns the PHC-format argon2id hash of password with a fresh salt.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, ArgonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, ArgonTime, ArgonMemory, ArgonThreads, ArgonKeyLen)
	h.done()
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, ArgonMemory, ArgonTime, ArgonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify checks password against a PHC argon2id hash in constant time.
// It returns ErrMismatch when the password is wrong.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) error {
	p, err := parsePHC(encoded)
	if err != nil {
		return err
	}
	if err := h.acquire(ctx); err != nil {
		return err
	}
	key := argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	h.done()
	if subtle.ConstantTimeCompare(key, p.key) != 1 {
		return ErrMismatch
	}
	return nil
}

// Burn spends the same work as Verify without a stored hash, so that a login
// for an unknown user takes as long as one with a wrong password.
func (h *Hasher) Burn(ctx context.Context, password string) {
	if err := h.acquire(ctx); err != nil {
		return
	}
	argon2.IDKey([]byte(password), make([]byte, ArgonSaltLen), ArgonTime, ArgonMemory, ArgonThreads, ArgonKeyLen)
	h.done()
}

type phc struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func parsePHC(s string) (phc, error) {
	var p phc
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, ErrBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, ErrBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, ErrBadHash
	}
	if p.memory == 0 || p.memory > 1<<20 || p.time == 0 || p.time > 16 || p.threads == 0 {
		return p, ErrBadHash
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < 8 {
		return p, ErrBadHash
	}
	if p.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.key) < 16 {
		return p, ErrBadHash
	}
	return p, nil
}

// CheckPasswordPolicy reports why a new password is unacceptable, or nil.
func CheckPasswordPolicy(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return fmt.Errorf("must be at least %d characters", MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return fmt.Errorf("must be at most %d characters", MaxPasswordLen)
	case strings.ContainsRune(pw, 0):
		return errors.New("must not contain NUL")
	}
	return nil
}
