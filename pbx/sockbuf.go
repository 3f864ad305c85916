package pbx

import (
	"log/slog"
	"net"
	"syscall"
)

// sipUDPBuffer is the receive buffer asked for on the SIP UDP socket. The
// kernel's default (about 208 KiB) holds only about a hundred datagrams,
// since each one costs its buffer truesize rather than its length: a
// burst of calls, or one pause of the reading goroutine, overflows it,
// and every datagram dropped there comes back as a retransmission half a
// second later. The kernel caps the request at net.core.rmem_max.
const sipUDPBuffer = 4 << 20

// sizeUDPBuffers asks for large socket buffers on c and returns the
// receive buffer the kernel granted (0 when it cannot be read back). A
// grant below the request is logged with the setting that limits it.
func sizeUDPBuffers(c net.PacketConn, log *slog.Logger) int {
	u, ok := c.(*net.UDPConn)
	if !ok {
		return 0
	}
	_ = u.SetReadBuffer(sipUDPBuffer)
	_ = u.SetWriteBuffer(sipUDPBuffer / 4)
	got := 0
	if raw, err := u.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			got, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		})
	}
	// Linux reports twice the size asked for (the bookkeeping share).
	if got > 0 && got < sipUDPBuffer && log != nil {
		log.Info("SIP UDP receive buffer smaller than wanted; raise net.core.rmem_max for bursts of calls",
			"granted_bytes", got/2, "wanted_bytes", sipUDPBuffer)
	}
	return got / 2
}
