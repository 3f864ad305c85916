package media

import (
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// BridgeConfig tunes a bridge.
type BridgeConfig struct {
	// OnEvent, when set, is told about every RFC 4733 packet a party sends.
	// While the bridge forwards, it still passes the packet on; while it
	// mixes, events reach OnEvent only (see Bridge). It runs on the
	// sender's receive goroutine and must not block.
	OnEvent func(from Leg, f *Frame)
	// Clock paces the bridge's mixing. Share one clock across the box's
	// bridges so that all conferences mix on the same tick from one
	// goroutine; nil gives the bridge a clock of its own, which runs only
	// while the bridge mixes and stops with Close.
	Clock *MixClock
}

// RoleKind says how a party takes part in a bridge.
type RoleKind uint8

const (
	// RoleFull parties hear every party audible to them and are heard by
	// all (unless muted). It is the role Add gives.
	RoleFull RoleKind = iota
	// RoleListen is silent monitoring: the party hears everyone and is
	// heard by nobody.
	RoleListen
	// RoleCoach is a whisper: the party hears everyone and is heard only
	// by Role.Target (the agent being coached).
	RoleCoach
)

// String names the kind for logs.
func (k RoleKind) String() string {
	switch k {
	case RoleFull:
		return "full"
	case RoleListen:
		return "listen"
	case RoleCoach:
		return "coach"
	}
	return "unknown"
}

// Role is a party's part in a bridge. A supervisor moves from listen to
// coach to full (barge/join) with SetRole, without leaving the bridge.
type Role struct {
	Kind RoleKind
	// Target is the one leg that hears a RoleCoach party; it must be in
	// the bridge when the role is set. If it leaves, the coach is heard by
	// nobody until it is given another role.
	Target Leg
}

// Errors the role calls return.
var (
	ErrBridgeClosed = errors.New("media: bridge closed")
	ErrNotInBridge  = errors.New("media: leg not in the bridge")
	ErrRole         = errors.New("media: invalid role")
)

// Bridge joins the legs of one call, conference or monitored call.
//
// Who hears whom: a party hears every other party that is audible to it,
// never itself (mix-minus). A RoleFull party is audible to everyone, a
// RoleCoach party only to its target, a RoleListen or muted party to
// nobody; every party, whatever its role, hears.
//
// With exactly two RoleFull parties (muted or not) and nobody else the
// bridge forwards packets without decoding them, converting PCMU↔PCMA in
// place only when the legs negotiated different codecs, and passes RFC 4733
// events through with each leg's own payload type. Otherwise it mixes:
// each party's G.711 audio is decoded into a small input ring, and every
// 20 ms tick of the bridge's MixClock each party gets its own mix of
// exactly the parties it may hear, summed in int32, clipped to int16 and
// encoded in its codec, as a frame whose Source is the bridge's id. While
// mixing, DTMF events are reported to OnEvent and sent to nobody: a digit
// in a conference is a command to the box, not audio for the others.
//
// The bridge switches between forwarding and mixing live as parties join,
// leave or change role; each leg's Sequencer keeps its outgoing stream
// continuous across the switch (a new Source starts a new run).
type Bridge struct {
	cfg      BridgeConfig
	clock    *MixClock
	ownClock bool
	id       uint32

	mu     sync.Mutex
	parts  []*party
	closed bool
	// snap is who hears whom, rebuilt on every membership, role or mute
	// change; the receive path and the mixer read it without locks.
	snap atomic.Pointer[snapshot]

	// mixMu is held for one tick's mix; Remove and Close take it once so
	// that no mixed frame goes out to a leg after they return. The fields
	// below it belong to the mixer.
	mixMu   sync.Mutex
	lastMix time.Time
	seq     uint16
	ts      uint32
	sum     [FrameSamples]int32
	acc     [FrameSamples]int32
	out     Frame
}

type party struct {
	leg   Leg
	role  Role
	muted bool

	// mu guards the input ring (written on the leg's receive goroutine,
	// read by the mixer) and the forwarding scratch frame.
	mu  sync.Mutex
	in  inputRing
	fwd Frame

	// The mixer's own, under Bridge.mixMu.
	frame [FrameSamples]int16
	has   bool
	out   [FrameSamples]byte
}

// audience is who hears one party.
type audience uint8

const (
	heardByNobody audience = iota
	heardByAll
	heardByOne
)

type slot struct {
	leg   Leg
	p     *party
	heard audience
	// peer is where a forwarding bridge sends this party's packets (nil
	// when muted).
	peer Leg
	// coaches are the indexes of the parties whispering to this one.
	coaches []int
}

type snapshot struct {
	mixing bool
	slots  []slot
}

// NewBridge returns an empty bridge.
func NewBridge(cfg BridgeConfig) *Bridge {
	b := &Bridge{cfg: cfg, clock: cfg.Clock, id: rand.Uint32() | 1, seq: uint16(rand.Uint32()), ts: rand.Uint32()}
	if b.clock == nil {
		b.clock, b.ownClock = NewMixClock(), true
	}
	b.snap.Store(&snapshot{})
	return b
}

// Add joins l to the bridge as a RoleFull party and starts routing what its
// party says. Adding a leg already in the bridge changes nothing.
func (b *Bridge) Add(l Leg) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.find(l) != nil {
		return
	}
	b.join(l, Role{})
}

