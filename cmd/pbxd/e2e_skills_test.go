package main

import (
	"strings"
	"testing"
)

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
