package media_test

// Supervisor roles (listen, coach, join), mute and the errors of role
// changes on the bridge.

import (
	"errors"
	"testing"
	"time"

	"pbxd/media"
)

func TestSupervisorRoles(t *testing.T) {
	t.Parallel()
	agent := newFakeLeg("agent", media.PCMU, fAgent)
	cust := newFakeLeg("customer", media.PCMA, fCustomer)
	sup := newFakeLeg("supervisor", media.PCMU, fSuper)
	br := newBridge(t)
	br.Add(agent)
	br.Add(cust)
	for _, l := range []*fakeLeg{agent, cust, sup} {
		l.talk(t)
	}
	if br.Mixing() {
		t.Fatal("a two-party call is mixed")
	}
	// The supervisor goes listen → coach → join → listen → coach without
	// re-dialling; each step is checked on every leg.
	steps := []struct {
		name                  string
		role                  media.Role
		agentH, custH, superH []float64
	}{
		{"listen", media.Role{Kind: media.RoleListen}, []float64{fCustomer}, []float64{fAgent}, []float64{fAgent, fCustomer}},
		{"coach", media.Role{Kind: media.RoleCoach, Target: agent}, []float64{fCustomer, fSuper}, []float64{fAgent}, []float64{fAgent, fCustomer}},
		{"join", media.Role{Kind: media.RoleFull}, []float64{fCustomer, fSuper}, []float64{fAgent, fSuper}, []float64{fAgent, fCustomer}},
		{"listen again", media.Role{Kind: media.RoleListen}, []float64{fCustomer}, []float64{fAgent}, []float64{fAgent, fCustomer}},
		{"coach the customer", media.Role{Kind: media.RoleCoach, Target: cust}, []float64{fCustomer}, []float64{fAgent, fSuper}, []float64{fAgent, fCustomer}},
	}
	for i, st := range steps {
		var err error
		if i == 0 {
			err = br.AddWithRole(sup, st.role)
		} else {
			err = br.SetRole(sup, st.role)
		}
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if r, ok := br.Role(sup); !ok || r != st.role {
			t.Fatalf("%s: role %+v %v", st.name, r, ok)
		}
		if !br.Mixing() {
			t.Fatalf("%s: not mixing", st.name)
		}
		got := listen(agent, cust, sup)
		expectHears(t, st.name, agent, got[agent], st.agentH...)
		expectHears(t, st.name, cust, got[cust], st.custH...)
		expectHears(t, st.name, sup, got[sup], st.superH...)
	}
	// The supervisor hangs up: back to forwarding, the call goes on.
	br.Remove(sup)
	if br.Mixing() {
		t.Fatal("still mixing after the supervisor left")
	}
	got := listen(agent, cust)
	expectHears(t, "supervisor gone", agent, got[agent], fCustomer)
	expectHears(t, "supervisor gone", cust, got[cust], fAgent)
	checkNoCodecErrors(t, agent, cust, sup)
	checkContinuous(t, agent)
	checkContinuous(t, cust)
}