// AddWithRole joins l with role r (a supervisor's listen or coach leg); for
// a leg already in the bridge it is SetRole.
func (b *Bridge) AddWithRole(l Leg, r Role) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBridgeClosed
	}
	if err := b.checkRole(l, r); err != nil {
		return err
	}
	if p := b.find(l); p != nil {
		p.role = r
		b.rebuild()
		return nil
	}
	b.join(l, r)
	return nil
}

// join adds a new party; b.mu is held and r checked.
func (b *Bridge) join(l Leg, r Role) {
	b.parts = append(b.parts, &party{leg: l, role: r})
	b.rebuild()
	l.SetReceiver(b)
}

// SetRole changes l's role live; it takes effect on l's next packet or the
// next mixer tick, whichever comes first.
func (b *Bridge) SetRole(l Leg, r Role) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrBridgeClosed
	}
	p := b.find(l)
	if p == nil {
		return ErrNotInBridge
	}
	if err := b.checkRole(l, r); err != nil {
		return err
	}
	if p.role != r {
		p.role = r
		b.rebuild()
	}
	return nil
}

// Role reports l's role and whether l is in the bridge.
func (b *Bridge) Role(l Leg) (Role, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := b.find(l); p != nil {
		return p.role, true
	}
	return Role{}, false
}

// checkRole validates r for l; b.mu is held.
func (b *Bridge) checkRole(l Leg, r Role) error {
	switch r.Kind {
	case RoleFull, RoleListen:
		if r.Target != nil {
			return ErrRole
		}
		return nil
	case RoleCoach:
		if r.Target == nil || r.Target == l || b.find(r.Target) == nil {
			return ErrRole
		}
		return nil
	}
	return ErrRole
}

// Remove takes l out of the bridge; its party is no longer heard and no
// longer hears the others. No frame reaches l from the bridge after Remove
// returns, except one its peer's receive goroutine is forwarding already.
func (b *Bridge) Remove(l Leg) {
	b.mu.Lock()
	removed := false
	for i, p := range b.parts {
		if p.leg == l {
			b.parts = append(b.parts[:i:i], b.parts[i+1:]...)
			l.SetReceiver(nil)
			b.rebuild()
			removed = true
			break
		}
	}
	b.mu.Unlock()
	if removed {
		b.waitMix()
	}
}

// SetMuted stops (or resumes) routing l's audio to the other parties; l
// keeps hearing them. Events (DTMF) still reach OnEvent but not the others.
// It takes effect on l's next packet, or the next mixer tick.
func (b *Bridge) SetMuted(l Leg, muted bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p := b.find(l); p != nil && p.muted != muted {
		p.muted = muted
		b.rebuild()
	}
}

// Legs lists the bridge's legs in joining order.
func (b *Bridge) Legs() []Leg {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Leg, len(b.parts))
	for i, p := range b.parts {
		out[i] = p.leg
	}
	return out
}

// Mixing reports whether the bridge is mixing (rather than forwarding).
func (b *Bridge) Mixing() bool { return b.snap.Load().mixing }

// Close detaches every leg and stops the bridge's mixing; the legs
// themselves stay open for their owner to close. Every goroutine the
// bridge started has ended when Close returns.
func (b *Bridge) Close() {
	b.mu.Lock()
	b.closed = true
	for _, p := range b.parts {
		p.leg.SetReceiver(nil)
	}
	b.parts = nil
	b.rebuild()
	b.mu.Unlock()
	b.waitMix()
	if b.ownClock {
		b.clock.Close()
	}
}

// waitMix waits for a mix in progress to finish.
func (b *Bridge) waitMix() {
	b.mixMu.Lock()
	//lint:ignore SA2001 an empty critical section is the barrier.
	b.mixMu.Unlock()
}

// find returns l's party; b.mu is held.
func (b *Bridge) find(l Leg) *party {
	for _, p := range b.parts {
		if p.leg == l {
			return p
		}
	}
	return nil
}

