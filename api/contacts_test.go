package api

import (
	"net/url"
	"strings"
	"testing"

	"pbxd/store"
)

func TestContactsAPI(t *testing.T) {
	pp := newPeople(t)
	ts := pp.ts
	mk := func(tok string, body map[string]any, want int) contactView {
		t.Helper()
		code, data := ts.do(t, "POST", "/api/v1/contacts", tok, body)
		if code != want {
			t.Fatalf("create %v: %d %s", body, code, data)
		}
		if code != 201 {
			return contactView{}
		}
		return decode[contactView](t, data)
	}
	ann := mk(pp.agentTok, map[string]any{"firstName": "Ann", "lastName": "Archer", "company": "Acme GmbH", "email": "ann@acme.example",
		"timezone": "Europe/Berlin", "numbers": []map[string]string{{"type": "mobile", "number": "+49 170 1234567"}},
		"properties": map[string]string{"crmId": "A-1"}}, 201)
	if ann.Name != "Ann Archer" || ann.Timezone != "Europe/Berlin" || ann.Properties["crmId"] != "A-1" || ann.CreatedBy != pp.agent {
		t.Fatalf("created %+v", ann)
	}
	mk(pp.supTok, map[string]any{"company": "Bolt Ltd", "numbers": []map[string]string{{"type": "work", "number": "+44 20 7946 0000"}}}, 201)
	mk(ts.adminToken, map[string]any{"firstName": "Zoë", "lastName": "Zimmer", "email": "zoe@example.org"}, 201)
	// Who may write and what is valid.
	mk(pp.readerTok, map[string]any{"firstName": "X"}, 403)
	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{}, "lastName"},
		{map[string]any{"firstName": "A", "email": "Ann <ann@x.example>"}, "email"},
		{map[string]any{"firstName": "A", "email": "not-an-email"}, "email"},
		{map[string]any{"firstName": "A", "timezone": "Mars/Olympus"}, "timezone"},
		{map[string]any{"firstName": "A", "timezone": "Local"}, "timezone"},
		{map[string]any{"firstName": "A", "numbers": []map[string]string{{"type": "mobile", "number": "call me"}}}, "numbers"},
		{map[string]any{"firstName": "A", "numbers": []map[string]string{{"type": "Mobile Phone", "number": "123"}}}, "numbers"},
		{map[string]any{"firstName": "A", "properties": map[string]string{"bad key": "v"}}, "properties"},
		{map[string]any{"firstName": "two\nlines"}, "firstName"},
	} {
		code, body := ts.do(t, "POST", "/api/v1/contacts", pp.agentTok, tc.body)
		if code != 400 || !strings.Contains(string(body), `"field":"`+tc.field+`"`) {
			t.Errorf("%v: %d %s", tc.body, code, body)
		}
	}
	// Search: names, company, email, numbers (digits, with or without +).
	for _, tc := range []struct {
		q    string
		want int
	}{
		{"", 3}, {"ann", 1}, {"ACME", 1}, {"acme.example", 1}, {"1701234", 1}, {"+49170", 1}, {"+44 20", 1},
		{"zoë", 1}, {"ZOË zimmer", 1}, {"example", 2}, {"nobody", 0}, {"ann bolt", 0},
	} {
		code, body := ts.do(t, "GET", "/api/v1/contacts?q="+url.QueryEscape(tc.q), pp.agentTok, nil)
		if env := decode[listEnvelope](t, body); code != 200 || env.Total != tc.want {
			t.Errorf("q=%q: %d total %d, want %d", tc.q, code, env.Total, tc.want)
		}
	}
	code, body := ts.do(t, "GET", "/api/v1/contacts?rows=1", pp.readerTok, nil)
	env := decode[struct {
		Total    int
		Next     *string
		Objects  []contactView
		Previous *string
	}](t, body)
	if code != 200 || env.Total != 3 || env.Next == nil || env.Objects[0].LastName != "" || env.Objects[0].Company != "Bolt Ltd" {
		// Ordered by last name: "" (Bolt Ltd), Archer, Zimmer.
		t.Fatalf("listing: %d %s", code, body)
	}
	// Update: members sent change, numbers replace the set; the number
	// index follows.
	code, body = ts.do(t, "PUT", "/api/v1/contacts/"+ann.ID, pp.agentTok, map[string]any{"numbers": []map[string]string{{"type": "work", "number": "+49 30 555"}}})
	if v := decode[contactView](t, body); code != 200 || len(v.Numbers) != 1 || v.FirstName != "Ann" || v.ModifiedBy != pp.agent {
		t.Fatalf("update: %d %s", code, body)
	}
	var found *store.Contact
	ts.st.View(func(tx *store.Tx) (err error) { found, err = tx.ContactByNumber("4930555"); return err })
	if found == nil || found.ID != ann.ID {
		t.Fatal("number index not updated")
	}
	// Only admins delete.
	if code, _ := ts.do(t, "DELETE", "/api/v1/contacts/"+ann.ID, pp.agentTok, nil); code != 403 {
		t.Errorf("agent deleted: %d", code)
	}
	if code, _ := ts.do(t, "DELETE", "/api/v1/contacts/"+ann.ID, ts.adminToken, nil); code != 204 {
		t.Errorf("admin delete: %d", code)
	}
	if code, _ := ts.do(t, "GET", "/api/v1/contacts/"+ann.ID, pp.agentTok, nil); code != 404 {
		t.Errorf("deleted contact: %d", code)
	}
	body = ts.mustGet(t, "/api/v1/audit?rows=100", ts.adminToken)
	for _, a := range []string{"contact.create", "contact.update", "contact.delete"} {
		if !strings.Contains(string(body), `"action":"`+a+`"`) {
			t.Errorf("no %s in the audit log", a)
		}
	}
}

