package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"pbxd/api/auth"
	"pbxd/store"
)

// BenchmarkLogin is one password login: throttle checks, user lookup,
// argon2id verification and the session write.
func BenchmarkLogin(b *testing.B) {
	ts := newTestServer(b, true)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ts.login(b, "admin", testAdminPassword)
	}
}

// BenchmarkTokenAuth is what every API call pays to authenticate a token.
func BenchmarkTokenAuth(b *testing.B) {
	ts := newTestServer(b, true)
	code, data := ts.do(b, "POST", "/api/v1/service-users", ts.adminToken, map[string]any{"name": "bench", "permissions": []string{"users:read"}})
	if code != http.StatusCreated {
		b.Fatalf("%d %s", code, data)
	}
	svcToken := decode[serviceUserView](b, data).Token
	for _, tc := range []struct{ name, token string }{{"session", ts.adminToken}, {"serviceUser", svcToken}} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/api/v1/users", nil)
			r.Header.Set("Authorization", "Bearer "+tc.token)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, prob := ts.authenticate(r); prob != nil {
					b.Fatal(prob)
				}
			}
		})
	}
}

// seedUsers writes n users straight into the store (no passwords).
func seedUsers(b *testing.B, st *store.Store, n int) {
	b.Helper()
	now := time.Now()
	for done := 0; done < n; {
		err := st.Update(func(tx *store.Tx) error {
			for j := 0; j < 500 && done+j < n; j++ {
				i := done + j
				u := &store.User{ID: store.NewID(), UserName: fmt.Sprintf("user%05d@example.com", i),
					FirstName: fmt.Sprintf("First%d", i), LastName: fmt.Sprintf("Last%d", i%977),
					Extension: fmt.Sprintf("%d", 20000+i), Roles: []string{store.RoleAgent}, Enabled: true,
					Timezone: "UTC", CreatedAt: now, ModifiedAt: now}
				if err := tx.PutUser(u); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		done += 500
	}
}

// BenchmarkSearchUsers10k is fetchUsers with q over 10,000 users.
func BenchmarkSearchUsers10k(b *testing.B) {
	ts := newTestServer(b, false)
	seedUsers(b, ts.st, 10_000)
	for _, q := range []string{"/api/v1/users?q=last42&fields=*", "/api/v1/users?q=user09999", "/api/v1/users?rows=50&start=5000&fields=*"} {
		b.Run(q, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if code, body := ts.do(b, "GET", q, ts.adminToken, nil); code != 200 {
					b.Fatalf("%d %s", code, body)
				}
			}
		})
	}
}

// BenchmarkCreateUser is POST /users (without a password, so argon2 is not
// measured twice) with fsync on every commit, as the appliance runs.
func BenchmarkCreateUser(b *testing.B) {
	ts := newTestServer(b, true)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ts.createUser(b, map[string]any{"userName": fmt.Sprintf("bench%d@example.com", i), "firstName": "Bench"})
	}
}

// BenchmarkArgon2 is the bare password hash cost with pbxd's parameters.
func BenchmarkArgon2(b *testing.B) {
	h := auth.NewHasher(1)
	enc, _ := h.Hash(context.Background(), "password-1")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = h.Verify(context.Background(), enc, "password-1")
	}
}
