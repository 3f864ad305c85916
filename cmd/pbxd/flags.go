package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"pbxd/media/rtpleg"
)

// serveConfig is what `pbxd serve` is told by flags and PBXD_* variables.
type serveConfig struct {
	DataDir           string
	HTTPListen        string
	SIPListen         string
	SIPPublicAddr     string
	SIPTLSListen      string
	SIPWSListen       string
	SIPWSSListen      string
	SIPWSOrigins      []string
	TLSCert           string
	TLSKey            string
	TLSSelfSigned     bool
	RTPPorts          string
	WebRTCUDPPort     int
	WebRTCICELite     bool
	RingTimeout       time.Duration
	MediaTimeout      time.Duration
	SIPKeepAlive      time.Duration
	AdminPasswordFile string
	LogLevel          string
	LogFormat         string
	SessionTTL        time.Duration
	StoreSync         bool
	SIPRealm          string
	SIPAuthAlgorithms []string
	ShutdownTimeout   time.Duration
	DebugListen       string
}

func newServeFlags(cfg *serveConfig) *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.StringVar(&cfg.DataDir, "data-dir", "./data", "directory for the database and other state")
	fs.StringVar(&cfg.HTTPListen, "http-listen", "127.0.0.1:8080", "address:port of the HTTP API")
	fs.StringVar(&cfg.SIPListen, "sip-listen", "0.0.0.0:5060", "address:port for SIP over UDP and TCP")
	fs.StringVar(&cfg.SIPWSListen, "sip-ws-listen", "0.0.0.0:5066", "address:port for SIP over WebSocket (browser softphones; off when empty)")
	fs.StringVar(&cfg.SIPWSSListen, "sip-wss-listen", "", "address:port for SIP over secure WebSocket (needs a certificate; off when empty)")
	fs.StringSliceVar(&cfg.SIPWSOrigins, "sip-ws-origins", nil, "web page origins allowed to open SIP WebSockets besides the box's own (https://crm.example.com, or * for any)")
	fs.StringVar(&cfg.SIPTLSListen, "sip-tls-listen", "", "address:port for SIP over TLS (off when empty; needs a certificate)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate for SIP over TLS and secure WebSocket (default <data-dir>/tls/sip.crt)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert (default <data-dir>/tls/sip.key)")
	fs.BoolVar(&cfg.TLSSelfSigned, "tls-self-signed", false, "create a self-signed certificate at --tls-cert/--tls-key on the first start if there is none")
	fs.StringVar(&cfg.SIPPublicAddr, "sip-public-addr", "", "host[:port] announced in Via, Contact and SDP when the box is behind NAT (default: the listening address)")
	fs.StringVar(&cfg.RTPPorts, "rtp-ports", "10000-20000", "UDP port range for call media (RTP on even ports, RTCP on the odd one above)")
	fs.IntVar(&cfg.WebRTCUDPPort, "webrtc-udp-port", 20100, "the one UDP port every browser's ICE and media share (0: any free port, -1: no WebRTC)")
	fs.BoolVar(&cfg.WebRTCICELite, "webrtc-ice-lite", false, "answer browsers as an ICE-lite agent (a box with a public address)")
	fs.DurationVar(&cfg.RingTimeout, "ring-timeout", 60*time.Second, "how long a call rings before it ends unanswered (480)")
	fs.DurationVar(&cfg.SIPKeepAlive, "sip-keepalive", 30*time.Second, "interval of OPTIONS pings that keep UDP phones' NAT mappings open; contacts that stop answering are dropped (0 disables)")
	fs.DurationVar(&cfg.MediaTimeout, "media-timeout", 30*time.Second, "hang up a call when a party sends no RTP for this long (0 disables)")
	fs.StringVar(&cfg.AdminPasswordFile, "admin-password-file", "", "file holding the first admin's password (first start only; PBXD_ADMIN_PASSWORD works too)")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", "json", "json or text")
	fs.DurationVar(&cfg.SessionTTL, "session-ttl", 12*time.Hour, "lifetime of a login session")
	fs.BoolVar(&cfg.StoreSync, "store-sync", true, "fsync every database commit (survives power loss, not only crashes)")
	fs.StringVar(&cfg.SIPRealm, "sip-realm", "pbxd", "digest realm of SIP device credentials (changing it invalidates device passwords)")
	fs.StringSliceVar(&cfg.SIPAuthAlgorithms, "sip-auth-algorithms", []string{"MD5", "SHA-256"}, "digest algorithms offered to SIP devices, in order (MD5, SHA-256)")
	fs.StringVar(&cfg.DebugListen, "debug-listen", "", "loopback address:port for Go profiling (/debug/pprof); off when empty")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "how long SIGTERM waits for requests in flight")
	return fs
}

// envName maps a flag to its environment variable: --http-listen → PBXD_HTTP_LISTEN.
func envName(flag string) string {
	return "PBXD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// parseServeFlags applies PBXD_* variables first, then the command line,
// which wins.
func parseServeFlags(args []string) (*serveConfig, error) {
	cfg := &serveConfig{}
	fs := newServeFlags(cfg)
	var envErr error
	fs.VisitAll(func(f *pflag.Flag) {
		if v, ok := os.LookupEnv(envName(f.Name)); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s: %w", envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	switch cfg.LogFormat {
	case "json", "text":
	default:
		return nil, fmt.Errorf("--log-format must be json or text")
	}
	if cfg.DebugListen != "" {
		host, _, err := net.SplitHostPort(cfg.DebugListen)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("--debug-listen must be a loopback address such as 127.0.0.1:6060")
		}
	}
	if _, err := rtpleg.ParsePortRange(cfg.RTPPorts); err != nil {
		return nil, fmt.Errorf("--rtp-ports: %w", err)
	}
	if cfg.WebRTCUDPPort < -1 || cfg.WebRTCUDPPort > 65535 {
		return nil, fmt.Errorf("--webrtc-udp-port must be a UDP port, 0 or -1")
	}
	if cfg.RingTimeout < time.Second {
		return nil, fmt.Errorf("--ring-timeout must be at least 1s")
	}
	if cfg.MediaTimeout < 0 {
		return nil, fmt.Errorf("--media-timeout must not be negative")
	}
	if cfg.SessionTTL < time.Minute {
		return nil, fmt.Errorf("--session-ttl must be at least 1m")
	}
	return cfg, nil
}
