package pbx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"pbxd/media"
	"pbxd/media/rtpleg"
	"pbxd/media/webrtcleg"
	"pbxd/pbx/agents"
	"pbxd/pbx/b2bua"
	"pbxd/pbx/digest"
	"pbxd/pbx/registrar"
	"pbxd/pbx/sipauth"
	"pbxd/pbx/trunks"
	"pbxd/store"
)

// Config is what the SIP side needs, filled in by cmd/pbxd.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	// Listen is host:port for SIP over UDP and TCP.
	Listen string
	// TLSListen is host:port for SIP over TLS, served with TLS; both
	// empty/nil turn TLS off.
	TLSListen string
	TLS       *tls.Config
	// WSListen is host:port for SIP over WebSocket (RFC 7118), WSSListen
	// for secure WebSocket with TLS; empty turns each off. WSOrigins are
	// the browser page origins allowed besides the box's own ("*" for any).
	WSListen, WSSListen string
	WSOrigins           []string
	// PublicAddr is the host[:port] written into Via, Contact and SDP for a
	// box behind NAT; empty means the listening address (or, when that is
	// unspecified, the address of the default route's interface).
	PublicAddr string
	// Realm is the digest realm (the one device HA1 values were made for).
	Realm string
	// AuthAlgorithms are the digest algorithms offered, in order.
	AuthAlgorithms []string
	// RTPPorts is the UDP range of media legs.
	RTPPorts rtpleg.PortRange
	// WebRTCPort is the one UDP port every browser's ICE and media share
	// (0: any free port; negative: no WebRTC). WebRTCLite answers as an
	// ICE-lite agent.
	WebRTCPort int
	WebRTCLite bool
	// RingTimeout ends unanswered calls; MediaTimeout hangs up calls
	// whose RTP stopped (0 disables it).
	RingTimeout, MediaTimeout time.Duration
	// KeepAlive is the interval of OPTIONS pings to UDP contacts (30 s
	// when zero; negative disables them).
	KeepAlive time.Duration
	// Publish, when set, reports live call state to users' event streams.
	Publish func(userID, typ string, data any)
	Version string
}

// Server is pbxd's SIP engine: transports, the registrar and the call
// engine.
type Server struct {
	cfg    Config
	log    *slog.Logger
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	udp    net.PacketConn
	tcp    net.Listener
	tls    net.Listener
	ws     *wsListener
	wss    *wsListener
	media  *rtpleg.Engine
	web    *webrtcleg.Engine
	mix    *media.MixClock
	calls  *b2bua.Engine
	agents *agents.Manager
	ping   *registrar.KeepAlive
	trunks *trunks.Manager
	wg     sync.WaitGroup
	close  sync.Once
}

