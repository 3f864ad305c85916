package store

import (
	"fmt"
	"testing"
	"time"
)

func TestWorkitemIndexes(t *testing.T) {
	s := openTest(t, t.TempDir())
	base := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	alice, bob := NewID(), NewID()
	var ids []string
	for i := 0; i < 10; i++ {
		w := &Workitem{ID: NewID(), Type: WorkitemInternalCall, State: WorkitemRinging, From: "201", To: "202",
			Users: []string{alice}, CreatedAt: base.Add(time.Duration(i) * time.Minute)}
		if i%2 == 0 {
			w.Users = append(w.Users, bob)
			w.Type = WorkitemInboundCall
		}
		ids = append(ids, w.ID)
		if err := s.Update(func(tx *Tx) error { return tx.PutWorkitem(w) }); err != nil {
			t.Fatal(err)
		}
	}
	// End half of them.
	for i := 0; i < 5; i++ {
		err := s.Update(func(tx *Tx) error {
			w, err := tx.GetWorkitem(ids[i])
			if err != nil {
				return err
			}
			w.State = WorkitemEnded
			return tx.PutWorkitem(w)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		q     WorkitemQuery
		total int
		first string
	}{
		{WorkitemQuery{Rows: 3}, 10, ids[9]},
		{WorkitemQuery{UserID: bob, Rows: 10}, 5, ids[8]},
		{WorkitemQuery{UserID: alice, Start: 8, Rows: 10}, 10, ids[1]},
		{WorkitemQuery{Since: base.Add(3 * time.Minute), Until: base.Add(6 * time.Minute), Rows: 10}, 3, ids[5]},
		{WorkitemQuery{Type: WorkitemInboundCall, Rows: 1}, 5, ids[8]},
		{WorkitemQuery{State: WorkitemEnded, Rows: 10}, 5, ids[4]},
		{WorkitemQuery{UserID: NewID(), Rows: 10}, 0, ""},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var got []*Workitem
			var total int
			if err := s.View(func(tx *Tx) (err error) { got, total, err = tx.ListWorkitems(c.q); return err }); err != nil {
				t.Fatal(err)
			}
			if total != c.total || (c.first != "" && (len(got) == 0 || got[0].ID != c.first)) {
				t.Fatalf("total %d (want %d), first %v (want %s)", total, c.total, got, c.first)
			}
		})
	}
	var open []*Workitem
	s.View(func(tx *Tx) (err error) { open, err = tx.OpenWorkitems(); return err })
	if len(open) != 5 {
		t.Fatalf("%d open workitems, want 5", len(open))
	}
}