func TestQueuesAndCampaignsAPI(t *testing.T) {
	pp := newPeople(t)
	ts := pp.ts
	code, body := ts.do(t, "POST", "/api/v1/skills", ts.adminToken, map[string]any{"name": "German"})
	if code != 201 {
		t.Fatal(code)
	}
	skill := decode[skillView](t, body).ID
	for _, tc := range []struct {
		token, method, path string
		body                any
		want                int
	}{
		{pp.agentTok, "GET", "/api/v1/queues", nil, 200},
		{pp.readerTok, "GET", "/api/v1/queues/" + pp.queue, nil, 200},
		{pp.agentTok, "POST", "/api/v1/queues", map[string]any{"name": "Q2"}, 403},
		{pp.supTok, "PUT", "/api/v1/queues/" + pp.queue, map[string]any{"priority": 1}, 403},
		{ts.adminToken, "POST", "/api/v1/queues", map[string]any{"name": "sales"}, 409},
		{ts.adminToken, "POST", "/api/v1/queues", map[string]any{"name": ""}, 400},
		{ts.adminToken, "POST", "/api/v1/queues", map[string]any{"name": "Q2", "skills": []map[string]any{{"skillId": store.NewID()}}}, 400},
		{ts.adminToken, "POST", "/api/v1/queues", map[string]any{"name": "Q2", "skills": []map[string]any{{"skillId": skill, "minProficiency": 11}}}, 400},
		{ts.adminToken, "POST", "/api/v1/queues", map[string]any{"name": "Q2", "priority": -1}, 400},
		{ts.adminToken, "PUT", "/api/v1/queues/" + pp.queue, map[string]any{"description": "Sales line", "skills": []map[string]any{{"skillId": skill, "minProficiency": 6}}}, 200},
		{ts.adminToken, "PUT", "/api/v1/queues/" + store.NewID(), map[string]any{"priority": 1}, 404},

		{pp.agentTok, "GET", "/api/v1/campaigns", nil, 200},
		{pp.agentTok, "POST", "/api/v1/campaigns", map[string]any{"name": "C"}, 403},
		{ts.adminToken, "POST", "/api/v1/campaigns", map[string]any{"name": "C", "callerId": "abc"}, 400},
		{ts.adminToken, "POST", "/api/v1/campaigns", map[string]any{"name": "C", "callingHours": map[string]any{"days": []int{7}, "start": "09:00", "end": "17:00"}}, 400},
		{ts.adminToken, "POST", "/api/v1/campaigns", map[string]any{"name": "C", "callingHours": map[string]any{"days": []int{}, "start": "09:00", "end": "17:00"}}, 400},
		{ts.adminToken, "POST", "/api/v1/campaigns", map[string]any{"name": "C", "callingHours": map[string]any{"days": []int{1}, "start": "9:00", "end": "17:00"}}, 400},
		{ts.adminToken, "POST", "/api/v1/campaigns", map[string]any{"name": "C", "callingHours": map[string]any{"days": []int{1}, "start": "09:00", "end": "09:00"}}, 400},
		{ts.adminToken, "POST", "/api/v1/campaigns", map[string]any{"name": "C", "callingHours": map[string]any{"days": []int{1}, "start": "09:00", "end": "24:00", "tz": "x"}}, 400},
		{ts.adminToken, "POST", "/api/v1/campaigns", map[string]any{"name": "C", "color": "red"}, 400},
	} {
		code, body := ts.do(t, tc.method, tc.path, tc.token, tc.body)
		if code != tc.want {
			t.Errorf("%s %s %v: %d, want %d: %s", tc.method, tc.path, tc.body, code, tc.want, body)
		}
	}
	body = ts.mustGet(t, "/api/v1/queues/"+pp.queue, pp.agentTok)
	if q := decode[queueView](t, body); len(q.Skills) != 1 || q.Skills[0].Name != "German" || q.Skills[0].MinProficiency != 6 || q.Description != "Sales line" {
		t.Fatalf("queue: %s", body)
	}
	// A campaign with calling hours across midnight, then without.
	code, body = ts.do(t, "POST", "/api/v1/campaigns", ts.adminToken, map[string]any{"name": "Late", "callerId": "+4930100", "callerName": "Acme",
		"callingHours": map[string]any{"days": []int{5, 1, 5}, "start": "22:00", "end": "02:00"}})
	c := decode[campaignView](t, body)
	if code != 201 || !c.Enabled || c.CallingHours == nil || len(c.CallingHours.Days) != 2 || c.CallingHours.Days[0] != 1 {
		t.Fatalf("campaign: %d %s", code, body)
	}
	code, body = ts.do(t, "PUT", "/api/v1/campaigns/"+c.ID, ts.adminToken, map[string]any{"enabled": false})
	if c2 := decode[campaignView](t, body); code != 200 || c2.Enabled || c2.CallingHours == nil {
		t.Fatalf("PUT without callingHours changed them: %s", body)
	}
	code, body = ts.do(t, "PUT", "/api/v1/campaigns/"+c.ID, ts.adminToken, []byte(`{"callingHours":null}`))
	if code != 200 || !strings.Contains(string(body), `"callingHours":null`) {
		t.Fatalf("callingHours null: %d %s", code, body)
	}
	var stored *store.Campaign
	ts.st.View(func(tx *store.Tx) (err error) { stored, err = tx.GetCampaign(c.ID); return err })
	if stored.CallingHours != nil || stored.CallerID != "+4930100" {
		t.Fatalf("stored %+v", stored)
	}
	// Deleting a queue takes it out of the logins.
	if code, _ := ts.do(t, "POST", "/api/v1/acd/login", pp.agentTok, map[string]any{"queues": []string{pp.queue}}); code != 200 {
		t.Fatal(code)
	}
	if code, _ := ts.do(t, "DELETE", "/api/v1/queues/"+pp.queue, ts.adminToken, nil); code != 204 {
		t.Fatal(code)
	}
	body = ts.mustGet(t, "/api/v1/users/"+pp.agent+"/acd", pp.agentTok)
	if v := decode[acdStateView](t, body); len(v.Queues) != 0 || !v.LoggedIn {
		t.Fatalf("after queue delete: %s", body)
	}
	if code, _ := ts.do(t, "DELETE", "/api/v1/campaigns/"+c.ID, ts.adminToken, nil); code != 204 {
		t.Fatal(code)
	}
	body = ts.mustGet(t, "/api/v1/audit?rows=100", ts.adminToken)
	for _, a := range []string{"queue.create", "queue.update", "queue.delete", "campaign.create", "campaign.update", "campaign.delete"} {
		if !strings.Contains(string(body), `"action":"`+a+`"`) {
			t.Errorf("no %s in the audit log", a)
		}
	}
}
