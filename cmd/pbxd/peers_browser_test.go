package main

// Headless Chromium as a browser softphone: JsSIP or SIP.js in a test page,
// talking SIP over pbxd's WebSocket and WebRTC media, with a fake
// microphone that plays a tone from a WAV file.
//
// The Node side lives in testdata/browser (README.md there): the pages
// (jssip.html, sipjs.html) with a small window.phone API, esbuild's JsSIP
// bundle, and run.mjs, which serves the pages from 127.0.0.1, launches
// Debian's Chromium through playwright-core, runs a scenario's steps and
// prints one JSON result. Its node_modules are installed once per test
// binary with `npm ci` from the lockfile, and then only again when the
// lockfile changes (a stamp in node_modules says which one it was), so a
// machine that has run the tests once runs them offline.
//
// Every process is started here with its PID kept: run.mjs in a process
// group of its own (npm too), and Chromium, which playwright starts as the
// leader of yet another group, by the PID run.mjs reports on stderr. Each
// is stopped by that PID at the end of the test, or when its time is up.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"pbxd/media/tone"
)

// browserDir is the Node project of the browser tests.
const browserDir = "testdata/browser"

// browserToneHz is the tone of the browser's fake microphone: neither
// SIPp's caller tone nor its callee tone, so a test can tell who it hears.
const browserToneHz = 800

// browserWAVRate is the rate of the fake microphone's WAV file; Chromium
// captures at 48 kHz.
const browserWAVRate = 48000

// browserTools are the programs the browser tests run.
type browserTools struct {
	chromium, node, npm string
}

// needBrowser finds Chromium, Node.js and npm. Without them the test is
// skipped, except in CI and as root, where `make test` installs them
// (scripts/test-deps.sh: chromium, nodejs, npm) and a missing one fails.
func needBrowser(t *testing.T) browserTools {
	t.Helper()
	var tools browserTools
	var missing []string
	for _, x := range []struct {
		name string
		dst  *string
	}{{"chromium", &tools.chromium}, {"node", &tools.node}, {"npm", &tools.npm}} {
		p, err := exec.LookPath(x.name)
		if err != nil {
			missing = append(missing, x.name)
		}
		*x.dst = p
	}
	if len(missing) == 0 {
		// playwright-core 1.65 needs Node.js 20 or later.
		if major, err := nodeMajor(tools.node); err != nil || major < 20 {
			missing = append(missing, fmt.Sprintf("Node.js ≥ 20 (have %d, %v)", major, err))
		}
	}
	if len(missing) > 0 {
		if os.Getenv("CI") != "" || os.Getuid() == 0 {
			t.Fatalf("browser tests need %s; `make test` installs them (scripts/test-deps.sh)", strings.Join(missing, ", "))
		}
		t.Skipf("browser tests need %s", strings.Join(missing, ", "))
	}
	browserDeps(t, tools)
	return tools
}

var nodeVersion = regexp.MustCompile(`^v(\d+)\.`)

func nodeMajor(node string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, node, "--version").Output()
	if err != nil {
		return 0, err
	}
	m := nodeVersion.FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("node --version said %q", out)
	}
	return strconv.Atoi(string(m[1]))
}

var (
	browserDepsOnce sync.Once
	browserDepsErr  error
)

// browserDeps installs testdata/browser/node_modules once per test
// binary: `npm ci` from the lockfile (with the scripts of the packages
// off: none is needed), unless the stamp left by the last install names
// the same package.json and lockfile.
func browserDeps(t *testing.T, tools browserTools) {
	t.Helper()
	browserDepsOnce.Do(func() { browserDepsErr = installBrowserDeps(tools) })
	if browserDepsErr != nil {
		t.Fatalf("installing the browser tests' node_modules: %v", browserDepsErr)
	}
}

func installBrowserDeps(tools browserTools) error {
	h := sha256.New()
	for _, f := range []string{"package.json", "package-lock.json"} {
		raw, err := os.ReadFile(filepath.Join(browserDir, f))
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(raw))
		h.Write(raw)
	}
	want := hex.EncodeToString(h.Sum(nil))
	stamp := filepath.Join(browserDir, "node_modules", ".pbxd-npm-ci")
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tools.npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline")
	cmd.Dir = browserDir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci in %s (%v): %w\n%s", browserDir, time.Since(began).Round(time.Millisecond), err, tail(out.String(), 3000))
	}
	return os.WriteFile(stamp, []byte(want+"\n"), 0o644)
}

