// Package store keeps pbxd's state in an embedded Badger database: typed
// records (users, devices, skills, service users, sessions, audit records)
// with their secondary indexes maintained inside the same transaction.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// SchemaVersion is the layout version this binary writes and understands.
const SchemaVersion = 1

// Config says where and how the store is kept.
type Config struct {
	// Dir holds the Badger files; created 0700 when missing.
	Dir string
	// InMemory keeps everything in RAM (tests only).
	InMemory bool
	// SyncWrites fsyncs every commit so that acknowledged writes survive a
	// power loss as well as a crash (a crash alone loses nothing that
	// committed, because Badger writes through mmap).
	SyncWrites bool
	// GCInterval is the value-log GC period: 0 means 10 minutes, <0 off.
	GCInterval time.Duration
	// Logger receives Badger's warnings and errors and the store's own logs.
	Logger *slog.Logger
}

// Store is the open database. All methods are safe for concurrent use.
type Store struct {
	db      *badger.DB
	sync    bool
	log     *slog.Logger
	schema  int
	stop    chan struct{}
	done    chan struct{}
	closeMu sync.Mutex
	closed  bool
	// retryMu serialises the retries of transactions that lost a conflict,
	// so that many writers of one record finish instead of colliding again.
	retryMu sync.Mutex
}

// checkPlatform refuses 32-bit platforms: Badger v4 (through ristretto's
// allocator, which computes (bufIdx+1)<<32 on int) overwrites table data
// there and silently loses keys after a reopen.
func checkPlatform(intSize int) error {
	if intSize < 64 {
		return ErrUnsupportedPlatform
	}
	return nil
}

// options is the small-device profile: a few MiB of memtables and caches,
// 16 MiB value-log files and values kept in the LSM tree up to 1 KiB, so that
// idle RSS stays far below 64 MiB (see README.md for the measurements).
func options(cfg Config) badger.Options {
	opt := badger.DefaultOptions(cfg.Dir).
		WithInMemory(cfg.InMemory).
		WithSyncWrites(false). // Update syncs itself, so soft state can skip it

		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(4).
		WithBaseTableSize(1 << 20).
		WithBaseLevelSize(4 << 20).
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(2 << 20).
		WithValueLogFileSize(16 << 20).
		WithValueThreshold(1 << 10).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithCompression(0).
		WithDetectConflicts(true).
		WithLogger(badgerLogger{cfg.Logger})
	if cfg.InMemory {
		opt.Dir, opt.ValueDir = "", ""
	}
	return opt
}

// Open opens (or creates) the store. It refuses to run on 32-bit platforms
// before touching the disk.
func Open(cfg Config) (*Store, error) {
	if err := checkPlatform(strconv.IntSize); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if !cfg.InMemory {
		if cfg.Dir == "" {
			return nil, errors.New("store: no directory given")
		}
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	db, err := badger.Open(options(cfg))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", cfg.Dir, err)
	}
	s := &Store{db: db, sync: cfg.SyncWrites && !cfg.InMemory, log: cfg.Logger, stop: make(chan struct{}), done: make(chan struct{})}
	if s.schema, err = s.checkSchema(); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.SeedStatuses(); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: seeding the status catalogue: %w", err)
	}
	interval := cfg.GCInterval
	if interval == 0 {
		interval = 10 * time.Minute
	}
	if interval > 0 && !cfg.InMemory {
		go s.gcLoop(interval)
	} else {
		close(s.done)
	}
	return s, nil
}

var keySchema = []byte("meta/schema")

// checkSchema records the schema version on a new database and refuses one
// written by a newer pbxd. Older versions are migrated here when there are any.
func (s *Store) checkSchema() (int, error) {
	v := SchemaVersion
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(keySchema)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return txn.Set(keySchema, []byte(strconv.Itoa(SchemaVersion)))
		}
		if err != nil {
			return err
		}
		return item.Value(func(b []byte) error {
			n, err := strconv.Atoi(string(b))
			if err != nil {
				return fmt.Errorf("store: unreadable schema version %q", b)
			}
			v = n
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	if v > SchemaVersion {
		return 0, fmt.Errorf("store: the data was written by a newer pbxd (schema %d, this binary knows %d); refusing to open it", v, SchemaVersion)
	}
	return v, nil
}

// SchemaVersion reports the schema version of the open database.
func (s *Store) SchemaVersion() int { return s.schema }

// gcLoop runs value-log GC on a timer; each round repeats while Badger
// finds a file worth rewriting.
func (s *Store) gcLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			n := 0
			for n < 100 && s.db.RunValueLogGC(0.5) == nil {
				n++
				select {
				case <-s.stop:
					return
				default:
				}
			}
			s.log.Debug("value-log GC", "files_rewritten", n)
		}
	}
}

// Close stops the GC timer and closes Badger cleanly. It is idempotent.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	select {
	case <-s.done:
	default:
		close(s.stop)
		<-s.done
	}
	return s.db.Close()
}

// Ping proves the database answers reads.
func (s *Store) Ping() error {
	return s.View(func(tx *Tx) error {
		_, err := tx.txn.Get(keySchema)
		return err
	})
}

// Sync flushes the value log to disk.
func (s *Store) Sync() error { return s.db.Sync() }

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(tx *Tx) error) error {
	if s.db.IsClosed() {
		return ErrClosed
	}
	return s.db.View(func(txn *badger.Txn) error { return fn(&Tx{txn: txn}) })
}

