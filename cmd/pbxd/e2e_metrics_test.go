package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// apiRoutes is the route table of api/routes.go as method and pattern; the
// OpenAPI document must describe every one of them.
var apiRoutes = []string{
	"GET /healthz", "GET /metrics", "GET /api/v1/openapi.json",
	"POST /api/v1/login", "POST /api/v1/logout", "POST /api/v1/sessions", "GET /api/v1/sessions/current",
	"GET /api/v1/users", "POST /api/v1/users",
	"GET /api/v1/users/{id}", "POST /api/v1/users/{id}", "PUT /api/v1/users/{id}", "DELETE /api/v1/users/{id}",
	"GET /api/v1/users/{id}/devices", "POST /api/v1/users/{id}/devices",
	"GET /api/v1/users/{id}/devices/{deviceId}", "DELETE /api/v1/users/{id}/devices/{deviceId}",
	"GET /api/v1/users/{id}/skills", "POST /api/v1/users/{id}/skills", "DELETE /api/v1/users/{id}/skills/{skillId}",
	"GET /api/v1/skills", "POST /api/v1/skills", "GET /api/v1/skills/{id}", "DELETE /api/v1/skills/{id}",
	"GET /api/v1/service-users", "POST /api/v1/service-users",
	"GET /api/v1/service-users/{id}", "POST /api/v1/service-users/{id}", "PUT /api/v1/service-users/{id}", "DELETE /api/v1/service-users/{id}",
	"POST /api/v1/service-users/{id}/token",
	"GET /api/v1/registrations", "GET /api/v1/audit",
}

// publicRoutes need no credentials.
var publicRoutes = map[string]bool{"GET /healthz": true, "GET /metrics": true, "GET /api/v1/openapi.json": true, "POST /api/v1/login": true}

// TestOpenAPIDescribesEveryRoute: the document is OpenAPI 3.1, describes
// every route with its parameters, responses and security, its references
// resolve, and every operation it lists is really served.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	doc := p.do("GET", "/api/v1/openapi.json", "", nil).want(t, 200)
	if ct := doc.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q", ct)
	}
	if doc.str("openapi") != "3.1.0" {
		t.Fatalf("openapi %v", doc.obj["openapi"])
	}
	info, _ := doc.obj["info"].(map[string]any)
	if info["title"] == nil || info["version"] == nil {
		t.Errorf("info: %v", info)
	}
	paths, _ := doc.obj["paths"].(map[string]any)
	components, _ := doc.obj["components"].(map[string]any)
	schemas, _ := components["schemas"].(map[string]any)
	if paths == nil || schemas == nil {
		t.Fatalf("no paths or schemas")
	}
	// Every $ref resolves.
	for _, m := range regexp.MustCompile(`"\$ref":"#/components/schemas/([^"]+)"`).FindAllStringSubmatch(string(doc.raw), -1) {
		if schemas[m[1]] == nil {
			t.Errorf("dangling $ref %s", m[1])
		}
	}
	opIDs := map[string]string{}
	documented := map[string]bool{}
	for _, rt := range apiRoutes {
		method, path, _ := strings.Cut(rt, " ")
		documented[rt] = true
		ops, _ := paths[path].(map[string]any)
		op, _ := ops[strings.ToLower(method)].(map[string]any)
		if op == nil {
			t.Errorf("OpenAPI lacks %s", rt)
			continue
		}
		id, _ := op["operationId"].(string)
		if id == "" || opIDs[id] != "" {
			t.Errorf("%s: operationId %q missing or shared with %s", rt, id, opIDs[id])
		}
		opIDs[id] = rt
		responses, _ := op["responses"].(map[string]any)
		if responses["default"] == nil || len(responses) < 2 {
			t.Errorf("%s: responses %v", rt, responses)
		}
		declared := map[string]bool{}
		params, _ := op["parameters"].([]any)
		for _, prm := range params {
			m := prm.(map[string]any)
			if m["in"] == "path" {
				declared[m["name"].(string)] = m["required"] == true
			}
		}
		for _, m := range regexp.MustCompile(`\{([A-Za-z]+)\}`).FindAllStringSubmatch(path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s: path parameter %s not declared as required", rt, m[1])
			}
		}
		sec, hasSec := op["security"].([]any)
		if publicRoutes[rt] != (hasSec && len(sec) == 0) {
			t.Errorf("%s: security %v (public: %v)", rt, op["security"], publicRoutes[rt])
		}
		if (method == "POST" || method == "PUT") && op["requestBody"] == nil && !strings.HasSuffix(path, "/token") && path != "/api/v1/logout" {
			t.Errorf("%s: no requestBody", rt)
		}
	}
	// Every operation the document lists is served: none answers the
	// catch-all 404 or a 405.
	id := "0123456789abcdef"
	spare := p.login("admin", e2eAdminPassword)
	for path, v := range paths {
		for method := range v.(map[string]any) {
			rt := strings.ToUpper(method) + " " + path
			if !documented[rt] {
				t.Logf("documented but not in this test's list: %s", rt)
			}
			concrete := regexp.MustCompile(`\{[A-Za-z]+\}`).ReplaceAllString(path, id)
			tok := admin
			if path == "/api/v1/logout" {
				tok = spare
			}
			var body any
			if method == "post" || method == "put" {
				body = map[string]any{}
			}
			r := p.do(strings.ToUpper(method), concrete, tok, body)
			if r.code == 405 || r.code >= 500 || (r.code == 404 && strings.HasPrefix(r.str("detail"), "path ")) {
				t.Errorf("documented %s answers %d: %.200s", rt, r.code, r.raw)
			}
		}
	}
}

