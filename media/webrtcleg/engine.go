// Package webrtcleg is pbxd's WebRTC endpoint for browser softphones: it
// terminates ICE and DTLS-SRTP with pion/webrtc on one UDP port shared by
// every browser, speaks only G.711 (PCMU, PCMA) and RFC 4733
// telephone-events so that nothing is transcoded, and turns the browser's
// RTP into media.Frames and back, so a Leg joins a media.Bridge exactly
// like a plain RTP leg.
package webrtcleg

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// Config tunes the engine. The zero value (plus a port) serves every
// interface's addresses, IPv4 only.
type Config struct {
	// UDPPort is the one UDP port every peer connection uses (pion's ICE
	// UDP mux); 0 picks a free one (tests).
	UDPPort int
	// BindIP is the local address to serve; unspecified serves every
	// interface that is up, one socket per address, all on UDPPort.
	BindIP netip.Addr
	// PublicIPs are the addresses to advertise in ICE host candidates for
	// a box behind a 1:1 NAT. They replace the local addresses unless
	// AdvertisePrivate is set. With BindIP unspecified (and not
	// AdvertisePrivate) the engine then listens on one wildcard socket, so
	// packets reach it whichever local address the NAT forwards to.
	PublicIPs []netip.Addr
	// AdvertisePrivate keeps the local host candidates next to PublicIPs,
	// for browsers on the box's own LAN when the NAT does not hairpin.
	AdvertisePrivate bool
	// Loopback offers loopback host candidates. They are offered anyway
	// when BindIP is a loopback address or when the host has no other
	// address (a network namespace with only lo, as in CI).
	Loopback bool
	// IPv6 also serves (and advertises) global IPv6 addresses.
	IPv6 bool
	// Lite makes the box an ICE-lite agent (RFC 8445 §2.5): host
	// candidates only, no checks of its own, always the controlled side.
	Lite bool
	// MediaTimeout calls a leg's OnTimeout when the browser should be
	// sending but nothing has arrived for this long; 0 disables it.
	MediaTimeout time.Duration
	// ICEDisconnectedTimeout and ICEFailedTimeout override pion's 5 s and
	// 25 s for declaring a silent ICE connection disconnected and failed
	// (the leg's state callback then reports "disconnected"/"failed").
	ICEDisconnectedTimeout time.Duration
	ICEFailedTimeout       time.Duration
	Logger                 *slog.Logger
}

// Errors the engine and its legs return.
var (
	ErrEngineClosed = errors.New("webrtcleg: engine closed")
	// ErrNoCodec means the browser's SDP offers neither PCMU nor PCMA.
	ErrNoCodec = errors.New("webrtcleg: no G.711 codec in the offer")
	// ErrNoAudio means the SDP has no audio section pbxd can use.
	ErrNoAudio = errors.New("webrtcleg: no audio in the session description")
	// ErrNoCandidates means ICE gathering found no address to offer.
	ErrNoCandidates = errors.New("webrtcleg: no ICE candidates")
	// ErrState means a negotiation call came out of order (SetAnswer
	// without Offer, Answer while an offer of ours is pending).
	ErrState = errors.New("webrtcleg: negotiation out of order")
)

// Engine owns what every WebRTC leg shares: the UDP socket(s) of the one
// ICE port, pion's API (media engine, interceptors, settings) and the
// housekeeping goroutine that checks the legs' media timeouts.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	api   *webrtc.API
	mux   ice.UDPMux
	port  int
	addrs []netip.Addr

	mu   sync.Mutex
	legs map[*Leg]struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// New opens the engine's UDP port and starts its housekeeping.
func New(cfg Config) (*Engine, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UDPPort < 0 || cfg.UDPPort > 65535 {
		return nil, fmt.Errorf("webrtcleg: UDP port %d out of range", cfg.UDPPort)
	}
	logs := pionLogs{log: cfg.Logger.With("component", "webrtc")}
	addrs, loopback, err := listenAddrs(&cfg)
	if err != nil {
		return nil, err
	}
	conns, err := bindAll(addrs, cfg.UDPPort)
	if err != nil {
		return nil, err
	}
	port := conns[0].LocalAddr().(*net.UDPAddr).Port
	mux := newMux(conns, logs)

	se, err := settings(&cfg, mux, loopback, logs)
	if err != nil {
		mux.Close()
		return nil, err
	}
	me, err := mediaEngine()
	if err != nil {
		mux.Close()
		return nil, err
	}
	reg := &interceptor.Registry{}
	// Sender and receiver reports only: no NACK (audio is not
	// retransmitted), no TWCC or simulcast extensions.
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		mux.Close()
		return nil, err
	}
	e := &Engine{
		cfg:   cfg,
		log:   cfg.Logger,
		api:   webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg)),
		mux:   mux,
		port:  port,
		addrs: addrs,
		legs:  map[*Leg]struct{}{},
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go e.housekeeping()
	e.log.Info("webrtc engine listening", "port", port, "addrs", fmt.Sprint(addrs), "lite", cfg.Lite, "public", fmt.Sprint(cfg.PublicIPs))
	return e, nil
}