// Start binds the SIP listeners and begins serving. It returns once both
// sockets are bound, so readiness can be reported after it.
func Start(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RTPPorts == (rtpleg.PortRange{}) {
		cfg.RTPPorts = rtpleg.PortRange{Lo: 10000, Hi: 20000}
	}
	auth, err := digest.New(digest.Config{Realm: cfg.Realm, Algorithms: cfg.AuthAlgorithms})
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if s.udp, s.tcp, err = listenSIP(cfg.Listen); err != nil {
		return nil, err
	}
	sizeUDPBuffers(s.udp, s.log)
	ok := false
	defer func() {
		if !ok {
			s.udp.Close()
			s.tcp.Close()
			if s.tls != nil {
				s.tls.Close()
			}
			if s.ws != nil {
				s.ws.Close()
			}
			if s.wss != nil {
				s.wss.Close()
			}
		}
	}()
	tlsPort := 0
	if cfg.TLSListen != "" && cfg.TLS != nil {
		if s.tls, err = tls.Listen("tcp", cfg.TLSListen, cfg.TLS); err != nil {
			return nil, fmt.Errorf("--sip-tls-listen: %w", err)
		}
		tlsPort = s.tls.Addr().(*net.TCPAddr).Port
	}
	if cfg.WSListen != "" {
		ln, err := net.Listen("tcp", cfg.WSListen)
		if err != nil {
			return nil, fmt.Errorf("--sip-ws-listen: %w", err)
		}
		s.ws = newWSListener(ln, cfg.WSOrigins, cfg.Logger)
	}
	if cfg.WSSListen != "" && cfg.TLS != nil {
		ln, err := tls.Listen("tcp", cfg.WSSListen, cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("--sip-wss-listen: %w", err)
		}
		s.wss = newWSListener(ln, cfg.WSOrigins, cfg.Logger)
	}
	bind, public, port, err := advertised(s.udp.LocalAddr().(*net.UDPAddr), cfg.PublicAddr)
	if err != nil {
		return nil, err
	}
	// The stack's own logging goes through a handler that keeps network
	// noise at debug level and cuts whole messages short. sipgo also has a
	// package default logger, which some of its parts use.
	stackLog := newStackLogger(cfg.Logger)
	sip.SetDefaultLogger(stackLog)
	// Outgoing TLS (to carriers) verifies the server against the system
	// roots.
	if s.ua, err = sipgo.NewUA(sipgo.WithUserAgent("pbxd/"+cfg.Version), sipgo.WithUserAgentHostname(public.String()),
		sipgo.WithUserAgenTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(stackLog)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(stackLog))); err != nil {
		return nil, err
	}
	if s.srv, err = sipgo.NewServer(s.ua, sipgo.WithServerLogger(stackLog)); err != nil {
		s.ua.Close()
		return nil, err
	}
	// One client sends UDP from the listening socket (phones behind NAT
	// only accept packets from the port they registered to); TCP needs its
	// own, or sipgo would look connections up by local address.
	udpClient, err := sipgo.NewClient(s.ua, sipgo.WithClientConnectionAddr(s.udp.LocalAddr().String()),
		sipgo.WithClientHostname(public.String()), sipgo.WithClientPort(port), sipgo.WithClientLogger(stackLog))
	if err != nil {
		s.ua.Close()
		return nil, err
	}
	tcpClient, err := sipgo.NewClient(s.ua, sipgo.WithClientHostname(public.String()), sipgo.WithClientPort(port), sipgo.WithClientLogger(stackLog))
	if err != nil {
		s.ua.Close()
		return nil, err
	}
	if s.media, err = rtpleg.New(rtpleg.Config{Ports: cfg.RTPPorts, BindIP: bind, PublicIP: public,
		MediaTimeout: cfg.MediaTimeout, Logger: cfg.Logger}); err != nil {
		s.ua.Close()
		return nil, fmt.Errorf("--rtp-ports: %w", err)
	}
	if cfg.WebRTCPort >= 0 {
		wcfg := webrtcleg.Config{UDPPort: cfg.WebRTCPort, BindIP: bind, Lite: cfg.WebRTCLite, MediaTimeout: cfg.MediaTimeout, Logger: cfg.Logger}
		if cfg.PublicAddr != "" {
			wcfg.PublicIPs = []netip.Addr{public}
		}
		if s.web, err = webrtcleg.New(wcfg); err != nil {
			s.media.Close()
			s.ua.Close()
			return nil, fmt.Errorf("--webrtc-udp-port: %w", err)
		}
	}
	s.trunks = trunks.New(trunks.Config{Store: cfg.Store, Client: udpClient, TCPClient: tcpClient,
		ContactHost: public.String(), ContactPort: port, ContactTLSPort: tlsPort, Logger: cfg.Logger})
	devices := sipauth.New(sipauth.Config{Store: cfg.Store, Digest: auth, Logger: cfg.Logger})
	reg := registrar.New(registrar.Config{Store: cfg.Store, Auth: devices, Logger: cfg.Logger})
	s.mix = media.NewMixClock()
	s.calls, err = b2bua.New(b2bua.Config{Store: cfg.Store, Auth: devices, Media: s.media, WebRTC: s.web, MixClock: s.mix, UDP: udpClient, TCP: tcpClient,
		Host: public.String(), Port: port, TLSPort: tlsPort, WSPort: s.wsPort(s.ws), WSSPort: s.wsPort(s.wss), Trunks: trunkRoutes{s.trunks}, RingTimeout: cfg.RingTimeout, Logger: cfg.Logger})
	if err != nil {
		s.mix.Close()
		s.media.Close()
		if s.web != nil {
			s.web.Close()
		}
		s.ua.Close()
		return nil, err
	}
	s.agents = agents.New(agents.Config{Store: cfg.Store, Calls: s.calls, WebRTC: s.web, MixClock: s.mix, Publish: cfg.Publish, Logger: cfg.Logger})
	s.srv.OnRegister(sane(reg.HandleRegister))
	s.srv.OnOptions(sane(handleOptions))
	s.srv.OnInvite(sane(s.calls.HandleInvite))
	s.srv.OnAck(sane(s.calls.HandleAck))
	s.srv.OnBye(sane(s.calls.HandleBye))
	s.srv.OnCancel(sane(s.calls.HandleCancel))
	s.srv.OnUpdate(sane(s.calls.HandleUpdate))
	s.srv.OnInfo(sane(s.calls.HandleInfo))
	s.srv.OnNoRoute(sane(handleNoRoute))

	if cfg.KeepAlive >= 0 {
		s.ping = registrar.StartKeepAlive(registrar.KeepAliveConfig{Store: cfg.Store, Client: udpClient, Host: public.String(),
			Interval: cfg.KeepAlive, Logger: cfg.Logger})
	}
	ok = true
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.served("udp", s.srv.ServeUDP(s.udp)) }()
	go func() { defer s.wg.Done(); s.served("tcp", s.srv.ServeTCP(s.tcp)) }()
	if s.tls != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.served("tls", s.srv.ServeTLS(s.tls)) }()
	}
	if s.ws != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.served("ws", s.srv.ServeWS(s.ws)) }()
	}
	if s.wss != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.served("wss", s.srv.ServeWSS(s.wss)) }()
	}
	// Registrations start once the listeners serve: the carriers answer
	// on the UDP socket.
	if err := s.trunks.Start(); err != nil {
		s.log.Error("trunks: could not load", "err", err)
	}
	return s, nil
}

