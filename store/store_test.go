package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openTest(t *testing.T, dir string) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := Open(Config{Dir: dir, Logger: quiet(), GCInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newUser(name, ext string) *User {
	now := time.Now()
	return &User{ID: NewID(), UserName: name, Extension: ext, Enabled: true, CreatedAt: now, ModifiedAt: now}
}

func TestOpenRefuses32Bit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	s, err := Open(Config{Dir: dir, Logger: quiet()})
	if strconv.IntSize == 32 {
		if !errors.Is(err, ErrUnsupportedPlatform) {
			t.Fatalf("32-bit Open = %v, want ErrUnsupportedPlatform", err)
		}
		if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
			t.Fatal("32-bit Open touched the disk")
		}
		return
	}
	if err != nil {
		t.Fatalf("64-bit Open: %v", err)
	}
	s.Close()
	if checkPlatform(32) == nil || checkPlatform(64) != nil {
		t.Fatal("checkPlatform")
	}
}

func TestSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	if s.SchemaVersion() != SchemaVersion {
		t.Fatal(s.SchemaVersion())
	}
	if err := s.db.Update(func(txn *badger.Txn) error { return txn.Set(keySchema, []byte("99")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(Config{Dir: dir, Logger: quiet()}); err == nil {
		t.Fatal("opened a database from a newer schema")
	}
}

func TestUserIndexes(t *testing.T) {
	s := openTest(t, "")
	u := newUser("Alice@Example.com", "201")
	u.Skills = []SkillAssignment{{SkillID: NewID(), Proficiency: 3}}
	must(t, s.Update(func(tx *Tx) error { return tx.PutUser(u) }))
	must(t, s.View(func(tx *Tx) error {
		for _, get := range []func() (*User, error){
			func() (*User, error) { return tx.UserByName("alice@example.COM") },
			func() (*User, error) { return tx.UserByExtension("201") },
			func() (*User, error) { return tx.GetUser(u.ID) },
		} {
			got, err := get()
			if err != nil || got.ID != u.ID {
				return fmt.Errorf("lookup: %v %v", got, err)
			}
		}
		ids, _ := tx.UsersWithSkill(u.Skills[0].SkillID)
		if len(ids) != 1 {
			return fmt.Errorf("skill index %v", ids)
		}
		return nil
	}))
	// Conflicts on name (case-insensitive) and extension.
	for _, other := range []*User{newUser("ALICE@example.com", ""), newUser("bob", "201")} {
		err := s.Update(func(tx *Tx) error { return tx.PutUser(other) })
		var ce *ConflictError
		if !errors.Is(err, ErrConflict) || !errors.As(err, &ce) {
			t.Fatalf("conflict not reported: %v", err)
		}
	}
	// Changing name and extension frees the old ones.
	u.UserName, u.Extension, u.Skills = "alice2", "202", nil
	must(t, s.Update(func(tx *Tx) error { return tx.PutUser(u) }))
	must(t, s.Update(func(tx *Tx) error { return tx.PutUser(newUser("alice@example.com", "201")) }))
	must(t, s.View(func(tx *Tx) error {
		if got, err := tx.UserByExtension("202"); err != nil || got.ID != u.ID {
			return fmt.Errorf("new extension: %v", err)
		}
		if n, _ := tx.CountUsers(); n != 2 {
			return fmt.Errorf("count %d", n)
		}
		return nil
	}))
}

func TestDeleteUserCascades(t *testing.T) {
	s := openTest(t, "")
	u := newUser("carol", "300")
	sk := &Skill{ID: NewID(), Name: "Sales"}
	u.Skills = []SkillAssignment{{SkillID: sk.ID, Proficiency: 5}}
	d := &Device{ID: NewID(), UserID: u.ID, Name: "desk", Username: "carol-desk"}
	se := &Session{ID: NewID(), UserID: u.ID, TokenHash: [32]byte{1}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	must(t, s.Update(func(tx *Tx) error {
		for _, f := range []func() error{func() error { return tx.PutSkill(sk) }, func() error { return tx.PutUser(u) },
			func() error { return tx.PutDevice(d) }, func() error { return tx.PutSession(se) }} {
			if err := f(); err != nil {
				return err
			}
		}
		return nil
	}))
	must(t, s.Update(func(tx *Tx) error { return tx.DeleteUser(u.ID) }))
	must(t, s.View(func(tx *Tx) error {
		if _, err := tx.DeviceByUsername("carol-desk"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("device survived: %v", err)
		}
		if _, err := tx.LookupToken(se.TokenHash); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("session token survived: %v", err)
		}
		if ids, _ := tx.UsersWithSkill(sk.ID); len(ids) != 0 {
			return fmt.Errorf("skill index survived")
		}
		if _, err := tx.UserByName("carol"); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("name index survived")
		}
		return nil
	}))
	// The freed names can be reused.
	must(t, s.Update(func(tx *Tx) error {
		u2 := newUser("carol", "300")
		if err := tx.PutUser(u2); err != nil {
			return err
		}
		return tx.PutDevice(&Device{ID: NewID(), UserID: u2.ID, Name: "d", Username: "carol-desk"})
	}))
}

func TestDeleteSkillRemovesAssignments(t *testing.T) {
	s := openTest(t, "")
	sk := &Skill{ID: NewID(), Name: "German"}
	u := newUser("dave", "")
	u.Skills = []SkillAssignment{{SkillID: sk.ID, Proficiency: 7}}
	must(t, s.Update(func(tx *Tx) error {
		if err := tx.PutSkill(sk); err != nil {
			return err
		}
		return tx.PutUser(u)
	}))
	if err := s.Update(func(tx *Tx) error { return tx.PutSkill(&Skill{ID: NewID(), Name: "GERMAN"}) }); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate skill name: %v", err)
	}
	must(t, s.Update(func(tx *Tx) error { return tx.DeleteSkill(sk.ID) }))
	must(t, s.View(func(tx *Tx) error {
		got, err := tx.GetUser(u.ID)
		if err != nil || len(got.Skills) != 0 {
			return fmt.Errorf("assignment survived: %+v %v", got, err)
		}
		return nil
	}))
}

