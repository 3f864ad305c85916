package main

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestUserAttributesRoundTrip writes every attribute of the Users API and
// reads it back: what was sent is what is shown, defaults are the
// documented ones, and neither the password nor its hash is ever shown.
func TestUserAttributesRoundTrip(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)

	const pw = "Ann-secret-pass-1"
	r := p.do("POST", "/api/v1/users", admin, map[string]any{
		"userName": "ann.lee@example.com", "password": pw, "firstName": "Ann", "lastName": "Lee",
		"roles": []string{"ROLE_AGENT", "ROLE_ADMIN", "ROLE_AGENT"}, "doNotDisturb": "on", "changePasswordOnFirstLogin": true,
		"extension": "2001", "timezone": "Europe/Berlin", "enabled": false,
	}).want(t, 201)
	id := r.str("id")
	want := map[string]any{"userName": "ann.lee@example.com", "firstName": "Ann", "lastName": "Lee", "doNotDisturb": "on",
		"changePasswordOnFirstLogin": true, "extension": "2001", "timezone": "Europe/Berlin", "enabled": false, "hasPassword": true,
		"uri": "/api/v1/users/" + id, "id": id}
	checkUser := func(what string, r resp, want map[string]any, roles ...string) {
		t.Helper()
		for k, v := range want {
			if r.obj[k] != v {
				t.Errorf("%s: %s = %#v, want %#v", what, k, r.obj[k], v)
			}
		}
		if got := fmt.Sprint(r.obj["roles"]); got != fmt.Sprint(roles) {
			t.Errorf("%s: roles %s, want %v", what, got, roles)
		}
		for _, secret := range []string{pw, "$argon2", "argon2id", `"password"`, "passwordHash"} {
			if strings.Contains(string(r.raw), secret) {
				t.Errorf("%s shows %q: %s", what, secret, r.raw)
			}
		}
	}
	checkUser("create", r, want, "ROLE_ADMIN", "ROLE_AGENT")
	if loc := r.header.Get("Location"); loc != "/api/v1/users/"+id {
		t.Errorf("Location %q", loc)
	}
	get := p.do("GET", "/api/v1/users/"+id, admin, nil).want(t, 200)
	checkUser("GET", get, want, "ROLE_ADMIN", "ROLE_AGENT")
	if string(get.raw) != string(r.raw) {
		t.Errorf("GET differs from the create answer:\n%s\n%s", get.raw, r.raw)
	}
	if _, ok := get.obj["skills"]; ok {
		t.Errorf("skills shown without subresources=*: %s", get.raw)
	}
	full := p.do("GET", "/api/v1/users/"+id+"?subresources=*", admin, nil).want(t, 200)
	checkUser("GET subresources=*", full, want, "ROLE_ADMIN", "ROLE_AGENT")
	if !strings.Contains(string(full.raw), `"skills":[]`) || !strings.Contains(string(full.raw), `"devices":[]`) {
		t.Errorf("subresources=* without empty skills and devices: %s", full.raw)
	}
	listed := p.do("GET", "/api/v1/users?q=ann.lee&subresources=*", admin, nil).want(t, 200)
	if objs := objects(t, listed); len(objs) != 1 || strings.Contains(string(listed.raw), pw) || strings.Contains(string(listed.raw), "argon2") {
		t.Errorf("list: %s", listed.raw)
	}

	// Disabled: the right password does not log in.
	p.do("POST", "/api/v1/login", "", map[string]string{"username": "ann.lee@example.com", "password": pw}).want(t, 401)

	// Updates change exactly the members sent.
	r = p.do("POST", "/api/v1/users/"+id, admin, map[string]any{"doNotDisturb": "off", "enabled": true, "timezone": "America/Chicago", "extension": ""}).want(t, 200)
	want["doNotDisturb"], want["enabled"], want["timezone"] = "off", true, "America/Chicago"
	delete(want, "extension")
	checkUser("update", r, want, "ROLE_ADMIN", "ROLE_AGENT")
	if _, ok := r.obj["extension"]; ok {
		t.Errorf("extension not cleared: %s", r.raw)
	}
	// Roles: every write is the new set, not a diff.
	for _, roles := range [][]string{{"ROLE_AGENT"}, {}, {"ROLE_ADMIN"}, {"ROLE_ADMIN", "ROLE_AGENT"}} {
		for _, method := range []string{"PUT", "POST"} {
			r = p.do(method, "/api/v1/users/"+id, admin, map[string]any{"roles": roles}).want(t, 200)
			checkUser(method+" roles", r, want, roles...)
			checkUser("GET after roles", p.do("GET", "/api/v1/users/"+id, admin, nil).want(t, 200), want, roles...)
		}
	}
	// The userName is fixed; a case-only spelling of it changes nothing.
	wantProblem(t, p.do("POST", "/api/v1/users/"+id, admin, map[string]any{"userName": "someone.else@example.com"}), 400, "")
	r = p.do("PUT", "/api/v1/users/"+id, admin, map[string]any{"userName": "ANN.LEE@example.com"}).want(t, 200)
	checkUser("case-only rename", r, want, "ROLE_ADMIN", "ROLE_AGENT")

	// The user must change the password at the first login.
	tok := p.login("ann.lee@example.com", pw)
	wantProblem(t, p.do("GET", "/api/v1/users", tok, nil), 403, "urn:pbxd:problem:password-change-required")

	// Defaults of a minimal user.
	r = p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "min"}).want(t, 201)
	checkUser("defaults", r, map[string]any{"userName": "min", "firstName": "", "lastName": "", "doNotDisturb": "off",
		"changePasswordOnFirstLogin": false, "timezone": "UTC", "enabled": true, "hasPassword": false}, "ROLE_AGENT")
	// Without a password nobody logs in as that user.
	p.do("POST", "/api/v1/login", "", map[string]string{"username": "min", "password": "any-password-1"}).want(t, 401)

	// Invalid members are named in the problem.
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"userName": "v1", "doNotDisturb": "maybe"}, "doNotDisturb"},
		{map[string]any{"userName": "v2", "extension": "12a"}, "extension"},
		{map[string]any{"userName": "v3", "extension": "1"}, "extension"},
		{map[string]any{"userName": "v4", "timezone": "Local"}, "timezone"},
		{map[string]any{"userName": "v5", "password": "short"}, "password"},
		{map[string]any{"userName": "v6", "firstName": "two\nlines"}, "firstName"},
		{map[string]any{"userName": "v7", "lastName": strings.Repeat("x", 101)}, "lastName"},
		{map[string]any{"userName": "v8", "roles": []string{"ROLE_ROOT"}}, "roles"},
		{map[string]any{"userName": ""}, "userName"},
		{map[string]any{"userName": strings.Repeat("u", 129)}, "userName"},
		{map[string]any{"firstName": "No Name"}, "userName"},
		{map[string]any{"userName": "v9", "currentPassword": "whatever-1"}, "currentPassword"},
	} {
		r := wantProblem(t, p.do("POST", "/api/v1/users", admin, tc.body), 400, "urn:pbxd:problem:validation")
		if errs, _ := r.obj["errors"].([]any); len(errs) != 1 || errs[0].(map[string]any)["field"] != tc.field {
			t.Errorf("%v: errors %v, want the field %s", tc.body, r.obj["errors"], tc.field)
		}
	}
	if n := p.do("GET", "/api/v1/users", admin, nil).want(t, 200).num("total"); n != 3 {
		t.Errorf("%v users after the rejected creates, want 3", n)
	}
}

