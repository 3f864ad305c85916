package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSIPPortZeroBindsBothTransports: with --sip-listen host:0, pbxd must
// find a port that is free for both UDP and TCP. The test holds most
// loopback TCP ports for a moment, so that the port the OS picks for UDP is
// usually taken for TCP; pbxd has to try another one instead of failing to
// start. (Every end-to-end test starts pbxd this way, so the failure shows
// up as random "address already in use" startup failures.)
//
// Not parallel: while it runs, few loopback ports are left for anyone else.
func TestSIPPortZeroBindsBothTransports(t *testing.T) {
	if testing.Short() {
		t.Skip("holds thousands of loopback ports")
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	n := min(int(rl.Cur)-2000, 28000)
	if n < 10000 {
		t.Skipf("only %d file descriptors", rl.Cur)
	}
	var held []net.Listener
	defer func() {
		for _, ln := range held {
			ln.Close()
		}
	}()
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &lo, &hi)
	}
	t0 := time.Now()
	for port := lo; port <= hi && len(held) < n; port++ {
		ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			held = append(held, ln)
		}
	}
	t.Logf("holding %d of the %d ephemeral loopback TCP ports (%v)", len(held), hi-lo+1, time.Since(t0))
	for i := 0; i < 5; i++ {
		p := start(t, startOpts{})
		p.Stop()
	}
}
