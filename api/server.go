// Package api serves pbxd's HTTP interface: the JSON API under /api/v1 with
// its authentication, the health and metrics endpoints, and the OpenAPI
// document describing every route.
package api

import (
	"bufio"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"pbxd/api/auth"
	"pbxd/pbx/events"
	"pbxd/pbx/throttle"
	"pbxd/store"
)

// Config is everything the API needs, filled in by cmd/pbxd.
type Config struct {
	Store   *store.Store
	Logger  *slog.Logger
	Version string
	// SessionTTL is how long a login session lasts (default 12h).
	SessionTTL time.Duration
	// SIPRealm is the digest realm device HA1 hashes are computed for.
	SIPRealm string
	// HashParallelism bounds concurrent argon2id computations (default 2).
	HashParallelism int
	// LastUsedFlush is how often service-user last-used times are written
	// (default 1 min); they are also written on Close.
	LastUsedFlush time.Duration
	// Gauges, when set, adds live values of other parts (calls, dialogs,
	// RTP legs) to /metrics.
	Gauges func() []Gauge
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Calls is the live call runtime (agents' connections and calls); nil
	// without one.
	Calls CallControl
	// Trunks is the trunk runtime (pbx/trunks.Manager): reloaded after
	// every trunk change and asked for registration states. Nil leaves
	// trunks as records only.
	Trunks TrunkRuntime
	// Events is the bus users' events go through (ACD, status, calls);
	// the call runtime publishes on the same one. Nil: the server makes its
	// own, which only the API publishes on.
	Events *events.Bus
	// EventsPing is how often the events WebSocket pings the client
	// (default 30s); a client that answers nothing for two intervals is
	// dropped.
	EventsPing time.Duration
}

// Server is the API. Build it with New, serve Handler, and Close it.
type Server struct {
	cfg       Config
	st        *store.Store
	log       *slog.Logger
	hasher    *auth.Hasher
	ipLimit   *throttle.Throttle
	userLimit *throttle.Throttle
	metrics   *metrics
	routes    []*route
	handler   http.Handler
	lastUsed  *lastUsed
	now       func() time.Time
	events    *events.Bus
	ownBus    bool
	// sockets counts the event WebSockets being served; Close waits for
	// them (they end when stop closes). sockClosed, under sockMu, refuses
	// new ones once Close has begun.
	sockets    sync.WaitGroup
	sockMu     sync.Mutex
	sockClosed bool

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

// New builds the API server and starts its background flusher.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.SIPRealm == "" {
		cfg.SIPRealm = "pbxd"
	}
	if cfg.HashParallelism <= 0 {
		cfg.HashParallelism = 2
	}
	if cfg.LastUsedFlush <= 0 {
		cfg.LastUsedFlush = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.EventsPing <= 0 {
		cfg.EventsPing = 30 * time.Second
	}
	ownBus := cfg.Events == nil
	if ownBus {
		cfg.Events = events.NewWith(events.Options{Now: cfg.Now})
	}
	s := &Server{
		cfg:    cfg,
		st:     cfg.Store,
		log:    cfg.Logger,
		hasher: auth.NewHasher(cfg.HashParallelism),
		// A whole office may sit behind one address: allow more failures per
		// source than per username.
		ipLimit:   throttle.New(throttle.Config{Free: 20, Base: time.Second, Max: 15 * time.Minute}, cfg.Now),
		userLimit: throttle.New(throttle.Config{Free: 5, Base: time.Second, Max: 15 * time.Minute}, cfg.Now),
		metrics:   newMetrics(),
		lastUsed:  newLastUsed(),
		now:       cfg.Now,
		events:    cfg.Events,
		ownBus:    ownBus,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	s.routes = s.buildRoutes()
	s.handler = s.recoverer(s.mux())
	go s.flushLoop()
	return s
}

// Handler returns the root HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Close stops the background flusher and writes pending last-used times,
// and closes the event WebSockets (which net/http's Shutdown leaves alone
// because they are hijacked), waiting until they are gone.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
	s.sockMu.Lock()
	s.sockClosed = true
	s.sockMu.Unlock()
	s.sockets.Wait()
	if s.ownBus {
		s.events.Close()
	}
	return nil
}

// Events is the bus the server publishes users' events on.
func (s *Server) Events() *events.Bus { return s.events }

func (s *Server) flushLoop() {
	defer close(s.done)
	t := time.NewTicker(s.cfg.LastUsedFlush)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.flushLastUsed()
		case <-s.stop:
			s.flushLastUsed()
			return
		}
	}
}

// handlerFunc is the shape of every API handler: an error becomes a problem.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *Principal) error