// TestUserListingViewsAndPaging covers fetchUsers: URI objects by default,
// full users with fields=*, subresources with subresources=*, search, and
// paging through next and previous links.
func TestUserListingViewsAndPaging(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	first := []string{"Maria", "Mario", "Marek", "Olga", "Omar", "Oscar", "Paula", "Pedro", "Petra", "Quinn", "Rosa", "Rudi"}
	ids := map[string]bool{}
	for i, fn := range first {
		id := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": fmt.Sprintf("pg%02d@example.com", i),
			"firstName": fn, "lastName": fmt.Sprintf("Team%c", 'A'+i%3), "extension": fmt.Sprint(7100 + i)}).want(t, 201).str("id")
		ids["/api/v1/users/"+id] = true
	}
	sk := p.do("POST", "/api/v1/skills", admin, map[string]any{"name": "Billing"}).want(t, 201).str("id")
	rosa := p.userID(t, admin, "pg10@example.com")
	p.do("POST", "/api/v1/users/"+rosa+"/skills", admin, map[string]any{"skillId": sk, "proficiency": 8}).want(t, 200)
	p.do("POST", "/api/v1/users/"+rosa+"/devices", admin, map[string]any{"name": "desk", "username": "rosa-desk"}).want(t, 201)

	// Default: URIs that resolve.
	r := p.do("GET", "/api/v1/users", admin, nil).want(t, 200)
	if r.num("total") != 13 || r.num("count") != 13 || r.obj["next"] != nil || r.obj["previous"] != nil {
		t.Fatalf("envelope: %s", r.raw)
	}
	for _, o := range objects(t, r) {
		uri, ok := o.(string)
		if !ok {
			t.Fatalf("default object is not a URI: %v", o)
		}
		p.do("GET", uri, admin, nil).want(t, 200)
	}
	// fields=*: users without subresources; subresources=*: with them.
	for _, o := range objects(t, p.do("GET", "/api/v1/users?fields=*", admin, nil).want(t, 200)) {
		u := o.(map[string]any)
		if u["userName"] == nil || u["skills"] != nil || u["devices"] != nil {
			t.Fatalf("fields=* object: %v", u)
		}
	}
	withSub := p.do("GET", "/api/v1/users?subresources=*&q=rosa", admin, nil).want(t, 200)
	objs := objects(t, withSub)
	if len(objs) != 1 {
		t.Fatalf("q=rosa: %s", withSub.raw)
	}
	u := objs[0].(map[string]any)
	skills, _ := u["skills"].([]any)
	devices, _ := u["devices"].([]any)
	if len(skills) != 1 || skills[0].(map[string]any)["name"] != "Billing" || skills[0].(map[string]any)["proficiency"] != 8.0 ||
		len(devices) != 1 || devices[0].(map[string]any)["username"] != "rosa-desk" || devices[0].(map[string]any)["password"] != nil {
		t.Fatalf("subresources=* object: %v", u)
	}
	for _, o := range objects(t, p.do("GET", "/api/v1/users?subresources=*", admin, nil).want(t, 200)) {
		u := o.(map[string]any)
		if _, ok := u["skills"].([]any); !ok {
			t.Fatalf("subresources=* object without a skills array: %v", u)
		}
		if _, ok := u["devices"].([]any); !ok {
			t.Fatalf("subresources=* object without a devices array: %v", u)
		}
	}

	// Search: case-insensitive over userName, first and last name and
	// extension; several words must all match.
	for _, tc := range []struct {
		q    string
		want int
	}{
		{"MAR", 4}, {"mario", 1}, {"teamb", 4}, {"TEAMB omar", 1}, {"7105", 1}, {"710", 10}, {"PG0", 10},
		{"EXAMPLE.COM", 12}, {"nobody-here", 0}, {"maria teamc", 0}, {"admin", 1},
	} {
		r := p.do("GET", "/api/v1/users?q="+url.QueryEscape(tc.q), admin, nil).want(t, 200)
		if int(r.num("total")) != tc.want || len(objects(t, r)) != tc.want {
			t.Errorf("q=%q: total %v, %d objects, want %d", tc.q, r.obj["total"], len(objects(t, r)), tc.want)
		}
	}

	// Paging: follow next to the end, then previous back to the start.
	var pages [][]string
	path := "/api/v1/users?rows=5&fields=*"
	for path != "" {
		r := p.do("GET", path, admin, nil).want(t, 200)
		if r.num("total") != 13 {
			t.Fatalf("total %v on %s", r.obj["total"], path)
		}
		var page []string
		for _, o := range objects(t, r) {
			u, ok := o.(map[string]any)
			if !ok {
				t.Fatalf("%s lost fields=*: %v", path, o)
			}
			page = append(page, u["uri"].(string))
		}
		if int(r.num("count")) != len(page) {
			t.Fatalf("count %v for %d objects", r.obj["count"], len(page))
		}
		pages = append(pages, page)
		if len(pages) == 1 && r.obj["previous"] != nil {
			t.Fatalf("first page has a previous link: %v", r.obj["previous"])
		}
		next, _ := r.obj["next"].(string)
		if next != "" && !strings.Contains(next, "fields=") {
			t.Fatalf("next link %q drops fields", next)
		}
		path = next
		if len(pages) > 10 {
			t.Fatal("next links do not end")
		}
	}
	if len(pages) != 3 || len(pages[0]) != 5 || len(pages[1]) != 5 || len(pages[2]) != 3 {
		t.Fatalf("page sizes: %v", pages)
	}
	seen := map[string]bool{}
	for _, pg := range pages {
		for _, uri := range pg {
			if seen[uri] {
				t.Fatalf("%s on two pages", uri)
			}
			seen[uri] = true
		}
	}
	for uri := range ids {
		if !seen[uri] {
			t.Fatalf("%s never listed", uri)
		}
	}
	last := p.do("GET", "/api/v1/users?rows=5&start=10&fields=*", admin, nil).want(t, 200)
	for i := 2; i > 0; i-- {
		prev, _ := last.obj["previous"].(string)
		if prev == "" {
			t.Fatalf("page %d has no previous link: %s", i, last.raw)
		}
		last = p.do("GET", prev, admin, nil).want(t, 200)
		var got []string
		for _, o := range objects(t, last) {
			got = append(got, o.(map[string]any)["uri"].(string))
		}
		if !slices.Equal(got, pages[i-1]) {
			t.Fatalf("previous of page %d gives %v, want %v", i, got, pages[i-1])
		}
	}
	// Search results page the same way, and the links keep the query.
	r = p.do("GET", "/api/v1/users?q=pg&rows=4", admin, nil).want(t, 200)
	n := len(objects(t, r))
	for next, _ := r.obj["next"].(string); next != ""; next, _ = r.obj["next"].(string) {
		if !strings.Contains(next, "q=pg") {
			t.Fatalf("next link %q drops q", next)
		}
		r = p.do("GET", next, admin, nil).want(t, 200)
		n += len(objects(t, r))
	}
	if n != 12 {
		t.Fatalf("paged search found %d, want 12", n)
	}
	// Past the end: an empty page, not an error.
	r = p.do("GET", "/api/v1/users?start=500", admin, nil).want(t, 200)
	if r.num("count") != 0 || r.num("total") != 13 || !strings.Contains(string(r.raw), `"objects":[]`) || r.obj["next"] != nil {
		t.Fatalf("past the end: %s", r.raw)
	}
	p.do("GET", "/api/v1/users?rows=1000", admin, nil).want(t, 200)

	for _, bad := range []string{"rows=0", "rows=abc", "rows=-5", "rows=1001", "rows=1.5", "start=-1", "start=x", "start=99999999999999999999999",
		"rows=1&rows=2", "q=a&q=b", "q=" + strings.Repeat("a", 201), "fields=all", "subresources=skills", "sort=userName"} {
		wantProblem(t, p.do("GET", "/api/v1/users?"+bad, admin, nil), 400, "urn:pbxd:problem:validation")
	}
}

