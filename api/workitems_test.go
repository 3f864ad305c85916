package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"pbxd/store"
)

func TestWorkitemsAPI(t *testing.T) {
	ts := newTestServer(t, false)
	alice := ts.createUser(t, map[string]any{"userName": "alice", "password": "alice-pass-1", "roles": []string{"ROLE_AGENT"}})
	bob := ts.createUser(t, map[string]any{"userName": "bob", "password": "bob-pass-12", "roles": []string{"ROLE_AGENT"}})
	base := time.Now().Add(-time.Hour)
	var ids []string
	for i := 0; i < 6; i++ {
		w := &store.Workitem{ID: store.NewID(), Type: store.WorkitemInternalCall, State: store.WorkitemEnded, From: "201", To: "202",
			Users: []string{alice}, CreatedAt: base.Add(time.Duration(i) * time.Minute), EndReason: "completed",
			Media: []store.LegMedia{{Leg: "caller", PacketsReceived: 100}}}
		if i%2 == 1 {
			w.Users, w.Type = []string{bob}, store.WorkitemInboundCall
		}
		ids = append(ids, w.ID)
		if err := ts.st.Update(func(tx *store.Tx) error { return tx.PutWorkitem(w) }); err != nil {
			t.Fatal(err)
		}
	}
	list := func(token, q string) (int, listEnvelope) {
		code, body := ts.do(t, "GET", "/api/v1/workitems"+q, token, nil)
		var env listEnvelope
		if code == 200 {
			env = decode[listEnvelope](t, body)
		}
		return code, env
	}
	if code, env := list(ts.adminToken, "?rows=2"); code != 200 || env.Total != 6 || env.Count != 2 || env.Next == nil {
		t.Fatalf("admin list: %d %+v", code, env)
	}
	if _, env := list(ts.adminToken, "?type=InboundCall"); env.Total != 3 {
		t.Fatalf("by type: %+v", env)
	}
	if _, env := list(ts.adminToken, fmt.Sprintf("?since=%d&until=%d", base.Add(90*time.Second).UnixMilli(), base.Add(270*time.Second).UnixMilli())); env.Total != 3 {
		t.Fatalf("time window: %+v", env)
	}
	aliceTok := ts.login(t, "alice", "alice-pass-1")
	if _, env := list(aliceTok, ""); env.Total != 3 {
		t.Fatalf("an agent sees %d records, want her own 3", env.Total)
	}
	if code, _ := list(aliceTok, "?userId="+bob); code != http.StatusForbidden {
		t.Fatalf("an agent read another's records: %d", code)
	}
	if code, body := ts.do(t, "GET", "/api/v1/workitems/"+ids[1], aliceTok, nil); code != 404 {
		t.Fatalf("an agent read a record she took no part in: %d %s", code, body)
	}
	code, body := ts.do(t, "GET", "/api/v1/workitems/"+ids[0], aliceTok, nil)
	if code != 200 || !strings.Contains(string(body), `"packetsReceived":100`) {
		t.Fatalf("own record: %d %s", code, body)
	}
	for _, bad := range []string{"?type=Fax", "?state=gone", "?since=x", "?userId=nope", "?color=red", "?rows=0"} {
		if code, _ := list(ts.adminToken, bad); code != 400 {
			t.Errorf("%s answered %d", bad, code)
		}
	}
}
