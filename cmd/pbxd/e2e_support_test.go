package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Helpers shared by the end-to-end tests beyond what harness_test.go has:
// requests with full control over headers and body, problem-document checks,
// starting pbxd with exactly the given arguments, and reading /metrics.

// send is do without the Fatal on transport errors and with every header
// chosen by the caller, so it can run in goroutines and send odd requests.
func (p *proc) send(method, path string, hdr map[string]string, body []byte) (resp, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		return resp{}, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return resp{}, err
	}
	r := resp{code: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.obj)
	return r, nil
}

// try is do for goroutines: a JSON body, a Bearer token, no Fatal.
func (p *proc) try(method, path, token string, body any) (resp, error) {
	hdr := map[string]string{}
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return resp{}, err
		}
		hdr["Content-Type"] = "application/json"
	}
	if token != "" {
		hdr["Authorization"] = "Bearer " + token
	}
	return p.send(method, path, hdr, data)
}

// mustSend is send that fails the test on a transport error.
func (p *proc) mustSend(t testing.TB, method, path string, hdr map[string]string, body []byte) resp {
	t.Helper()
	r, err := p.send(method, path, hdr, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// problemOK reports what is wrong with r as a problem document of status
// code (and of type typ when typ is not empty), or "" when nothing is.
func problemOK(r resp, code int, typ string) string {
	var why []string
	if r.code != code {
		why = append(why, fmt.Sprintf("status %d, want %d", r.code, code))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		why = append(why, fmt.Sprintf("Content-Type %q", ct))
	}
	if r.obj == nil {
		why = append(why, "body is not a JSON object")
	} else {
		if !strings.HasPrefix(r.str("type"), "urn:pbxd:problem:") {
			why = append(why, fmt.Sprintf("type %q", r.str("type")))
		}
		if typ != "" && r.str("type") != typ {
			why = append(why, fmt.Sprintf("type %q, want %q", r.str("type"), typ))
		}
		if r.str("title") == "" {
			why = append(why, "no title")
		}
		if st, _ := r.obj["status"].(float64); int(st) != r.code {
			why = append(why, fmt.Sprintf("status member %v differs from the HTTP status %d", r.obj["status"], r.code))
		}
	}
	return strings.Join(why, "; ")
}

// wantProblem fails unless r is a problem document of status code and, when
// typ is not empty, of that type.
func wantProblem(t testing.TB, r resp, code int, typ string) resp {
	t.Helper()
	if why := problemOK(r, code, typ); why != "" {
		t.Fatalf("%s: %.400s", why, r.raw)
	}
	return r
}

// problemKey is what two problem documents must share to be
// indistinguishable apart from where they were served.
func problemKey(r resp) string {
	return fmt.Sprintf("%d|%s|%s|%v|%s|%s|%v", r.code, r.str("type"), r.str("title"), r.obj["status"], r.str("detail"),
		r.header.Get("WWW-Authenticate"), r.obj["errors"])
}

// userID looks a user up by exact userName.
func (p *proc) userID(t testing.TB, token, userName string) string {
	t.Helper()
	r := p.do("GET", "/api/v1/users?fields=*&rows=1000&q="+url.QueryEscape(userName), token, nil).want(t, 200)
	for _, o := range objects(t, r) {
		if u := o.(map[string]any); u["userName"] == userName {
			return u["id"].(string)
		}
	}
	t.Fatalf("no user %q in %s", userName, r.raw)
	return ""
}

// objects is the objects array of a list envelope.
func objects(t testing.TB, r resp) []any {
	t.Helper()
	objs, ok := r.obj["objects"].([]any)
	if !ok {
		t.Fatalf("no objects array in %.300s", r.raw)
	}
	return objs
}

// num reads a numeric member.
func (r resp) num(k string) float64 { f, _ := r.obj[k].(float64); return f }

// metric returns the value of the sample whose name and labels are exactly
// series (e.g. `pbxd_users` or `pbxd_http_requests_total{route="/healthz",method="GET",status="200"}`).
func (p *proc) metric(t testing.TB, series string) (float64, bool) {
	t.Helper()
	body := string(p.do("GET", "/metrics", "", nil).want(t, 200).raw)
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v, true
		}
	}
	return 0, false
}

// launch runs pbxd with exactly args and env added to the environment (no
// flags of its own, unlike start), waits for the ready line, and stops it
// when the test ends.
func launch(t testing.TB, args, env []string) *proc {
	t.Helper()
	cmd := exec.Command(pbxdBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	p := &proc{t: t, cmd: cmd, exited: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "pbxd ready" {
				ready <- rec
			}
		}
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.Kill)
	select {
	case rec := <-ready:
		addr, _ := rec["http"].(string)
		p.base = "http://" + addr
		p.sip, _ = rec["sip"].(string)
		p.dataDir, _ = rec["data_dir"].(string)
	case <-p.exited:
		t.Fatalf("pbxd exited before ready: %v\n%s", p.exitErr, p.Logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("pbxd not ready after 20s\n%s", p.Logs())
	}
	return p
}

// runToExit runs pbxd to completion and returns its exit code and stderr.
func runToExit(t testing.TB, args, env []string) (int, string) {
	t.Helper()
	cmd := exec.Command(pbxdBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		switch {
		case err == nil:
			return 0, out.String()
		case errors.As(err, &ee):
			return ee.ExitCode(), out.String()
		}
		t.Fatalf("pbxd %v: %v", args, err)
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("pbxd %v did not exit within 20s:\n%s", args, out.String())
	}
	return -1, ""
}

// cleanEnv is the test's environment without PBXD_* and systemd variables,
// so that a developer's shell cannot change what a test starts.
//
// It also moves the listeners that default to fixed ports (SIP over
// WebSocket, WebRTC media) to free loopback ports, so parallel tests never
// race for them; a test's own variables or flags still win.
func cleanEnv() []string {
	env := []string{"PBXD_SIP_WS_LISTEN=127.0.0.1:0", "PBXD_WEBRTC_UDP_PORT=0"}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PBXD_") || strings.HasPrefix(kv, "NOTIFY_SOCKET=") || strings.HasPrefix(kv, "WATCHDOG_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// exitCode waits for p to exit by itself and returns its exit code.
func (p *proc) exitCode(t testing.TB, within time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(within):
		t.Fatalf("pbxd still running after %v", within)
	}
	var ee *exec.ExitError
	switch {
	case p.exitErr == nil:
		return 0
	case errors.As(p.exitErr, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("pbxd: %v", p.exitErr)
	return -1
}

// logRecords parses p's JSON log lines.
func (p *proc) logRecords(t testing.TB) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(p.Logs()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		recs = append(recs, rec)
	}
	return recs
}