// TestUserIndexesFollowChanges checks that unique names, extensions and
// the search directory follow renames, changes and deletions.
func TestUserIndexesFollowChanges(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	u1 := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "idx1", "firstName": "Oldname", "extension": "3001",
		"password": "idx1-password"}).want(t, 201).str("id")

	// A changed extension frees the old one and takes the new one.
	p.do("POST", "/api/v1/users/"+u1, admin, map[string]any{"extension": "3002"}).want(t, 200)
	u2 := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "idx2", "extension": "3001"}).want(t, 201).str("id")
	wantProblem(t, p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "idx3", "extension": "3002"}), 409, "urn:pbxd:problem:conflict")
	wantProblem(t, p.do("POST", "/api/v1/users/"+u2, admin, map[string]any{"extension": "3002"}), 409, "urn:pbxd:problem:conflict")
	wantProblem(t, p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "IDX1"}), 409, "urn:pbxd:problem:conflict")
	// Setting one's own extension again is not a conflict.
	p.do("POST", "/api/v1/users/"+u1, admin, map[string]any{"extension": "3002"}).want(t, 200)
	if r := p.do("GET", "/api/v1/users?q=3002", admin, nil).want(t, 200); r.num("total") != 1 {
		t.Fatalf("q=3002: %s", r.raw)
	}
	if r := p.do("GET", "/api/v1/users?q=3001&fields=*", admin, nil).want(t, 200); r.num("total") != 1 || objects(t, r)[0].(map[string]any)["id"] != u2 {
		t.Fatalf("q=3001: %s", r.raw)
	}

	// The search directory follows a renamed first name.
	p.do("PUT", "/api/v1/users/"+u1, admin, map[string]any{"firstName": "Newname"}).want(t, 200)
	if r := p.do("GET", "/api/v1/users?q=oldname", admin, nil).want(t, 200); r.num("total") != 0 {
		t.Fatalf("old first name still found: %s", r.raw)
	}
	if r := p.do("GET", "/api/v1/users?q=NEWNAME", admin, nil).want(t, 200); r.num("total") != 1 {
		t.Fatalf("new first name not found: %s", r.raw)
	}

	// Deleting a user frees the name, the extension, the device usernames,
	// and ends the sessions.
	sk := p.do("POST", "/api/v1/skills", admin, map[string]any{"name": "Chat"}).want(t, 201).str("id")
	p.do("POST", "/api/v1/users/"+u1+"/skills", admin, map[string]any{"skillId": sk}).want(t, 200)
	p.do("POST", "/api/v1/users/"+u1+"/devices", admin, map[string]any{"name": "desk", "username": "idx1-desk"}).want(t, 201)
	tok := p.login("idx1", "idx1-password")
	sessions, _ := p.metric(t, "pbxd_sessions")
	p.do("DELETE", "/api/v1/users/"+u1, admin, nil).want(t, 204)
	wantProblem(t, p.do("DELETE", "/api/v1/users/"+u1, admin, nil), 404, "urn:pbxd:problem:not-found")
	wantProblem(t, p.do("GET", "/api/v1/users/"+u1, admin, nil), 404, "urn:pbxd:problem:not-found")
	wantProblem(t, p.do("GET", "/api/v1/users/"+u1+"/devices", admin, nil), 404, "urn:pbxd:problem:not-found")
	wantProblem(t, p.do("GET", "/api/v1/sessions/current", tok, nil), 401, "urn:pbxd:problem:unauthorized")
	if after, _ := p.metric(t, "pbxd_sessions"); after != sessions-1 {
		t.Errorf("pbxd_sessions %v after deleting a logged-in user, was %v", after, sessions)
	}
	if r := p.do("GET", "/api/v1/users?q=newname", admin, nil).want(t, 200); r.num("total") != 0 {
		t.Fatalf("deleted user still found: %s", r.raw)
	}
	again := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "Idx1", "extension": "3002"}).want(t, 201).str("id")
	if again == u1 {
		t.Fatal("a new user got the deleted user's id")
	}
	p.do("POST", "/api/v1/users/"+u2+"/devices", admin, map[string]any{"name": "desk", "username": "idx1-desk"}).want(t, 201)
	// The skill that the deleted user held can still be deleted.
	p.do("DELETE", "/api/v1/skills/"+sk, admin, nil).want(t, 204)
	if r := p.do("GET", "/api/v1/users", admin, nil).want(t, 200); r.num("total") != 3 {
		t.Fatalf("total after delete and re-create: %s", r.raw)
	}
}