// advertised works out where media binds and what address pbxd announces
// in Via, Contact and SDP.
func advertised(listen *net.UDPAddr, public string) (bind, pub netip.Addr, port int, err error) {
	bind = netip.IPv4Unspecified()
	if ip, ok := netip.AddrFromSlice(listen.IP); ok && !ip.Unmap().IsUnspecified() {
		bind = ip.Unmap()
	}
	port = listen.Port
	pub = bind
	if public != "" {
		host, p, splitErr := net.SplitHostPort(public)
		if splitErr != nil {
			host = public
		} else if port, err = strconv.Atoi(p); err != nil || port <= 0 || port > 65535 {
			return bind, pub, 0, fmt.Errorf("--sip-public-addr %q: bad port", public)
		}
		if pub, err = netip.ParseAddr(strings.Trim(host, "[]")); err != nil {
			ips, lerr := net.LookupIP(host)
			if lerr != nil || len(ips) == 0 {
				return bind, pub, 0, fmt.Errorf("--sip-public-addr %q: not an IP address and not resolvable", public)
			}
			pub, _ = netip.AddrFromSlice(ips[0])
			pub = pub.Unmap()
		}
		return bind, pub, port, nil
	}
	if pub.IsUnspecified() {
		pub = defaultRouteIP()
	}
	return bind, pub, port, nil
}

// defaultRouteIP is the local address the kernel would use towards the
// outside world (no packet is sent), or loopback on an isolated box.
func defaultRouteIP() netip.Addr {
	c, err := net.Dial("udp4", "192.0.2.1:9")
	if err != nil {
		return netip.MustParseAddr("127.0.0.1")
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
}

// listenSIP binds UDP and TCP on one address. udp4 keeps replies on the
// listening port (sipgo binds [::] for "udp"). With port 0 the OS picks the
// UDP port, and that port may be taken for TCP: then another one is tried.
func listenSIP(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--sip-listen: %w", err)
	}
	for attempt := 0; ; attempt++ {
		udp, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("--sip-listen udp: %w", err)
		}
		tcpAddr := addr
		if port == "0" {
			_, p, _ := net.SplitHostPort(udp.LocalAddr().String())
			tcpAddr = net.JoinHostPort(host, p)
		}
		tcp, err := net.Listen("tcp4", tcpAddr)
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if port != "0" || attempt == 50 {
			return nil, nil, fmt.Errorf("--sip-listen tcp: %w", err)
		}
	}
}