func TestServiceUserTokenIndex(t *testing.T) {
	s := openTest(t, "")
	su := &ServiceUser{ID: NewID(), Name: "crm", TokenHash: [32]byte{9}}
	must(t, s.Update(func(tx *Tx) error { return tx.PutServiceUser(su) }))
	old := su.TokenHash
	su.TokenHash = [32]byte{10}
	must(t, s.Update(func(tx *Tx) error { return tx.PutServiceUser(su) }))
	must(t, s.View(func(tx *Tx) error {
		if _, err := tx.LookupToken(old); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("old token still resolves")
		}
		o, err := tx.LookupToken(su.TokenHash)
		if err != nil || o != (TokenOwner{TokenService, su.ID}) {
			return fmt.Errorf("new token: %+v %v", o, err)
		}
		return nil
	}))
	renamed := *su
	renamed.Name = "other"
	if err := s.Update(func(tx *Tx) error { return tx.PutServiceUser(&renamed) }); !errors.Is(err, ErrImmutable) {
		t.Fatalf("rename: %v", err)
	}
	if err := s.Update(func(tx *Tx) error { return tx.PutServiceUser(&ServiceUser{ID: NewID(), Name: "crm"}) }); !errors.Is(err, ErrConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	must(t, s.Update(func(tx *Tx) error { return tx.DeleteServiceUser(su.ID) }))
	must(t, s.View(func(tx *Tx) error {
		if _, err := tx.LookupToken(su.TokenHash); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("token survived delete")
		}
		return nil
	}))
}

