package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"pbxd/store"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestHistoryRanges checks every range type at the edges of days, weeks
// and months, across a daylight-saving change and in zones where the
// local date differs from the UTC one.
func TestHistoryRanges(t *testing.T) {
	berlin, la := mustLoc(t, "Europe/Berlin"), mustLoc(t, "America/Los_Angeles")
	d := func(loc *time.Location, y int, m time.Month, day int) time.Time {
		return time.Date(y, m, day, 0, 0, 0, 0, loc)
	}
	mondayStart := time.Date(2026, 3, 2, 0, 0, 0, 0, berlin)      // Monday, first instant
	sundayEnd := time.Date(2026, 3, 1, 23, 59, 59, 999e6, berlin) // Sunday, last millisecond
	dstDay := time.Date(2026, 3, 29, 12, 0, 0, 0, berlin)         // CET → CEST at 02:00
	newYearUTC := time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)     // still 2025-12-31 in LA
	leap := time.Date(2028, 3, 1, 8, 0, 0, 0, time.UTC)           // 2028 is a leap year
	type want struct{ from, to time.Time }
	for _, tc := range []struct {
		name string
		now  time.Time
		loc  *time.Location
		rt   string
		want want
	}{
		{"today at midnight", mondayStart, berlin, RangeToday, want{d(berlin, 2026, 3, 2), d(berlin, 2026, 3, 3)}},
		{"yesterday at midnight", mondayStart, berlin, RangeYesterday, want{d(berlin, 2026, 3, 1), d(berlin, 2026, 3, 2)}},
		{"last3days = today and two before", mondayStart, berlin, RangeLast3Days, want{d(berlin, 2026, 2, 28), d(berlin, 2026, 3, 3)}},
		{"last7days", mondayStart, berlin, RangeLast7Days, want{d(berlin, 2026, 2, 24), d(berlin, 2026, 3, 3)}},
		{"last30days", mondayStart, berlin, RangeLast30Days, want{d(berlin, 2026, 2, 1), d(berlin, 2026, 3, 3)}},
		{"thisweek on Monday 00:00", mondayStart, berlin, RangeThisWeek, want{d(berlin, 2026, 3, 2), d(berlin, 2026, 3, 9)}},
		{"lastweek on Monday 00:00", mondayStart, berlin, RangeLastWeek, want{d(berlin, 2026, 2, 23), d(berlin, 2026, 3, 2)}},
		{"thismonth", mondayStart, berlin, RangeThisMonth, want{d(berlin, 2026, 3, 1), d(berlin, 2026, 4, 1)}},
		{"lastmonth", mondayStart, berlin, RangeLastMonth, want{d(berlin, 2026, 2, 1), d(berlin, 2026, 3, 1)}},

		{"today at 23:59:59.999 Sunday", sundayEnd, berlin, RangeToday, want{d(berlin, 2026, 3, 1), d(berlin, 2026, 3, 2)}},
		{"thisweek on Sunday night", sundayEnd, berlin, RangeThisWeek, want{d(berlin, 2026, 2, 23), d(berlin, 2026, 3, 2)}},
		{"lastweek on Sunday night", sundayEnd, berlin, RangeLastWeek, want{d(berlin, 2026, 2, 16), d(berlin, 2026, 2, 23)}},
		{"thismonth on its first day", sundayEnd, berlin, RangeThisMonth, want{d(berlin, 2026, 3, 1), d(berlin, 2026, 4, 1)}},
		{"last3days crossing the month", sundayEnd, berlin, RangeLast3Days, want{d(berlin, 2026, 2, 27), d(berlin, 2026, 3, 2)}},

		{"today of 23 hours (DST)", dstDay, berlin, RangeToday, want{d(berlin, 2026, 3, 29), d(berlin, 2026, 3, 30)}},
		{"thisweek across DST", dstDay, berlin, RangeThisWeek, want{d(berlin, 2026, 3, 23), d(berlin, 2026, 3, 30)}},

		{"LA: still New Year's Eve", newYearUTC, la, RangeToday, want{d(la, 2025, 12, 31), d(la, 2026, 1, 1)}},
		{"LA: thismonth is December", newYearUTC, la, RangeThisMonth, want{d(la, 2025, 12, 1), d(la, 2026, 1, 1)}},
		{"LA: lastmonth is November", newYearUTC, la, RangeLastMonth, want{d(la, 2025, 11, 1), d(la, 2025, 12, 1)}},
		{"LA: thisweek (Wednesday)", newYearUTC, la, RangeThisWeek, want{d(la, 2025, 12, 29), d(la, 2026, 1, 5)}},
		{"UTC: already New Year", newYearUTC, time.UTC, RangeToday, want{d(time.UTC, 2026, 1, 1), d(time.UTC, 2026, 1, 2)}},
		{"UTC: lastmonth of January is December", newYearUTC, time.UTC, RangeLastMonth, want{d(time.UTC, 2025, 12, 1), d(time.UTC, 2026, 1, 1)}},
		{"UTC: yesterday across the year", newYearUTC, time.UTC, RangeYesterday, want{d(time.UTC, 2025, 12, 31), d(time.UTC, 2026, 1, 1)}},
		{"leap year: last3days from 1 March", leap, time.UTC, RangeLast3Days, want{d(time.UTC, 2028, 2, 28), d(time.UTC, 2028, 3, 2)}},
		{"leap year: lastmonth has 29 days", leap, time.UTC, RangeLastMonth, want{d(time.UTC, 2028, 2, 1), d(time.UTC, 2028, 3, 1)}},
	} {
		from, to, ok := historyRange(tc.rt, tc.now, tc.loc)
		if !ok || !from.Equal(tc.want.from) || !to.Equal(tc.want.to) {
			t.Errorf("%s: [%v, %v), want [%v, %v)", tc.name, from, to, tc.want.from, tc.want.to)
		}
		if !(tc.now.Before(to) && !tc.now.Before(from)) && tc.rt != RangeYesterday && tc.rt != RangeLastWeek && tc.rt != RangeLastMonth {
			t.Errorf("%s: now %v is outside [%v, %v)", tc.name, tc.now, from, to)
		}
	}
	from, to, _ := historyRange(RangeToday, dstDay, berlin)
	if to.Sub(from) != 23*time.Hour {
		t.Errorf("the spring-forward day lasts %v", to.Sub(from))
	}
	if _, _, ok := historyRange("lastyear", dstDay, berlin); ok {
		t.Error("unknown range type accepted")
	}
}