func (s *Server) served(network string, err error) {
	if err != nil && !errors.Is(err, net.ErrClosed) {
		s.log.Error("SIP listener stopped", "network", network, "err", err)
	}
}

// Addr is the bound SIP address (UDP and TCP share it).
func (s *Server) Addr() string { return s.udp.LocalAddr().String() }

// Agents is the contact-center call runtime.
func (s *Server) Agents() *agents.Manager { return s.agents }

// Stats reports live calls, dialogs and RTP legs.
func (s *Server) Stats() b2bua.Stats { return s.calls.Stats() }

// Trunks is the trunk manager, for the API (reload after changes, status).
func (s *Server) Trunks() *trunks.Manager { return s.trunks }

// trunkRoutes adapts pbx/trunks to the call engine's Trunks interface.
type trunkRoutes struct{ m *trunks.Manager }

// Inbound reports the trunk a request comes from and the extension of its
// DID ("" when the DID is unknown).
func (r trunkRoutes) Inbound(req *sip.Request) (b2bua.TrunkInbound, bool) {
	t, ok := r.m.Match(req)
	if !ok {
		return b2bua.TrunkInbound{}, false
	}
	ext, _ := trunks.InboundTarget(t, req)
	return b2bua.TrunkInbound{TrunkID: t.ID, DID: trunks.DID(t, req), Extension: ext}, true
}

// Outbound picks the trunk, dial string and credentials for a number.
func (r trunkRoutes) Outbound(number string) (b2bua.TrunkOutbound, bool) {
	rt, ok := r.m.Route(number)
	if !ok {
		return b2bua.TrunkOutbound{}, false
	}
	user, pass := r.m.Credentials(rt.Trunk)
	return b2bua.TrunkOutbound{TrunkID: rt.Trunk.ID, Target: rt.Target, Transport: rt.Transport, Destination: rt.Destination,
		FromUser: rt.FromUser, FromHost: rt.FromHost, FromName: rt.FromName, Username: user, Password: pass}, true
}

func (s *Server) wsPort(l *wsListener) int {
	if l == nil {
		return 0
	}
	return l.Addr().(*net.TCPAddr).Port
}

// WebRTCPort is the UDP port browsers' media uses, or 0.
func (s *Server) WebRTCPort() int {
	if s.web == nil {
		return 0
	}
	return s.web.Port()
}

// WSAddr is the bound SIP-over-WebSocket address, or "".
func (s *Server) WSAddr() string {
	if s.ws == nil {
		return ""
	}
	return s.ws.Addr().String()
}

// WSSAddr is the bound secure WebSocket address, or "".
func (s *Server) WSSAddr() string {
	if s.wss == nil {
		return ""
	}
	return s.wss.Addr().String()
}

// TLSAddr is the bound SIP-over-TLS address, or "".
func (s *Server) TLSAddr() string {
	if s.tls == nil {
		return ""
	}
	return s.tls.Addr().String()
}

// Close stops the listeners and the SIP stack and waits for them.
func (s *Server) Close() error {
	s.close.Do(func() {
		// Hang up calls while the sockets can still carry the BYEs.
		s.agents.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s.calls.Close(ctx)
		cancel()
		s.trunks.Close() // unregisters, so it needs the sockets
		if s.ping != nil {
			s.ping.Close()
		}
		s.mix.Close()
		s.media.Close()
		if s.web != nil {
			s.web.Close()
		}
		s.udp.Close()
		s.tcp.Close()
		if s.tls != nil {
			s.tls.Close()
		}
		if s.ws != nil {
			s.ws.Close()
		}
		if s.wss != nil {
			s.wss.Close()
		}
		s.wg.Wait()
		s.srv.Close()
		s.ua.Close()
	})
	return nil
}

// allowed lists the methods pbxd answers today.
const allowed = "REGISTER, INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO"

// handleOptions answers OPTIONS pings (monitoring, trunk and phone
// keep-alives) with 200 and what pbxd supports.
func handleOptions(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	_ = tx.Respond(res)
}
