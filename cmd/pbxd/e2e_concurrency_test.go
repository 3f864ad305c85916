package main

import (
	"fmt"
	"sync"
	"testing"
)

// TestConcurrentWrites races writers against each other: unique names and
// extensions stay unique, and read-modify-write updates lose nothing.
func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)

	race := func(n int, fn func(i int) (resp, error)) map[int]int {
		logged := len(p.logRecords(t))
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r, err := fn(i)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				codes[r.code]++
			}(i)
		}
		wg.Wait()
		// Show why, once per race: the first error pbxd logged meanwhile.
		for _, rec := range p.logRecords(t)[logged:] {
			if rec["level"] == "ERROR" {
				t.Logf("pbxd logged: %v", rec)
				break
			}
		}
		return codes
	}
	codes := race(24, func(int) (resp, error) {
		return p.try("POST", "/api/v1/users", admin, map[string]any{"userName": "race"})
	})
	if codes[201] != 1 || codes[409] != 23 {
		t.Errorf("24 creates of one userName: %v", codes)
	}
	codes = race(24, func(i int) (resp, error) {
		return p.try("POST", "/api/v1/users", admin, map[string]any{"userName": fmt.Sprintf("ext%d", i), "extension": "4444"})
	})
	if codes[201] != 1 || codes[409] != 23 {
		t.Errorf("24 creates of one extension: %v", codes)
	}
	if r := p.do("GET", "/api/v1/users?q=4444", admin, nil).want(t, 200); r.num("total") != 1 {
		t.Errorf("extension 4444 held by %v users", r.obj["total"])
	}

	// Every acknowledged assignment is kept, and none is refused: writers
	// of the same user must be serialised or retried, not answered 500.
	uid := p.userID(t, admin, "race")
	const n = 32
	var skills []string
	for i := 0; i < n; i++ {
		skills = append(skills, p.do("POST", "/api/v1/skills", admin, map[string]any{"name": fmt.Sprintf("skill-%02d", i)}).want(t, 201).str("id"))
	}
	codes = race(n, func(i int) (resp, error) {
		return p.try("POST", "/api/v1/users/"+uid+"/skills", admin, map[string]any{"skillId": skills[i], "proficiency": 1 + i%10})
	})
	if codes[200] != n {
		t.Errorf("%d concurrent skill assignments to one user: %v", n, codes)
	}
	if r := p.do("GET", "/api/v1/users/"+uid+"/skills", admin, nil).want(t, 200); int(r.num("total")) != codes[200] {
		t.Errorf("%d assignments acknowledged, the user holds %v skills", codes[200], r.obj["total"])
	}
	held := codes[200]
	codes = race(n, func(i int) (resp, error) {
		return p.try("POST", "/api/v1/users/"+uid, admin, map[string]any{"firstName": fmt.Sprintf("Name%d", i)})
	})
	if codes[200] != n {
		t.Errorf("%d concurrent updates of one user: %v", n, codes)
	}
	// The updates above did not drop any skill either.
	if r := p.do("GET", "/api/v1/users/"+uid+"/skills", admin, nil).want(t, 200); int(r.num("total")) != held {
		t.Errorf("skills after concurrent name updates: %v, want %d", r.obj["total"], held)
	}
	// Writers of different users never get in each other's way.
	var others []string
	for i := 0; i < 24; i++ {
		others = append(others, p.do("POST", "/api/v1/users", admin, map[string]any{"userName": fmt.Sprintf("other%02d", i)}).want(t, 201).str("id"))
	}
	codes = race(len(others), func(i int) (resp, error) {
		return p.try("PUT", "/api/v1/users/"+others[i], admin, map[string]any{"firstName": "Changed", "extension": fmt.Sprint(8000 + i)})
	})
	if codes[200] != len(others) {
		t.Errorf("%d concurrent updates of different users: %v", len(others), codes)
	}
	codes = race(48, func(i int) (resp, error) {
		return p.try("POST", "/api/v1/users", admin, map[string]any{"userName": fmt.Sprintf("burst%02d", i), "extension": fmt.Sprint(9000 + i)})
	})
	if codes[201] != 48 {
		t.Errorf("48 concurrent creates of different users: %v", codes)
	}
	codes = race(8, func(i int) (resp, error) {
		return p.try("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "d", "username": "same-device"})
	})
	if codes[201] != 1 || codes[409] != 7 {
		t.Errorf("8 creates of one device username: %v", codes)
	}
}