// sample is one line of the Prometheus text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$`)
var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// parseMetrics checks the exposition format and returns its samples.
func parseMetrics(t *testing.T, body string) []sample {
	t.Helper()
	typed := map[string]string{}
	var out []sample
	for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			f := strings.Fields(rest)
			if len(f) != 2 {
				t.Fatalf("bad TYPE line %q", line)
			}
			typed[f[0]] = f[1]
			continue
		}
		if strings.HasPrefix(line, "# HELP ") {
			continue
		}
		m := sampleRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a Prometheus sample: %q", line)
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		s := sample{name: m[1], labels: map[string]string{}, value: v}
		for _, l := range labelRE.FindAllStringSubmatch(m[3], -1) {
			s.labels[l[1]] = l[2]
		}
		family := s.name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := strings.CutSuffix(s.name, suf); ok && typed[f] == "histogram" {
				family = f
			}
		}
		if typed[family] == "" {
			t.Errorf("%s has no TYPE line before it", s.name)
		}
		out = append(out, s)
	}
	return out
}

// TestMetricsExposition: valid text format, route labels from the route
// table only (never a raw path or an id), consistent histograms, and
// gauges that follow what happens.
func TestMetricsExposition(t *testing.T) {
	t.Parallel()
	p := startAdmin(t, "")
	admin := p.login("admin", e2eAdminPassword)
	for i := 0; i < 3; i++ {
		p.do("GET", fmt.Sprintf("/api/v1/users/%016x", i), admin, nil).want(t, 404)
	}
	for i := 0; i < 10; i++ {
		p.do("GET", fmt.Sprintf("/api/v1/random-%d/secret-%d", i, i), admin, nil).want(t, 404)
	}
	p.do("PATCH", "/api/v1/users", admin, nil).want(t, 405)
	p.do("GET", "/api/v1/users", "", nil).want(t, 401)

	samples := parseMetrics(t, string(p.do("GET", "/metrics", "", nil).want(t, 200).raw))
	routes := map[string]bool{"other": true}
	for _, rt := range apiRoutes {
		_, path, _ := strings.Cut(rt, " ")
		routes[path] = true
	}
	count := func(route, method, status string) float64 {
		for _, s := range samples {
			if s.name == "pbxd_http_requests_total" && s.labels["route"] == route && s.labels["method"] == method && s.labels["status"] == status {
				return s.value
			}
		}
		return 0
	}
	for _, s := range samples {
		if r, ok := s.labels["route"]; ok && !routes[r] {
			t.Errorf("route label %q is not from the route table: %v", r, s)
		}
	}
	for _, c := range []struct {
		route, method, status string
		want                  float64
	}{
		{"/api/v1/users/{id}", "GET", "404", 3},
		{"other", "GET", "404", 10},
		{"/api/v1/users", "PATCH", "405", 1},
		{"/api/v1/users", "GET", "401", 1},
		{"/api/v1/login", "POST", "200", 1},
	} {
		if got := count(c.route, c.method, c.status); got != c.want {
			t.Errorf("requests %s %s %s = %v, want %v", c.method, c.route, c.status, got, c.want)
		}
	}
	// Histograms: cumulative buckets ending in +Inf = count.
	buckets := map[string][]float64{}
	counts := map[string]float64{}
	for _, s := range samples {
		switch s.name {
		case "pbxd_http_request_duration_seconds_bucket":
			buckets[s.labels["route"]] = append(buckets[s.labels["route"]], s.value)
			if s.labels["le"] == "" {
				t.Errorf("bucket without le: %v", s)
			}
		case "pbxd_http_request_duration_seconds_count":
			counts[s.labels["route"]] = s.value
		}
	}
	if len(buckets) == 0 || buckets["/api/v1/users/{id}"] == nil {
		t.Fatalf("no latency histogram for /api/v1/users/{id}")
	}
	for route, bs := range buckets {
		for i := 1; i < len(bs); i++ {
			if bs[i] < bs[i-1] {
				t.Errorf("%s: buckets not cumulative: %v", route, bs)
			}
		}
		if bs[len(bs)-1] != counts[route] {
			t.Errorf("%s: +Inf bucket %v, count %v", route, bs[len(bs)-1], counts[route])
		}
	}

	// Gauges follow logins, logouts, users and service users.
	gauge := func(name string) float64 {
		v, ok := p.metric(t, name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		return v
	}
	users, sessions, services := gauge("pbxd_users"), gauge("pbxd_sessions"), gauge("pbxd_service_users")
	if users != 1 || sessions != 1 || services != 0 {
		t.Fatalf("gauges users=%v sessions=%v service_users=%v", users, sessions, services)
	}
	p.do("POST", "/api/v1/users", admin, map[string]any{"userName": "m1", "password": "m1-password-1"}).want(t, 201)
	tok := p.login("m1", "m1-password-1")
	p.do("POST", "/api/v1/service-users", admin, map[string]any{"name": "m"}).want(t, 201)
	if gauge("pbxd_users") != 2 || gauge("pbxd_sessions") != 2 || gauge("pbxd_service_users") != 1 {
		t.Error("gauges did not follow a new user, session and service user")
	}
	p.do("POST", "/api/v1/logout", tok, nil).want(t, 204)
	if gauge("pbxd_sessions") != 1 {
		t.Error("pbxd_sessions did not follow a logout")
	}
}
