package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
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