// TestDevicesLifecycle covers a user's SIP devices: the password is
// returned once, never again, and neither are its HA1 hashes.
func TestDevicesLifecycle(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "dora", "password": "dora-password-1"}).want(t, 201).str("id")
	other := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "otto"}).want(t, 201).str("id")

	r := p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "Desk phone", "username": "dora-desk"}).want(t, 201)
	gen, did := r.str("password"), r.str("id")
	if !regexp.MustCompile(`^[A-Za-z0-9]{20}$`).MatchString(gen) {
		t.Fatalf("generated device password %q", gen)
	}
	if r.str("username") != "dora-desk" || r.str("userId") != uid || r.str("realm") != "pbxd" || r.header.Get("Location") != r.str("uri") ||
		r.str("uri") != "/api/v1/users/"+uid+"/devices/"+did {
		t.Fatalf("create device: %v %s", r.header, r.raw)
	}
	r2 := p.do("POST", "/api/v1/users/"+uid+"/devices", admin, map[string]any{"name": "Soft", "username": "dora-soft", "password": "Soft-phone-pw1"}).want(t, 201)
	secrets := []string{gen, "Soft-phone-pw1", ha1(md5Hex, "dora-desk", gen), ha1(sha256Hex, "dora-desk", gen),
		ha1(md5Hex, "dora-soft", "Soft-phone-pw1"), ha1(sha256Hex, "dora-soft", "Soft-phone-pw1")}
	agent := p.login("dora", "dora-password-1")
	for _, rd := range []struct{ path, tok string }{
		{"/api/v1/users/" + uid + "/devices", admin},
		{"/api/v1/users/" + uid + "/devices", agent},
		{"/api/v1/users/" + uid + "/devices/" + did, admin},
		{"/api/v1/users/" + uid + "?subresources=*", admin},
		{"/api/v1/users?subresources=*", agent},
		{"/api/v1/audit?rows=100", admin},
	} {
		body := string(p.do("GET", rd.path, rd.tok, nil).want(t, 200).raw)
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("GET %s shows a device secret", rd.path)
			}
		}
		if strings.Contains(body, `"password"`) || strings.Contains(strings.ToLower(body), "ha1") {
			t.Errorf("GET %s shows secret members: %s", rd.path, body)
		}
	}
	list := p.do("GET", "/api/v1/users/"+uid+"/devices", admin, nil).want(t, 200)
	if list.num("total") != 2 || list.num("count") != 2 {
		t.Fatalf("devices: %s", list.raw)
	}
	// A device is found only under its own user.
	wantProblem(t, p.do("GET", "/api/v1/users/"+other+"/devices/"+did, admin, nil), 404, "")
	wantProblem(t, p.do("DELETE", "/api/v1/users/"+other+"/devices/"+did, admin, nil), 404, "")
	wantProblem(t, p.do("GET", "/api/v1/users/"+uid+"/devices/0123456789abcdef", admin, nil), 404, "")
	wantProblem(t, p.do("POST", "/api/v1/users/0123456789abcdef/devices", admin, map[string]any{"name": "x", "username": "nobodys"}), 404, "")

	// SIP usernames are unique on the box, whoever owns the device.
	wantProblem(t, p.do("POST", "/api/v1/users/"+other+"/devices", admin, map[string]any{"name": "x", "username": "dora-desk"}), 409, "urn:pbxd:problem:conflict")
	for _, bad := range []map[string]any{
		{"username": "no-name"},
		{"name": "x"},
		{"name": "x", "username": "has space"},
		{"name": "x", "username": "-leading"},
		{"name": "x", "username": "ok1", "password": "short"},
		{"name": "x", "username": "ok2", "password": `quote"inside1`},
		{"name": "two\nlines", "username": "ok3"},
	} {
		wantProblem(t, p.do("POST", "/api/v1/users/"+other+"/devices", admin, bad), 400, "")
	}
	// Agents read devices but do not manage them.
	wantProblem(t, p.do("POST", "/api/v1/users/"+uid+"/devices", agent, map[string]any{"name": "mine", "username": "dora-3"}), 403, "urn:pbxd:problem:forbidden")
	wantProblem(t, p.do("DELETE", "/api/v1/users/"+uid+"/devices/"+did, agent, nil), 403, "urn:pbxd:problem:forbidden")

	p.do("DELETE", "/api/v1/users/"+uid+"/devices/"+did, admin, nil).want(t, 204)
	wantProblem(t, p.do("DELETE", "/api/v1/users/"+uid+"/devices/"+did, admin, nil), 404, "")
	wantProblem(t, p.do("GET", "/api/v1/users/"+uid+"/devices/"+did, admin, nil), 404, "")
	if r := p.do("GET", "/api/v1/users/"+uid+"/devices", admin, nil).want(t, 200); r.num("total") != 1 || !strings.Contains(string(r.raw), r2.str("id")) {
		t.Fatalf("after delete: %s", r.raw)
	}
	// The username is free again.
	p.do("POST", "/api/v1/users/"+other+"/devices", admin, map[string]any{"name": "reuse", "username": "dora-desk"}).want(t, 201)
}

