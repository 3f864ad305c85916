package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func TestStatusCatalogueSeed(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	var all []*Status
	if err := s.View(func(tx *Tx) (err error) { all, err = tx.ListStatuses(); return err }); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range all {
		got = append(got, fmt.Sprintf("%s/%d/%v", st.StatusID, st.Class, st.System))
	}
	want := []string{"offline/0/true", "available/1/true", "break/2/false", "lunch/2/false", "after-call-work/3/false"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("seeded %v, want %v", got, want)
	}
	// Deleting a seeded non-system entry sticks across restarts; system
	// entries refuse deletion and reclassification.
	err := s.Update(func(tx *Tx) error {
		lunch, err := tx.StatusBySlug(StatusIDLunch)
		if err != nil {
			return err
		}
		if err := tx.DeleteStatus(lunch.ID); err != nil {
			return err
		}
		off, err := tx.StatusBySlug(StatusIDOffline)
		if err != nil {
			return err
		}
		if err := tx.DeleteStatus(off.ID); !errors.Is(err, ErrProtected) {
			return fmt.Errorf("delete offline: %v", err)
		}
		off.Class = StatusNotReady
		if err := tx.PutStatus(off); !errors.Is(err, ErrProtected) {
			return fmt.Errorf("reclassify offline: %v", err)
		}
		avail, _ := tx.StatusBySlug(StatusIDAvailable)
		avail.StatusID = "renamed"
		if err := tx.PutStatus(avail); !errors.Is(err, ErrImmutable) {
			return fmt.Errorf("change statusId: %v", err)
		}
		dup := &Status{ID: NewID(), StatusID: StatusIDBreak, Name: "Again", Class: StatusNotReady}
		if err := tx.PutStatus(dup); !errors.Is(err, ErrConflict) {
			return fmt.Errorf("duplicate statusId: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir)
	s.View(func(tx *Tx) (err error) { all, err = tx.ListStatuses(); return err })
	if len(all) != 4 {
		t.Fatalf("%d statuses after reopen, want 4 (lunch stays deleted)", len(all))
	}
	if err := s.View(func(tx *Tx) error { _, err := tx.StatusBySlug(StatusIDLunch); return err }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lunch after reopen: %v", err)
	}
	// A system entry that went missing is put back on the next start.
	err = s.Update(func(tx *Tx) error {
		st, err := tx.StatusBySlug(StatusIDAvailable)
		if err != nil {
			return err
		}
		if err := tx.del(statusSlugKey(st.StatusID)); err != nil {
			return err
		}
		return tx.del(statusKey(st.ID))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, dir)
	if err := s.View(func(tx *Tx) error { _, err := tx.StatusBySlug(StatusIDAvailable); return err }); err != nil {
		t.Fatalf("available not restored: %v", err)
	}
}

func TestStatusInUseCannotBeDeleted(t *testing.T) {
	s := openTest(t, "")
	u := newUser("ann", "201")
	u.DefaultAcdLoginStatus = StatusIDBreak
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutUser(u); err != nil {
			return err
		}
		br, _ := tx.StatusBySlug(StatusIDBreak)
		if err := tx.DeleteStatus(br.ID); !errors.Is(err, ErrInUse) {
			return fmt.Errorf("default in use: %v", err)
		}
		u.DefaultAcdLoginStatus = ""
		if err := tx.PutUser(u); err != nil {
			return err
		}
		other := newUser("bob", "202")
		if err := tx.PutUser(other); err != nil {
			return err
		}
		if err := tx.PutACDState(&ACDState{UserID: other.ID, LoggedIn: true, Status: StatusNotReady, StatusID: StatusIDBreak}); err != nil {
			return err
		}
		if err := tx.DeleteStatus(br.ID); !errors.Is(err, ErrInUse) {
			return fmt.Errorf("current status in use: %v", err)
		}
		var iu *InUseError
		if err := tx.DeleteStatus(br.ID); !errors.As(err, &iu) || iu.ID != StatusIDBreak {
			return fmt.Errorf("InUseError: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestACDStateAndQueueIndex(t *testing.T) {
	s := openTest(t, "")
	u := newUser("ann", "201")
	q1 := &Queue{ID: NewID(), Name: "Sales"}
	q2 := &Queue{ID: NewID(), Name: "Support"}
	err := s.Update(func(tx *Tx) error {
		for _, q := range []*Queue{q1, q2} {
			if err := tx.PutQueue(q); err != nil {
				return err
			}
		}
		if err := tx.PutQueue(&Queue{ID: NewID(), Name: "SALES"}); !errors.Is(err, ErrConflict) {
			return fmt.Errorf("duplicate queue name: %v", err)
		}
		if err := tx.PutUser(u); err != nil {
			return err
		}
		a, err := tx.GetACDState(u.ID)
		if err != nil {
			return err
		}
		if a.LoggedIn || a.StatusID != StatusIDOffline || a.Routable() {
			return fmt.Errorf("default state %+v", a)
		}
		a.LoggedIn, a.Queues, a.Status, a.StatusID = true, []string{q1.ID, q2.ID}, StatusAvailable, StatusIDAvailable
		return tx.PutACDState(a)
	})
	if err != nil {
		t.Fatal(err)
	}
	members := func(q *Queue) []string {
		var ids []string
		s.View(func(tx *Tx) error { ids = tx.ACDQueueMembers(q.ID); return nil })
		return ids
	}
	if m := members(q1); len(m) != 1 || m[0] != u.ID {
		t.Fatalf("members of q1: %v", m)
	}
	// Deleting a queue takes it out of the login.
	if err := s.Update(func(tx *Tx) error { return tx.DeleteQueue(q1.ID) }); err != nil {
		t.Fatal(err)
	}
	var a *ACDState
	s.View(func(tx *Tx) (err error) { a, err = tx.GetACDState(u.ID); return err })
	if !slices.Equal(a.Queues, []string{q2.ID}) || !a.Routable() || !a.InQueue(q2.ID) || a.InQueue(q1.ID) {
		t.Fatalf("after queue delete: %+v", a)
	}
	if m := members(q1); len(m) != 0 {
		t.Fatalf("deleted queue still has members %v", m)
	}
	// Logging out empties the index but keeps the queues for next time.
	err = s.Update(func(tx *Tx) error {
		a.LoggedIn, a.Status, a.StatusID = false, StatusOffline, StatusIDOffline
		return tx.PutACDState(a)
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := members(q2); len(m) != 0 {
		t.Fatalf("logged-out user still a member: %v", m)
	}
	// Deleting the user removes the state.
	if err := s.Update(func(tx *Tx) error { return tx.DeleteUser(u.ID) }); err != nil {
		t.Fatal(err)
	}
	var states []*ACDState
	s.View(func(tx *Tx) (err error) { states, err = tx.ListACDStates(); return err })
	if len(states) != 0 {
		t.Fatalf("states left: %+v", states)
	}
}

func TestQueueQualifies(t *testing.T) {
	q := &Queue{Skills: []QueueSkill{{SkillID: "a", MinProficiency: 5}, {SkillID: "b", MinProficiency: 1}}}
	for _, tc := range []struct {
		skills []SkillAssignment
		want   bool
	}{
		{[]SkillAssignment{{"a", 5}, {"b", 1}}, true},
		{[]SkillAssignment{{"a", 4}, {"b", 9}}, false},
		{[]SkillAssignment{{"a", 9}}, false},
		{nil, false},
	} {
		if got := q.Qualifies(tc.skills); got != tc.want {
			t.Errorf("%v: %v", tc.skills, got)
		}
	}
	if !(&Queue{}).Qualifies(nil) {
		t.Error("a queue without skills takes anyone")
	}
}

func TestContactsByNumber(t *testing.T) {
	s := openTest(t, "")
	now := time.Now()
	ann := &Contact{ID: NewID(), FirstName: "Ann", Numbers: []ContactNumber{{"mobile", "+49 (170) 123-45"}, {"work", "+4930 100"}}, CreatedAt: now}
	firm := &Contact{ID: NewID(), Company: "Firm", Numbers: []ContactNumber{{"work", "4930100"}}, CreatedAt: now.Add(time.Second)}
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutContact(ann); err != nil {
			return err
		}
		return tx.PutContact(firm)
	})
	if err != nil {
		t.Fatal(err)
	}
	find := func(n string) []string {
		var out []string
		s.View(func(tx *Tx) error {
			cs, err := tx.ContactsByNumber(n)
			for _, c := range cs {
				out = append(out, c.Name())
			}
			return err
		})
		return out
	}
	for _, tc := range []struct {
		number string
		want   []string
	}{
		{"4917012345", []string{"Ann"}},
		{"+49-170-12345", []string{"Ann"}},
		{"+4930100", []string{"Ann", "Firm"}},
		{"030100", nil},
		{"", nil},
	} {
		if got := find(tc.number); fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%q: %v, want %v", tc.number, got, tc.want)
		}
	}
	// Changing numbers moves the index; deleting clears it.
	err = s.Update(func(tx *Tx) error {
		ann.Numbers = []ContactNumber{{"home", "555 1234"}}
		if err := tx.PutContact(ann); err != nil {
			return err
		}
		return tx.DeleteContact(firm.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := find("4930100"); got != nil {
		t.Fatalf("stale index: %v", got)
	}
	var c *Contact
	if err := s.View(func(tx *Tx) (err error) { c, err = tx.ContactByNumber("5551234"); return err }); err != nil || c.ID != ann.ID {
		t.Fatalf("ContactByNumber: %v %v", c, err)
	}
	if err := s.View(func(tx *Tx) error { _, err := tx.ContactByNumber("999"); return err }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown number: %v", err)
	}
}

func TestWorkitemContactIndex(t *testing.T) {
	s := openTest(t, "")
	cid, other, agent := NewID(), NewID(), NewID()
	base := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	var ids []string
	for i := 0; i < 6; i++ {
		w := &Workitem{ID: NewID(), Type: WorkitemOutboundCall, State: WorkitemEnded, CreatedAt: base.Add(time.Duration(i) * time.Minute),
			Users: []string{NewID()}, Extra: WorkitemExt{ContactID: cid}}
		if i%2 == 0 {
			w.Users = []string{agent}
		}
		ids = append(ids, w.ID)
		if err := s.Update(func(tx *Tx) error { return tx.PutWorkitem(w) }); err != nil {
			t.Fatal(err)
		}
	}
	// Moving one workitem to another contact moves its index entry.
	err := s.Update(func(tx *Tx) error {
		w, err := tx.GetWorkitem(ids[5])
		if err != nil {
			return err
		}
		w.Extra.ContactID = other
		return tx.PutWorkitem(w)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q     WorkitemQuery
		total int
		first string
	}{
		{WorkitemQuery{ContactID: cid, Rows: 10}, 5, ids[4]},
		{WorkitemQuery{ContactID: other, Rows: 10}, 1, ids[5]},
		{WorkitemQuery{ContactID: cid, UserID: agent, Rows: 1}, 3, ids[4]},
		{WorkitemQuery{ContactID: cid, Since: base.Add(time.Minute), Until: base.Add(3 * time.Minute), Rows: 10}, 2, ids[2]},
		{WorkitemQuery{ContactID: NewID(), Rows: 10}, 0, ""},
	} {
		var got []*Workitem
		var total int
		s.View(func(tx *Tx) (err error) { got, total, err = tx.ListWorkitems(tc.q); return err })
		if total != tc.total || (tc.first != "" && (len(got) == 0 || got[0].ID != tc.first)) {
			t.Errorf("%+v: total %d first %v", tc.q, total, got)
		}
	}
	var got []*Workitem
	var total int
	s.View(func(tx *Tx) (err error) { got, total, err = tx.WorkitemsByContact(cid, 4, 10); return err })
	if total != 5 || len(got) != 1 || got[0].ID != ids[0] {
		t.Fatalf("WorkitemsByContact page: %d %v", total, got)
	}
}

func TestWithinCallingHours(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	weekdays := []int{1, 2, 3, 4, 5}
	office := &Campaign{CallingHours: &CallingHours{Days: weekdays, Start: "09:00", End: "17:00"}}
	night := &Campaign{CallingHours: &CallingHours{Days: []int{5}, Start: "22:00", End: "02:00"}} // Friday night
	allDay := &Campaign{CallingHours: &CallingHours{Days: []int{0, 6}, Start: "00:00", End: "24:00"}}
	at := func(loc *time.Location, y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, loc)
	}
	for _, tc := range []struct {
		name string
		c    *Campaign
		loc  *time.Location
		t    time.Time
		want bool
	}{
		{"no campaign", nil, ny, at(ny, 2026, 1, 4, 3, 0), true},
		{"no hours", &Campaign{}, ny, at(ny, 2026, 1, 4, 3, 0), true},
		{"Monday 09:00 opens", office, ny, at(ny, 2026, 1, 5, 9, 0), true},
		{"Monday 08:59 closed", office, ny, at(ny, 2026, 1, 5, 8, 59), false},
		{"Monday 16:59 open", office, ny, at(ny, 2026, 1, 5, 16, 59), true},
		{"Monday 17:00 closed", office, ny, at(ny, 2026, 1, 5, 17, 0), false},
		{"Sunday noon closed", office, ny, at(ny, 2026, 1, 4, 12, 0), false},
		{"Saturday noon closed", office, ny, at(ny, 2026, 1, 10, 12, 0), false},
		// The callee's zone decides: 14:30 UTC Monday is 09:30 in New York
		// in winter (open) and 15:30 in Berlin (open), 13:30 UTC is 08:30 NY.
		{"UTC instant, NY callee, open", office, ny, time.Date(2026, 1, 5, 14, 30, 0, 0, time.UTC), true},
		{"UTC instant, NY callee, early", office, ny, time.Date(2026, 1, 5, 13, 30, 0, 0, time.UTC), false},
		{"UTC instant, Berlin callee, late", office, berlin, time.Date(2026, 1, 5, 16, 30, 0, 0, time.UTC), false},
		// Daylight saving: New York springs forward on 2026-03-08; the next
		// Monday 13:30 UTC is 09:30 EDT (open), the Monday before 08:30 EST.
		{"after DST, 13:30 UTC is 09:30 EDT", office, ny, time.Date(2026, 3, 9, 13, 30, 0, 0, time.UTC), true},
		{"before DST, 13:30 UTC is 08:30 EST", office, ny, time.Date(2026, 3, 2, 13, 30, 0, 0, time.UTC), false},
		{"Berlin fall back: 17:00 CET closed", office, berlin, time.Date(2026, 10, 26, 16, 0, 0, 0, time.UTC), false},
		{"Berlin fall back: 16:59 CET open", office, berlin, time.Date(2026, 10, 26, 15, 59, 0, 0, time.UTC), true},
		// Past midnight: Friday 22:00 to Saturday 02:00.
		{"Friday 21:59", night, ny, at(ny, 2026, 1, 9, 21, 59), false},
		{"Friday 22:00", night, ny, at(ny, 2026, 1, 9, 22, 0), true},
		{"Friday 23:59", night, ny, at(ny, 2026, 1, 9, 23, 59), true},
		{"Saturday 00:00 belongs to Friday", night, ny, at(ny, 2026, 1, 10, 0, 0), true},
		{"Saturday 01:59", night, ny, at(ny, 2026, 1, 10, 1, 59), true},
		{"Saturday 02:00 closed", night, ny, at(ny, 2026, 1, 10, 2, 0), false},
		{"Saturday 22:00 not listed", night, ny, at(ny, 2026, 1, 10, 22, 0), false},
		{"Friday 01:00 belongs to Thursday", night, ny, at(ny, 2026, 1, 9, 1, 0), false},
		{"whole weekend day 00:00", allDay, ny, at(ny, 2026, 1, 10, 0, 0), true},
		{"whole weekend day 23:59", allDay, ny, at(ny, 2026, 1, 11, 23, 59), true},
		{"weekday not listed", allDay, ny, at(ny, 2026, 1, 12, 12, 0), false},
		{"nil location is UTC", office, nil, time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), true},
		{"empty window", &Campaign{CallingHours: &CallingHours{Days: weekdays, Start: "09:00", End: "09:00"}}, ny, at(ny, 2026, 1, 5, 9, 0), false},
		{"no days", &Campaign{CallingHours: &CallingHours{Start: "09:00", End: "17:00"}}, ny, at(ny, 2026, 1, 5, 10, 0), false},
		{"unreadable hours", &Campaign{CallingHours: &CallingHours{Days: weekdays, Start: "9am", End: "17:00"}}, ny, at(ny, 2026, 1, 5, 10, 0), false},
	} {
		if got := WithinCallingHours(tc.c, tc.loc, tc.t); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestParseClock(t *testing.T) {
	for _, tc := range []struct {
		s    string
		end  bool
		want int
		ok   bool
	}{
		{"00:00", false, 0, true}, {"23:59", false, 1439, true}, {"24:00", true, 1440, true}, {"24:00", false, 0, false},
		{"24:01", true, 0, false}, {"9:00", false, 0, false}, {"09:60", false, 0, false}, {"ab:cd", false, 0, false}, {"", false, 0, false},
	} {
		got, err := ParseClock(tc.s, tc.end)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseClock(%q, %v) = %d, %v", tc.s, tc.end, got, err)
		}
	}
}

func TestCampaignNamesUnique(t *testing.T) {
	s := openTest(t, "")
	c := &Campaign{ID: NewID(), Name: "Spring"}
	err := s.Update(func(tx *Tx) error {
		if err := tx.PutCampaign(c); err != nil {
			return err
		}
		if err := tx.PutCampaign(&Campaign{ID: NewID(), Name: "spring"}); !errors.Is(err, ErrConflict) {
			return fmt.Errorf("duplicate: %v", err)
		}
		c.Name = "Autumn"
		if err := tx.PutCampaign(c); err != nil {
			return err
		}
		// The old name is free again.
		if err := tx.PutCampaign(&Campaign{ID: NewID(), Name: "Spring"}); err != nil {
			return err
		}
		return tx.DeleteCampaign(c.ID)
	})
	if err != nil {
		t.Fatal(err)
	}
	var all []*Campaign
	s.View(func(tx *Tx) (err error) { all, err = tx.ListCampaigns(); return err })
	if len(all) != 1 || all[0].Name != "Spring" {
		t.Fatalf("%+v", all)
	}
}
