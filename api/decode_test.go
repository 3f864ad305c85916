package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, body, ctype string
		status            int
		typ               string
	}{
		{"ok", `{"userName":"a"}`, "application/json", 0, ""},
		{"ok charset", `{"userName":"a"}`, "application/json; charset=utf-8", 0, ""},
		{"no content type", `{"userName":"a"}`, "", 0, ""},
		{"empty", ``, "application/json", 400, ProbInvalidBody},
		{"spaces", "  \n", "application/json", 400, ProbInvalidBody},
		{"syntax", `{"userName":`, "application/json", 400, ProbInvalidBody},
		{"bad syntax", `{"userName" "a"}`, "application/json", 400, ProbInvalidBody},
		{"wrong type", `{"userName":5}`, "application/json", 400, ProbInvalidBody},
		{"wrong nested type", `{"roles":"ROLE_ADMIN"}`, "application/json", 400, ProbInvalidBody},
		{"unknown member", `{"userName":"a","admin":true}`, "application/json", 400, ProbInvalidBody},
		{"array", `[]`, "application/json", 400, ProbInvalidBody},
		{"trailing", `{"userName":"a"} {}`, "application/json", 400, ProbInvalidBody},
		{"trailing garbage", `{"userName":"a"}x`, "application/json", 400, ProbInvalidBody},
		{"form", `userName=a`, "application/x-www-form-urlencoded", 415, ProbUnsupportedMedia},
		{"bad media type", `{}`, "application/json; =", 415, ProbUnsupportedMedia},
		{"too large", `{"userName":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, "application/json", 413, ProbBodyTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			var v userWrite
			p := decodeJSON(httptest.NewRecorder(), r, &v)
			if tc.status == 0 {
				if p != nil {
					t.Fatalf("unexpected problem %+v", p)
				}
				return
			}
			if p == nil || p.Status != tc.status || p.Type != tc.typ {
				t.Fatalf("got %+v, want %d %s", p, tc.status, tc.typ)
			}
		})
	}
}

// FuzzDecodeBody feeds arbitrary bytes to the strict decoder of every body
// type the API accepts: it must either decode or give a 4xx problem.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{`{"userName":"a","roles":["ROLE_AGENT"]}`, `{"username":"a","password":"b"}`, `{"platform":"web"}`,
		`{"name":"x","permissions":["admin"]}`, `{"skillId":"0123456789abcdef","proficiency":3}`, `{`, `[]`, `null`, `{"a":1}`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		targets := []any{&userWrite{}, &loginRequest{}, &initSessionRequest{}, &serviceUserWrite{}, &deviceWrite{},
			&skillWrite{}, &skillAssignWrite{}}
		for _, v := range targets {
			if p := decodeBytes(data, v); p != nil && (p.Status < 400 || p.Status > 499 || p.Type == "" || p.Title == "") {
				t.Fatalf("decode %T gave %+v", v, p)
			}
		}
		var w userWrite
		if decodeBytes(data, &w) == nil {
			if p := w.validate(false); p != nil && p.Status != 400 {
				t.Fatalf("validate gave %+v", p)
			}
		}
	})
}