// --- running a scenario ---

// browserRun is one run.mjs with its Chromium.
type browserRun struct {
	t        *testing.T
	sc       browserScenario
	tmp      string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	stdout   bytes.Buffer
	done     chan struct{}
	waitErr  error
	mu       sync.Mutex
	cond     *sync.Cond
	events   []browserEvent // and "waiting:<name>" for waitSignal steps
	exited   bool
	stderr   strings.Builder
	pid      int // Chromium's
	result   *browserResult
	stopOnce sync.Once
}

var notFileName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// runBrowser runs a scenario to its end and returns the result without
// judging it.
func runBrowser(t *testing.T, sc browserScenario) browserResult {
	t.Helper()
	return startBrowser(t, sc).Wait()
}

// startBrowser starts a scenario in the background: WaitEvent follows
// it, Wait collects the result. It is stopped at the end of the test.
func startBrowser(t *testing.T, sc browserScenario) *browserRun {
	t.Helper()
	tools := needBrowser(t)
	r := &browserRun{t: t, sc: sc, tmp: t.TempDir(), done: make(chan struct{})}
	r.cond = sync.NewCond(&r.mu)
	if r.sc.Name == "" {
		r.sc.Name = notFileName.ReplaceAllString(t.Name(), "_")
	}
	if r.sc.Chromium == "" {
		r.sc.Chromium = tools.chromium
	}
	if r.sc.Timeout == 0 {
		r.sc.Timeout = 60 * time.Second
	}
	if r.sc.StepTimeout == 0 {
		r.sc.StepTimeout = 20 * time.Second
	}
	if r.sc.Artifacts == "" {
		dir, err := filepath.Abs(filepath.Join("..", "..", "artifacts", "browser", r.sc.Name))
		if err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(dir) // what an earlier run left
		r.sc.Artifacts = dir
	}
	if r.sc.FakeAudio == "" {
		hz := r.sc.ToneHz
		if hz == 0 {
			hz = browserToneHz
		}
		// One second of a whole number of periods, so the loop is seamless.
		r.sc.FakeAudio = filepath.Join(r.tmp, "microphone.wav")
		if err := writeWAV(r.sc.FakeAudio, browserWAVRate, tone.Sine(hz, toneAmplitude, browserWAVRate, browserWAVRate)); err != nil {
			t.Fatal(err)
		}
	}
	doc := struct {
		browserScenario
		TimeoutMs     int `json:"timeoutMs"`
		StepTimeoutMs int `json:"stepTimeoutMs"`
	}{r.sc, int(r.sc.Timeout.Milliseconds()), int(r.sc.StepTimeout.Milliseconds())}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(r.tmp, "scenario.json")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(tools.node, "run.mjs", file)
	r.cmd.Dir = browserDir
	// Chromium's profile (playwright's fresh --user-data-dir) goes into the
	// test's own directory, which also tells its processes apart.
	r.cmd.Env = append(os.Environ(), "TMPDIR="+r.tmp)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.Stdout = &r.stdout
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("run.mjs: %v", err)
	}
	go r.follow(stderr)
	t.Cleanup(r.stop)
	// run.mjs has its own deadline; this one catches a driver that hangs.
	limit := time.AfterFunc(r.sc.Timeout+30*time.Second, func() {
		r.mu.Lock()
		r.stderr.WriteString("pbxd test: run.mjs overran its timeout, stopped\n")
		r.mu.Unlock()
		r.stop()
	})
	go func() {
		<-r.done
		limit.Stop()
	}()
	return r
}

// follow reads run.mjs's stderr: progress lines and anything else.
func (r *browserRun) follow(stderr io.Reader) {
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		line := sc.Text()
		var p struct {
			BrowserPid int           `json:"browserPid"`
			Event      *browserEvent `json:"event"`
			Step       *json.RawMessage
			Waiting    string `json:"waiting"`
		}
		r.mu.Lock()
		switch {
		case strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &p) == nil && (p.BrowserPid != 0 || p.Event != nil || p.Step != nil || p.Waiting != ""):
			if p.BrowserPid != 0 {
				r.pid = p.BrowserPid
			}
			if p.Event != nil {
				r.events = append(r.events, *p.Event)
			}
			if p.Waiting != "" {
				// A pseudo-event for WaitHeld.
				r.events = append(r.events, browserEvent{Type: "waiting:" + p.Waiting})
			}
		default:
			r.stderr.WriteString(line + "\n")
		}
		r.cond.Broadcast()
		r.mu.Unlock()
	}
	r.waitErr = r.cmd.Wait()
	r.mu.Lock()
	r.exited = true
	close(r.done)
	r.cond.Broadcast()
	r.mu.Unlock()
}

