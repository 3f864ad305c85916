package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCallsInLoopbackNamespace runs the browser and phone call tests again
// inside a network namespace that has nothing but loopback, as a CI
// runner may: pbxd, the SIPp phones, Chromium (which then
// needs --allow-loopback-in-peer-connection) and the capture all live
// there. The test binary runs itself under `unshare --net` for it.
func TestCallsInLoopbackNamespace(t *testing.T) {
	if os.Getenv("PBXD_IN_NETNS") != "" {
		t.Skip("already inside the namespace")
	}
	if testing.Short() {
		t.Skip("runs other tests again")
	}
	unshare, err1 := exec.LookPath("unshare")
	_, err2 := exec.LookPath("ip")
	if err1 != nil || err2 != nil || os.Getuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root, unshare (util-linux) and ip (iproute2)")
		}
		t.Skip("needs root, unshare and ip")
	}
	needBrowser(t) // installs the browser packages once, outside
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := "^(TestBrowserCallsPhone|TestPhonePage|TestCallThroughPBX)$"
	cmd := exec.CommandContext(ctx, unshare, "--net", "--", "sh", "-c",
		`ip link set lo up && exec "$0" -test.run "$1" -test.count=1 -test.v`, self, run)
	cmd.Env = append(os.Environ(), "PBXD_IN_NETNS=1")
	out, err := cmd.CombinedOutput()
	text := string(out)
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--- ") {
			t.Log(strings.TrimSpace(line))
		}
	}
	if err != nil || !strings.Contains(text, "\nPASS") || strings.Contains(text, "--- SKIP: TestBrowserCallsPhone") {
		t.Fatalf("inside a loopback-only namespace: %v\n%s", err, tail(text, 6000))
	}
}
