package pbx

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"pbxd/pbx/digest"
	"pbxd/pbx/registrar"
	"pbxd/pbx/sipauth"
	"pbxd/store"
)

// Config is what the SIP side needs, filled in by cmd/pbxd.
type Config struct {
	Store  *store.Store
	Logger *slog.Logger
	// Listen is host:port for SIP over UDP and TCP.
	Listen string
	// Realm is the digest realm (the one device HA1 values were made for).
	Realm string
	// AuthAlgorithms are the digest algorithms offered, in order.
	AuthAlgorithms []string
	Version        string
}

// Server is pbxd's SIP engine: transports and the request handlers.
type Server struct {
	cfg   Config
	log   *slog.Logger
	ua    *sipgo.UserAgent
	srv   *sipgo.Server
	udp   net.PacketConn
	tcp   net.Listener
	wg    sync.WaitGroup
	close sync.Once
}

// Start binds the SIP listeners and begins serving. It returns once both
// sockets are bound, so readiness can be reported after it.
func Start(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	auth, err := digest.New(digest.Config{Realm: cfg.Realm, Algorithms: cfg.AuthAlgorithms})
	if err != nil {
		return nil, err
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("pbxd/" + cfg.Version))
	if err != nil {
		return nil, err
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(cfg.Logger))
	if err != nil {
		ua.Close()
		return nil, err
	}
	devices := sipauth.New(sipauth.Config{Store: cfg.Store, Digest: auth, Logger: cfg.Logger})
	reg := registrar.New(registrar.Config{Store: cfg.Store, Auth: devices, Logger: cfg.Logger})
	srv.OnRegister(reg.HandleRegister)
	srv.OnOptions(handleOptions)

	s := &Server{cfg: cfg, log: cfg.Logger, ua: ua, srv: srv}
	if s.udp, s.tcp, err = listenSIP(cfg.Listen); err != nil {
		ua.Close()
		return nil, err
	}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.served("udp", srv.ServeUDP(s.udp)) }()
	go func() { defer s.wg.Done(); s.served("tcp", srv.ServeTCP(s.tcp)) }()
	return s, nil
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

// Close stops the listeners and the SIP stack and waits for them.
func (s *Server) Close() error {
	s.close.Do(func() {
		s.udp.Close()
		s.tcp.Close()
		s.wg.Wait()
		s.srv.Close()
		s.ua.Close()
	})
	return nil
}

// allowed lists the methods pbxd answers today.
const allowed = "REGISTER, OPTIONS"

// handleOptions answers OPTIONS pings (monitoring, trunk and phone
// keep-alives) with 200 and what pbxd supports.
func handleOptions(req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(sip.NewHeader("Allow", allowed))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	_ = tx.Respond(res)
}
