package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"pbxd/api"
	"pbxd/media/rtpleg"
	"pbxd/pbx"
	"pbxd/pbx/events"
	"pbxd/pbx/tlscert"
	"pbxd/store"

	"github.com/spf13/pflag"
)

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// serve runs the appliance until SIGTERM or SIGINT.
func serve(args []string, stderr io.Writer) int {
	cfg, err := parseServeFlags(args)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "pbxd serve: %v\n", err)
		return 2
	}
	log, err := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "pbxd serve: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := runServe(ctx, cfg, log); err != nil {
		log.Error("pbxd stopped with an error", "err", err)
		return 1
	}
	return 0
}

// adminPassword reads the first admin's password from the file flag or
// PBXD_ADMIN_PASSWORD; empty means generate one.
func adminPassword(cfg *serveConfig) (string, error) {
	if cfg.AdminPasswordFile != "" {
		b, err := os.ReadFile(cfg.AdminPasswordFile)
		if err != nil {
			return "", fmt.Errorf("--admin-password-file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return os.Getenv("PBXD_ADMIN_PASSWORD"), nil
}

func runServe(ctx context.Context, cfg *serveConfig, log *slog.Logger) error {
	start := time.Now()
	n := newNotifier(log)
	n.status("opening store")
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, err := store.Open(store.Config{Dir: filepath.Join(cfg.DataDir, "db"), SyncWrites: cfg.StoreSync, Logger: log})
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing store", "err", err)
		} else {
			log.Info("store closed")
		}
	}()

	rtpPorts, _ := rtpleg.ParsePortRange(cfg.RTPPorts) // validated with the flags
	tlsConf, err := loadTLS(cfg, log)
	if err != nil {
		return err
	}
	// One bus carries every user's events: the API's (status, ACD) and
	// the call runtime's (connection, calls, mute, monitoring).
	bus := events.New()
	defer bus.Close()
	sip, err := pbx.Start(pbx.Config{Store: st, Logger: log, Listen: cfg.SIPListen, PublicAddr: cfg.SIPPublicAddr, Publish: bus.Emit,
		TLSListen: cfg.SIPTLSListen, TLS: tlsConf, WSListen: cfg.SIPWSListen, WSSListen: cfg.SIPWSSListen, WSOrigins: cfg.SIPWSOrigins,
		Realm: cfg.SIPRealm, AuthAlgorithms: cfg.SIPAuthAlgorithms, RTPPorts: rtpPorts, WebRTCPort: cfg.WebRTCUDPPort, WebRTCLite: cfg.WebRTCICELite,
		RingTimeout: cfg.RingTimeout, MediaTimeout: cfg.MediaTimeout, KeepAlive: keepAlive(cfg.SIPKeepAlive), Version: version})
	if err != nil {
		return err
	}
	defer sip.Close()

	srv := api.New(api.Config{Store: st, Logger: log, Version: version, SessionTTL: cfg.SessionTTL, SIPRealm: cfg.SIPRealm,
		Trunks: sip.Trunks(), Calls: api.AgentCalls{M: sip.Agents()}, Events: bus, Gauges: sipGauges(sip)})
	defer srv.Close()

	// The password source is read only when there is no admin yet: the file
	// is a first-start secret that installers may delete afterwards.
	created, generated, err := srv.EnsureAdmin(ctx, func() (string, error) { return adminPassword(cfg) })
	if err != nil {
		return fmt.Errorf("first admin: %w", err)
	}
	switch {
	case created && generated != "":
		// The one time a secret is logged: there is no other channel on a
		// freshly flashed box. It must be changed at first login.
		log.Warn("first start: created user admin with a generated password; it is shown only now and must be changed at first login",
			"username", api.FirstAdminName, "password", generated)
	case created:
		log.Info("first start: created user admin with the configured password", "username", api.FirstAdminName)
	}

	ln, err := net.Listen("tcp", cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("--http-listen: %w", err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(ln) }()

	if cfg.DebugListen != "" {
		stopDebug, err := serveDebug(cfg.DebugListen, log)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	addr := ln.Addr().String()
	log.Info("pbxd ready", "version", version, "http", addr, "api", "http://"+addr+"/api/v1", "sip", sip.Addr(), "sip_tls", sip.TLSAddr(), "sip_ws", sip.WSAddr(), "sip_wss", sip.WSSAddr(), "webrtc_udp", sip.WebRTCPort(),
		"data_dir", cfg.DataDir, "startup_ms", time.Since(start).Milliseconds())
	n.ready(fmt.Sprintf("serving API on %s, SIP on %s", addr, sip.Addr()))

	wdCtx, wdStop := context.WithCancel(ctx)
	wdDone := make(chan struct{})
	go func() {
		defer close(wdDone)
		n.watchdog(wdCtx, healthCheck(st, addr))
	}()

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "signal", "SIGTERM/SIGINT")
	case runErr = <-serveErr:
		log.Error("HTTP server failed", "err", runErr)
	}
	wdStop()
	<-wdDone
	n.stopping()
	shCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(shCtx); err != nil {
		log.Warn("HTTP shutdown did not finish in time", "err", err)
	}
	return runErr
}

// loadTLS reads (or, with --tls-self-signed, creates) the certificate when
// a TLS listener is configured.
func loadTLS(cfg *serveConfig, log *slog.Logger) (*tls.Config, error) {
	if cfg.SIPTLSListen == "" && cfg.SIPWSSListen == "" {
		return nil, nil
	}
	certFile, keyFile := cfg.TLSCert, cfg.TLSKey
	if certFile == "" {
		certFile = filepath.Join(cfg.DataDir, "tls", "sip.crt")
	}
	if keyFile == "" {
		keyFile = filepath.Join(cfg.DataDir, "tls", "sip.key")
	}
	hosts := []string{"localhost", "127.0.0.1"}
	if h, _, err := net.SplitHostPort(cfg.SIPPublicAddr); err == nil {
		hosts = append(hosts, h)
	} else if cfg.SIPPublicAddr != "" {
		hosts = append(hosts, cfg.SIPPublicAddr)
	}
	if h, _, err := net.SplitHostPort(cfg.SIPTLSListen); err == nil && h != "" && h != "0.0.0.0" && h != "::" {
		hosts = append(hosts, h)
	}
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name)
	}
	conf, created, err := tlscert.Load(tlscert.Config{CertFile: certFile, KeyFile: keyFile, SelfSigned: cfg.TLSSelfSigned, Hosts: hosts})
	if err != nil {
		return nil, fmt.Errorf("TLS certificate: %w", err)
	}
	if created {
		log.Warn("created a self-signed TLS certificate; phones must be told to trust it or be given a real one", "cert", certFile)
	}
	return conf, nil
}

// sipGauges reports the SIP side's live counts on /metrics.
func sipGauges(sip *pbx.Server) func() []api.Gauge {
	return func() []api.Gauge {
		st := sip.Stats()
		return []api.Gauge{
			{Name: "pbxd_calls_active", Help: "Calls in progress (ringing or answered).", Value: float64(st.Calls)},
			{Name: "pbxd_sip_dialogs", Help: "SIP dialogs pbxd holds for calls.", Value: float64(st.Dialogs)},
			{Name: "pbxd_rtp_legs", Help: "RTP endpoints open for call legs.", Value: float64(st.MediaLegs)},
		}
	}
}

// keepAlive maps the flag (0 = off) to pbx.Config.KeepAlive (negative = off).
func keepAlive(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// healthCheck proves the process can still do its job: the store answers
// and the HTTP listener serves /healthz.
func healthCheck(st *store.Store, addr string) func(context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	host, port, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	url := "http://" + net.JoinHostPort(host, port) + "/healthz"
	return func(ctx context.Context) error {
		if err := st.Ping(); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("http: %w", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("http: /healthz answered %d", resp.StatusCode)
		}
		return nil
	}
}
