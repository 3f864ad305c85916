// Package rtpleg is pbxd's plain RTP endpoint for SIP parties: one UDP
// port pair per leg from a configured range, symmetric RTP (it answers
// where the party's packets come from), RFC 3550 receive statistics and
// RTCP reports, and a media timeout that notices dead calls.
package rtpleg

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"pbxd/media"
)

// Config tunes the engine.
type Config struct {
	Ports PortRange
	// BindIP is the local address legs bind (unspecified: all).
	BindIP netip.Addr
	// PublicIP is the address written into SDP; it defaults to BindIP.
	PublicIP netip.Addr
	// MediaTimeout hangs up a leg whose party should send RTP but has sent
	// nothing for this long; 0 disables it.
	MediaTimeout time.Duration
	// RTCPInterval between our reports (5 s when zero).
	RTCPInterval time.Duration
	// Spares is how many port pairs are kept bound ahead of calls (8 when
	// zero, none when negative).
	Spares int
	Logger *slog.Logger
}

// Engine owns the port range and the legs' housekeeping: one goroutine
// checks every leg for media timeouts and sends RTCP reports, instead of
// a timer per leg.
type Engine struct {
	cfg  Config
	pool *portPool
	log  *slog.Logger

	mu   sync.Mutex
	legs map[*Leg]time.Time // leg → next RTCP report
	stop chan struct{}
	done chan struct{}
	once sync.Once

	spares     chan spare
	refill     chan struct{}
	refillDone chan struct{}
}

// New starts an engine.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Ports.Validate(); err != nil {
		return nil, err
	}
	if !cfg.BindIP.IsValid() {
		cfg.BindIP = netip.IPv4Unspecified()
	}
	if !cfg.PublicIP.IsValid() {
		cfg.PublicIP = cfg.BindIP
	}
	if cfg.RTCPInterval <= 0 {
		cfg.RTCPInterval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Spares == 0 {
		cfg.Spares = defaultSpares
	}
	e := &Engine{cfg: cfg, pool: newPortPool(cfg.Ports), log: cfg.Logger, legs: map[*Leg]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{}),
		spares: make(chan spare, max(cfg.Spares, 0)), refill: make(chan struct{}, 1), refillDone: make(chan struct{})}
	// The first spares are bound before New returns, so a fresh engine's
	// footprint is stable from the start.
	for len(e.spares) < cap(e.spares) {
		s, err := e.bindPair()
		if err != nil {
			break
		}
		e.spares <- s
	}
	go e.housekeeping()
	go e.refiller()
	return e, nil
}

// ErrEngineClosed is returned by Open after Close.
var ErrEngineClosed = errors.New("rtpleg: engine closed")

// Open binds a new leg's port pair. The leg receives nothing until
// Configure and Start.
func (e *Engine) Open(id string) (*Leg, error) {
	select {
	case <-e.stop:
		return nil, ErrEngineClosed
	default:
	}
	p, err := e.takePair()
	if err != nil {
		return nil, fmt.Errorf("rtp leg %s: %w", id, err)
	}
	l := &Leg{e: e, id: id, port: p.port, rtp: p.rtp, rtcp: p.rtcp,
		local: netip.AddrPortFrom(e.cfg.PublicIP, uint16(p.port)), seq: media.NewSequencer(8000)}
	e.mu.Lock()
	e.legs[l] = time.Now().Add(e.cfg.RTCPInterval)
	e.mu.Unlock()
	return l, nil
}

// Active is the number of open legs.
func (e *Engine) Active() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.legs)
}

// PublicIP is the address legs advertise.
func (e *Engine) PublicIP() netip.Addr { return e.cfg.PublicIP }

func (e *Engine) forget(l *Leg) {
	e.mu.Lock()
	delete(e.legs, l)
	e.mu.Unlock()
	e.pool.release(l.port)
}

// Close stops housekeeping and closes every leg still open.
func (e *Engine) Close() {
	e.once.Do(func() {
		close(e.stop)
		<-e.done
		<-e.refillDone
		e.closeSpares()
		e.mu.Lock()
		legs := make([]*Leg, 0, len(e.legs))
		for l := range e.legs {
			legs = append(legs, l)
		}
		e.mu.Unlock()
		for _, l := range legs {
			l.Close()
		}
	})
}

func (e *Engine) housekeeping() {
	defer close(e.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var due []*Leg
	var silent, all []*Leg
	for {
		select {
		case <-e.stop:
			return
		case now := <-tick.C:
			due, silent = due[:0], silent[:0]
			e.mu.Lock()
			for l, next := range e.legs {
				if now.After(next) {
					due = append(due, l)
					e.legs[l] = now.Add(e.cfg.RTCPInterval)
				}
				if e.cfg.MediaTimeout > 0 {
					all = append(all, l)
				}
			}
			e.mu.Unlock()
			// Timeouts are checked outside e.mu: idle takes each leg's
			// lock, and Open/Close must not wait behind that.
			for _, l := range all {
				if idle, ok := l.idle(now); ok && idle > e.cfg.MediaTimeout {
					silent = append(silent, l)
				}
			}
			for _, l := range due {
				l.sendReport(now)
			}
			for _, l := range silent {
				if !l.timedOut.Load() {
					e.log.Info("media timeout: no RTP from the party", "leg", l.id, "for", e.cfg.MediaTimeout.String())
				}
				l.fireTimeout()
			}
			// Drop the references so closed legs (and their calls) can be
			// collected before the next tick.
			clear(due)
			clear(silent)
			clear(all)
			all = all[:0]
		}
	}
}
