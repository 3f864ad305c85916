package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
)

// Sentinel errors of the store.
var (
	ErrNotFound            = errors.New("store: not found")
	ErrConflict            = errors.New("store: conflict")
	ErrImmutable           = errors.New("store: immutable field")
	ErrClosed              = errors.New("store: closed")
	ErrUnsupportedPlatform = errors.New("store: 32-bit platforms are not supported: Badger loses data there; use amd64 or arm64")
)

// ConflictError names a unique field whose value another record holds.
type ConflictError struct {
	Kind, Field, Value string
}

func (e *ConflictError) Error() string {
	return "store: " + e.Kind + " " + e.Field + " " + e.Value + " is already taken"
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// NewID returns a fresh random id of 16 lowercase hex digits.
func NewID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("store: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// ValidID reports whether s has the shape NewID produces.
func ValidID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
