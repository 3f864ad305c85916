package media

import (
	"sync"
	"sync/atomic"
)

// BridgeConfig tunes a bridge.
type BridgeConfig struct {
	// OnEvent, when set, is told about every RFC 4733 packet a party sends
	// (the bridge still passes the packet on). It runs on the sender's
	// receive goroutine and must not block.
	OnEvent func(from Leg, f *Frame)
}

// Bridge joins the legs of one call. With two parties it forwards packets
// without decoding them, converting PCMU↔PCMA in place only when the two
// legs negotiated different codecs, and passes RFC 4733 events through with
// each leg's own payload type. Each leg's outgoing stream stays continuous
// whatever joins or leaves, because legs sequence their own output.
type Bridge struct {
	cfg    BridgeConfig
	mu     sync.Mutex
	parts  []*party
	closed bool
	// routes is the forwarding table the receive path reads without locks;
	// it is rebuilt on every membership or mute change.
	routes atomic.Pointer[routeTable]
}

type party struct {
	leg   Leg
	muted bool
}

type route struct {
	from Leg
	to   []Leg
}

type routeTable struct {
	routes []route
}

// NewBridge returns an empty bridge.
func NewBridge(cfg BridgeConfig) *Bridge {
	b := &Bridge{cfg: cfg}
	b.routes.Store(&routeTable{})
	return b
}

// Add joins l to the bridge and starts routing what its party says.
func (b *Bridge) Add(l Leg) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	for _, p := range b.parts {
		if p.leg == l {
			return
		}
	}
	b.parts = append(b.parts, &party{leg: l})
	b.rebuild()
	l.SetReceiver(b)
}

// Remove takes l out of the bridge; its party is no longer heard and no
// longer hears the others.
func (b *Bridge) Remove(l Leg) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, p := range b.parts {
		if p.leg == l {
			b.parts = append(b.parts[:i], b.parts[i+1:]...)
			l.SetReceiver(nil)
			b.rebuild()
			return
		}
	}
}

// SetMuted stops (or resumes) routing l's audio to the other parties; l
// keeps hearing them. Events (DTMF) still reach OnEvent but not the others.
func (b *Bridge) SetMuted(l Leg, muted bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.parts {
		if p.leg == l && p.muted != muted {
			p.muted = muted
			b.rebuild()
		}
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

// Close detaches every leg; the legs themselves stay open for their owner
// to close.
func (b *Bridge) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, p := range b.parts {
		p.leg.SetReceiver(nil)
	}
	b.parts = nil
	b.rebuild()
}

// rebuild publishes a new routing table; b.mu is held.
func (b *Bridge) rebuild() {
	rt := &routeTable{routes: make([]route, 0, len(b.parts))}
	for _, p := range b.parts {
		r := route{from: p.leg}
		if !p.muted {
			for _, q := range b.parts {
				if q != p {
					r.to = append(r.to, q.leg)
				}
			}
		}
		rt.routes = append(rt.routes, r)
	}
	b.routes.Store(rt)
}

// Receive implements Receiver: it forwards f from one party to the others.
func (b *Bridge) Receive(from Leg, f *Frame) {
	if f.Kind == KindEvent && b.cfg.OnEvent != nil {
		b.cfg.OnEvent(from, f)
	}
	rt := b.routes.Load()
	for i := range rt.routes {
		r := &rt.routes[i]
		if r.from != from {
			continue
		}
		for _, to := range r.to {
			forward(to, f, len(r.to) > 1)
		}
		return
	}
}

// forward sends f to one leg, converting its codec when needed. With
// shared set (more than one receiver of the same frame) the conversion
// works on a copy so the others still get the original payload.
func forward(to Leg, f *Frame, shared bool) {
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
		g := *f
		if shared {
			var buf [maxPayload]byte
			if len(f.Payload) > len(buf) {
				return
			}
			g.Payload = buf[:copy(buf[:], f.Payload)]
		}
		if !Transcode(g.Payload, f.Codec, want) {
			return
		}
		g.Codec = want
		_ = to.Send(&g)
	}
}

// maxPayload bounds an audio payload the bridge converts on a copy: 60 ms
// of G.711 is 480 bytes; anything above an Ethernet MTU is not audio.
const maxPayload = 1500
