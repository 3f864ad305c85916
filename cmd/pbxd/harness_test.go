package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pbxdBin is the binary under test, built once by TestMain.
var pbxdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pbxd-e2e")
	if err != nil {
		panic(err)
	}
	pbxdBin = filepath.Join(dir, "pbxd")
	build := exec.Command("go", "build", "-o", pbxdBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building pbxd: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running pbxd.
type proc struct {
	t       testing.TB
	cmd     *exec.Cmd
	dataDir string
	base    string
	sip     string
	sipWS   string
	mu      sync.Mutex
	logs    bytes.Buffer
	exited  chan struct{}
	exitErr error
}

type startOpts struct {
	dataDir string
	env     []string
	args    []string
	// noWait skips waiting for the ready line.
	noWait bool
}

const e2eAdminPassword = "e2e-admin-pass-1"

// start runs pbxd on a loopback port; it is stopped when the test ends.
func start(t testing.TB, o startOpts) *proc {
	t.Helper()
	if o.dataDir == "" {
		o.dataDir = t.TempDir()
	}
	args := append([]string{"serve", "--data-dir", o.dataDir, "--http-listen", "127.0.0.1:0", "--sip-listen", "127.0.0.1:0", "--sip-ws-listen", "127.0.0.1:0", "--webrtc-udp-port", "0", "--log-format", "json"}, o.args...)
	cmd := exec.Command(pbxdBin, args...)
	cmd.Env = append(os.Environ(), o.env...)
	p := &proc{t: t, cmd: cmd, dataDir: o.dataDir, exited: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
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
				p.sip, _ = rec["sip"].(string)
				p.sipWS, _ = rec["sip_ws"].(string)
				ready <- rec["http"].(string)
			}
		}
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.Kill)
	if o.noWait {
		return p
	}
	select {
	case addr := <-ready:
		p.base = "http://" + addr
	case <-p.exited:
		t.Fatalf("pbxd exited before ready: %v\n%s", p.exitErr, p.Logs())
	case <-time.After(20 * time.Second):
		t.Fatalf("pbxd not ready after 20s\n%s", p.Logs())
	}
	return p
}

// startAdmin starts pbxd with a known first-admin password.
func startAdmin(t testing.TB, dataDir string) *proc {
	return start(t, startOpts{dataDir: dataDir, env: []string{"PBXD_ADMIN_PASSWORD=" + e2eAdminPassword}})
}

func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// Stop sends SIGTERM and expects a clean exit.
func (p *proc) Stop() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		p.Kill()
		p.t.Fatalf("pbxd did not stop on SIGTERM")
	}
	if p.exitErr != nil {
		p.t.Fatalf("pbxd exited with %v\n%s", p.exitErr, p.Logs())
	}
}

// Kill sends SIGKILL and waits.
func (p *proc) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// resp is a decoded HTTP answer.
type resp struct {
	code   int
	header http.Header
	raw    []byte
	obj    map[string]any
}

func (r resp) str(k string) string { s, _ := r.obj[k].(string); return s }

var client = &http.Client{Timeout: 30 * time.Second}

// auth is a Bearer token, or "basic:<id>:<token>".
func (p *proc) do(method, path, auth string, body any) resp {
	p.t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ctype)
	}
	switch {
	case strings.HasPrefix(auth, "basic:"):
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(strings.TrimPrefix(auth, "basic:"))))
	case strings.HasPrefix(auth, "raw:"):
		req.Header.Set("Authorization", strings.TrimPrefix(auth, "raw:"))
	case auth != "":
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	res, err := client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := resp{code: res.StatusCode, header: res.Header, raw: raw}
	_ = json.Unmarshal(raw, &r.obj)
	return r
}

// want fails unless r has status code.
func (r resp) want(t testing.TB, code int) resp {
	t.Helper()
	if r.code != code {
		t.Fatalf("got %d, want %d: %s", r.code, code, r.raw)
	}
	return r
}

func (p *proc) login(user, pw string) string {
	p.t.Helper()
	r := p.do("POST", "/api/v1/login", "", map[string]string{"username": user, "password": pw}).want(p.t, 200)
	return r.str("token")
}