func TestSessionsExpireByTTL(t *testing.T) {
	s := openTest(t, "")
	uid := NewID()
	se := &Session{ID: NewID(), UserID: uid, TokenHash: [32]byte{7}, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(1500 * time.Millisecond)}
	must(t, s.Update(func(tx *Tx) error { return tx.PutSession(se) }))
	must(t, s.View(func(tx *Tx) error {
		if n, _ := tx.CountSessions(); n != 1 {
			return fmt.Errorf("count %d", n)
		}
		_, err := tx.LookupToken(se.TokenHash)
		return err
	}))
	time.Sleep(2100 * time.Millisecond) // Badger TTLs have one-second resolution
	must(t, s.View(func(tx *Tx) error {
		if _, err := tx.GetSession(se.ID); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("session alive after expiry")
		}
		if _, err := tx.LookupToken(se.TokenHash); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("token alive after expiry")
		}
		if l, _ := tx.ListUserSessions(uid); len(l) != 0 {
			return fmt.Errorf("user index alive")
		}
		if n, _ := tx.CountSessions(); n != 0 {
			return fmt.Errorf("count %d", n)
		}
		return nil
	}))
}

func TestConcurrentCreatesOneWins(t *testing.T) {
	s := openTest(t, "")
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Update(func(tx *Tx) error { return tx.PutUser(newUser("same", "")) })
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrConflict):
				conflicts++
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != 7 {
		t.Fatalf("wins %d conflicts %d", wins, conflicts)
	}
}

func TestListUsersOrderAndAudit(t *testing.T) {
	s := openTest(t, "")
	must(t, s.Update(func(tx *Tx) error {
		for _, n := range []string{"zed", "Bob", "amy"} {
			if err := tx.PutUser(newUser(n, "")); err != nil {
				return err
			}
		}
		for i := 0; i < 25; i++ {
			if err := tx.AppendAudit(&AuditRecord{At: time.Unix(int64(1000+i), 0), Action: fmt.Sprint(i)}); err != nil {
				return err
			}
		}
		return nil
	}))
	must(t, s.View(func(tx *Tx) error {
		var names []string
		if err := tx.ListUsers(func(u *User) bool { names = append(names, u.UserName); return true }); err != nil {
			return err
		}
		if fmt.Sprint(names) != "[amy Bob zed]" {
			return fmt.Errorf("order %v", names)
		}
		recs, total, err := tx.ListAudit(10, 10)
		if err != nil || total != 25 || len(recs) != 10 || recs[0].Action != "14" || recs[9].Action != "5" {
			return fmt.Errorf("audit page: total %d len %d first %v err %v", total, len(recs), recs, err)
		}
		return nil
	}))
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		s, err := Open(Config{Dir: t.TempDir(), Logger: quiet(), GCInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
		must(t, s.Close())
		must(t, s.Close()) // idempotent
		if err := s.View(func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
			t.Fatalf("View after Close: %v", err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after Close:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestAcknowledgedWritesSurviveKill runs a child that commits users one by
// one and prints each id after its commit returns; the parent SIGKILLs it
// mid-stream and checks that every acknowledged id is in the reopened store.
func TestAcknowledgedWritesSurviveKill(t *testing.T) {
	if os.Getenv("PBXD_STORE_CHILD") != "" {
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PBXD_STORE_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if id, ok := cutPrefix(sc.Text(), "ACK "); ok {
			acked = append(acked, id)
			if len(acked) == 300 {
				break
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for sc.Scan() { // read what was acknowledged before the kill landed
		if id, ok := cutPrefix(sc.Text(), "ACK "); ok {
			acked = append(acked, id)
		}
	}
	_ = cmd.Wait()
	if len(acked) < 300 {
		t.Fatalf("child acknowledged only %d writes", len(acked))
	}
	s := openTest(t, dir)
	must(t, s.View(func(tx *Tx) error {
		for _, id := range acked {
			if _, err := tx.GetUser(id); err != nil {
				return fmt.Errorf("acknowledged user %s lost: %v", id, err)
			}
		}
		return nil
	}))
	t.Logf("%d acknowledged writes all present after SIGKILL", len(acked))
}

// TestKillChild is the child half of TestAcknowledgedWritesSurviveKill.
func TestKillChild(t *testing.T) {
	dir := os.Getenv("PBXD_STORE_CHILD")
	if dir == "" {
		t.Skip("helper process")
	}
	s, err := Open(Config{Dir: dir, Logger: quiet(), SyncWrites: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		u := newUser(fmt.Sprintf("user%d", i), "")
		if err := s.Update(func(tx *Tx) error { return tx.PutUser(u) }); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ACK %s\n", u.ID)
	}
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return "", false
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