// TestHistoryAPI puts workitems on both sides of each range's edges and
// checks, with a fixed clock, that exactly those inside come back, newest
// first, computed in the user's time zone.
func TestHistoryAPI(t *testing.T) {
	la := mustLoc(t, "America/Los_Angeles")
	// The clock is fixed in the future: sessions expire by wall-clock TTL.
	now := time.Date(2031, 3, 5, 10, 30, 0, 0, la) // Wednesday
	ts := newTestServerWith(t, func(c *Config) { c.Now = func() time.Time { return now } })
	agent := ts.createUser(t, map[string]any{"userName": "agent", "password": "agent-pass-1", "timezone": "America/Los_Angeles"})
	utcUser := ts.createUser(t, map[string]any{"userName": "utc", "password": "utc-pass-123"})
	tok := ts.login(t, "agent", "agent-pass-1")
	utcTok := ts.login(t, "utc", "utc-pass-123")
	byTime := map[string]time.Time{} // the agent's workitems
	put := func(user string, at time.Time) string {
		w := &store.Workitem{ID: store.NewID(), Type: store.WorkitemInboundCall, State: store.WorkitemEnded, From: "+15550100", To: "201",
			Users: []string{user}, CreatedAt: at}
		if err := ts.st.Update(func(tx *store.Tx) error { return tx.PutWorkitem(w) }); err != nil {
			t.Fatal(err)
		}
		if user == agent {
			byTime[w.ID] = at
		}
		return w.ID
	}
	seen := map[int64]bool{}
	for _, rt := range []string{RangeToday, RangeYesterday, RangeLast3Days, RangeLast7Days, RangeLast30Days, RangeThisWeek, RangeLastWeek, RangeThisMonth, RangeLastMonth} {
		from, to, _ := historyRange(rt, now, la)
		for _, at := range []time.Time{from.Add(-time.Millisecond), from, to.Add(-time.Millisecond), to} {
			if !seen[at.UnixMilli()] {
				seen[at.UnixMilli()] = true
				put(agent, at)
			}
		}
	}
	put(utcUser, now)
	for _, rt := range []string{RangeToday, RangeYesterday, RangeLast3Days, RangeLast7Days, RangeLast30Days, RangeThisWeek, RangeLastWeek, RangeThisMonth, RangeLastMonth} {
		from, to, _ := historyRange(rt, now, la)
		code, body := ts.do(t, "GET", "/api/v1/history?rows=1000&rangeType="+rt, tok, nil)
		if code != 200 {
			t.Fatalf("%s: %d %s", rt, code, body)
		}
		env := decode[struct {
			Total     int
			RangeType string
			From, To  int64
			Objects   []workitemView
		}](t, body)
		if env.RangeType != rt || env.From != from.UnixMilli() || env.To != to.UnixMilli() {
			t.Errorf("%s: window %+v", rt, env)
		}
		var got []int64
		for _, o := range env.Objects {
			got = append(got, o.CreatedAt)
		}
		var want []int64
		for _, at := range byTime {
			if !at.Before(from) && at.Before(to) {
				want = append(want, at.UnixMilli())
			}
		}
		slices.Sort(want)
		slices.Reverse(want)
		if fmt.Sprint(got) != fmt.Sprint(want) || env.Total != len(want) {
			t.Errorf("%s: got %v (total %d), want %v", rt, got, env.Total, want)
		}
	}
	// Paging through a range.
	code, body := ts.do(t, "GET", "/api/v1/history?rangeType=thismonth&rows=1", tok, nil)
	env := decode[historyEnvelope](t, body)
	if code != 200 || env.Count != 1 || env.Next == nil || !strings.Contains(*env.Next, "rangeType=thismonth") || !strings.Contains(*env.Next, "start=1") {
		t.Fatalf("paging: %d %s", code, body)
	}
	// A dateRange, both ends included.
	at := now.Add(-24 * time.Hour)
	id := put(agent, at)
	code, body = ts.do(t, "GET", fmt.Sprintf("/api/v1/history?dateRange=%d,%d", at.UnixMilli(), at.UnixMilli()), tok, nil)
	if e := decode[struct{ Objects []workitemView }](t, body); code != 200 || len(e.Objects) != 1 || e.Objects[0].ID != id {
		t.Fatalf("dateRange: %d %s", code, body)
	}
	// The UTC user's today is their own.
	code, body = ts.do(t, "GET", "/api/v1/history?rangeType=today", utcTok, nil)
	if e := decode[historyEnvelope](t, body); code != 200 || e.Total != 1 || e.From != time.Date(2031, 3, 5, 0, 0, 0, 0, time.UTC).UnixMilli() {
		t.Fatalf("UTC user: %d %s", code, body)
	}
	// Bad input and permissions.
	for _, tc := range []struct {
		token, q string
		want     int
	}{
		{tok, "", 400},
		{tok, "?rangeType=lastyear", 400},
		{tok, "?rangeType=today&dateRange=1,2", 400},
		{tok, "?dateRange=5,1", 400},
		{tok, "?dateRange=x", 400},
		{tok, "?rangeType=today&color=red", 400},
		{tok, "?rangeType=today&userId=" + utcUser, 403},
		{ts.adminToken, "?rangeType=today&userId=" + utcUser, 200},
		{ts.adminToken, "?rangeType=today&userId=" + store.NewID(), 404},
	} {
		if code, body := ts.do(t, "GET", "/api/v1/history"+tc.q, tc.token, nil); code != tc.want {
			t.Errorf("%s: %d, want %d: %s", tc.q, code, tc.want, body)
		}
	}
}