// settings is the one SettingEngine every peer connection of the engine
// shares.
func settings(cfg *Config, mux ice.UDPMux, loopback bool, logs pionLogs) (webrtc.SettingEngine, error) {
	var se webrtc.SettingEngine
	se.LoggerFactory = logs
	se.SetICEUDPMux(mux)
	se.SetLite(cfg.Lite)
	nets := []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	if cfg.IPv6 {
		nets = append(nets, webrtc.NetworkTypeUDP6)
	}
	se.SetNetworkTypes(nets)
	// The agent drops loopback addresses a single-socket mux reports
	// unless told otherwise (the multi-socket mux is not filtered).
	se.SetIncludeLoopbackCandidate(loopback)
	// No mDNS: pbxd publishes real addresses, and a browser hiding its own
	// behind a .local name is learnt as peer-reflexive from its checks.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if cfg.ICEDisconnectedTimeout > 0 || cfg.ICEFailedTimeout > 0 {
		disc, failed := cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout
		if disc <= 0 {
			disc = 5 * time.Second
		}
		if failed <= 0 {
			failed = 25 * time.Second
		}
		se.SetICETimeouts(disc, failed, 2*time.Second)
	}
	if len(cfg.PublicIPs) > 0 {
		ext := make([]string, len(cfg.PublicIPs))
		for i, ip := range cfg.PublicIPs {
			ext[i] = ip.Unmap().String()
		}
		mode := webrtc.ICEAddressRewriteReplace
		if cfg.AdvertisePrivate {
			mode = webrtc.ICEAddressRewriteAppend
		}
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        ext,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            mode,
		}); err != nil {
			return se, fmt.Errorf("webrtcleg: public IPs: %w", err)
		}
	}
	return se, nil
}

// mediaEngine registers G.711 and telephone-event only: a browser then
// answers (and offers to us) a codec the bridge forwards untouched.
func mediaEngine() (*webrtc.MediaEngine, error) {
	me := &webrtc.MediaEngine{}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1}, PayloadType: 8},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mimeTelephoneEvent, ClockRate: 8000, Channels: 1, SDPFmtpLine: "0-16"}, PayloadType: 101},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	return me, nil
}

const mimeTelephoneEvent = "audio/telephone-event"

// Port is the UDP port every leg's ICE candidates carry.
func (e *Engine) Port() int { return e.port }

// Addrs are the local addresses the engine listens on.
func (e *Engine) Addrs() []netip.Addr { return append([]netip.Addr(nil), e.addrs...) }

// Active is the number of open legs.
func (e *Engine) Active() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.legs)
}

// Close closes every leg still open, then the UDP port, and waits for the
// housekeeping goroutine.
func (e *Engine) Close() {
	e.once.Do(func() {
		close(e.stop)
		<-e.done
		e.mu.Lock()
		legs := make([]*Leg, 0, len(e.legs))
		for l := range e.legs {
			legs = append(legs, l)
		}
		e.mu.Unlock()
		for _, l := range legs {
			l.Close()
		}
		e.mux.Close()
	})
}

func (e *Engine) add(l *Leg) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.stop:
		return ErrEngineClosed
	default:
	}
	e.legs[l] = struct{}{}
	return nil
}

func (e *Engine) forget(l *Leg) {
	e.mu.Lock()
	delete(e.legs, l)
	e.mu.Unlock()
}

// housekeeping checks every leg for a media timeout four times a second:
// one goroutine for the engine instead of a timer per leg.
func (e *Engine) housekeeping() {
	defer close(e.done)
	if e.cfg.MediaTimeout <= 0 {
		<-e.stop
		return
	}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var silent []*Leg
	for {
		select {
		case <-e.stop:
			return
		case now := <-tick.C:
			silent = silent[:0]
			e.mu.Lock()
			for l := range e.legs {
				if idle, ok := l.idle(now); ok && idle > e.cfg.MediaTimeout {
					silent = append(silent, l)
				}
			}
			e.mu.Unlock()
			for _, l := range silent {
				l.fireTimeout(e.cfg.MediaTimeout)
			}
		}
	}
}