func TestCoachWhoseTargetLeaves(t *testing.T) {
	t.Parallel()
	agent := newFakeLeg("agent", media.PCMU, fAgent)
	cust := newFakeLeg("customer", media.PCMU, fCustomer)
	sup := newFakeLeg("supervisor", media.PCMU, fSuper)
	br := newBridge(t)
	br.Add(agent)
	br.Add(cust)
	if err := br.AddWithRole(sup, media.Role{Kind: media.RoleCoach, Target: agent}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*fakeLeg{agent, cust, sup} {
		l.talk(t)
	}
	br.Remove(agent)
	got := listen(cust, sup)
	expectHears(t, "target gone", cust, got[cust])
	expectHears(t, "target gone", sup, got[sup], fCustomer)
}

func TestMuteInMixing(t *testing.T) {
	t.Parallel()
	a := newFakeLeg("a", media.PCMU, fAgent)
	b := newFakeLeg("b", media.PCMU, fCustomer)
	c := newFakeLeg("c", media.PCMA, fThird)
	br := newBridge(t)
	for _, l := range []*fakeLeg{a, b, c} {
		br.Add(l)
		l.talk(t)
	}
	time.Sleep(200 * time.Millisecond)
	br.SetMuted(a, true)
	// Everything mixed from one packet time after SetMuted on is free of
	// a's voice.
	muted := time.Now().Add(media.FrameDuration)
	time.Sleep(listenWindow)
	expectHears(t, "muted", b, b.since(muted), fThird)
	expectHears(t, "muted", c, c.since(muted), fCustomer)
	expectHears(t, "muted", a, a.since(muted), fCustomer, fThird)

	br.SetMuted(a, false)
	got := listen(a, b, c)
	expectHears(t, "unmuted", b, got[b], fAgent, fThird)
	expectHears(t, "unmuted", c, got[c], fAgent, fCustomer)
}

func TestMuteWhileForwarding(t *testing.T) {
	t.Parallel()
	a := newFakeLeg("a", media.PCMU, fAgent)
	b := newFakeLeg("b", media.PCMA, fCustomer)
	br := newBridge(t)
	br.Add(a)
	br.Add(b)
	a.talk(t)
	b.talk(t)
	got := listen(a, b)
	expectHears(t, "forwarding", a, got[a], fCustomer)
	expectHears(t, "forwarding", b, got[b], fAgent)
	br.SetMuted(a, true)
	muted := time.Now().Add(media.FrameDuration)
	time.Sleep(listenWindow)
	if n := len(b.since(muted)); n != 0 {
		t.Errorf("b was sent %d samples of the muted party", n)
	}
	expectHears(t, "muted", a, a.since(muted), fCustomer)
	checkNoCodecErrors(t, a, b)
}

func TestRoleErrors(t *testing.T) {
	t.Parallel()
	a := newFakeLeg("a", media.PCMU, 0)
	b := newFakeLeg("b", media.PCMU, 0)
	out := newFakeLeg("out", media.PCMU, 0)
	br := media.NewBridge(media.BridgeConfig{})
	br.Add(a)
	br.Add(b)
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"SetRole of a stranger", br.SetRole(out, media.Role{Kind: media.RoleListen}), media.ErrNotInBridge},
		{"coach without target", br.SetRole(a, media.Role{Kind: media.RoleCoach}), media.ErrRole},
		{"coach oneself", br.SetRole(a, media.Role{Kind: media.RoleCoach, Target: a}), media.ErrRole},
		{"coach a stranger", br.AddWithRole(out, media.Role{Kind: media.RoleCoach, Target: newFakeLeg("x", media.PCMU, 0)}), media.ErrRole},
		{"listen with a target", br.SetRole(a, media.Role{Kind: media.RoleListen, Target: b}), media.ErrRole},
		{"unknown kind", br.SetRole(a, media.Role{Kind: 9}), media.ErrRole},
		{"valid", br.SetRole(a, media.Role{Kind: media.RoleCoach, Target: b}), nil},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	if _, ok := br.Role(out); ok {
		t.Error("a rejected leg was added")
	}
	if len(br.Legs()) != 2 {
		t.Errorf("legs %v", br.Legs())
	}
	br.Close()
	if err := br.AddWithRole(out, media.Role{}); !errors.Is(err, media.ErrBridgeClosed) {
		t.Errorf("AddWithRole after Close: %v", err)
	}
	if err := br.SetRole(a, media.Role{}); !errors.Is(err, media.ErrBridgeClosed) {
		t.Errorf("SetRole after Close: %v", err)
	}
	br.Add(out)
	if len(br.Legs()) != 0 || a.recv.Load() != nil {
		t.Error("legs still attached after Close")
	}
	if media.RoleCoach.String() != "coach" {
		t.Error(media.RoleCoach.String())
	}
}