func md5Hex(s string) string    { h := md5.Sum([]byte(s)); return hex.EncodeToString(h[:]) }
func sha256Hex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

// ha1 is a device's digest HA1 in the default realm.
func ha1(h func(string) string, user, pw string) string { return h(user + ":pbxd:" + pw) }

// TestSkillsLifecycle covers the skill catalogue and users' skills.
func TestSkillsLifecycle(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	uid := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "sam", "password": "sam-password-1"}).want(t, 201).str("id")
	agent := p.login("sam", "sam-password-1")

	r := p.do("POST", "/api/v1/skills", admin, map[string]any{"name": "Spanish", "description": "Speaks Spanish"}).want(t, 201)
	es := r.str("id")
	if r.str("name") != "Spanish" || r.str("description") != "Speaks Spanish" || r.header.Get("Location") != "/api/v1/skills/"+es {
		t.Fatalf("create skill: %s", r.raw)
	}
	fr := p.do("POST", "/api/v1/skills", admin, map[string]any{"name": "French"}).want(t, 201).str("id")
	wantProblem(t, p.do("POST", "/api/v1/skills", admin, map[string]any{"name": "Spanish"}), 409, "urn:pbxd:problem:conflict")
	wantProblem(t, p.do("POST", "/api/v1/skills", admin, map[string]any{"name": "  "}), 400, "")
	wantProblem(t, p.do("POST", "/api/v1/skills", agent, map[string]any{"name": "Agentish"}), 403, "urn:pbxd:problem:forbidden")
	if r := p.do("GET", "/api/v1/skills", agent, nil).want(t, 200); r.num("total") != 2 {
		t.Fatalf("skills: %s", r.raw)
	}
	p.do("GET", "/api/v1/skills/"+es, agent, nil).want(t, 200)

	// Assign, change the proficiency, see it with subresources=*.
	r = p.do("POST", "/api/v1/users/"+uid+"/skills", admin, map[string]any{"skillId": es, "proficiency": 7}).want(t, 200)
	if r.str("name") != "Spanish" || r.num("proficiency") != 7 {
		t.Fatalf("assign: %s", r.raw)
	}
	p.do("POST", "/api/v1/users/"+uid+"/skills", admin, map[string]any{"skillId": fr}).want(t, 200)
	p.do("POST", "/api/v1/users/"+uid+"/skills", admin, map[string]any{"skillId": es, "proficiency": 9}).want(t, 200)
	userSkills := func() map[string]float64 {
		t.Helper()
		out := map[string]float64{}
		u := p.do("GET", "/api/v1/users/"+uid+"?subresources=*", agent, nil).want(t, 200)
		for _, s := range u.obj["skills"].([]any) {
			m := s.(map[string]any)
			out[m["name"].(string)] = m["proficiency"].(float64)
		}
		l := p.do("GET", "/api/v1/users/"+uid+"/skills", agent, nil).want(t, 200)
		if int(l.num("total")) != len(out) {
			t.Fatalf("/skills of the user disagrees with subresources=*: %s", l.raw)
		}
		return out
	}
	if got := userSkills(); len(got) != 2 || got["Spanish"] != 9 || got["French"] != 5 {
		t.Fatalf("user skills %v", got)
	}
	// The user sees their skills in their session too.
	if s := p.do("GET", "/api/v1/sessions/current", agent, nil).want(t, 200); !strings.Contains(string(s.raw), es) {
		t.Fatalf("session lacks the skills: %s", s.raw)
	}
	for _, bad := range []map[string]any{
		{"skillId": es, "proficiency": 0},
		{"skillId": es, "proficiency": 11},
		{"skillId": "0123456789abcdef"},
		{"skillId": "not-an-id"},
		{},
	} {
		wantProblem(t, p.do("POST", "/api/v1/users/"+uid+"/skills", admin, bad), 400, "")
	}
	wantProblem(t, p.do("POST", "/api/v1/users/"+uid+"/skills", agent, map[string]any{"skillId": es}), 403, "urn:pbxd:problem:forbidden")
	wantProblem(t, p.do("POST", "/api/v1/users/0123456789abcdef/skills", admin, map[string]any{"skillId": es}), 404, "")

	// Take one away; delete the other from the catalogue.
	p.do("DELETE", "/api/v1/users/"+uid+"/skills/"+fr, admin, nil).want(t, 204)
	wantProblem(t, p.do("DELETE", "/api/v1/users/"+uid+"/skills/"+fr, admin, nil), 404, "")
	if got := userSkills(); len(got) != 1 || got["Spanish"] != 9 {
		t.Fatalf("after unassign: %v", got)
	}
	p.do("DELETE", "/api/v1/skills/"+es, admin, nil).want(t, 204)
	wantProblem(t, p.do("GET", "/api/v1/skills/"+es, admin, nil), 404, "")
	if got := userSkills(); len(got) != 0 {
		t.Fatalf("a deleted skill is still held: %v", got)
	}
	if s := p.do("GET", "/api/v1/sessions/current", agent, nil).want(t, 200); strings.Contains(string(s.raw), es) {
		t.Fatalf("the session still lists a deleted skill: %s", s.raw)
	}
	// The name is free again.
	p.do("POST", "/api/v1/skills", admin, map[string]any{"name": "Spanish"}).want(t, 201)
}

