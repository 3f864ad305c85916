package pbx

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestSIPUDPBufferIsEnlarged(t *testing.T) {
	if got := sizeUDPBuffers(nil, nil); got != 0 {
		t.Fatalf("no connection, yet %d bytes reported", got)
	}
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip("no net.core.rmem_max to compare with:", err)
	}
	limit, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The kernel grants the request up to net.core.rmem_max.
	if got, want := sizeUDPBuffers(c, nil), min(sipUDPBuffer, limit); got != want {
		t.Fatalf("receive buffer %d bytes, want %d (net.core.rmem_max %d)", got, want, limit)
	}
}
