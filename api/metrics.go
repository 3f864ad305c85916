package api

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"

	"pbxd/store"
)

// latencyBuckets are the upper bounds (seconds) of the request histogram.
var latencyBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

type reqKey struct {
	method, route string
	status        int
}

type histogram struct {
	counts [len(latencyBuckets) + 1]uint64
	sum    float64
	n      uint64
}

// metrics counts requests by route and status and keeps a latency
// histogram per route. Route labels come from the route table, so their
// number is bounded.
type metrics struct {
	mu       sync.Mutex
	requests map[reqKey]uint64
	latency  map[string]*histogram
	started  time.Time
}

func newMetrics() *metrics {
	return &metrics{requests: map[reqKey]uint64{}, latency: map[string]*histogram{}, started: time.Now()}
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	secs := d.Seconds()
	i := sort.SearchFloat64s(latencyBuckets[:], secs)
	m.mu.Lock()
	m.requests[reqKey{method, route, status}]++
	h := m.latency[route]
	if h == nil {
		h = &histogram{}
		m.latency[route] = h
	}
	h.counts[i]++
	h.sum += secs
	h.n++
	m.mu.Unlock()
}

// handleMetrics writes the Prometheus text exposition format.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	var users, sessions, services int
	err := s.st.View(func(tx *store.Tx) (err error) {
		if users, err = tx.CountUsers(); err != nil {
			return err
		}
		if sessions, err = tx.CountSessions(); err != nil {
			return err
		}
		services, err = tx.CountServiceUsers()
		return err
	})
	if err != nil {
		writeProblem(w, r, errorProblem(err))
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.metrics.write(w)
	gauge(w, "pbxd_users", "People with a user account (service users excluded).", users)
	gauge(w, "pbxd_sessions", "Login sessions that have not expired.", sessions)
	gauge(w, "pbxd_service_users", "Service users (integration accounts).", services)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gauge(w, "pbxd_goroutines", "Goroutines running.", runtime.NumGoroutine())
	if s.cfg.Gauges != nil {
		for _, g := range s.cfg.Gauges() {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", g.Name, g.Help, g.Name, g.Name, g.Value)
		}
	}
	gauge(w, "pbxd_heap_inuse_bytes", "Go heap in use.", int(ms.HeapInuse))
	fmt.Fprintf(w, "# HELP pbxd_build_info Version of the running binary.\n# TYPE pbxd_build_info gauge\npbxd_build_info{version=%q} 1\n", s.cfg.Version)
	fmt.Fprintf(w, "# HELP pbxd_uptime_seconds Seconds since the API started.\n# TYPE pbxd_uptime_seconds gauge\npbxd_uptime_seconds %.0f\n", time.Since(s.metrics.started).Seconds())
}

// Gauge is a value another part of pbxd reports on /metrics.
type Gauge struct {
	Name, Help string
	Value      float64
}

func gauge(w io.Writer, name, help string, v int) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
}

func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]reqKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.route != b.route {
			return a.route < b.route
		}
		if a.method != b.method {
			return a.method < b.method
		}
		return a.status < b.status
	})
	fmt.Fprint(w, "# HELP pbxd_http_requests_total HTTP requests by route, method and status.\n# TYPE pbxd_http_requests_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(w, "pbxd_http_requests_total{route=%q,method=%q,status=\"%d\"} %d\n", k.route, k.method, k.status, m.requests[k])
	}
	routes := make([]string, 0, len(m.latency))
	for r := range m.latency {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	fmt.Fprint(w, "# HELP pbxd_http_request_duration_seconds HTTP request latency by route.\n# TYPE pbxd_http_request_duration_seconds histogram\n")
	for _, r := range routes {
		h := m.latency[r]
		var cum uint64
		for i, ub := range latencyBuckets {
			cum += h.counts[i]
			fmt.Fprintf(w, "pbxd_http_request_duration_seconds_bucket{route=%q,le=%q} %d\n", r, strconv.FormatFloat(ub, 'g', -1, 64), cum)
		}
		fmt.Fprintf(w, "pbxd_http_request_duration_seconds_bucket{route=%q,le=\"+Inf\"} %d\n", r, h.n)
		fmt.Fprintf(w, "pbxd_http_request_duration_seconds_sum{route=%q} %g\n", r, h.sum)
		fmt.Fprintf(w, "pbxd_http_request_duration_seconds_count{route=%q} %d\n", r, h.n)
	}
}

// handleHealth answers 200 while the store answers, 503 otherwise.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if err := s.st.Ping(); err != nil {
		writeProblem(w, r, problem(http.StatusServiceUnavailable, ProbServiceUnavailable, "the store does not answer"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Version})
}
