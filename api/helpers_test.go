package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"pbxd/store"
)

const testAdminPassword = "admin-password-1"

// testServer is an API server over a store in a temp dir, with the first
// admin created and logged in.
type testServer struct {
	*Server
	st         *store.Store
	adminToken string
}

func newTestServer(tb testing.TB, sync bool) *testServer {
	tb.Helper()
	st, err := store.Open(store.Config{Dir: tb.TempDir(), SyncWrites: sync, GCInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	s := New(Config{Store: st, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "test"})
	tb.Cleanup(func() {
		s.Close()
		st.Close()
	})
	if _, _, err := s.EnsureAdmin(context.Background(), func() (string, error) { return testAdminPassword, nil }); err != nil {
		tb.Fatal(err)
	}
	ts := &testServer{Server: s, st: st}
	ts.adminToken = ts.login(tb, "admin", testAdminPassword)
	return ts
}

func (ts *testServer) login(tb testing.TB, user, pw string) string {
	tb.Helper()
	code, body := ts.do(tb, "POST", "/api/v1/login", "", map[string]string{"username": user, "password": pw})
	if code != 200 {
		tb.Fatalf("login %s: %d %s", user, code, body)
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		tb.Fatal(err)
	}
	return tr.Token
}

// do sends a request through the handler; body is JSON-encoded unless it is
// already a []byte.
func (ts *testServer) do(tb testing.TB, method, path, token string, body any) (int, []byte) {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req := httptest.NewRequest(method, path, rd)
	req.RemoteAddr = "192.0.2.1:1234"
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func decode[T any](tb testing.TB, data []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		tb.Fatalf("decode %T: %v: %s", v, err, data)
	}
	return v
}

// createUser makes a user through the API and returns its id.
func (ts *testServer) createUser(tb testing.TB, body map[string]any) string {
	tb.Helper()
	code, data := ts.do(tb, "POST", "/api/v1/users", ts.adminToken, body)
	if code != http.StatusCreated {
		tb.Fatalf("create user: %d %s", code, data)
	}
	return decode[userView](tb, data).ID
}