// rebuild publishes who hears whom and starts or stops mixing; b.mu is
// held.
func (b *Bridge) rebuild() {
	old := b.snap.Load()
	s := &snapshot{slots: make([]slot, len(b.parts)), mixing: len(b.parts) > 2}
	index := make(map[Leg]int, len(b.parts))
	for i, p := range b.parts {
		index[p.leg] = i
		if p.role.Kind != RoleFull {
			s.mixing = true
		}
	}
	for i, p := range b.parts {
		sl := &s.slots[i]
		sl.leg, sl.p = p.leg, p
		switch {
		case p.muted || p.role.Kind == RoleListen:
			sl.heard = heardByNobody
		case p.role.Kind == RoleFull:
			sl.heard = heardByAll
		case p.role.Kind == RoleCoach:
			if j, ok := index[p.role.Target]; ok {
				sl.heard = heardByOne
				s.slots[j].coaches = append(s.slots[j].coaches, i)
			}
		}
	}
	if !s.mixing && len(s.slots) == 2 {
		for i := range s.slots {
			if s.slots[i].heard == heardByAll {
				s.slots[i].peer = s.slots[1-i].leg
			}
		}
	}
	if s.mixing && !old.mixing {
		// Audio left over from an earlier mixing spell is stale.
		for _, p := range b.parts {
			p.mu.Lock()
			p.in.reset()
			p.mu.Unlock()
		}
	}
	b.snap.Store(s)
	switch {
	case s.mixing && !old.mixing:
		b.clock.add(b)
	case !s.mixing && old.mixing:
		b.clock.remove(b)
	}
}

// Receive implements Receiver: it forwards f to the other party, or queues
// its audio for the mixer. It never blocks.
func (b *Bridge) Receive(from Leg, f *Frame) {
	if f.Kind == KindEvent && b.cfg.OnEvent != nil {
		b.cfg.OnEvent(from, f)
	}
	s := b.snap.Load()
	var sl *slot
	for i := range s.slots {
		if s.slots[i].leg == from {
			sl = &s.slots[i]
			break
		}
	}
	if sl == nil {
		return
	}
	if s.mixing {
		if f.Kind == KindAudio && sl.heard != heardByNobody {
			sl.p.mu.Lock()
			sl.p.in.write(f.Codec, f.Payload)
			sl.p.mu.Unlock()
		}
		return
	}
	if sl.peer != nil {
		sl.p.forward(sl.peer, f)
	}
}

// forward sends f to one leg, converting its codec in place when needed.
// It runs on p's receive goroutine.
func (p *party) forward(to Leg, f *Frame) {
	switch f.Kind {
	case KindEvent:
		if to.EventPayloadType() == 0 {
			return
		}
		_ = to.Send(f)
	case KindAudio:
		want := to.Codec()
		if f.Codec.Name == want.Name || want.IsZero() {
			_ = to.Send(f)
			return
		}
		if !Transcode(f.Payload, f.Codec, want) {
			return
		}
		// A frame of the party's own (f stays the leg's), so that sending
		// does not allocate.
		p.mu.Lock()
		g := &p.fwd
		*g = *f
		g.Codec = want
		_ = to.Send(g)
		g.Payload = nil
		p.mu.Unlock()
	}
}

// mix makes and sends every party's mix for the tick at now. It runs on
// the clock's goroutine.
func (b *Bridge) mix(now time.Time) {
	b.mixMu.Lock()
	defer b.mixMu.Unlock()
	s := b.snap.Load()
	if !s.mixing {
		return
	}
	// The mixed stream's timestamp follows real time: a missed tick or a
	// new mixing spell moves it on by the time that passed, and a new
	// spell is marked.
	ticks, marker := uint32(1), b.lastMix.IsZero()
	if !marker {
		d := now.Sub(b.lastMix)
		marker = d > 3*FrameDuration
		ticks = uint32(max(1, (d+FrameDuration/2)/FrameDuration))
	}
	b.lastMix = now
	b.seq++
	b.ts += ticks * FrameSamples

	slots := s.slots
	for i := range slots {
		p := slots[i].p
		p.mu.Lock()
		if slots[i].heard == heardByNobody {
			// Muted or listening: what it said before is dropped too.
			p.in.skip(ringSamples)
			p.has = false
		} else {
			p.has = p.in.read(&p.frame)
		}
		p.mu.Unlock()
	}
	// Everyone's mix is the sum of the parties heard by all, minus their
	// own voice, plus whoever coaches them: one pass over the speakers and
	// one per listener, however many parties there are.
	sum := &b.sum
	clear(sum[:])
	for i := range slots {
		if slots[i].heard == heardByAll && slots[i].p.has {
			addFrame(sum, &slots[i].p.frame)
		}
	}
	for i := range slots {
		sl := &slots[i]
		p := sl.p
		c := p.leg.Codec()
		switch c.Name {
		case PCMU.Name, PCMA.Name:
		case "":
			c = PCMU
		default:
			continue // not a codec the mixer speaks
		}
		acc := sum
		own := sl.heard == heardByAll && p.has
		if own || len(sl.coaches) > 0 {
			acc = &b.acc
			*acc = *sum
			if own {
				subFrame(acc, &p.frame)
			}
			for _, j := range sl.coaches {
				if slots[j].p.has {
					addFrame(acc, &slots[j].p.frame)
				}
			}
		}
		encodeMix(&p.out, acc, c)
		b.out = Frame{Kind: KindAudio, Codec: c, Source: b.id, Seq: b.seq, Timestamp: b.ts, Marker: marker, Payload: p.out[:]}
		_ = p.leg.Send(&b.out)
	}
	b.out.Payload = nil
}
