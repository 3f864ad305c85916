package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHistoryHoldsTheCallRecords: real calls from a SIPp phone leave call
// records; getHistory returns exactly the user's records of the range,
// newest first and field by field as /workitems shows them, for every
// range type, in the user's time zone; other users do not see them.
func TestHistoryHoldsTheCallRecords(t *testing.T) {
	t.Parallel()
	needSIPp(t)
	b := startCallBox(t, "--ring-timeout", "2s")
	// Kiritimati is UTC+14: "today" there is rarely today in UTC.
	carol := b.phoneUser("carol", "731", map[string]any{"password": "carol-pass-1", "timezone": "Pacific/Kiritimati"})
	b.phoneUser("frank", "734", map[string]any{"password": "frank-pass-1"}) // never registers
	for _, to := range []string{"734", "799", "734"} {
		runSIPpUACOK(t, b.caller("uac_rejected.xml", "carol-dev", to))
		b.lastWorkitem()
	}
	records := objects(t, b.do("GET", "/api/v1/workitems?userId="+carol+"&rows=100", b.admin, nil).want(t, 200))
	if len(records) != 3 {
		t.Fatalf("%d call records, want 3", len(records))
	}
	tok := b.login("carol", "carol-pass-1")
	loc, _ := time.LoadLocation("Pacific/Kiritimati")
	now := time.Now().In(loc)
	for _, rt := range []string{"today", "yesterday", "thisweek", "lastweek", "last3days", "last7days", "last30days", "thismonth", "lastmonth"} {
		h := b.do("GET", "/api/v1/history?rangeType="+rt+"&rows=100", tok, nil).want(t, 200)
		from, to := time.UnixMilli(int64(h.num("from"))), time.UnixMilli(int64(h.num("to")))
		if h.str("rangeType") != rt || !from.Before(to) || from.In(loc).Hour() != 0 || from.In(loc).Minute() != 0 {
			t.Errorf("%s: window %v – %v is not whole days in Kiritimati", rt, from.In(loc), to.In(loc))
		}
		var want []any
		for _, r := range records {
			at := time.UnixMilli(int64(r.(map[string]any)["createdAt"].(float64)))
			if !at.Before(from) && at.Before(to) {
				want = append(want, r)
			}
		}
		got := objects(t, h)
		if fmt.Sprint(got) != fmt.Sprint(want) || h.num("total") != float64(len(want)) {
			t.Errorf("%s: history %v\nwant the call records %v", rt, got, want)
		}
		inRange := !now.Before(from) && now.Before(to)
		if wantNow := slices.Contains([]string{"today", "thisweek", "last3days", "last7days", "last30days", "thismonth"}, rt); inRange != wantNow {
			t.Errorf("%s: now (%v) in [%v, %v) = %v", rt, now, from.In(loc), to.In(loc), inRange)
		}
	}
	// Paging, and a dateRange around the calls.
	h := b.do("GET", "/api/v1/history?rangeType=last7days&rows=2", tok, nil).want(t, 200)
	next, _ := h.obj["next"].(string)
	if len(objects(t, h)) != 2 || !strings.Contains(next, "start=2") {
		t.Fatalf("paging: %s", h.raw)
	}
	first := int64(records[2].(map[string]any)["createdAt"].(float64))
	last := int64(records[0].(map[string]any)["createdAt"].(float64))
	q := url.Values{"dateRange": {fmt.Sprintf("%d,%d", first, last)}}
	if n := b.do("GET", "/api/v1/history?"+q.Encode(), tok, nil).want(t, 200).num("total"); n != 3 {
		t.Errorf("dateRange over the calls: %v", n)
	}
	// Frank took part in two of the calls (the callee that was not
	// registered); the 799 call was nobody else's.
	frank := b.login("frank", "frank-pass-1")
	if n := b.do("GET", "/api/v1/history?rangeType=last30days", frank, nil).want(t, 200).num("total"); n != 2 {
		t.Errorf("frank's history has %v calls, want 2", n)
	}
	wantProblem(t, b.do("GET", "/api/v1/history?rangeType=today&userId="+carol, frank, nil), 403, "urn:pbxd:problem:forbidden")
	wantProblem(t, b.do("GET", "/api/v1/history?rangeType=lastyear", tok, nil), 400, "urn:pbxd:problem:validation")
	wantProblem(t, b.do("GET", "/api/v1/history", tok, nil), 400, "urn:pbxd:problem:validation")
}

// TestContactsAndTheirHistory: agents create and find contacts (by name,
// company, email or number); only admins delete them; a contact's history
// is empty until calls are recorded with it.
func TestContactsAndTheirHistory(t *testing.T) {
	t.Parallel()
	b := startACDBox(t, "")
	c := b.do("POST", "/api/v1/contacts", b.agentTok, map[string]any{"firstName": "Carla", "lastName": "Kunde", "company": "Acme",
		"email": "carla@acme.example", "timezone": "America/New_York", "numbers": []map[string]string{{"type": "mobile", "number": "+1 212 555 0100"}},
		"properties": map[string]string{"tier": "gold"}}).want(t, 201)
	id := c.str("id")
	if c.str("name") != "Carla Kunde" || c.header.Get("Location") != "/api/v1/contacts/"+id {
		t.Fatalf("contact: %s", c.raw)
	}
	b.do("POST", "/api/v1/contacts", b.supTok, map[string]any{"company": "Bolt", "numbers": []map[string]string{{"type": "work", "number": "+44 20 7946 0000"}}}).want(t, 201)
	for q, want := range map[string]float64{"carla": 1, "ACME": 1, "acme.example": 1, "+12125550100": 1, "2125550": 1, "bolt": 1, "": 2, "zebra": 0} {
		if n := b.do("GET", "/api/v1/contacts?q="+url.QueryEscape(q), b.otherTok, nil).want(t, 200).num("total"); n != want {
			t.Errorf("q=%q: %v, want %v", q, n, want)
		}
	}
	wantProblem(t, b.do("POST", "/api/v1/contacts", b.agentTok, map[string]any{"firstName": "X", "timezone": "Moon/Base"}), 400, "urn:pbxd:problem:validation")
	b.do("PUT", "/api/v1/contacts/"+id, b.agentTok, map[string]any{"properties": map[string]string{"tier": "platinum"}}).want(t, 200)
	h := b.do("GET", "/api/v1/contacts/"+id+"/history?rangeType=last30days&mergeProperties=true", b.agentTok, nil).want(t, 200)
	if h.num("count") != 0 || len(objects(t, h)) != 0 {
		t.Fatalf("history of a new contact: %s", h.raw)
	}
	wantProblem(t, b.do("DELETE", "/api/v1/contacts/"+id, b.agentTok, nil), 403, "urn:pbxd:problem:forbidden")
	b.do("DELETE", "/api/v1/contacts/"+id, b.admin, nil).want(t, 204)
	wantProblem(t, b.do("GET", "/api/v1/contacts/"+id+"/history", b.agentTok, nil), 404, "urn:pbxd:problem:not-found")
}