// WaitEvent waits for the page's first event of type typ and fails the
// test if the scenario ends or limit passes without one.
func (r *browserRun) WaitEvent(typ string, limit time.Duration) browserEvent {
	r.t.Helper()
	deadline := time.Now().Add(limit)
	wake := time.AfterFunc(limit, func() {
		r.mu.Lock()
		r.cond.Broadcast()
		r.mu.Unlock()
	})
	defer wake.Stop()
	r.mu.Lock()
	for !r.exited && time.Now().Before(deadline) {
		for _, e := range r.events {
			if e.Type == typ {
				r.mu.Unlock()
				return e
			}
		}
		r.cond.Wait()
	}
	exited, events := r.exited, slices.Clone(r.events)
	r.mu.Unlock()
	if exited {
		r.t.Fatalf("the browser scenario ended without a %s event:\n%v", typ, r.Wait())
	}
	r.t.Fatalf("no %s event from the browser in %v; events so far: %+v", typ, limit, events)
	return browserEvent{}
}

// WaitHeld waits until the scenario waits at its waitSignal step name.
func (r *browserRun) WaitHeld(name string, limit time.Duration) {
	r.t.Helper()
	r.WaitEvent("waiting:"+name, limit)
}

// Signal lets a waitSignal step called name go on.
func (r *browserRun) Signal(name string) {
	r.t.Helper()
	if _, err := io.WriteString(r.stdin, name+"\n"); err != nil {
		r.t.Errorf("signalling %s to the browser: %v", name, err)
	}
}

// Wait waits for run.mjs to exit and returns its result.
func (r *browserRun) Wait() browserResult {
	r.t.Helper()
	<-r.done
	if r.result != nil {
		return *r.result
	}
	r.stopBrowser()
	var res browserResult
	if err := json.Unmarshal(bytes.TrimSpace(r.stdout.Bytes()), &res); err != nil {
		res.Error = fmt.Sprintf("run.mjs printed no result (%v): %q", err, tail(r.stdout.String(), 2000))
	}
	r.mu.Lock()
	res.Stderr = r.stderr.String()
	r.mu.Unlock()
	var ee *exec.ExitError
	switch {
	case r.waitErr == nil:
	case errors.As(r.waitErr, &ee) && ee.Exited():
		res.ExitCode = ee.ExitCode()
	default:
		res.ExitCode = -1
	}
	if res.ExitCode == 2 || res.ExitCode == -1 {
		r.t.Fatalf("the browser harness failed:\n%v", res)
	}
	r.result = &res
	return res
}

// WaitAtMost is Wait, but it stops the scenario first if it is still
// running after limit.
func (r *browserRun) WaitAtMost(limit time.Duration) browserResult {
	r.t.Helper()
	select {
	case <-r.done:
	case <-time.After(limit):
		r.stop()
	}
	return r.Wait()
}

// stop ends run.mjs (SIGTERM: it hangs up, unregisters and closes the
// browser; SIGKILL to its group after 15s) and then Chromium.
func (r *browserRun) stop() {
	r.stopOnce.Do(func() {
		select {
		case <-r.done:
		default:
			pid := r.cmd.Process.Pid
			_ = syscall.Kill(pid, syscall.SIGTERM)
			select {
			case <-r.done:
			case <-time.After(15 * time.Second):
				_ = syscall.Kill(-pid, syscall.SIGKILL)
				<-r.done
			}
		}
		r.stopBrowser()
	})
}

// stopBrowser kills Chromium's process group if it outlived run.mjs
// (which closes it itself unless it was killed). The PID is checked to
// still be this run's browser: its profile is in the run's directory.
func (r *browserRun) stopBrowser() {
	r.mu.Lock()
	pid := r.pid
	r.mu.Unlock()
	if pid == 0 {
		return
	}
	ours := func() bool {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err == nil && bytes.Contains(cmdline, []byte(r.tmp))
	}
	deadline := time.Now().Add(10 * time.Second)
	for ours() && time.Now().Before(deadline) {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		time.Sleep(50 * time.Millisecond)
	}
	if ours() {
		r.t.Errorf("Chromium (pid %d) did not go away", pid)
	}
}

// --- the harness's own far end ---