// route describes one operation; the mux, the auth check, the metrics label
// and the OpenAPI document are all built from the same table.
type route struct {
	method  string
	pattern string
	summary string
	tag     string
	// public routes need no credentials.
	public bool
	// pendingOK routes stay open to a user who must change their password.
	pendingOK bool
	req       any // zero value of the JSON body type, if any (for OpenAPI)
	resp      any // zero value of the success body type, if any
	status    int // success status (200 when zero)
	query     []string
	// queryToken routes also take the token from the access_token query
	// parameter (WebSockets from browsers cannot set headers).
	queryToken bool
	h          handlerFunc
	raw        http.HandlerFunc // for non-JSON endpoints (metrics, health)
}

// mux groups routes by path so a wrong method gets a 405 problem with Allow.
func (s *Server) mux() http.Handler {
	m := http.NewServeMux()
	byPattern := map[string][]*route{}
	var order []string
	for _, rt := range s.routes {
		if _, ok := byPattern[rt.pattern]; !ok {
			order = append(order, rt.pattern)
		}
		byPattern[rt.pattern] = append(byPattern[rt.pattern], rt)
	}
	for _, pat := range order {
		rts := byPattern[pat]
		var allow []string
		for _, rt := range rts {
			allow = append(allow, rt.method)
		}
		m.HandleFunc(pat, func(w http.ResponseWriter, r *http.Request) {
			for _, rt := range rts {
				if rt.method == r.Method || (rt.method == http.MethodGet && r.Method == http.MethodHead) {
					s.serveRoute(w, r, rt)
					return
				}
			}
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.observe(w, r, pat, func(w http.ResponseWriter) {
				writeProblem(w, r, problem(http.StatusMethodNotAllowed, ProbMethodNotAllowed, r.Method+" is not supported here; use "+strings.Join(allow, ", ")))
			})
		})
	}
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.observe(w, r, "other", func(w http.ResponseWriter) {
			writeProblem(w, r, notFound("path "+r.URL.Path))
		})
	})
	return m
}

// serveRoute authenticates, checks the password-change gate, and runs rt.
func (s *Server) serveRoute(w http.ResponseWriter, r *http.Request, rt *route) {
	s.observe(w, r, rt.pattern, func(w http.ResponseWriter) {
		if rt.raw != nil {
			rt.raw(w, r)
			return
		}
		var p *Principal
		if !rt.public {
			var prob *Problem
			if rt.queryToken {
				p, prob = s.authenticateQuery(r)
			} else {
				p, prob = s.authenticate(r)
			}
			if prob != nil {
				writeProblem(w, r, prob)
				return
			}
			if p.mustChangePassword() && !rt.pendingOK {
				writeProblem(w, r, problem(http.StatusForbidden, ProbPasswordChange,
					"change your password first: POST /api/v1/users/"+p.ID+" with currentPassword and password"))
				return
			}
		}
		if err := rt.h(w, r, p); err != nil {
			prob := errorProblem(err)
			if prob.Status >= 500 {
				s.log.Error("request failed", "method", r.Method, "route", rt.pattern, "err", err)
			}
			writeProblem(w, r, prob)
		}
	})
}

// statusWriter records the status code for logs and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

// Hijack hands the connection over (WebSocket upgrades), recorded as 101.
func (sw *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(sw.ResponseWriter).Hijack()
	if err == nil && sw.status == 0 {
		sw.status = http.StatusSwitchingProtocols
	}
	return conn, rw, err
}

func (sw *statusWriter) Write(b []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return sw.ResponseWriter.Write(b)
}

// observe times fn and records it under the route label.
func (s *Server) observe(w http.ResponseWriter, r *http.Request, label string, fn func(http.ResponseWriter)) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	fn(sw)
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	d := time.Since(start)
	s.metrics.observe(r.Method, label, sw.status, d)
	lvl := slog.LevelDebug
	if sw.status >= 400 {
		lvl = slog.LevelInfo
	}
	if s.log.Enabled(r.Context(), lvl) {
		s.log.Log(r.Context(), lvl, "http request", "method", r.Method, "route", label,
			"status", sw.status, "duration_ms", float64(d.Microseconds())/1000, "remote", remoteIP(r))
	}
}

// recoverer turns a panic into a 500 without echoing the panic value, which
// could hold request data.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "method", r.Method, "path", r.URL.Path, "stack", string(debug.Stack()))
				writeProblem(w, r, problem(http.StatusInternalServerError, ProbInternal, "the server could not complete the request"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// remoteIP is the peer address without port; pbxd does not trust forwarding
// headers because it is reached directly on the local network.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