// Update runs fn in a read-write transaction and commits it; with
// Config.SyncWrites the commit is flushed to disk before Update returns, so
// it survives a power loss. When a concurrent transaction touched the same
// keys, fn is run again (retries one at a time), so fn must not have side effects
// outside tx.
func (s *Store) Update(fn func(tx *Tx) error) error {
	if err := s.update(fn); err != nil {
		return err
	}
	if s.sync {
		if err := s.db.Sync(); err != nil {
			return fmt.Errorf("store: sync: %w", err)
		}
	}
	return nil
}

// UpdateSoft is Update without the flush to disk, for state that peers
// recreate on their own (SIP registrations refresh every few minutes). Its
// commits still survive a crash of pbxd (Badger writes through mmap), only
// not a power loss; they cost a fraction of a synced commit.
func (s *Store) UpdateSoft(fn func(tx *Tx) error) error { return s.update(fn) }

func (s *Store) update(fn func(tx *Tx) error) error {
	if s.db.IsClosed() {
		return ErrClosed
	}
	run := func() error { return s.db.Update(func(txn *badger.Txn) error { return fn(&Tx{txn: txn}) }) }
	// The first attempt runs optimistically, in parallel with other writers.
	err := run()
	if !errors.Is(err, badger.ErrConflict) {
		return err
	}
	// Retries queue up: they can then only collide with first attempts.
	s.retryMu.Lock()
	defer s.retryMu.Unlock()
	for attempt := 0; attempt < 20; attempt++ {
		if err = run(); !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("store: gave up after repeated conflicts: %w", err)
}

// Tx is one transaction; its methods are the typed repositories.
type Tx struct {
	txn *badger.Txn
}

func (tx *Tx) getJSON(key []byte, v any) error {
	item, err := tx.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

// getRecord loads the JSON record at key into a new T.
func getRecord[T any](tx *Tx, key []byte) (*T, error) {
	v := new(T)
	if err := tx.getJSON(key, v); err != nil {
		return nil, err
	}
	return v, nil
}

// listRecords decodes every JSON record under prefix, in key order. On an
// error it returns the records decoded before it with the error.
func listRecords[T any](tx *Tx, prefix []byte) ([]*T, error) {
	var out []*T
	err := tx.each(prefix, func(_, b []byte) (bool, error) {
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			return false, err
		}
		out = append(out, v)
		return true, nil
	})
	return out, err
}

// putNamed stores v, the record with id at key(id), and keeps the unique
// name index nameKey (which ignores case) in step: a name another record
// holds is a *ConflictError for kind, and renaming frees the old name in
// the same transaction. nameOf reads a record's name.
func putNamed[T any](tx *Tx, kind string, key, nameKey func(string) []byte, id string, v *T, nameOf func(*T) string) error {
	old, err := getRecord[T](tx, key(id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	name := nameOf(v)
	if err := tx.claim(nameKey(name), id, &ConflictError{kind, "name", name}); err != nil {
		return err
	}
	if old != nil && !strings.EqualFold(nameOf(old), name) {
		if err := tx.del(nameKey(nameOf(old))); err != nil {
			return err
		}
	}
	if err := tx.txn.Set(nameKey(name), []byte(id)); err != nil {
		return err
	}
	return tx.setJSON(key(id), v)
}

// compareByName orders records by lower-cased name, then by id.
func compareByName(aName, aID, bName, bID string) int {
	if c := strings.Compare(strings.ToLower(aName), strings.ToLower(bName)); c != 0 {
		return c
	}
	return strings.Compare(aID, bID)
}

func (tx *Tx) getString(key []byte) (string, error) {
	item, err := tx.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", err
	}
	b, err := item.ValueCopy(nil)
	return string(b), err
}

func (tx *Tx) setJSON(key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.txn.Set(key, b)
}

func (tx *Tx) setTTL(key, val []byte, until time.Time) error {
	ttl := time.Until(until)
	if ttl <= 0 {
		ttl = time.Millisecond
	}
	return tx.txn.SetEntry(badger.NewEntry(key, val).WithTTL(ttl))
}

func (tx *Tx) del(key []byte) error { return tx.txn.Delete(key) }

// keys calls fn for every key under prefix, in order, without values.
func (tx *Tx) keys(prefix []byte, fn func(key []byte) bool) {
	opt := badger.DefaultIteratorOptions
	opt.PrefetchValues = false
	opt.Prefix = prefix
	it := tx.txn.NewIterator(opt)
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		if !fn(it.Item().Key()) {
			return
		}
	}
}

// each calls fn for every key/value under prefix, in order.
func (tx *Tx) each(prefix []byte, fn func(key, val []byte) (bool, error)) error {
	opt := badger.DefaultIteratorOptions
	opt.PrefetchSize = 16
	opt.Prefix = prefix
	it := tx.txn.NewIterator(opt)
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		var cont bool
		err := it.Item().Value(func(v []byte) error {
			var err error
			cont, err = fn(it.Item().Key(), v)
			return err
		})
		if err != nil {
			return err
		}
		if !cont {
			return nil
		}
	}
	return nil
}

func (tx *Tx) count(prefix []byte) int {
	n := 0
	tx.keys(prefix, func([]byte) bool { n++; return true })
	return n
}

// badgerLogger forwards Badger's warnings and errors to slog and drops its
// chatty info and debug lines.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error("badger: " + trimNL(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn("badger: " + trimNL(fmt.Sprintf(f, a...)))
}
func (b badgerLogger) Infof(string, ...any)  {}
func (b badgerLogger) Debugf(string, ...any) {}

func trimNL(s string) string {
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	return s
}