// TestAgentPermissions checks what ROLE_AGENT may and may not do.
func TestAgentPermissions(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	me := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "agent7", "password": "agent7-pass-1", "firstName": "Ada",
		"extension": "700"}).want(t, 201).str("id")
	peer := p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "agent8", "firstName": "Bob"}).want(t, 201).str("id")
	adminID := p.userID(t, admin, "admin")
	dev := p.do("POST", "/api/v1/users/"+peer+"/devices", admin, map[string]any{"name": "d", "username": "agent8-d"}).want(t, 201).str("id")
	agent := p.login("agent7", "agent7-pass-1")
	second := p.login("agent7", "agent7-pass-1")

	// Reading the directory is allowed.
	for _, path := range []string{"/api/v1/users", "/api/v1/users?fields=*", "/api/v1/users/" + peer, "/api/v1/users/" + adminID,
		"/api/v1/users/" + me + "?subresources=*", "/api/v1/users/" + peer + "/devices", "/api/v1/skills", "/api/v1/sessions/current"} {
		p.do("GET", path, agent, nil).want(t, 200)
	}
	// Own first and last name: yes.
	r := p.do("POST", "/api/v1/users/"+me, agent, map[string]any{"firstName": "Adele", "lastName": "Smith"}).want(t, 200)
	if r.str("firstName") != "Adele" || r.str("lastName") != "Smith" {
		t.Fatalf("own names: %s", r.raw)
	}
	p.do("PUT", "/api/v1/users/"+me, agent, map[string]any{"lastName": "Jones"}).want(t, 200)

	forbidden := []struct {
		method, path string
		body         any
	}{
		{"POST", "/api/v1/users/" + me, map[string]any{"roles": []string{"ROLE_ADMIN"}}},
		{"POST", "/api/v1/users/" + me, map[string]any{"roles": []string{"ROLE_AGENT"}}},
		{"POST", "/api/v1/users/" + me, map[string]any{"extension": "701"}},
		{"POST", "/api/v1/users/" + me, map[string]any{"enabled": false}},
		{"POST", "/api/v1/users/" + me, map[string]any{"timezone": "Europe/Paris"}},
		{"POST", "/api/v1/users/" + me, map[string]any{"changePasswordOnFirstLogin": true}},
		{"POST", "/api/v1/users/" + me, map[string]any{"firstName": "Ok", "extension": "702"}},
		{"PUT", "/api/v1/users/" + me, map[string]any{"roles": []string{"ROLE_ADMIN", "ROLE_AGENT"}}},
		{"POST", "/api/v1/users/" + peer, map[string]any{"firstName": "Hacked"}},
		{"PUT", "/api/v1/users/" + peer, map[string]any{"password": "hijacked-pass-1"}},
		{"POST", "/api/v1/users/" + adminID, map[string]any{"lastName": "Hacked"}},
		{"POST", "/api/v1/users", map[string]any{"userName": "sneaky"}},
		{"DELETE", "/api/v1/users/" + peer, nil},
		{"DELETE", "/api/v1/users/" + me, nil},
		{"GET", "/api/v1/service-users", nil},
		{"POST", "/api/v1/service-users", map[string]any{"name": "mine"}},
		{"GET", "/api/v1/audit", nil},
		{"GET", "/api/v1/registrations", nil},
		{"POST", "/api/v1/skills", map[string]any{"name": "x"}},
		{"POST", "/api/v1/users/" + me + "/devices", map[string]any{"name": "x", "username": "agent7-x"}},
		{"DELETE", "/api/v1/users/" + peer + "/devices/" + dev, nil},
	}
	for _, f := range forbidden {
		if why := problemOK(p.do(f.method, f.path, agent, f.body), 403, "urn:pbxd:problem:forbidden"); why != "" {
			t.Errorf("agent %s %s %v: %s", f.method, f.path, f.body, why)
		}
	}
	// Nothing of that happened.
	if r := p.do("GET", "/api/v1/users/"+me, admin, nil).want(t, 200); fmt.Sprint(r.obj["roles"]) != "[ROLE_AGENT]" || r.str("extension") != "700" || r.obj["enabled"] != true {
		t.Fatalf("the agent changed protected fields: %s", r.raw)
	}
	if r := p.do("GET", "/api/v1/users/"+peer, admin, nil).want(t, 200); r.str("firstName") != "Bob" {
		t.Fatalf("the agent changed another user: %s", r.raw)
	}
	if r := p.do("GET", "/api/v1/users", admin, nil).want(t, 200); r.num("total") != 3 {
		t.Fatalf("users: %s", r.raw)
	}

	// Own password: needs the current one.
	wantProblem(t, p.do("POST", "/api/v1/users/"+me, agent, map[string]any{"password": "agent7-pass-2"}), 400, "")
	wantProblem(t, p.do("POST", "/api/v1/users/"+me, agent, map[string]any{"currentPassword": "not-my-password", "password": "agent7-pass-2"}), 403, "")
	wantProblem(t, p.do("POST", "/api/v1/users/"+me, agent, map[string]any{"currentPassword": "agent7-pass-1", "password": "short"}), 400, "")
	wantProblem(t, p.do("POST", "/api/v1/users/"+me, agent, map[string]any{"currentPassword": "agent7-pass-1"}), 400, "")
	p.do("GET", "/api/v1/sessions/current", second, nil).want(t, 200) // failed attempts revoke nothing
	p.do("POST", "/api/v1/users/"+me, agent, map[string]any{"currentPassword": "agent7-pass-1", "password": "agent7-pass-2"}).want(t, 200)
	p.do("GET", "/api/v1/sessions/current", agent, nil).want(t, 200)
	wantProblem(t, p.do("GET", "/api/v1/sessions/current", second, nil), 401, "urn:pbxd:problem:unauthorized")
	p.do("POST", "/api/v1/login", "", map[string]string{"username": "agent7", "password": "agent7-pass-1"}).want(t, 401)
	p.login("agent7", "agent7-pass-2")

	// A user without roles sees only themselves.
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "norole", "password": "norole-pass-1", "roles": []string{}}).want(t, 201)
	nr := p.login("norole", "norole-pass-1")
	nrID := p.do("GET", "/api/v1/sessions/current", nr, nil).want(t, 200).str("userId")
	p.do("GET", "/api/v1/users/"+nrID, nr, nil).want(t, 200)
	wantProblem(t, p.do("GET", "/api/v1/users", nr, nil), 403, "urn:pbxd:problem:forbidden")
	wantProblem(t, p.do("GET", "/api/v1/users/"+me, nr, nil), 403, "urn:pbxd:problem:forbidden")
}

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

// TestSearchNonASCIINames: the case-insensitive search finds names by
// their own spelling, whatever the script.
func TestSearchNonASCIINames(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	for i, u := range [][2]string{{"İbrahim", "Yılmaz"}, {"José", "Núñez"}, {"Jürgen", "GROẞ"}, {"Øystein", "Ødegård"}, {"Дмитрий", "Иванов"}} {
		p.do("POST", "/api/v1/users", admin, map[string]any{"userName": fmt.Sprintf("intl%d", i), "firstName": u[0], "lastName": u[1]}).want(t, 201)
	}
	for _, q := range []string{"İbrahim", "İBRAHİM", "Yılmaz", "josé", "JOSÉ", "núñez", "jürgen", "JÜRGEN", "GROẞ", "øystein", "ØDEGÅRD",
		"дмитрий", "ИВАНОВ", "Иванов"} {
		r := p.do("GET", "/api/v1/users?q="+url.QueryEscape(q), admin, nil).want(t, 200)
		if r.num("total") != 1 {
			t.Errorf("q=%q finds %v users, want 1", q, r.obj["total"])
		}
	}
}