func TestContactHistoryAPI(t *testing.T) {
	now := time.Date(2031, 6, 10, 12, 0, 0, 0, time.UTC)
	ts := newTestServerWith(t, func(c *Config) { c.Now = func() time.Time { return now } })
	agent := ts.createUser(t, map[string]any{"userName": "agent", "password": "agent-pass-1"})
	other := ts.createUser(t, map[string]any{"userName": "other", "password": "other-pass-1"})
	tok := ts.login(t, "agent", "agent-pass-1")
	code, body := ts.do(t, "POST", "/api/v1/contacts", tok, map[string]any{"firstName": "Carla", "lastName": "Customer",
		"numbers": []map[string]string{{"type": "mobile", "number": "+1 555 0100"}}, "properties": map[string]string{"tier": "gold", "from": "ignored"}})
	if code != 201 {
		t.Fatalf("contact: %d %s", code, body)
	}
	cid := decode[contactView](t, body).ID
	var ids []string
	for i, ctx := range []string{"renewal call", "billing question", "renewal follow-up"} {
		user := agent
		if i == 1 {
			user = other // another agent's call with the contact shows too
		}
		w := &store.Workitem{ID: store.NewID(), Type: store.WorkitemOutboundCall, State: store.WorkitemEnded, From: "201", To: "+15550100",
			Users: []string{user}, CreatedAt: now.Add(-time.Duration(48-i*24) * time.Hour),
			Extra: store.WorkitemExt{ContactID: cid, Context: ctx, Name: "Carla", CampaignID: store.NewID()}}
		if err := ts.st.Update(func(tx *store.Tx) error { return tx.PutWorkitem(w) }); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, w.ID)
	}
	get := func(q string) (int, historyEnvelope, []byte) {
		code, body := ts.do(t, "GET", "/api/v1/contacts/"+cid+"/history"+q, tok, nil)
		var env historyEnvelope
		if code == 200 {
			env = decode[historyEnvelope](t, body)
		}
		return code, env, body
	}
	code, env, body := get("")
	if code != 200 || env.Count != 3 || env.Total != 3 || !strings.Contains(string(body), `"contactId":"`+cid+`"`) ||
		!strings.Contains(string(body), `"context":"renewal follow-up"`) {
		t.Fatalf("all: %d %s", code, body)
	}
	objs := env.Objects.([]any)
	if objs[0].(map[string]any)["id"] != ids[2] {
		t.Fatalf("not newest first: %s", body)
	}
	if _, env, _ := get("?q=renewal"); env.Total != 2 {
		t.Errorf("q=renewal: %+v", env)
	}
	if _, env, _ := get("?q=RENEWAL+follow"); env.Total != 1 {
		t.Errorf("q two words: %+v", env)
	}
	if _, env, _ := get("?rangeType=today"); env.Total != 1 {
		t.Errorf("today: %+v", env)
	}
	if _, env, _ := get("?rangeType=yesterday"); env.Total != 1 {
		t.Errorf("yesterday: %+v", env)
	}
	if _, env, _ := get(fmt.Sprintf("?dateRange=%d,%d", now.Add(-49*time.Hour).UnixMilli(), now.Add(-47*time.Hour).UnixMilli())); env.Total != 1 {
		t.Errorf("dateRange: %+v", env)
	}
	if _, env, _ := get("?rows=1&start=1"); env.Count != 1 || env.Next == nil || env.Previous == nil {
		t.Errorf("paging: %+v", env)
	}
	code, env, body = get("?mergeProperties=true&rows=1")
	m := env.Objects.([]any)[0].(map[string]any)
	if code != 200 || m["tier"] != "gold" || m["from"] != "201" || m["contactName"] != "Carla Customer" {
		t.Fatalf("merged: %d %s", code, body)
	}
	if _, _, body := get("?mergeProperties=false"); strings.Contains(string(body), "gold") {
		t.Fatalf("properties without mergeProperties: %s", body)
	}
	for _, q := range []string{"?mergeProperties=maybe", "?rangeType=never", "?color=red", "?rows=0"} {
		if code, _, _ := get(q); code != 400 {
			t.Errorf("%s: %d", q, code)
		}
	}
	if code, body := ts.do(t, "GET", "/api/v1/contacts/"+store.NewID()+"/history", tok, nil); code != 404 {
		t.Errorf("unknown contact: %d %s", code, body)
	}
	// A users:read service user may not read call history.
	_, body = ts.do(t, "POST", "/api/v1/service-users", ts.adminToken, map[string]any{"name": "dir", "permissions": []string{"users:read"}})
	dir := decode[serviceUserView](t, body).Token
	if code, _ := ts.do(t, "GET", "/api/v1/contacts/"+cid+"/history", dir, nil); code != 403 {
		t.Errorf("users:read read history: %d", code)
	}
}
